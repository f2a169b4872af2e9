//! A trained risk model as Vigil stores and runs it: the feature list it reads, how missing
//! values are filled and features scaled, the fitted estimator, its calibration and its alert
//! threshold. Saved as JSON (serde) under `models/`, beside a model card.
//!
//! The estimators are fitted with linfa ([`super::train`]) and kept here in plain types of our
//! own: a logistic regression as its weights, a forest as its trees' nodes. So a saved model does
//! not depend on how a linfa version lays out its fitted types, and scoring one patient update is
//! a few hundred multiplications or comparisons with no allocation.
//!
//! Probabilities are calibrated (Platt scaling fitted on patients kept apart from training): a
//! probability of 0.1 means about one in ten such rows carries the label.

use std::path::Path;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::features::{FeatureError, FeatureSet};
use crate::picture::PictureSettings;

/// The model file format; a file of another version is refused with a clear error.
pub const FORMAT: u32 = 1;

/// Standardised features are clipped to this many standard deviations.
pub const CLIP: f64 = 4.0;

/// A fitted estimator, on imputed and scaled features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Estimator {
    /// `score = intercept + Σ weight·x` (the log-odds before calibration).
    Logistic { intercept: f64, weights: Vec<f64> },
    /// `score` = the mean over trees of the share of the label in the leaf a row reaches.
    Forest { trees: Vec<Tree> },
}

/// One decision tree: `nodes[0]` is the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub nodes: Vec<Node>,
}

/// A node of a [`Tree`]: a split goes left when `x[feature] < threshold` (linfa's rule).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Node {
    Split {
        feature: u32,
        threshold: f64,
        left: u32,
        right: u32,
    },
    /// The share of the tree's training sample in this leaf that carries the label.
    Leaf { value: f64 },
}

impl Tree {
    /// The index of the leaf `x` reaches.
    pub fn leaf(&self, x: &[f64]) -> usize {
        let mut i = 0usize;
        loop {
            match self.nodes.get(i) {
                Some(Node::Split {
                    feature,
                    threshold,
                    left,
                    right,
                }) => {
                    let v = x.get(*feature as usize).copied().unwrap_or(f64::NAN);
                    i = if v < *threshold { *left } else { *right } as usize;
                }
                _ => return i,
            }
        }
    }

    /// The leaf value `x` reaches.
    pub fn value(&self, x: &[f64]) -> f64 {
        match self.nodes.get(self.leaf(x)) {
            Some(Node::Leaf { value }) => *value,
            _ => 0.0,
        }
    }
}

impl Estimator {
    /// The raw score of scaled features.
    pub fn score(&self, x: &[f64]) -> f64 {
        match self {
            Estimator::Logistic { intercept, weights } => {
                intercept + weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>()
            }
            Estimator::Forest { trees } => {
                trees.iter().map(|t| t.value(x)).sum::<f64>() / trees.len().max(1) as f64
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Estimator::Logistic { .. } => "logistic regression",
            Estimator::Forest { .. } => "balanced random forest",
        }
    }
}

/// Platt scaling of a raw score: `p = 1 / (1 + exp(−(a·z + b)))`, where `z` is the log-odds
/// score of a logistic regression, or the logit of a forest's vote share.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub a: f64,
    pub b: f64,
}

impl Calibration {
    pub const IDENTITY: Calibration = Calibration { a: 1.0, b: 0.0 };

    pub fn probability(&self, z: f64) -> f64 {
        sigmoid(self.a * z + self.b)
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// The calibration input of a raw score: log-odds as they are, a forest's mean leaf share
/// through a logit (clipped, so that pure leaves everywhere stay finite).
pub fn calibration_input(estimator: &Estimator, score: f64) -> f64 {
    match estimator {
        Estimator::Logistic { .. } => score,
        Estimator::Forest { trees } => {
            let eps = 0.5 / trees.len().max(1) as f64;
            let p = score.clamp(eps, 1.0 - eps);
            (p / (1.0 - p)).ln()
        }
    }
}

/// What the model was trained on and how, for the model card and for people reading the file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub data: String,
    pub label: String,
    pub seed: u64,
    pub train_patients: usize,
    pub train_rows: usize,
    pub calibration_patients: usize,
    pub validation_patients: usize,
    pub settings: String,
}

/// A trained risk model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskModel {
    pub format: u32,
    pub name: String,
    pub version: String,
    /// The input columns, by name ([`FeatureSet`]).
    pub features: Vec<String>,
    /// What the probability is of, and what to do when it reaches the threshold.
    pub outcome: String,
    pub response: String,
    /// Per feature: the value that fills a missing one (the training mean), and the centre and
    /// scale that standardise it.
    pub fill: Vec<f64>,
    pub center: Vec<f64>,
    pub scale: Vec<f64>,
    pub estimator: Estimator,
    pub calibration: Calibration,
    /// The alert threshold on the calibrated probability (chosen for the PhysioNet 2019 utility
    /// on the calibration patients), and the level it must fall below to clear.
    pub threshold: f64,
    pub clear_below: f64,
    pub provenance: Provenance,
}

/// A model that cannot be loaded or used.
#[derive(Debug, Error)]
pub enum ModelError {
    #[error("cannot read the model {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the model {path} is not a Vigil risk model: {reason}")]
    Format { path: String, reason: String },
    #[error("the model {path} does not fit this pipeline: {source}")]
    Features {
        path: String,
        #[source]
        source: FeatureError,
    },
    #[error("cannot write the model {path}: {source}")]
    Write {
        path: String,
        source: std::io::Error,
    },
}

impl RiskModel {
    /// Reads a model file and checks that it is whole.
    pub fn load(path: &Path) -> Result<RiskModel, ModelError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Read {
            path: shown.clone(),
            source,
        })?;
        let model: RiskModel = serde_json::from_str(&text).map_err(|e| ModelError::Format {
            path: shown.clone(),
            reason: e.to_string(),
        })?;
        model.validate().map_err(|reason| ModelError::Format {
            path: shown.clone(),
            reason,
        })?;
        FeatureSet::parse(&model.features).map_err(|source| ModelError::Features {
            path: shown,
            source,
        })?;
        Ok(model)
    }

    fn validate(&self) -> Result<(), String> {
        if self.format != FORMAT {
            return Err(format!(
                "format {} (this Vigil reads format {FORMAT})",
                self.format
            ));
        }
        let n = self.features.len();
        if self.fill.len() != n || self.center.len() != n || self.scale.len() != n {
            return Err(format!(
                "{n} features but {} fill, {} center and {} scale values",
                self.fill.len(),
                self.center.len(),
                self.scale.len()
            ));
        }
        match &self.estimator {
            Estimator::Logistic { weights, .. } if weights.len() != n => {
                return Err(format!("{n} features but {} weights", weights.len()));
            }
            Estimator::Forest { trees } => {
                for (t, tree) in trees.iter().enumerate() {
                    for node in &tree.nodes {
                        if let Node::Split {
                            feature,
                            left,
                            right,
                            ..
                        } = node
                            && (*feature as usize >= n
                                || *left as usize >= tree.nodes.len()
                                || *right as usize >= tree.nodes.len())
                        {
                            return Err(format!("tree {t} refers to a node or feature it lacks"));
                        }
                    }
                }
            }
            Estimator::Logistic { .. } => {}
        }
        Ok(())
    }

    /// Writes the model as one line of JSON (`jq .` reads it).
    pub fn save(&self, path: &Path) -> Result<(), ModelError> {
        let text = serde_json::to_string(self).map_err(|e| ModelError::Format {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        std::fs::write(path, text + "\n").map_err(|source| ModelError::Write {
            path: path.display().to_string(),
            source,
        })
    }

    /// The model's features, checked against the pipeline that will compute them.
    pub fn feature_set(&self, settings: &PictureSettings) -> Result<FeatureSet, FeatureError> {
        let set = FeatureSet::parse(&self.features)?;
        set.check(settings)?;
        Ok(set)
    }

    /// Fills and scales raw features in place. Scaled values are clipped to ±[`CLIP`] standard
    /// deviations, in training as in the stream: a value far outside what training saw (a probe
    /// artefact, a device far denser than hourly charting) moves the score no further.
    pub fn prepare(&self, x: &mut [f64]) {
        for (i, v) in x.iter_mut().enumerate() {
            let raw = if v.is_finite() { *v } else { self.fill[i] };
            *v = ((raw - self.center[i]) / self.scale[i]).clamp(-CLIP, CLIP);
        }
    }

    /// The calibrated probability of raw features (as [`FeatureSet::extract`] gives them).
    pub fn probability(&self, raw: &[f64]) -> f64 {
        let mut x = raw.to_vec();
        self.prepare(&mut x);
        self.probability_prepared(&x)
    }

    /// The calibrated probability of prepared features.
    pub fn probability_prepared(&self, x: &[f64]) -> f64 {
        let score = self.estimator.score(x);
        self.calibration
            .probability(calibration_input(&self.estimator, score))
    }

    /// The features that move this probability most, largest first, as (index, change): for
    /// each feature, how much the probability drops when that feature alone is set to its
    /// training mean (a negative change: it lowers the risk).
    pub fn contributions(&self, raw: &[f64], top: usize) -> Vec<(usize, f64)> {
        let mut x = raw.to_vec();
        self.prepare(&mut x);
        let p = self.probability_prepared(&x);
        let mut out: Vec<(usize, f64)> = Vec::with_capacity(x.len());
        for i in 0..x.len() {
            let keep = x[i];
            x[i] = (self.fill[i] - self.center[i]) / self.scale[i];
            let without = self.probability_prepared(&x);
            x[i] = keep;
            out.push((i, p - without));
        }
        out.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()).then(a.0.cmp(&b.0)));
        out.truncate(top);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(estimator: Estimator) -> RiskModel {
        RiskModel {
            format: FORMAT,
            name: "t".into(),
            version: "1".into(),
            features: vec!["heart_rate.last".into(), "news2.total".into()],
            outcome: "test".into(),
            response: "review".into(),
            fill: vec![80.0, 2.0],
            center: vec![80.0, 2.0],
            scale: vec![10.0, 1.0],
            estimator,
            calibration: Calibration::IDENTITY,
            threshold: 0.5,
            clear_below: 0.4,
            provenance: Provenance::default(),
        }
    }

    #[test]
    fn a_logistic_model_fills_scales_and_calibrates() {
        let m = model(Estimator::Logistic {
            intercept: -1.0,
            weights: vec![1.0, 0.5],
        });
        // HR 100 → +2 sd; total missing → its mean → 0.
        let p = m.probability(&[100.0, f64::NAN]);
        assert!((p - sigmoid(1.0)).abs() < 1e-12);
        let top = m.contributions(&[100.0, 2.0], 1);
        assert_eq!(top[0].0, 0);
        assert!((top[0].1 - (sigmoid(1.0) - sigmoid(-1.0))).abs() < 1e-12);
    }

    #[test]
    fn a_forest_averages_its_leaves() {
        let split = |feature, threshold| Tree {
            nodes: vec![
                Node::Split {
                    feature,
                    threshold,
                    left: 1,
                    right: 2,
                },
                Node::Leaf { value: 0.0 },
                Node::Leaf { value: 1.0 },
            ],
        };
        let m = model(Estimator::Forest {
            trees: vec![split(0, 1.0), split(1, 1.0)],
        });
        assert_eq!(m.estimator.score(&[2.0, 0.0]), 0.5);
        assert_eq!(m.estimator.score(&[2.0, 2.0]), 1.0);
        // A calibrated share: pure leaves everywhere stay finite.
        assert!(m.probability(&[1000.0, 10.0]) < 1.0);
    }

    #[test]
    fn a_file_that_does_not_add_up_is_refused() {
        let mut m = model(Estimator::Logistic {
            intercept: 0.0,
            weights: vec![1.0],
        });
        assert!(
            m.validate()
                .unwrap_err()
                .contains("2 features but 1 weights")
        );
        m.estimator = Estimator::Logistic {
            intercept: 0.0,
            weights: vec![1.0, 1.0],
        };
        m.format = 99;
        assert!(m.validate().unwrap_err().contains("format 99"));
    }
}
