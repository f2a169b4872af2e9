//! Training and evaluation: a labelled dataset replayed through the engine's own monitors, linfa
//! models fitted on some patients, calibrated and thresholded on others, and measured against
//! NEWS2 on patients neither saw.
//!
//! **One code path.** [`replay`] turns a dataset's source items into the events the dataflow
//! would carry, puts each patient's events in the engine's total order and runs them through
//! [`crate::monitor::events::apply_set`] and [`FeatureSet::extract`]: the same functions that
//! score a patient in the stream. Features at a row are read after that row's observations, as
//! the stream reads them when the observations arrive.
//!
//! **Patients, never rows.** [`split`] shuffles the patients with a seeded generator and cuts
//! them into training (60 %), calibration (20 %) and validation (20 %) sets. Models are fitted on
//! the training patients; Platt scaling, the alert threshold and the choice of the shipped model
//! use the calibration patients; the validation patients are only measured.
//!
//! **Deterministic.** The split, the bootstrap samples and the feature subsets come from a
//! SplitMix64 generator seeded by `--seed`; linfa's fits are deterministic; no hash map order
//! reaches the output. The same seed and data give the same model file, byte for byte.

use std::collections::BTreeMap;

use linfa::prelude::*;
use linfa_logistic::LogisticRegression;
use linfa_trees::DecisionTree;
use ndarray::{Array1, Array2};
use serde::Serialize;
use thiserror::Error;

pub mod card;

use crate::monitor::events::{Event, apply_set, normalise, same_patient_and_time};
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::observation::{EventTime, Identifier};
use crate::risk::features::FeatureSet;
use crate::risk::metrics;
use crate::risk::model::{
    Calibration, Estimator, FORMAT, Node, Provenance, RiskModel, Tree, calibration_input,
};
use crate::sources::SourceItem;
use crate::sources::physionet::LabelledRow;

/// Training that cannot go on.
#[derive(Debug, Error)]
pub enum TrainError {
    #[error("{0}")]
    Data(String),
    #[error("fitting the {model} failed: {reason}")]
    Fit { model: String, reason: String },
}

/// One stay: its hourly rows, their labels, raw features and NEWS2 totals.
#[derive(Clone, Debug)]
pub struct Stay {
    pub patient: String,
    pub times: Vec<EventTime>,
    pub labels: Vec<bool>,
    /// Raw features, row after row (`rows × features`).
    pub x: Vec<f64>,
    /// The NEWS2 total at each row (a lower bound when incomplete).
    pub news2: Vec<f64>,
}

impl Stay {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    pub fn row(&self, i: usize, width: usize) -> &[f64] {
        &self.x[i * width..(i + 1) * width]
    }
}

/// Replays a dataset's items through per-patient monitors and reads `features` at each
/// labelled row. Stays come out sorted by patient id.
pub fn replay(
    items: Vec<SourceItem>,
    rows: Vec<LabelledRow>,
    features: &FeatureSet,
    settings: &MonitorSettings,
) -> Vec<Stay> {
    let mut events: BTreeMap<Identifier, Vec<Event>> = BTreeMap::new();
    for item in items {
        let event = match item {
            SourceItem::Observation(obs, _) => Event::Observation(obs),
            SourceItem::Rejected(r) => match r.subject {
                Some(subject) => Event::Invalid {
                    subject,
                    reason: r.reason,
                },
                None => continue,
            },
            // A dataset replay gives none.
            SourceItem::Archived(_) => continue,
        };
        if let Some((patient, _)) = event.subject() {
            events.entry(patient.clone()).or_default().push(event);
        }
    }
    let mut by_patient: BTreeMap<Identifier, Vec<LabelledRow>> = BTreeMap::new();
    for row in rows {
        by_patient.entry(row.patient.clone()).or_default().push(row);
    }
    let mut stays = Vec::with_capacity(by_patient.len());
    let mut alerts = Vec::new();
    for (patient, mut rows) in by_patient {
        rows.sort_by_key(|r| r.time);
        let mut events = events.remove(&patient).unwrap_or_default();
        normalise(&mut events);
        let first = events
            .iter()
            .filter_map(event_time)
            .chain(rows.first().map(|r| r.time))
            .min();
        let Some(first) = first else { continue };
        let mut monitor = PatientMonitor::new(patient.as_str(), first, Default::default());
        let mut sets = events.chunk_by(same_patient_and_time).peekable();
        let mut stay = Stay {
            patient: patient.as_str().to_owned(),
            times: Vec::with_capacity(rows.len()),
            labels: Vec::with_capacity(rows.len()),
            x: Vec::with_capacity(rows.len() * features.len()),
            news2: Vec::with_capacity(rows.len()),
        };
        for row in &rows {
            while let Some(set) = sets.next_if(|s| event_time(&s[0]).is_some_and(|t| t <= row.time))
            {
                apply_set(&mut monitor, settings, set, &mut alerts);
                alerts.clear();
            }
            features.extract(monitor.picture(), &settings.picture, row.time, &mut stay.x);
            stay.news2.push(f64::from(
                monitor.score_at(settings, row.time.micros()).0.total,
            ));
            stay.times.push(row.time);
            stay.labels.push(row.label);
        }
        stays.push(stay);
    }
    stays
}

/// Loads a PhysioNet 2019 directory through its replay source and [`replay`]s it.
pub fn physionet2019(
    dataset: &crate::config::DatasetConfig,
    features: &FeatureSet,
    settings: &MonitorSettings,
) -> Result<Vec<Stay>, crate::sources::SourceError> {
    use crate::sources::Source;
    let mut source = crate::sources::physionet::Replay::physionet2019(dataset)?;
    let rows = source.labelled_rows();
    if rows.is_empty() {
        return Err(crate::sources::SourceError::Format {
            path: dataset.path.clone(),
            reason: "no SepsisLabel column: not a labelled PhysioNet 2019 directory".into(),
        });
    }
    let mut items = Vec::with_capacity(source.len());
    while source.fill(1 << 16, &mut items)? {}
    Ok(replay(items, rows, features, settings))
}

fn event_time(e: &Event) -> Option<EventTime> {
    e.subject().map(|(_, time)| time)
}

/// A small, fast, seedable generator (SplitMix64): the same seed gives the same numbers on every
/// machine and release, which a library generator does not promise.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

/// Indices of stays in each set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Split {
    pub train: Vec<usize>,
    pub calibration: Vec<usize>,
    pub validation: Vec<usize>,
}

/// Splits stays by patient: 60 % training, 20 % calibration, 20 % validation.
pub fn split(stays: &[Stay], seed: u64) -> Split {
    let mut order: Vec<usize> = (0..stays.len()).collect();
    order.sort_by(|&a, &b| stays[a].patient.cmp(&stays[b].patient));
    SplitMix64::new(seed).shuffle(&mut order);
    let n = order.len();
    let (a, b) = (n * 6 / 10, n * 8 / 10);
    let sorted = |mut v: Vec<usize>| {
        v.sort_unstable();
        v
    };
    Split {
        train: sorted(order[..a].to_vec()),
        calibration: sorted(order[a..b].to_vec()),
        validation: sorted(order[b..].to_vec()),
    }
}

/// The fill value, centre and scale of each feature over the rows of `stays`.
fn standardise(stays: &[&Stay], width: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = vec![0.0; width];
    let mut sum_sq = vec![0.0; width];
    let mut n = vec![0usize; width];
    for stay in stays {
        for row in stay.x.chunks(width) {
            for (j, &v) in row.iter().enumerate() {
                if v.is_finite() {
                    sum[j] += v;
                    sum_sq[j] += v * v;
                    n[j] += 1;
                }
            }
        }
    }
    let mean: Vec<f64> = (0..width)
        .map(|j| if n[j] > 0 { sum[j] / n[j] as f64 } else { 0.0 })
        .collect();
    let scale = (0..width)
        .map(|j| {
            let var = if n[j] > 0 {
                sum_sq[j] / n[j] as f64 - mean[j] * mean[j]
            } else {
                0.0
            };
            if var > 1e-12 { var.sqrt() } else { 1.0 }
        })
        .collect();
    (mean, scale)
}

/// The prepared rows and labels of `stays`.
fn matrix(model: &RiskModel, stays: &[&Stay]) -> (Array2<f64>, Vec<bool>) {
    let width = model.features.len();
    let rows: usize = stays.iter().map(|s| s.rows()).sum();
    let mut x = Vec::with_capacity(rows * width);
    let mut y = Vec::with_capacity(rows);
    for stay in stays {
        for i in 0..stay.rows() {
            let start = x.len();
            x.extend_from_slice(stay.row(i, width));
            model.prepare(&mut x[start..]);
            y.push(stay.labels[i]);
        }
    }
    let x = Array2::from_shape_vec((rows, width), x).unwrap_or_else(|_| Array2::zeros((0, width)));
    (x, y)
}

/// A logistic regression as (intercept, weights) on the log-odds of `true`. linfa's takes the
/// more frequent class as its positive one; with a rare label the signs are flipped back here.
fn fit_logit(x: &Array2<f64>, y: &[bool], alpha: f64) -> Result<(f64, Vec<f64>), TrainError> {
    let fit_err = |reason: String| TrainError::Fit {
        model: "logistic regression".into(),
        reason,
    };
    let dataset = Dataset::new(x.clone(), Array1::from(y.to_vec()));
    let fitted = LogisticRegression::default()
        .alpha(alpha)
        .max_iterations(300)
        .fit(&dataset)
        .map_err(|e| fit_err(e.to_string()))?;
    let sign = if fitted.labels().pos.class { 1.0 } else { -1.0 };
    Ok((
        sign * fitted.intercept(),
        fitted.params().iter().map(|w| sign * w).collect(),
    ))
}

/// linfa's trees name a node's class by the larger weight, breaking ties in hash-map order
/// (random per process), and prune subtrees whose two sides name the same class: a tie would
/// make the same seed grow another forest in another run. Positive rows weigh 1 + 2⁻¹², negative
/// rows 1: for fewer than 4096 positives every partial sum `k · (1 + 2⁻¹²)` is exact in `f32`
/// and never a whole number, so the two classes never weigh the same.
const POSITIVE_WEIGHT: f32 = 1.0 + 1.0 / 4096.0;
const MAX_POSITIVES_PER_TREE: usize = 4095;

/// A forest of decision trees, each fitted on a balanced bootstrap (every positive row drawn
/// with replacement, as many negatives) and a random third of the features: linfa's trees see a
/// rare label as often as a common one. Each leaf keeps the share of its sample rows that carry
/// the label (counted here: linfa's leaves keep only the majority class).
fn fit_forest(
    x: &Array2<f64>,
    y: &[bool],
    trees: usize,
    depth: usize,
    seed: u64,
) -> Result<Estimator, TrainError> {
    let positives: Vec<usize> = (0..y.len()).filter(|&i| y[i]).collect();
    let negatives: Vec<usize> = (0..y.len()).filter(|&i| !y[i]).collect();
    if positives.is_empty() || negatives.is_empty() {
        return Err(TrainError::Data(
            "the training patients need rows with and without the label".into(),
        ));
    }
    let width = x.ncols();
    let per_tree = width.div_ceil(3).max(1);
    let mut rng = SplitMix64::new(seed ^ 0x5eed_f0e5);
    let mut out = Vec::with_capacity(trees);
    for _ in 0..trees {
        let mut columns: Vec<usize> = (0..width).collect();
        rng.shuffle(&mut columns);
        columns.truncate(per_tree);
        columns.sort_unstable();
        let n = positives.len().min(MAX_POSITIVES_PER_TREE);
        let mut rows: Vec<usize> = (0..n)
            .map(|_| positives[rng.below(positives.len())])
            .collect();
        rows.extend((0..n).map(|_| negatives[rng.below(negatives.len())]));
        let sample = Array2::from_shape_fn((rows.len(), columns.len()), |(i, j)| {
            x[[rows[i], columns[j]]]
        });
        let labels = Array1::from_iter(rows.iter().map(|&i| y[i]));
        let weights = Array1::from_iter(rows.iter().map(
            |&i| {
                if y[i] { POSITIVE_WEIGHT } else { 1.0 }
            },
        ));
        let fitted = DecisionTree::params()
            .max_depth(Some(depth))
            .min_weight_leaf(20.0)
            .fit(&Dataset::new(sample, labels).with_weights(weights))
            .map_err(|e| TrainError::Fit {
                model: "decision tree".into(),
                reason: e.to_string(),
            })?;
        let mut tree = flatten(fitted.root_node(), &columns);
        // Leaf values: the share of the label among the sample rows reaching each leaf.
        let mut counts = vec![(0u32, 0u32); tree.nodes.len()];
        for &r in &rows {
            let row = x.row(r);
            let leaf = tree.leaf(row.as_slice().unwrap_or(&row.to_vec()));
            counts[leaf].0 += u32::from(y[r]);
            counts[leaf].1 += 1;
        }
        for (node, (label, total)) in tree.nodes.iter_mut().zip(counts) {
            if let Node::Leaf { value } = node {
                *value = if total > 0 {
                    f64::from(label) / f64::from(total)
                } else {
                    0.5
                };
            }
        }
        out.push(tree);
    }
    Ok(Estimator::Forest { trees: out })
}

/// A linfa tree as our own nodes, features mapped back to the full list (leaf values are
/// filled in by the caller).
fn flatten(root: &linfa_trees::TreeNode<f64, bool>, columns: &[usize]) -> Tree {
    fn walk(node: &linfa_trees::TreeNode<f64, bool>, columns: &[usize], nodes: &mut Vec<Node>) {
        let at = nodes.len();
        nodes.push(Node::Leaf { value: 0.5 });
        if node.is_leaf() {
            return;
        }
        let (feature, threshold, _) = node.split();
        let children = node.children();
        let mut child = |c: Option<&linfa_trees::TreeNode<f64, bool>>| {
            let index = nodes.len() as u32;
            match c {
                Some(c) => walk(c, columns, nodes),
                None => nodes.push(Node::Leaf { value: 0.5 }),
            }
            index
        };
        let left = child(children[0].as_deref());
        let right = child(children[1].as_deref());
        nodes[at] = Node::Split {
            feature: columns.get(feature).copied().unwrap_or(0) as u32,
            threshold,
            left,
            right,
        };
    }
    let mut nodes = Vec::new();
    walk(root, columns, &mut nodes);
    Tree { nodes }
}

/// Which estimator to fit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Logistic,
    Forest,
}

/// How to train.
#[derive(Clone, Debug)]
pub struct TrainOptions {
    pub name: String,
    pub seed: u64,
    /// L2 penalty of the logistic regression.
    pub alpha: f64,
    pub trees: usize,
    pub depth: usize,
    /// What the data is, for the model card.
    pub data: String,
    /// The `[windows] [staleness] [news2]` settings the features were computed with.
    pub settings: String,
}

/// The probabilities of every row of each stay.
pub fn predict(model: &RiskModel, stays: &[&Stay]) -> Vec<Vec<f64>> {
    let width = model.features.len();
    stays
        .iter()
        .map(|s| {
            (0..s.rows())
                .map(|i| model.probability(s.row(i, width)))
                .collect()
        })
        .collect()
}

/// Fits one model of `kind` on the training stays; calibrates it and picks its threshold on the
/// calibration stays.
pub fn fit(
    kind: Kind,
    features: &FeatureSet,
    train: &[&Stay],
    calibration: &[&Stay],
    options: &TrainOptions,
) -> Result<RiskModel, TrainError> {
    let width = features.len();
    let (fill, scale) = standardise(train, width);
    let mut model = RiskModel {
        format: FORMAT,
        name: options.name.clone(),
        version: String::new(),
        features: features.names(),
        outcome: "sepsis".into(),
        response: "urgent clinical review for sepsis: assess for infection, check lactate and \
                   blood cultures, follow the local sepsis pathway (the model supports, it does \
                   not diagnose)"
            .into(),
        center: fill.clone(),
        fill,
        scale,
        estimator: Estimator::Logistic {
            intercept: 0.0,
            weights: vec![0.0; width],
        },
        calibration: Calibration::IDENTITY,
        threshold: 0.5,
        clear_below: 0.4,
        provenance: Provenance {
            data: options.data.clone(),
            label: "SepsisLabel (PhysioNet/CinC 2019: 1 from 6 h before Sepsis-3 onset)".into(),
            seed: options.seed,
            train_patients: train.len(),
            train_rows: train.iter().map(|s| s.rows()).sum(),
            calibration_patients: calibration.len(),
            validation_patients: 0,
            settings: options.settings.clone(),
        },
    };
    let (x, y) = matrix(&model, train);
    model.estimator = match kind {
        Kind::Logistic => {
            let (intercept, weights) = fit_logit(&x, &y, options.alpha)?;
            Estimator::Logistic { intercept, weights }
        }
        Kind::Forest => fit_forest(&x, &y, options.trees, options.depth, options.seed)?,
    };
    drop(x);

    // Platt scaling on the calibration patients.
    let (xc, yc) = matrix(&model, calibration);
    let z: Vec<f64> = xc
        .rows()
        .into_iter()
        .map(|r| {
            let row = r.to_vec();
            calibration_input(&model.estimator, model.estimator.score(&row))
        })
        .collect();
    let z = Array2::from_shape_vec((z.len(), 1), z).map_err(|e| TrainError::Data(e.to_string()))?;
    let (b, a) = fit_logit(&z, &yc, 1e-4)?;
    model.calibration = Calibration { a: a[0], b };

    // The threshold with the best utility on the calibration patients.
    let probabilities = predict(&model, calibration);
    model.threshold = best_threshold(calibration, &probabilities);
    model.clear_below = model.threshold * 0.8;
    model.version = version_of(&model);
    Ok(model)
}

/// The threshold that maximises the normalised utility (candidates: percentiles of the
/// probabilities).
pub fn best_threshold(stays: &[&Stay], probabilities: &[Vec<f64>]) -> f64 {
    let mut all: Vec<f64> = probabilities.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    let mut best = (f64::NEG_INFINITY, 0.5);
    for k in 1..400 {
        let candidate = all[(all.len() * k / 400).min(all.len().saturating_sub(1))];
        let u = utility_at(stays, probabilities, candidate);
        if u > best.0 {
            best = (u, candidate);
        }
    }
    best.1
}

fn utility_at(stays: &[&Stay], scores: &[Vec<f64>], threshold: f64) -> f64 {
    let predictions: Vec<Vec<bool>> = scores
        .iter()
        .map(|s| s.iter().map(|&p| p >= threshold).collect())
        .collect();
    metrics::normalised_utility(
        stays
            .iter()
            .zip(&predictions)
            .map(|(s, p)| (&s.labels[..], &p[..])),
    )
}

/// A short content hash of what makes the model predict what it does.
fn version_of(model: &RiskModel) -> String {
    let text = serde_json::to_string(&(
        &model.features,
        &model.fill,
        &model.scale,
        &model.estimator,
        &model.calibration,
        model.threshold,
    ))
    .unwrap_or_default();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", h >> 32)
}

/// Measures of a score on a set of stays.
#[derive(Clone, Debug, Serialize)]
pub struct Measures {
    pub auroc: f64,
    pub auprc: f64,
    /// Utility of `score ≥ threshold`, row by row.
    pub utility: f64,
    pub threshold: f64,
    pub sensitivity: f64,
    pub ppv: f64,
    pub lead_time: metrics::LeadTime,
}

impl Measures {
    pub fn of(stays: &[&Stay], scores: &[Vec<f64>], threshold: f64) -> Measures {
        let flat: Vec<f64> = scores.iter().flatten().copied().collect();
        let labels: Vec<bool> = stays
            .iter()
            .flat_map(|s| s.labels.iter().copied())
            .collect();
        let predictions: Vec<Vec<bool>> = scores
            .iter()
            .map(|s| s.iter().map(|&p| p >= threshold).collect())
            .collect();
        let pairs = || {
            stays
                .iter()
                .zip(&predictions)
                .map(|(s, p)| (&s.labels[..], &p[..]))
        };
        let (sensitivity, ppv) = metrics::sensitivity_ppv(&flat, &labels, threshold);
        Measures {
            auroc: metrics::auroc(&flat, &labels),
            auprc: metrics::auprc(&flat, &labels),
            utility: metrics::normalised_utility(pairs()),
            threshold,
            sensitivity,
            ppv,
            lead_time: metrics::lead_time(pairs()),
        }
    }
}

/// A model's evaluation on a set of stays, next to NEWS2 on the same stays.
#[derive(Clone, Debug, Serialize)]
pub struct Evaluation {
    pub patients: usize,
    pub rows: usize,
    pub septic_patients: usize,
    pub positive_rows: usize,
    pub auroc: f64,
    pub auprc: f64,
    pub brier: f64,
    pub utility: f64,
    pub threshold: f64,
    pub sensitivity: f64,
    pub ppv: f64,
    pub median_lead_time_h: Option<f64>,
    pub model: Measures,
    pub calibration: Vec<metrics::CalibrationBin>,
    pub news2_auroc: f64,
    pub news2_auprc: f64,
    /// NEWS2 ≥ 5 (the key threshold: urgent response).
    pub news2_utility: f64,
    pub news2_5: Measures,
    pub news2_7: Measures,
    /// The best utility any NEWS2 threshold (1 to 12) reaches on these stays, and at which.
    pub news2_best_utility: f64,
    pub news2_best_threshold: f64,
}

/// Evaluates `model` on `stays`.
pub fn evaluate(model: &RiskModel, stays: &[&Stay]) -> Evaluation {
    let probabilities = predict(model, stays);
    evaluate_scores(model.threshold, stays, &probabilities)
}

/// Evaluates given probabilities (one per row) with an alert threshold.
pub fn evaluate_scores(threshold: f64, stays: &[&Stay], probabilities: &[Vec<f64>]) -> Evaluation {
    let flat: Vec<f64> = probabilities.iter().flatten().copied().collect();
    let labels: Vec<bool> = stays
        .iter()
        .flat_map(|s| s.labels.iter().copied())
        .collect();
    let news2: Vec<Vec<f64>> = stays.iter().map(|s| s.news2.clone()).collect();
    let m = Measures::of(stays, probabilities, threshold);
    let news2_5 = Measures::of(stays, &news2, 5.0);
    let news2_7 = Measures::of(stays, &news2, 7.0);
    let (news2_best_utility, news2_best_threshold) = (1..=12)
        .map(|t| (utility_at(stays, &news2, f64::from(t)), f64::from(t)))
        .fold(
            (f64::NEG_INFINITY, 0.0),
            |a, b| if b.0 > a.0 { b } else { a },
        );
    Evaluation {
        patients: stays.len(),
        rows: labels.len(),
        septic_patients: stays.iter().filter(|s| s.labels.contains(&true)).count(),
        positive_rows: labels.iter().filter(|&&l| l).count(),
        auroc: m.auroc,
        auprc: m.auprc,
        brier: metrics::brier(&flat, &labels),
        utility: m.utility,
        threshold,
        sensitivity: m.sensitivity,
        ppv: m.ppv,
        median_lead_time_h: m.lead_time.median_hours,
        calibration: metrics::calibration_deciles(&flat, &labels),
        news2_auroc: news2_5.auroc,
        news2_auprc: news2_5.auprc,
        news2_utility: news2_5.utility,
        model: m,
        news2_5,
        news2_7,
        news2_best_utility,
        news2_best_threshold,
    }
}

/// The shipped model's validation count is filled once the split is known.
pub fn with_validation(mut model: RiskModel, validation: usize) -> RiskModel {
    model.provenance.validation_patients = validation;
    model.version = version_of(&model);
    model
}

/// The candidates `vigil train` fits on `stays` (whose features are `standard` then
/// `monitoring.hours`, the last column): a logistic regression and a balanced random forest, each
/// without and with `monitoring.hours` (a cohort artefact in ICU data), fitted on the training
/// patients of the seeded split, calibrated and thresholded on the calibration ones, measured on
/// both and on the validation ones. `report` hears of each as it is fitted.
pub fn candidates(
    stays: &[Stay],
    standard: &FeatureSet,
    options: &TrainOptions,
    report: &mut dyn FnMut(&card::Candidate),
) -> Result<Vec<card::Candidate>, TrainError> {
    let all = standard
        .clone()
        .with(crate::risk::features::Feature::MonitoringHours);
    let without: Vec<Stay> = stays
        .iter()
        .map(|s| drop_last_feature(s, all.len()))
        .collect();
    let split = split(stays, options.seed);
    let mut candidates = Vec::new();
    for (kind, artefact) in [
        (Kind::Logistic, false),
        (Kind::Forest, false),
        (Kind::Logistic, true),
        (Kind::Forest, true),
    ] {
        let (set, features) = if artefact {
            (stays, &all)
        } else {
            (&without[..], standard)
        };
        let fit_started = std::time::Instant::now();
        let model = fit(
            kind,
            features,
            &pick(set, &split.train),
            &pick(set, &split.calibration),
            options,
        )?;
        let model = with_validation(model, split.validation.len());
        let fit_seconds = fit_started.elapsed().as_secs_f64();
        let candidate = card::Candidate {
            calibration: evaluate(&model, &pick(set, &split.calibration)),
            validation: evaluate(&model, &pick(set, &split.validation)),
            model,
            kind,
            cohort_artefact: artefact,
            fit_seconds,
        };
        report(&candidate);
        candidates.push(candidate);
    }
    Ok(candidates)
}

/// The model to ship: of the candidates without the cohort artefact, the one with the best
/// utility on the calibration patients (the validation patients choose nothing).
pub fn select(candidates: &[card::Candidate]) -> Option<usize> {
    candidates
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.cohort_artefact)
        .max_by(|a, b| a.1.calibration.utility.total_cmp(&b.1.calibration.utility))
        .map(|(i, _)| i)
}

/// The stays at `idx`.
fn pick<'a>(set: &'a [Stay], idx: &[usize]) -> Vec<&'a Stay> {
    idx.iter().map(|&i| &set[i]).collect()
}

/// The same stay without its last feature column.
fn drop_last_feature(stay: &Stay, width: usize) -> Stay {
    let mut out = stay.clone();
    out.x = stay
        .x
        .chunks(width)
        .flat_map(|row| row[..width - 1].iter().copied())
        .collect();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stay(patient: &str, rows: &[(f64, bool)]) -> Stay {
        Stay {
            patient: patient.into(),
            times: (0..rows.len())
                .map(|h| EventTime::from_micros(h as i64 * 3_600_000_000))
                .collect(),
            labels: rows.iter().map(|r| r.1).collect(),
            x: rows.iter().map(|r| r.0).collect(),
            news2: vec![0.0; rows.len()],
        }
    }

    fn options() -> TrainOptions {
        TrainOptions {
            name: "toy".into(),
            seed: 1,
            alpha: 0.1,
            trees: 15,
            depth: 3,
            data: "toy".into(),
            settings: String::new(),
        }
    }

    /// A separable toy: the label is 1 exactly when the feature is high. Probabilities must rise
    /// with the feature, whichever class linfa takes as its positive one.
    fn toy() -> Vec<Stay> {
        (0..60)
            .map(|p| {
                let septic = p % 5 == 0;
                let rows: Vec<(f64, bool)> = (0..20)
                    .map(|h| {
                        let label = septic && h >= 10;
                        (
                            if label { 3.0 } else { -1.0 } + (p * 7 + h) as f64 % 5.0 * 0.1,
                            label,
                        )
                    })
                    .collect();
                stay(&format!("p{p:03}"), &rows)
            })
            .collect()
    }

    #[test]
    fn a_rare_label_is_the_positive_class_for_both_models() {
        let stays = toy();
        let refs: Vec<&Stay> = stays.iter().collect();
        let features = FeatureSet::parse(&["heart_rate.last"]).unwrap();
        for kind in [Kind::Logistic, Kind::Forest] {
            let model = fit(kind, &features, &refs[..40], &refs[40..], &options()).unwrap();
            let low = model.probability(&[-1.0]);
            let high = model.probability(&[3.0]);
            assert!(high > 0.5 && low < 0.2, "{kind:?}: {low} {high}");
            let e = evaluate(&model, &refs[40..]);
            assert!(e.auroc > 0.99, "{kind:?}: {}", e.auroc);
        }
    }

    #[test]
    fn the_split_is_by_patient_and_seeded() {
        let stays = toy();
        let a = split(&stays, 7);
        assert_eq!(a, split(&stays, 7));
        assert_ne!(a, split(&stays, 8));
        assert_eq!(a.train.len() + a.calibration.len() + a.validation.len(), 60);
        let mut all: Vec<usize> = [&a.train[..], &a.calibration, &a.validation].concat();
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 60, "a patient in two sets");
    }

    #[test]
    fn training_is_deterministic() {
        let stays = toy();
        let refs: Vec<&Stay> = stays.iter().collect();
        let features = FeatureSet::parse(&["heart_rate.last"]).unwrap();
        // In one process; `vigil train` twice in two processes is an integration test.
        let fit_once = || {
            fit(
                Kind::Forest,
                &features,
                &refs[..40],
                &refs[40..],
                &options(),
            )
        };
        let (a, b) = (fit_once().unwrap(), fit_once().unwrap());
        assert_eq!(
            serde_json::to_string(&a).unwrap(),
            serde_json::to_string(&b).unwrap()
        );
    }
}
