//! `[devices]`: how often each kind of device is expected to report, and when a battery is low
//! or a sensor's session is ending.

use serde::Deserialize;

use crate::component::{Dur, Problem, Section};
use crate::rules::glucose::Toggle;

/// The device rule's settings.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DevicesConfig {
    /// A CGM silent this long is offline (its readings come every 5 minutes; `[glucose]
    /// signal_loss` alarms sooner, for the glucose).
    pub cgm: Toggle<Dur>,
    /// An insulin pump (it reports its deliveries).
    pub pump: Toggle<Dur>,
    /// A smart pill bottle (it checks in daily).
    pub pill_bottle: Toggle<Dur>,
    /// An inhaler's sensor (it syncs daily).
    pub inhaler: Toggle<Dur>,
    /// A bedside monitor: off, since NEWS2's staleness already watches its parameters.
    pub monitor: Toggle<Dur>,
    /// Battery at or below this (percent) is low.
    pub low_battery: Toggle<u8>,
    /// A sensor session ending within this is expiring.
    pub sensor_expiring: Toggle<Dur>,
}

impl Default for DevicesConfig {
    fn default() -> DevicesConfig {
        DevicesConfig {
            cgm: Toggle::On(Dur::secs(3600)),
            pump: Toggle::On(Dur::secs(3600)),
            pill_bottle: Toggle::On(Dur::secs(26 * 3600)),
            inhaler: Toggle::On(Dur::secs(26 * 3600)),
            monitor: Toggle::Off,
            low_battery: Toggle::On(20),
            sensor_expiring: Toggle::On(Dur::secs(24 * 3600)),
        }
    }
}

impl DevicesConfig {
    /// Every problem, at its line.
    pub fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        for (key, value) in [
            ("cgm", self.cgm),
            ("pump", self.pump),
            ("pill_bottle", self.pill_bottle),
            ("inhaler", self.inhaler),
            ("monitor", self.monitor),
            ("sensor_expiring", self.sensor_expiring),
        ] {
            if value.on().is_some_and(|d| d.0.is_zero()) {
                problems.push(
                    section.problem(key, format!("`{key}` must be longer than 0 (or \"off\")")),
                );
            }
        }
        if self.low_battery.on().is_some_and(|b| b >= 100) {
            problems.push(section.problem(
                "low_battery",
                "`low_battery` must be below 100 (percent), or \"off\"",
            ));
        }
        problems
    }
}
