//! `vigil train`: fit risk models on a labelled PhysioNet 2019 directory, compare them with
//! NEWS2 on held-out patients, and write the chosen one with its model card.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;

use vigil::config::{DatasetConfig, PipelineConfig, SourceConfig};
use vigil::monitor::MonitorSettings;
use vigil::risk::features::{Feature, FeatureSet};
use vigil::training::{self, Stay, TrainOptions, card};

const EXAMPLES: &str = "\
Examples:
  vigil train --data ../shared/datasets/physionet2019-setB-dev
  vigil train --data DIR --seed 11 --name sepsis-seed11 --out /tmp/models
  vigil train --data DIR --limit 500 --trees 20          # a quick look on 500 stays

The patients are split, by patient and never by row, into training (60 %), calibration (20 %)
and validation (20 %) sets with --seed. Four models are fitted: a logistic regression and a
balanced random forest of linfa decision trees, each with and without `monitoring.hours` (time
since the patient was first seen: in ICU data a cohort artefact, ICULOS). Each is calibrated
(Platt) and given the alert threshold with the best PhysioNet 2019 utility on the calibration
patients. The shipped model is the one without the artefact that does best there; all four and
NEWS2 are reported on the validation patients in the model card (OUT/NAME.md).

The features are computed by the engine's own monitors with the pipeline's [windows],
[staleness] and [news2] settings (--pipeline): a pipeline scoring the model must have its
windows.";

/// Train risk models on a PhysioNet 2019 directory and write the best with its model card.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct TrainArgs {
    /// A directory of PhysioNet 2019 stays (`*.psv`, with SepsisLabel).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,

    /// The pipeline whose windows, staleness limits and NEWS2 settings compute the features.
    #[arg(
        long,
        value_name = "PIPELINE.toml",
        default_value = "pipelines/physionet2019.toml"
    )]
    pub pipeline: PathBuf,

    /// Seed of the patient split, the bootstrap samples and the trees' feature subsets.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// The model's name: writes OUT/NAME.json and OUT/NAME.md.
    #[arg(long, default_value = "vigil-sepsis")]
    pub name: String,

    /// Where to write the model and its card.
    #[arg(long, value_name = "DIR", default_value = "models")]
    pub out: PathBuf,

    /// Use only the first N stays (by file name).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Trees in the forest.
    #[arg(long, default_value_t = 100)]
    pub trees: usize,

    /// Maximum depth of each tree.
    #[arg(long, default_value_t = 8)]
    pub depth: usize,

    /// L2 penalty of the logistic regression.
    #[arg(long, default_value_t = 1.0)]
    pub alpha: f64,
}

pub fn run(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let config = PipelineConfig::load(&args.pipeline).with_context(|| {
        format!(
            "the pipeline {} gives the feature settings (--pipeline)",
            args.pipeline.display()
        )
    })?;
    let start = match &config.source {
        SourceConfig::Physionet2019(d) => d.0.start.clone(),
        _ => DatasetConfig::default_start(),
    };
    let settings = MonitorSettings::from_config(&config);
    let windows: Vec<i64> = settings
        .picture
        .windows
        .durations()
        .iter()
        .copied()
        .filter(|&w| w >= 4 * 3_600_000)
        .collect();
    if windows.is_empty() {
        bail!(
            "{} has no window of 4 h or more in [windows] durations: the features need trends over hours",
            args.pipeline.display()
        );
    }
    let standard = FeatureSet::standard(&windows);
    let all = standard.clone().with(Feature::MonitoringHours);
    eprintln!(
        "vigil train: replaying {} through the monitors ({} features)...",
        args.data.display(),
        all.len()
    );
    let dataset = DatasetConfig {
        path: args.data.clone(),
        limit: args.limit,
        start,
    };
    let stays = training::physionet2019(&dataset, &all, &settings)?;
    let rows: usize = stays.iter().map(Stay::rows).sum();
    eprintln!(
        "vigil train: {} stays, {rows} rows, {} septic, in {:.1} s",
        stays.len(),
        stays.iter().filter(|s| s.labels.contains(&true)).count(),
        started.elapsed().as_secs_f64()
    );
    let options = TrainOptions {
        name: args.name.clone(),
        seed: args.seed,
        alpha: args.alpha,
        trees: args.trees,
        depth: args.depth,
        data: format!(
            "{} ({} stays{})",
            args.data.display(),
            stays.len(),
            args.limit.map_or(String::new(), |l| format!(", first {l}"))
        ),
        settings: config.feature_settings_toml(),
    };
    let candidates = training::candidates(&stays, &standard, &options, &mut |c| {
        eprintln!(
            "vigil train: {:<24} {}  fitted in {:.1} s; calibration AUROC {:.3}, utility {:.3}; validation AUROC {:.3}, utility {:.3}",
            c.model.estimator.kind(),
            if c.cohort_artefact {
                "with monitoring.hours   "
            } else {
                "without monitoring.hours"
            },
            c.fit_seconds,
            c.calibration.auroc,
            c.calibration.utility,
            c.validation.auroc,
            c.validation.utility,
        );
    })?;
    let shipped = training::select(&candidates).context("no model was fitted")?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let model_path = args.out.join(format!("{}.json", args.name));
    let card_path = args.out.join(format!("{}.md", args.name));
    candidates[shipped].model.save(&model_path)?;
    let seconds = started.elapsed().as_secs_f64();
    let command = std::iter::once("vigil".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    std::fs::write(
        &card_path,
        card::render(&candidates, shipped, seconds, &command),
    )
    .with_context(|| format!("cannot write {}", card_path.display()))?;
    let c = &candidates[shipped];
    println!(
        "{}: {} v{}, validation AUROC {:.3} (NEWS2 {:.3}), utility {:.3} (NEWS2 ≥ 5: {:.3}, best NEWS2 threshold: {:.3}); trained in {seconds:.0} s",
        model_path.display(),
        c.model.estimator.kind(),
        c.model.version,
        c.validation.auroc,
        c.validation.news2_auroc,
        c.validation.utility,
        c.validation.news2_utility,
        c.validation.news2_best_utility,
    );
    println!("{}: the model card", card_path.display());
    Ok(ExitCode::SUCCESS)
}
