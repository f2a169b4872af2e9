//! `vigil evaluate`: a trained model on any PhysioNet 2019 directory, against NEWS2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use serde::Serialize;

use vigil::config::{DatasetConfig, PipelineConfig};
use vigil::monitor::MonitorSettings;
use vigil::risk::model::RiskModel;
use vigil::training::{self, Evaluation, Stay};

const EXAMPLES: &str = "\
Examples:
  vigil evaluate --model models/vigil-sepsis.json --data ../shared/datasets/physionet2019-setB-dev
  vigil evaluate --model models/vigil-sepsis.json --data DIR --json > metrics.json
  vigil evaluate --model models/vigil-sepsis.json --data DIR --predictions rows.jsonl

Every row (ICU hour) of every stay is scored with the features the engine computes in the
stream, from the settings saved in the model. Measures: AUROC, AUPRC, Brier score, calibration
by deciles, the PhysioNet 2019 normalised utility, sensitivity and PPV at the model's alert
threshold, and the lead time of the first alert before onset; the same for NEWS2 (alerting at
5 and at 7) on the same rows. --json prints one object with, among others, the keys auroc,
auprc, brier, utility, news2_auroc, news2_utility, patients and rows.

Evaluate on patients the model was not trained on: the model card says which were held out.";

/// Measure a risk model on a PhysioNet 2019 directory, next to NEWS2.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct EvaluateArgs {
    /// The model file (written by `vigil train`).
    #[arg(long, value_name = "FILE")]
    pub model: PathBuf,

    /// A directory of PhysioNet 2019 stays (`*.psv`, with SepsisLabel).
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,

    /// Use only the first N stays (by file name).
    #[arg(long, value_name = "N")]
    pub limit: Option<usize>,

    /// Event time of hour 0 of every stay (as the replay pipeline gives it).
    #[arg(long, value_name = "TIME", default_value_t = DatasetConfig::default_start())]
    pub start: String,

    /// Print the measures as one JSON object.
    #[arg(long)]
    pub json: bool,

    /// Also write every row's probability as a JSON line: patient, time, label, probability,
    /// news2.
    #[arg(long, value_name = "FILE")]
    pub predictions: Option<PathBuf>,
}

#[derive(Serialize)]
struct Report<'a> {
    model: &'a str,
    version: &'a str,
    data: String,
    #[serde(flatten)]
    evaluation: &'a Evaluation,
}

#[derive(Serialize)]
struct Prediction<'a> {
    patient: &'a str,
    time: String,
    label: bool,
    probability: f64,
    news2: f64,
}

pub fn run(args: &EvaluateArgs) -> anyhow::Result<ExitCode> {
    let model = RiskModel::load(&args.model)?;
    // The features as trained: the model keeps the settings that shaped them.
    let config = PipelineConfig::parse(
        &format!(
            "[source]\nkind = \"jsonl\"\npath = \"-\"\n\n{}",
            model.provenance.settings
        ),
        None,
    )
    .with_context(|| format!("the settings saved in {}", args.model.display()))?;
    let settings = MonitorSettings::from_config(&config);
    let features = model.feature_set(&settings.picture)?;
    let dataset = DatasetConfig {
        path: args.data.clone(),
        limit: args.limit,
        start: args.start.clone(),
    };
    let stays = training::physionet2019(&dataset, &features, &settings)?;
    let refs: Vec<&Stay> = stays.iter().collect();
    let probabilities = training::predict(&model, &refs);
    let evaluation = training::evaluate_scores(model.threshold, &refs, &probabilities);
    if let Some(path) = &args.predictions {
        let file = std::fs::File::create(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut out = std::io::BufWriter::new(file);
        for (stay, probabilities) in stays.iter().zip(&probabilities) {
            for (i, &probability) in probabilities.iter().enumerate() {
                let line = serde_json::to_string(&Prediction {
                    patient: &stay.patient,
                    time: stay.times[i].to_rfc3339(),
                    label: stay.labels[i],
                    probability,
                    news2: stay.news2[i],
                })?;
                writeln!(out, "{line}")?;
            }
        }
        out.flush()?;
    }
    let report = Report {
        model: &model.name,
        version: &model.version,
        data: args.data.display().to_string(),
        evaluation: &evaluation,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", human(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn human(r: &Report<'_>) -> String {
    let e = r.evaluation;
    let f = |x: f64| {
        if x.is_finite() {
            format!("{x:.3}")
        } else {
            "–".into()
        }
    };
    let lead = |m: &training::Measures| {
        format!(
            "{}/{} septic alerted before onset{}",
            m.lead_time.alerted_before_onset,
            m.lead_time.septic_stays,
            m.lead_time
                .median_hours
                .map_or(String::new(), |h| format!(", median {h:.1} h ahead"))
        )
    };
    let mut text = format!(
        "{} v{} on {}: {} patients ({} septic), {} rows ({} positive)\n\n\
         \x20                 AUROC  AUPRC  utility  sens.  PPV\n",
        r.model, r.version, r.data, e.patients, e.septic_patients, e.rows, e.positive_rows
    );
    for (name, auroc, auprc, m) in [
        ("model", e.auroc, e.auprc, &e.model),
        ("NEWS2 >= 5", e.news2_auroc, e.news2_auprc, &e.news2_5),
        ("NEWS2 >= 7", e.news2_auroc, e.news2_auprc, &e.news2_7),
    ] {
        text.push_str(&format!(
            "  {name:<14} {}  {}  {:>7}  {}  {}  {}\n",
            f(auroc),
            f(auprc),
            f(m.utility),
            f(m.sensitivity),
            f(m.ppv),
            lead(m)
        ));
    }
    text.push_str(&format!(
        "\n  alert threshold {:.4}; Brier score {}; best NEWS2 threshold here ≥ {} (utility {})\n  calibration (deciles, predicted → observed):",
        e.threshold,
        f(e.brier),
        e.news2_best_threshold,
        f(e.news2_best_utility)
    ));
    for bin in &e.calibration {
        text.push_str(&format!(
            " {:.3}→{:.3}",
            bin.mean_probability, bin.observed_rate
        ));
    }
    text.push('\n');
    text
}
