//! The NEWS2 band policy: when a patient's band rises, remind while it stays raised, lower it
//! only after K consecutive lower scores.
//!
//! The policy is a pure state machine per patient, driven in event-time order by the patient's
//! monitor ([`crate::monitor`]); it never reads a clock. Its output is therefore the same live, in
//! replay and with any number of workers.
//!
//! Rules:
//! * **Raise** at once when the band (of a complete score, or the band an incomplete score's lower
//!   bound already reaches) rises above the raised band, to low–medium or above.
//! * **Remind** while raised, at the band's monitoring frequency (config `[alerts.reminders]`).
//! * **Lower** only after `deescalate_after` (K) consecutive scores below the raised band. Only a
//!   score whose charted values differ from the previous one counts (a monitor sending the same
//!   numbers every second is one observation set, not K), counted at most once per
//!   `deescalate_spacing`. Only complete scores count; an incomplete one breaks the run: not
//!   knowing is not better.
//! * Reminders pause while nothing about the patient is current (monitoring stopped or the stay
//!   ended: the data-quality alerts say so) and resume with the next value.

use crate::alerting::{Alert, AlertEvent, AlertKind, Evidence, Severity};
use crate::config::AlertsConfig;
use crate::news2::{Band, Charted, Score, Status};
use crate::observation::EventTime;

/// The NEWS2 part of the policy for one patient.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BandPolicy {
    /// The band alerted and not yet lowered (low–medium or above).
    raised: Option<Band>,
    lower_run: u32,
    /// When the last lower score was counted.
    last_counted_us: Option<i64>,
    next_reminder_us: Option<i64>,
    /// Charted values of the previous score, to count only new observation sets.
    previous: Option<[Option<Charted>; 7]>,
}

/// A decision of the band policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandDecision {
    Raised { from: Option<Band>, to: Band },
    Lowered { from: Band, to: Band },
}

impl BandPolicy {
    /// The raised band, if any.
    pub fn raised(&self) -> Option<Band> {
        self.raised
    }

    /// When the next reminder is due (µs).
    pub fn next_reminder(&self) -> Option<i64> {
        self.next_reminder_us
    }

    /// Feeds a new score at `now_us`.
    pub fn on_score(
        &mut self,
        config: &AlertsConfig,
        now_us: i64,
        score: &Score,
    ) -> Option<BandDecision> {
        let charted = score.assessments.each_ref().map(|a| a.charted);
        let new_set = self.previous.as_ref() != Some(&charted);
        self.previous = Some(charted);

        let current = self.raised.unwrap_or(Band::Low);
        match score.band {
            Some(band) if band > current && band >= Band::LowMedium => {
                let from = self.raised;
                self.raise(config, now_us, band);
                Some(BandDecision::Raised { from, to: band })
            }
            // Only a complete score can show the patient is better: an incomplete one might
            // still reach the raised band.
            Some(band) if band < current && score.status == Status::Complete => {
                let spacing = config.deescalate_spacing.0.as_micros() as i64;
                if new_set
                    && self
                        .last_counted_us
                        .is_none_or(|last| now_us - last >= spacing)
                {
                    self.lower_run += 1;
                    self.last_counted_us = Some(now_us);
                }
                if self.lower_run < config.deescalate_after {
                    return None;
                }
                let from = current;
                if band >= Band::LowMedium {
                    self.raise(config, now_us, band);
                } else {
                    self.raised = None;
                    self.next_reminder_us = None;
                    self.lower_run = 0;
                    self.last_counted_us = None;
                }
                Some(BandDecision::Lowered { from, to: band })
            }
            _ => {
                // Same band, or unknown (incomplete with no band): the run of lower scores breaks.
                self.lower_run = 0;
                self.last_counted_us = None;
                None
            }
        }
    }

    fn raise(&mut self, config: &AlertsConfig, now_us: i64, band: Band) {
        self.raised = Some(band);
        self.lower_run = 0;
        self.last_counted_us = None;
        self.next_reminder_us = Some(now_us + reminder_period_us(config, band));
    }

    /// Stops reminding until [`BandPolicy::resume_reminders`]: there is nothing current to remind
    /// about.
    pub fn pause_reminders(&mut self) {
        self.next_reminder_us = None;
    }

    /// Reminds again, one period from `now_us`, if a band is raised and reminders were paused.
    pub fn resume_reminders(&mut self, config: &AlertsConfig, now_us: i64) {
        if let (Some(band), None) = (self.raised, self.next_reminder_us) {
            self.next_reminder_us = Some(now_us + reminder_period_us(config, band));
        }
    }

    /// Fires the reminder due at or before `until_us`, if any: returns its due time and band.
    pub fn take_reminder(&mut self, config: &AlertsConfig, until_us: i64) -> Option<(i64, Band)> {
        let due = self.next_reminder_us.filter(|&d| d <= until_us)?;
        let Some(band) = self.raised else {
            // Nothing raised: nothing to remind of (and a due time left behind must not stall
            // the caller's timer loop).
            self.next_reminder_us = None;
            return None;
        };
        self.next_reminder_us = Some(due + reminder_period_us(config, band));
        Some((due, band))
    }
}

fn reminder_period_us(config: &AlertsConfig, band: Band) -> i64 {
    let period = match band {
        Band::High => config.reminders.high,
        Band::Medium => config.reminders.medium,
        Band::LowMedium | Band::Low => config.reminders.low_medium,
    };
    (period.0.as_micros() as i64).max(1)
}

/// The summary, severity and response of a band decision.
pub fn band_alert(
    patient: &str,
    time: EventTime,
    decision: BandDecision,
    score: &Score,
    evidence: Evidence,
) -> Alert {
    let (event, severity, summary, response) = match decision {
        BandDecision::Raised { from, to } => (
            AlertEvent::Raised,
            Severity::of(to),
            format!(
                "NEWS2 band rose from {} to {} ({}{})",
                from.map_or("low", Band::name),
                to,
                total_text(score),
                if score.single_parameter_3 {
                    ", a single parameter scores 3"
                } else {
                    ""
                }
            ),
            score.response(),
        ),
        BandDecision::Lowered { from, to } => (
            AlertEvent::Lowered,
            Severity::Info,
            format!(
                "NEWS2 band came down from {from} to {to} ({})",
                total_text(score)
            ),
            score.response(),
        ),
    };
    Alert::new(
        patient,
        time,
        AlertKind::News2,
        event,
        severity,
        summary,
        response,
        Some(evidence),
    )
}

/// A score update: the NEWS2 total, bounds, band or completeness of a patient changed.
pub fn score_update(patient: &str, time: EventTime, score: &Score, evidence: Evidence) -> Alert {
    let band = match score.band {
        Some(band) => format!(", band {band}"),
        None => String::new(),
    };
    Alert::new(
        patient,
        time,
        AlertKind::News2,
        AlertEvent::Scored,
        Severity::Info,
        format!("{}{band}", total_text(score)),
        score.response(),
        Some(evidence),
    )
}

/// A reminder alert.
pub fn reminder_alert(
    patient: &str,
    time: EventTime,
    band: Band,
    score: &Score,
    evidence: Evidence,
) -> Alert {
    Alert::new(
        patient,
        time,
        AlertKind::News2,
        AlertEvent::Reminder,
        Severity::of(band),
        format!("NEWS2 band {band} still raised (now {})", total_text(score)),
        score.response(),
        Some(evidence),
    )
}

fn total_text(score: &Score) -> String {
    if score.status == Status::Complete {
        format!("NEWS2 {}", score.total)
    } else {
        format!(
            "NEWS2 at least {}, up to {}, incomplete",
            score.total, score.upper_bound
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exact::Exact;
    use crate::news2::{self, AirOrOxygen, Input, Parameters, Scale};
    use crate::observation::Acvpu;

    fn score_with(rr: f64, hr: f64) -> Score {
        let n = |v: f64| Input::Present(Exact::from_f64(v).unwrap());
        news2::score(
            &Parameters {
                respiration_rate: n(rr),
                spo2: n(98.0),
                air_or_oxygen: Input::Present(AirOrOxygen::Air),
                systolic_bp: n(120.0),
                pulse: n(hr),
                consciousness: Input::Present(Acvpu::A),
                temperature: n(37.0),
            },
            Scale::One,
        )
    }

    const H: i64 = 3_600_000_000;

    #[test]
    fn raises_at_once_and_reminds_at_the_monitoring_frequency() {
        let config = AlertsConfig::default();
        let mut p = BandPolicy::default();
        assert_eq!(p.on_score(&config, 0, &score_with(16.0, 70.0)), None);
        let medium = score_with(22.0, 115.0); // 2 + 2 = 4: low
        assert_eq!(p.on_score(&config, 1, &medium), None);
        let high = score_with(26.0, 135.0); // 3 + 3 = 6: medium
        assert_eq!(
            p.on_score(&config, 2, &high),
            Some(BandDecision::Raised {
                from: None,
                to: Band::Medium
            })
        );
        assert_eq!(p.take_reminder(&config, H), None);
        assert_eq!(p.take_reminder(&config, H + 2), Some((H + 2, Band::Medium)));
        assert_eq!(
            p.take_reminder(&config, 3 * H),
            Some((2 * H + 2, Band::Medium))
        );
        assert_eq!(p.take_reminder(&config, 3 * H), None);
    }

    #[test]
    fn lowers_only_after_k_consecutive_new_lower_scores() {
        let config = AlertsConfig {
            deescalate_after: 3,
            deescalate_spacing: crate::config::Dur(std::time::Duration::from_micros(1)),
            ..AlertsConfig::default()
        };
        let mut p = BandPolicy::default();
        p.on_score(&config, 0, &score_with(26.0, 135.0));
        assert_eq!(p.raised(), Some(Band::Medium));
        // The same lower set repeated counts once.
        for t in 1..10 {
            assert_eq!(p.on_score(&config, t, &score_with(16.0, 70.0)), None);
        }
        assert_eq!(p.on_score(&config, 10, &score_with(16.0, 71.0)), None);
        // A score back at the raised band breaks the run.
        assert_eq!(p.on_score(&config, 11, &score_with(26.0, 135.0)), None);
        assert_eq!(p.on_score(&config, 12, &score_with(16.0, 70.0)), None);
        assert_eq!(p.on_score(&config, 13, &score_with(16.0, 71.0)), None);
        assert_eq!(
            p.on_score(&config, 14, &score_with(16.0, 72.0)),
            Some(BandDecision::Lowered {
                from: Band::Medium,
                to: Band::Low
            })
        );
        assert_eq!(p.raised(), None);
        assert_eq!(p.next_reminder(), None);
    }

    #[test]
    fn lower_scores_count_at_most_once_per_spacing() {
        let config = AlertsConfig::default(); // K = 3, spacing 5 min
        let min = 60_000_000;
        let mut p = BandPolicy::default();
        p.on_score(&config, 0, &score_with(26.0, 135.0));
        // New lower sets every minute: counted at 1, 6 and 11 minutes.
        for m in 1..11 {
            assert_eq!(
                p.on_score(&config, m * min, &score_with(16.0, 60.0 + m as f64)),
                None,
                "minute {m}"
            );
        }
        assert!(
            p.on_score(&config, 11 * min, &score_with(16.0, 80.0))
                .is_some()
        );
    }
}
