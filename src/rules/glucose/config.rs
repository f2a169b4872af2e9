//! `[glucose]`: the glucose rule's thresholds, as Dexcom G7 ships them by default. Every one can
//! be changed; urgent low can never be turned off or set below 55 mg/dL.

use serde::{Deserialize, Deserializer};

use crate::component::{Dur, Problem, Section};

/// The floor of the urgent-low threshold (mg/dL): the level at which a CGM alarm cannot be
/// silenced.
pub const URGENT_LOW_FLOOR: f64 = 55.0;

/// A setting that may be turned off by writing `"off"`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Toggle<T> {
    On(T),
    Off,
}

impl<T: Copy> Toggle<T> {
    pub fn on(self) -> Option<T> {
        match self {
            Toggle::On(v) => Some(v),
            Toggle::Off => None,
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Toggle<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Toggle<T>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either<T> {
            Word(String),
            Value(T),
        }
        match Either::<T>::deserialize(deserializer) {
            Ok(Either::Word(w)) if w == "off" => Ok(Toggle::Off),
            // A duration is written as a string: let it read its own words.
            Ok(Either::Word(w)) => {
                T::deserialize(serde::de::value::StrDeserializer::<D::Error>::new(&w))
                    .map(Toggle::On)
                    .map_err(|e| serde::de::Error::custom(format!("{e} (or \"off\")")))
            }
            Ok(Either::Value(v)) => Ok(Toggle::On(v)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a number, a duration such as \"20m\", or \"off\"",
            )),
        }
    }
}

/// The glucose rule's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GlucoseConfig {
    /// Below this (mg/dL), urgent low: always on, at least 55, repeated while it lasts.
    pub urgent_low: Toggle<f64>,
    /// Urgent low is alerted again this often while readings stay below it.
    pub urgent_low_repeat: Dur,
    /// Below this, low.
    pub low: Toggle<f64>,
    /// Above this, high.
    pub high: Toggle<f64>,
    /// Rising or falling at this rate (mg/dL/min) or more is fast...
    pub fast_rate: f64,
    /// ...and at this rate or more, more urgent.
    pub rapid_rate: f64,
    /// The rate is fitted over the CGM readings of this last stretch.
    pub trend: Dur,
    /// Urgent low soon: the trend reaches urgent low within this horizon.
    pub urgent_low_soon: Toggle<Dur>,
    /// Signal loss: no CGM reading for this long.
    pub signal_loss: Toggle<Dur>,
    /// A new sensor's readings are not used for this long after its session starts.
    pub warmup: Dur,
}

impl Default for GlucoseConfig {
    fn default() -> GlucoseConfig {
        GlucoseConfig {
            urgent_low: Toggle::On(URGENT_LOW_FLOOR),
            urgent_low_repeat: Dur::secs(5 * 60),
            low: Toggle::On(70.0),
            high: Toggle::On(250.0),
            fast_rate: 2.0,
            rapid_rate: 3.0,
            trend: Dur::secs(15 * 60),
            urgent_low_soon: Toggle::On(Dur::secs(20 * 60)),
            signal_loss: Toggle::On(Dur::secs(20 * 60)),
            warmup: Dur::secs(30 * 60),
        }
    }
}

impl GlucoseConfig {
    /// The urgent-low threshold (validated: on, and at least the floor).
    pub fn urgent_low(&self) -> f64 {
        self.urgent_low
            .on()
            .unwrap_or(URGENT_LOW_FLOOR)
            .max(URGENT_LOW_FLOOR)
    }

    /// Every problem, at its line.
    pub fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String| problems.push(section.problem(key, message));
        match self.urgent_low {
            Toggle::Off => problem(
                "urgent_low",
                "`urgent_low` cannot be turned off: a glucose below 55 mg/dL always alarms".into(),
            ),
            Toggle::On(v) if v.is_nan() || v < URGENT_LOW_FLOOR => problem(
                "urgent_low",
                format!("`urgent_low` {v} mg/dL is below 55 mg/dL, the lowest it may be set"),
            ),
            Toggle::On(_) => {}
        }
        let urgent = self.urgent_low();
        if let Toggle::On(low) = self.low
            && !(low >= urgent && low < 400.0)
        {
            problem(
                "low",
                format!("`low` {low} mg/dL must be at least `urgent_low` ({urgent}) and below 400"),
            );
        }
        if let Toggle::On(high) = self.high
            && !(high > self.low.on().unwrap_or(urgent) && high <= 1000.0)
        {
            problem(
                "high",
                format!("`high` {high} mg/dL must be above `low` and at most 1000"),
            );
        }
        if !(self.fast_rate > 0.0 && self.fast_rate <= self.rapid_rate) {
            problem(
                "fast_rate",
                format!(
                    "`fast_rate` {} must be above 0 and at most `rapid_rate` {} (mg/dL/min)",
                    self.fast_rate, self.rapid_rate
                ),
            );
        }
        if self.trend.0.as_secs() < 5 * 60 {
            problem(
                "trend",
                format!(
                    "`trend` {} must be at least 5m: a rate needs several readings",
                    self.trend
                ),
            );
        }
        for (key, value) in [
            ("urgent_low_repeat", Toggle::On(self.urgent_low_repeat)),
            ("urgent_low_soon", self.urgent_low_soon),
            ("signal_loss", self.signal_loss),
        ] {
            if value.on().is_some_and(|d| d.0.is_zero()) {
                problem(key, format!("`{key}` must be longer than 0 (or \"off\")"));
            }
        }
        problems
    }
}
