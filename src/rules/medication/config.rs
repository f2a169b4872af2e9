//! `[medication]`: when a rescue inhaler is used too often, and whether late doses are noted.
//! Dose schedules themselves are prescriptions, in the registry ([`crate::registry`]).

use serde::Deserialize;

use crate::component::{Problem, Section};
use crate::rules::glucose::Toggle;

/// The medication rule's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MedicationConfig {
    /// More rescue puffs than this in 24 hours is overuse.
    pub rescue_per_day: Toggle<u32>,
    /// Rescue puffs in the last 7 days at this multiple of the 7 days before, or more, is a
    /// rising use...
    pub rescue_week_rise: Toggle<f64>,
    /// ...once the last 7 days have at least this many.
    pub rescue_week_min: u32,
    /// A dose after its grace closed is noted (`late_dose`).
    pub late_dose: bool,
}

impl Default for MedicationConfig {
    fn default() -> MedicationConfig {
        MedicationConfig {
            rescue_per_day: Toggle::On(4),
            rescue_week_rise: Toggle::On(2.0),
            rescue_week_min: 6,
            late_dose: true,
        }
    }
}

impl MedicationConfig {
    /// Every problem, at its line.
    pub fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.rescue_per_day.on() == Some(0) {
            problems.push(section.problem(
                "rescue_per_day",
                "`rescue_per_day` must be at least 1 (or \"off\"): every rescue puff would alert",
            ));
        }
        if let Some(rise) = self.rescue_week_rise.on()
            && !(rise > 1.0 && rise <= 100.0)
        {
            problems.push(section.problem(
                "rescue_week_rise",
                format!("`rescue_week_rise` {rise} must be above 1 and at most 100 (or \"off\")"),
            ));
        }
        if self.rescue_week_min == 0 {
            problems
                .push(section.problem("rescue_week_min", "`rescue_week_min` must be at least 1"));
        }
        problems
    }
}
