//! A CGM's backfill: readings that arrive behind the clock after a signal loss (the app uploads
//! what the sensor stored). They are scored — each against the thresholds — and reported once
//! per burst as an `info` note of what happened while nobody could see, never as an alarm:
//! nobody is paged for the past.

use serde_json::json;

use crate::alerting::{Alert, AlertEvent, AlertKind, Head, Severity};
use crate::observation::EventTime;

/// A burst ends when no backfilled reading came for this long (µs of the clock).
pub const QUIET_US: i64 = 60_000_000;

/// The backfilled readings of one burst.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Burst {
    count: u32,
    first_us: i64,
    last_us: i64,
    lowest: (i64, f64),
    highest: (i64, f64),
    below_urgent: u32,
    below_low: u32,
    /// When the burst is reported: [`QUIET_US`] after the last arrived.
    pub due_us: i64,
}

impl Burst {
    pub fn new(time_us: i64, mg_dl: f64, at_us: i64) -> Burst {
        Burst {
            count: 0,
            first_us: time_us,
            last_us: time_us,
            lowest: (time_us, mg_dl),
            highest: (time_us, mg_dl),
            below_urgent: 0,
            below_low: 0,
            due_us: at_us + QUIET_US,
        }
    }

    /// One more reading of `mg_dl` at `time_us`, arrived at the clock's `at_us`.
    pub fn add(&mut self, time_us: i64, mg_dl: f64, at_us: i64, urgent: f64, low: Option<f64>) {
        self.count += 1;
        self.first_us = self.first_us.min(time_us);
        self.last_us = self.last_us.max(time_us);
        if mg_dl < self.lowest.1 || (mg_dl == self.lowest.1 && time_us < self.lowest.0) {
            self.lowest = (time_us, mg_dl);
        }
        if mg_dl > self.highest.1 || (mg_dl == self.highest.1 && time_us < self.highest.0) {
            self.highest = (time_us, mg_dl);
        }
        self.below_urgent += u32::from(mg_dl < urgent);
        self.below_low += u32::from(low.is_some_and(|l| mg_dl < l));
        self.due_us = at_us + QUIET_US;
    }

    /// The note of the burst, at its due time.
    pub fn alert(&self, patient: &str, urgent: f64) -> Alert {
        let time = |t: i64| EventTime::from_micros(t).to_rfc3339();
        let mut summary = format!(
            "{} backfilled CGM readings from {} to {}, lowest {} mg/dL",
            self.count,
            time(self.first_us),
            time(self.last_us),
            self.lowest.1
        );
        if self.below_urgent > 0 {
            summary.push_str(&format!(
                " ({} below {urgent}: an urgent low while the signal was lost)",
                self.below_urgent
            ));
        }
        summary.push_str("; past readings, not alarmed");
        let head = Head {
            patient,
            time_us: self.due_us,
            kind: AlertKind::Glucose,
            event: AlertEvent::Backfilled,
            severity: Severity::Info,
        };
        let facts = json!({
            "readings": self.count,
            "from": time(self.first_us),
            "to": time(self.last_us),
            "lowest_mg_dl": self.lowest.1,
            "lowest_at": time(self.lowest.0),
            "highest_mg_dl": self.highest.1,
            "highest_at": time(self.highest.0),
            "below_urgent_low": self.below_urgent,
            "below_low": self.below_low,
        });
        let response = "review the readings of the gap: treat the patient as they are now, and look for a cause of any low that passed unseen";
        Alert::of_facts(head, summary, response, facts)
    }
}
