//! The model card written beside a trained model (`models/<name>.md`): what the model was
//! trained on and how, what it reads, and how it measures against NEWS2 on patients it never saw.

use std::fmt::Write;

use super::{Evaluation, Kind, Measures};
use crate::risk::model::{Estimator, RiskModel};

/// One fitted model and its measures.
pub struct Candidate {
    pub model: RiskModel,
    pub kind: Kind,
    /// Whether it reads `monitoring.hours` (ICULOS in ICU data: a cohort artefact).
    pub cohort_artefact: bool,
    pub fit_seconds: f64,
    pub calibration: Evaluation,
    pub validation: Evaluation,
}

fn f3(x: f64) -> String {
    if x.is_finite() {
        format!("{x:.3}")
    } else {
        "–".into()
    }
}

fn lead(m: &Measures) -> String {
    format!(
        "{} of {} ({})",
        m.lead_time.alerted_before_onset,
        m.lead_time.septic_stays,
        m.lead_time
            .median_hours
            .map_or("–".into(), |h| format!("median {h:.1} h"))
    )
}

fn row(out: &mut String, name: &str, auroc: f64, auprc: f64, m: &Measures, threshold: &str) {
    let _ = writeln!(
        out,
        "| {name} | {} | {} | {} | {threshold} | {} | {} | {} |",
        f3(auroc),
        f3(auprc),
        f3(m.utility),
        f3(m.sensitivity),
        f3(m.ppv),
        lead(m)
    );
}

/// The card, in Markdown. `shipped` indexes the model written to disk.
pub fn render(candidates: &[Candidate], shipped: usize, seconds: f64, command: &str) -> String {
    let c = &candidates[shipped];
    let m = &c.model;
    let v = &c.validation;
    let p = &m.provenance;
    let mut out = String::new();
    let _ = writeln!(out, "# Model card: {} (version {})\n", m.name, m.version);
    let _ = writeln!(
        out,
        "A {} that gives, each time a patient's vital signs change, the calibrated probability that \
         the patient's row carries the PhysioNet 2019 sepsis label (sepsis within the challenge's \
         horizon: from 6 h before Sepsis-3 onset on). Vigil raises a risk alert when it reaches \
         {:.1} % and clears it below {:.1} %.\n",
        m.estimator.kind(),
        100.0 * m.threshold,
        100.0 * m.clear_below
    );
    let _ = writeln!(
        out,
        "## Headline (validation patients, never used to fit or tune)\n"
    );
    let _ = writeln!(
        out,
        "| | AUROC | normalised utility |\n| --- | --- | --- |\n| this model | **{}** | **{}** |\n| NEWS2 (total; alert at ≥ 5) | {} | {} |\n| NEWS2, best threshold on these patients (≥ {}) | | {} |\n",
        f3(v.auroc),
        f3(v.utility),
        f3(v.news2_auroc),
        f3(v.news2_utility),
        v.news2_best_threshold,
        f3(v.news2_best_utility)
    );

    let _ = writeln!(out, "## Data\n");
    let _ = writeln!(
        out,
        "- **Source**: {}. PhysioNet/Computing in Cardiology Challenge 2019, training set B \
         (CC BY 4.0; Reyna et al., Crit Care Med 2020;48(2):210-217).",
        p.data
    );
    let _ = writeln!(out, "- **Label**: {}.", p.label);
    let _ = writeln!(
        out,
        "- **Split by patient** (seed {}): {} training patients ({} rows), {} calibration patients, \
         {} validation patients ({} rows, {} positive; {} septic patients).",
        p.seed,
        p.train_patients,
        p.train_rows,
        p.calibration_patients,
        p.validation_patients,
        v.rows,
        v.positive_rows,
        v.septic_patients
    );
    let _ = writeln!(
        out,
        "- **Vitals only**: the features come from what a bedside stream carries (heart rate, \
         SpO2, temperature, systolic and diastolic pressure, respiratory rate, FiO2 as \
         supplemental oxygen); no laboratory value, age, sex, unit or admission time. The \
         dataset has no consciousness level, so NEWS2 is incomplete on every row: its total is \
         the lower bound Vigil reports.\n"
    );

    let _ = writeln!(out, "## Features ({})\n", m.features.len());
    let _ = writeln!(
        out,
        "Computed by the engine's own monitors (`risk::features`), the same code in training, \
         `vigil evaluate` and the stream, with these settings (a pipeline scoring the model needs \
         its windows):\n\n```toml\n{}```\n",
        p.settings
    );
    let _ = writeln!(
        out,
        "Per vital: latest value, hours since it, and count, mean, min, max, standard deviation \
         and slope per hour over each window; the NEWS2 sub-scores, total and upper bound; the \
         shock index (heart rate / systolic pressure). A missing value is filled with its \
         training mean after standardisation.\n\n<details><summary>The list</summary>\n\n{}\n\n</details>\n",
        m.features
            .iter()
            .map(|f| format!("`{f}`"))
            .collect::<Vec<_>>()
            .join(", ")
    );

    let _ = writeln!(out, "## Training\n");
    match &m.estimator {
        Estimator::Logistic { .. } => {
            let _ = writeln!(
                out,
                "linfa-logistic 0.8 (L-BFGS, L2 penalty), on standardised features; Platt \
                 scaling fitted on the calibration patients."
            );
        }
        Estimator::Forest { trees } => {
            let _ = writeln!(
                out,
                "{} linfa-trees 0.8 decision trees (Gini), each on a balanced bootstrap (every \
                 positive row drawn with replacement and as many negatives) and a random third \
                 of the features; a leaf holds the share of its sample rows that carry the \
                 label, the score is the mean over trees, Platt scaled on the calibration \
                 patients.",
                trees.len()
            );
        }
    }
    let _ = writeln!(
        out,
        "\nAlert threshold: the calibrated probability with the best normalised utility on the \
         calibration patients ({:.4}); it clears below {:.4}. Whole run (replay, four fits, \
         evaluations): {seconds:.0} s on a 2-core machine. Reproduce with:\n\n```sh\n{command}\n```\n",
        m.threshold, m.clear_below
    );

    let _ = writeln!(out, "## Validation, against NEWS2 on the same patients\n");
    let _ = writeln!(
        out,
        "Rows are hours. Utility: the challenge's normalised utility of alerting at every row at \
         or above the threshold. Sensitivity and PPV by row; lead time: septic patients alerted \
         at or before onset, and how long before.\n"
    );
    let _ = writeln!(
        out,
        "| score | AUROC | AUPRC | utility | alert at | sensitivity | PPV | alerted before onset |\n| --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    row(
        &mut out,
        &format!("**{} (shipped)**", m.estimator.kind()),
        v.auroc,
        v.auprc,
        &v.model,
        &format!("p ≥ {:.3}", m.threshold),
    );
    row(
        &mut out,
        "NEWS2 ≥ 5",
        v.news2_auroc,
        v.news2_auprc,
        &v.news2_5,
        "5",
    );
    row(
        &mut out,
        "NEWS2 ≥ 7",
        v.news2_auroc,
        v.news2_auprc,
        &v.news2_7,
        "7",
    );
    let _ = writeln!(
        out,
        "\nBrier score {} (predicting the base rate on every row: {}).\n",
        f3(v.brier),
        f3({
            let rate = v.positive_rows as f64 / v.rows.max(1) as f64;
            rate * (1.0 - rate)
        })
    );

    let _ = writeln!(out, "### Calibration (validation deciles)\n");
    let _ = writeln!(
        out,
        "| rows | predicted (mean) | observed |\n| --- | --- | --- |"
    );
    for bin in &v.calibration {
        let _ = writeln!(
            out,
            "| {} | {:.4} | {:.4} |",
            bin.rows, bin.mean_probability, bin.observed_rate
        );
    }

    let _ = writeln!(out, "\n## Every model fitted, and the cohort artefact\n");
    let _ = writeln!(
        out,
        "`monitoring.hours` is the time since the patient was first seen: in this data, ICU \
         length of stay (ICULOS), which encodes how the challenge built its cohort and when its \
         labels start. A model that leans on it looks strong here and fails on a ward. The \
         shipped model is the best one *without* it by utility on the calibration patients.\n"
    );
    let _ = writeln!(
        out,
        "| model | monitoring.hours | fit | calibration utility | validation AUROC | validation AUPRC | validation utility |\n| --- | --- | --- | --- | --- | --- | --- |"
    );
    for (i, c) in candidates.iter().enumerate() {
        let _ = writeln!(
            out,
            "| {}{} | {} | {:.1} s | {} | {} | {} | {} |",
            match c.kind {
                Kind::Logistic => "logistic regression",
                Kind::Forest => "balanced random forest",
            },
            if i == shipped { " (shipped)" } else { "" },
            if c.cohort_artefact { "with" } else { "without" },
            c.fit_seconds,
            f3(c.calibration.utility),
            f3(c.validation.auroc),
            f3(c.validation.auprc),
            f3(c.validation.utility)
        );
    }

    let _ = writeln!(out, "\n## Limits\n");
    let _ = writeln!(
        out,
        "- One hospital system (set B), retrospective, hourly charted ICU rows. Vigil's live \
         streams are denser (a monitor sends every second): window statistics then see more \
         samples than in training. Re-validate on the ward's own data before relying on it.\n\
         - The label is the challenge's Sepsis-3 construction, not a clinician's diagnosis.\n\
         - The probability is calibrated on ICU prevalence (about 2 % of rows); on a ward with \
         fewer septic patients the same score means a lower probability.\n\
         - Decision support: an alert asks for a clinical review; it does not diagnose, and \
         NEWS2 alerts continue independently."
    );
    out
}
