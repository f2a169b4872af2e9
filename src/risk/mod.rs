//! The risk model: features of a patient's rolling picture → a calibrated probability of
//! deterioration (sepsis within the PhysioNet 2019 horizon for the shipped model).
//!
//! * [`features`] reads a patient's [`crate::picture::Picture`] at an instant: the one feature
//!   code path of training, evaluation and the stream;
//! * [`model`] is a trained model as stored (JSON) and run;
//! * [`metrics`] are the measures: AUROC, AUPRC, Brier, calibration, the challenge's utility.
//!
//! [`crate::training`] replays a labelled dataset through the monitors, fits linfa models on
//! patients split apart from those it reports on, calibrates them, compares them with NEWS2 and
//! writes the shipped model's card.
//!
//! In the stream, a [`RiskScorer`] in the monitor settings is what the risk rule
//! ([`crate::rules::risk`]) scores patients with.

pub mod features;
pub mod metrics;
pub mod model;

use std::path::Path;

use crate::observation::EventTime;
use crate::picture::{Picture, PictureSettings};
use features::FeatureSet;
use model::{ModelError, RiskModel};

/// A loaded model bound to a pipeline's settings, with its alert thresholds.
#[derive(Clone, Debug)]
pub struct RiskScorer {
    pub model: RiskModel,
    pub features: FeatureSet,
    /// Raise at or above this probability...
    pub threshold: f64,
    /// ...and clear below this one.
    pub clear_below: f64,
    /// A patient is scored at most once per this stretch of event time (µs).
    pub every_us: i64,
}

impl RiskScorer {
    /// Loads the model a pipeline names and checks that the pipeline computes its features;
    /// the thresholds default to the model's own.
    pub fn load(
        config: &crate::config::RiskConfig,
        settings: &PictureSettings,
    ) -> Result<RiskScorer, ModelError> {
        let path: &Path = &config.model;
        let model = RiskModel::load(path)?;
        let features = model
            .feature_set(settings)
            .map_err(|source| ModelError::Features {
                path: path.display().to_string(),
                source,
            })?;
        let threshold = config.threshold.unwrap_or(model.threshold);
        let clear_below = config
            .clear_below
            .unwrap_or(model.clear_below)
            .min(threshold);
        Ok(RiskScorer {
            model,
            features,
            threshold,
            clear_below,
            every_us: config.every.0.as_micros() as i64,
        })
    }

    /// The raw features of a patient's picture at `now`.
    pub fn features_of(
        &self,
        picture: &Picture,
        settings: &PictureSettings,
        now: EventTime,
    ) -> Vec<f64> {
        let mut x = Vec::with_capacity(self.features.len());
        self.features.extract(picture, settings, now, &mut x);
        x
    }
}
