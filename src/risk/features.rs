//! Features of one patient at one instant, read from the patient's [`Picture`]: the one
//! feature code path of training, evaluation and the live stream.
//!
//! Which features exist is data: a [`FeatureSet`] is a list of names such as
//! `heart_rate.mean.4h` or `news2.total`, saved with a model, so that the stream computes exactly
//! what the model was trained on. Names:
//!
//! | name | value |
//! | --- | --- |
//! | `<vital>.last` | the latest value (canonical unit; oxygen 0 = air, 1 = oxygen) |
//! | `<vital>.age_h` | hours since the latest value |
//! | `<vital>.<stat>.<window>` | `present` (0 or 1), `count`, `mean`, `min`, `max`, `std` or `slope` (per hour) over a configured window |
//! | `news2.<parameter>` | a NEWS2 sub-score (`rr`, `spo2`, `air_oxygen`, `sbp`, `hr`, `acvpu`, `temp`) |
//! | `news2.total`, `news2.upper` | the NEWS2 total (a lower bound when incomplete) and the total it could reach |
//! | `shock_index` | latest heart rate over latest systolic pressure |
//! | `monitoring.hours` | hours since the patient was first seen (a cohort artefact in ICU data: see the model card) |
//!
//! A value that does not exist (no measurement, an empty window, a parameter not scored) is
//! `NaN`; the model decides how to fill it. A window's `present` and `count` are 0, never `NaN`.
//!
//! Features depend only on the monitor's windows, latest values and the NEWS2 score at the given
//! instant, never on the alert policy's state: an evaluation that reads them at a dataset row
//! gets what the stream reads when that row's observations arrive.

use std::fmt;

use thiserror::Error;

use crate::config::Dur;
use crate::news2::Parameter;
use crate::observation::{EventTime, Vital};
use crate::picture::{Picture, PictureSettings};
use crate::windows::WindowStats;

/// A statistic over a window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stat {
    /// 1 when the window holds a value, else 0: a missingness indicator that does not depend on
    /// how often a device sends.
    Present,
    Count,
    Mean,
    Min,
    Max,
    Std,
    Slope,
}

impl Stat {
    pub const ALL: [Stat; 7] = [
        Stat::Present,
        Stat::Count,
        Stat::Mean,
        Stat::Min,
        Stat::Max,
        Stat::Std,
        Stat::Slope,
    ];

    fn name(self) -> &'static str {
        match self {
            Stat::Present => "present",
            Stat::Count => "count",
            Stat::Mean => "mean",
            Stat::Min => "min",
            Stat::Max => "max",
            Stat::Std => "std",
            Stat::Slope => "slope",
        }
    }

    fn of(self, stats: Option<&WindowStats>) -> f64 {
        match (self, stats) {
            (Stat::Present, s) => f64::from(u8::from(s.is_some())),
            (Stat::Count, None) => 0.0,
            (_, None) => f64::NAN,
            (Stat::Count, Some(s)) => f64::from(s.count),
            (Stat::Mean, Some(s)) => s.mean,
            (Stat::Min, Some(s)) => s.min,
            (Stat::Max, Some(s)) => s.max,
            (Stat::Std, Some(s)) => s.std,
            (Stat::Slope, Some(s)) => s.slope_per_hour,
        }
    }
}

/// One feature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Feature {
    Last(Vital),
    AgeHours(Vital),
    Window {
        vital: Vital,
        stat: Stat,
        window_ms: i64,
    },
    Subscore(Parameter),
    News2Total,
    News2Upper,
    ShockIndex,
    MonitoringHours,
}

impl fmt::Display for Feature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Feature::Last(v) => write!(f, "{}.last", v.wire_name()),
            Feature::AgeHours(v) => write!(f, "{}.age_h", v.wire_name()),
            Feature::Window {
                vital,
                stat,
                window_ms,
            } => write!(
                f,
                "{}.{}.{}",
                vital.wire_name(),
                stat.name(),
                Dur(std::time::Duration::from_millis(*window_ms as u64))
            ),
            Feature::Subscore(p) => write!(f, "news2.{}", p.key()),
            Feature::News2Total => f.write_str("news2.total"),
            Feature::News2Upper => f.write_str("news2.upper"),
            Feature::ShockIndex => f.write_str("shock_index"),
            Feature::MonitoringHours => f.write_str("monitoring.hours"),
        }
    }
}

/// A feature list that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum FeatureError {
    #[error(
        "unknown feature `{0}` (expected <vital>.last, <vital>.age_h, <vital>.<present|count|mean|min|max|std|slope>.<window>, news2.<parameter>, news2.total, news2.upper, shock_index or monitoring.hours)"
    )]
    Unknown(String),
    #[error(
        "feature `{feature}` needs a {window} window, and the pipeline's [windows] durations are {configured}: add {window} to them"
    )]
    MissingWindow {
        feature: String,
        window: String,
        configured: String,
    },
}

impl std::str::FromStr for Feature {
    type Err = FeatureError;

    fn from_str(name: &str) -> Result<Feature, FeatureError> {
        let unknown = || FeatureError::Unknown(name.to_owned());
        let parts: Vec<&str> = name.split('.').collect();
        let feature = match parts.as_slice() {
            ["news2", "total"] => Feature::News2Total,
            ["news2", "upper"] => Feature::News2Upper,
            ["news2", key] => Feature::Subscore(
                Parameter::ALL
                    .into_iter()
                    .find(|p| p.key() == *key)
                    .ok_or_else(unknown)?,
            ),
            ["shock_index"] => Feature::ShockIndex,
            ["monitoring", "hours"] => Feature::MonitoringHours,
            [vital, "last"] => Feature::Last(vital.parse().map_err(|_| unknown())?),
            [vital, "age_h"] => Feature::AgeHours(vital.parse().map_err(|_| unknown())?),
            [vital, stat, window] => Feature::Window {
                vital: vital.parse().map_err(|_| unknown())?,
                stat: Stat::ALL
                    .into_iter()
                    .find(|s| s.name() == *stat)
                    .ok_or_else(unknown)?,
                window_ms: Dur::parse(window).map_err(|_| unknown())?.millis() as i64,
            },
            _ => return Err(unknown()),
        };
        Ok(feature)
    }
}

/// An ordered list of features: the columns of a model's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeatureSet {
    features: Vec<Feature>,
}

impl FeatureSet {
    pub fn new(features: Vec<Feature>) -> FeatureSet {
        FeatureSet { features }
    }

    /// Parses feature names (as saved with a model).
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<FeatureSet, FeatureError> {
        names
            .iter()
            .map(|n| n.as_ref().parse())
            .collect::<Result<Vec<Feature>, _>>()
            .map(FeatureSet::new)
    }

    /// The standard set over `windows` (ms): for each vital a dataset of hourly ICU rows carries
    /// (not consciousness), its latest value and age, and over every window whether it was
    /// measured, its mean, minimum, maximum, standard deviation and slope; the NEWS2 sub-scores,
    /// total and upper bound; the shock index. Not the count of values: it measures how often a
    /// device sends (hourly in ICU charts, every second from a bedside monitor), not the patient.
    pub fn standard(windows: &[i64]) -> FeatureSet {
        let vitals = [
            Vital::HeartRate,
            Vital::RespiratoryRate,
            Vital::Spo2,
            Vital::Temperature,
            Vital::SystolicBp,
            Vital::DiastolicBp,
            Vital::SupplementalOxygen,
        ];
        let mut features = Vec::new();
        for vital in vitals {
            features.push(Feature::Last(vital));
            features.push(Feature::AgeHours(vital));
            for &window_ms in windows {
                for stat in Stat::ALL.into_iter().filter(|s| *s != Stat::Count) {
                    features.push(Feature::Window {
                        vital,
                        stat,
                        window_ms,
                    });
                }
            }
        }
        features.extend(Parameter::ALL.map(Feature::Subscore));
        features.extend([
            Feature::News2Total,
            Feature::News2Upper,
            Feature::ShockIndex,
        ]);
        FeatureSet { features }
    }

    /// The same list with `feature` added at the end.
    pub fn with(mut self, feature: Feature) -> FeatureSet {
        self.features.push(feature);
        self
    }

    pub fn features(&self) -> &[Feature] {
        &self.features
    }

    pub fn len(&self) -> usize {
        self.features.len()
    }

    pub fn is_empty(&self) -> bool {
        self.features.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.features.iter().map(ToString::to_string).collect()
    }

    /// The windows the features read: (vital, duration in ms), each once.
    pub fn windows_read(&self, read: &mut Vec<(Vital, i64)>) {
        for feature in &self.features {
            if let Feature::Window {
                vital, window_ms, ..
            } = *feature
                && !read.contains(&(vital, window_ms))
            {
                read.push((vital, window_ms));
            }
        }
    }

    /// Checks that the pipeline computes every feature: each window must be configured.
    pub fn check(&self, settings: &PictureSettings) -> Result<(), FeatureError> {
        let configured = settings.windows.durations();
        for feature in &self.features {
            if let Feature::Window { window_ms, .. } = feature
                && !configured.contains(window_ms)
            {
                let dur = |ms: i64| Dur(std::time::Duration::from_millis(ms as u64)).to_string();
                return Err(FeatureError::MissingWindow {
                    feature: feature.to_string(),
                    window: dur(*window_ms),
                    configured: configured
                        .iter()
                        .map(|&ms| dur(ms))
                        .collect::<Vec<_>>()
                        .join(", "),
                });
            }
        }
        Ok(())
    }

    /// The features of `picture` at `now`, appended to `out` in list order. The set must have
    /// passed [`FeatureSet::check`] against `settings` (an unknown window reads as empty).
    pub fn extract(
        &self,
        picture: &Picture,
        settings: &PictureSettings,
        now: EventTime,
        out: &mut Vec<f64>,
    ) {
        let now_ms = now.millis();
        let windows = settings.windows.durations();
        // Each (vital, window) is summarised once, however many statistics read it.
        let mut stats: Vec<Option<Option<WindowStats>>> = vec![None; 8 * windows.len()];
        let mut score = None;
        for feature in &self.features {
            let value = match *feature {
                Feature::Last(vital) => picture.window(vital).last().map_or(f64::NAN, |(_, v)| v),
                Feature::AgeHours(vital) => picture
                    .window(vital)
                    .last()
                    .map_or(f64::NAN, |(t, _)| (now_ms - t) as f64 / 3_600_000.0),
                Feature::Window {
                    vital,
                    stat,
                    window_ms,
                } => match windows.iter().position(|&w| w == window_ms) {
                    Some(w) => {
                        let slot = &mut stats[vital as usize * windows.len() + w];
                        let s = slot.get_or_insert_with(|| {
                            picture
                                .window(vital)
                                .stats(settings.layout(vital), window_ms, now_ms)
                        });
                        stat.of(s.as_ref())
                    }
                    None => stat.of(None),
                },
                Feature::Subscore(_) | Feature::News2Total | Feature::News2Upper => {
                    let score =
                        score.get_or_insert_with(|| picture.score_at(settings, now.micros()).0);
                    match *feature {
                        Feature::Subscore(p) => score.subscore(p).map_or(f64::NAN, f64::from),
                        Feature::News2Total => f64::from(score.total),
                        _ => f64::from(score.upper_bound),
                    }
                }
                Feature::ShockIndex => {
                    let last = |v: Vital| picture.window(v).last().map(|(_, x)| x);
                    match (last(Vital::HeartRate), last(Vital::SystolicBp)) {
                        (Some(hr), Some(sbp)) if sbp > 0.0 => hr / sbp,
                        _ => f64::NAN,
                    }
                }
                Feature::MonitoringHours => {
                    (now.micros() - picture.first_seen_us()) as f64 / 3_600_000_000.0
                }
            };
            out.push(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PipelineConfig;
    use crate::observation::{Identifier, Observation, Unit, Value};

    fn settings(windows: &str) -> PictureSettings {
        let text = format!(
            "[source]\nkind = \"jsonl\"\npath = \"-\"\n[windows]\ndurations = [{windows}]\nresolution = \"1h\"\n"
        );
        PictureSettings::from_config(&PipelineConfig::parse(&text, None).unwrap())
    }

    fn obs(hour: i64, vital: Vital, value: f64, unit: Unit) -> Observation {
        Observation::new(
            Identifier::new("p1").unwrap(),
            None,
            EventTime::from_micros(hour * 3_600_000_000),
            vital,
            Value::Number(value),
            Some(unit),
        )
        .unwrap()
    }

    #[test]
    fn names_round_trip() {
        let set =
            FeatureSet::standard(&[4 * 3_600_000, 12 * 3_600_000]).with(Feature::MonitoringHours);
        let names = set.names();
        assert!(names.contains(&"heart_rate.slope.4h".to_owned()));
        assert!(names.contains(&"news2.air_oxygen".to_owned()));
        assert_eq!(FeatureSet::parse(&names).unwrap(), set);
    }

    #[test]
    fn a_model_reads_the_windows_of_its_features_only() {
        let set = FeatureSet::parse(&[
            "heart_rate.mean.4h",
            "heart_rate.slope.4h",
            "spo2.min.12h",
            "temperature.last",
            "news2.total",
        ])
        .unwrap();
        let mut read = vec![(Vital::Glucose, 900_000)];
        set.windows_read(&mut read);
        assert_eq!(
            read,
            vec![
                (Vital::Glucose, 900_000),
                (Vital::HeartRate, 4 * 3_600_000),
                (Vital::Spo2, 12 * 3_600_000),
            ]
        );
    }

    #[test]
    fn unknown_names_and_missing_windows_are_clear_errors() {
        let err = FeatureSet::parse(&["heart_rate.median.4h"]).unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown feature `heart_rate.median.4h`")
        );
        let set = FeatureSet::parse(&["heart_rate.mean.12h"]).unwrap();
        let err = set.check(&settings("\"1h\", \"4h\"")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "feature `heart_rate.mean.12h` needs a 12h window, and the pipeline's [windows] durations are 1h, 4h: add 12h to them"
        );
        assert!(set.check(&settings("\"12h\"")).is_ok());
    }

    #[test]
    fn features_read_the_picture_at_an_instant() {
        let settings = settings("\"4h\"");
        let mut picture = Picture::new("p1", EventTime::from_micros(0), crate::news2::Scale::One);
        let observations = [
            obs(0, Vital::HeartRate, 80.0, Unit::PerMinute),
            obs(1, Vital::HeartRate, 90.0, Unit::PerMinute),
            obs(2, Vital::HeartRate, 100.0, Unit::PerMinute),
            obs(2, Vital::SystolicBp, 125.0, Unit::MillimetresOfMercury),
        ];
        for o in &observations {
            picture.push(&settings, o, o.time().micros());
        }
        let set = FeatureSet::parse(&[
            "heart_rate.last",
            "heart_rate.age_h",
            "heart_rate.count.4h",
            "heart_rate.mean.4h",
            "heart_rate.slope.4h",
            "temperature.count.4h",
            "temperature.mean.4h",
            "shock_index",
            "news2.hr",
            "news2.rr",
            "news2.total",
            "monitoring.hours",
        ])
        .unwrap();
        let mut out = Vec::new();
        set.extract(
            &picture,
            &settings,
            EventTime::from_micros(3 * 3_600_000_000),
            &mut out,
        );
        assert_eq!(out[0], 100.0);
        assert_eq!(out[1], 1.0);
        assert_eq!(out[2], 3.0);
        assert_eq!(out[3], 90.0);
        assert!((out[4] - 10.0).abs() < 1e-9, "{}", out[4]);
        assert_eq!(out[5], 0.0);
        assert!(out[6].is_nan());
        assert_eq!(out[7], 0.8);
        assert_eq!(out[8], 1.0); // pulse 100 scores 1
        assert!(out[9].is_nan()); // respiration never measured
        assert_eq!(out[10], 1.0 + 0.0); // HR 1, SBP 125 scores 0
        assert_eq!(out[11], 3.0);
    }
}
