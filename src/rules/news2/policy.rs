//! The NEWS2 band policy: when a patient's band rises, page at once; while it stays raised, show
//! it on the board and page again only if nobody acknowledges it; lower it only after K
//! consecutive lower scores.
//!
//! The policy is a pure state machine per patient, driven in event-time order by the patient's
//! monitor ([`crate::monitor`]); it never reads a clock. Acknowledgements reach it as events at
//! the event time they took effect, so its output is the same live, in replay and with any
//! number of workers.
//!
//! Rules:
//! * **Raise** at once when the band (of a complete score, or the band an incomplete score's lower
//!   bound already reaches) rises above the raised band, to low–medium or above. The raise pages,
//!   and waits to be acknowledged.
//! * **Remind** while raised, at the band's monitoring frequency (config `[alerts.reminders]`):
//!   board state (the review is due), never paged. Alarm fatigue is how early-warning systems
//!   fail: a band that stays raised is not news to whoever was paged for it.
//! * **Acknowledge**: a clinician acknowledges an alert of the raised band; reminders pause for
//!   the band's monitoring frequency, and once it lapses the next reminder waits to be
//!   acknowledged again.
//! * **Escalate** an alert still unacknowledged `escalate_after` after it: a high band, or a
//!   single parameter scoring 3, to the second recipient ([`Recipient::Escalation`], the RCP's
//!   emergency or urgent response); a medium band to the ward again. Once per alert: the
//!   escalation is itself the page that the ward did not answer.
//! * **Lower** only after `deescalate_after` (K) consecutive scores below the raised band. Only a
//!   score whose charted values differ from the previous one counts (a monitor sending the same
//!   numbers every second is one observation set, not K), counted at most once per
//!   `deescalate_spacing`. Only complete scores count; an incomplete one breaks the run: not
//!   knowing is not better.
//! * Reminders and escalations pause while nothing about the patient is current (monitoring
//!   stopped or the stay ended: the data-quality alerts say so); reminders resume with the next
//!   value.

use crate::alerting::{Alert, AlertEvent, AlertKind, Evidence, Recipient, Severity};
use crate::config::AlertsConfig;
use crate::news2::{Band, Charted, Score, Status};
use crate::observation::EventTime;

/// The NEWS2 part of the policy for one patient.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BandPolicy {
    /// The band alerted and not yet lowered (low–medium or above).
    raised: Option<Band>,
    /// When it was raised: an acknowledgement of an alert from then on acknowledges it.
    raised_at_us: Option<i64>,
    lower_run: u32,
    /// When the last lower score was counted.
    last_counted_us: Option<i64>,
    next_reminder_us: Option<i64>,
    /// The alert awaiting acknowledgement (the raise, or the reminder after an acknowledgement
    /// lapsed): since when, and when it escalates.
    awaiting: Option<Awaiting>,
    /// Acknowledged: reminders wait until then.
    acknowledged_until_us: Option<i64>,
    /// Charted values of the previous score, to count only new observation sets.
    previous: Option<[Option<Charted>; 7]>,
}

/// An alert nobody has acknowledged yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Awaiting {
    since_us: i64,
    /// `None` once escalated.
    escalate_at_us: Option<i64>,
}

/// A decision of the band policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandDecision {
    Raised { from: Option<Band>, to: Band },
    Lowered { from: Band, to: Band },
}

/// A timer of the band policy that fell due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandDue {
    /// The band is still raised: its review is due.
    Reminder { at_us: i64, band: Band },
    /// The alert awaiting acknowledgement since `since_us` was not acknowledged in time.
    Unacknowledged {
        at_us: i64,
        band: Band,
        since_us: i64,
    },
}

impl BandPolicy {
    /// The raised band, if any.
    pub fn raised(&self) -> Option<Band> {
        self.raised
    }

    /// When the next reminder or escalation is due (µs).
    pub fn next_due(&self) -> Option<i64> {
        let escalation = self.awaiting.and_then(|a| a.escalate_at_us);
        [self.next_reminder_us, escalation]
            .into_iter()
            .flatten()
            .min()
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
                self.count_lower(config, now_us, new_set);
                if self.lower_run < config.deescalate_after {
                    return None;
                }
                let from = current;
                self.lower(config, now_us, band);
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

    fn count_lower(&mut self, config: &AlertsConfig, now_us: i64, new_set: bool) {
        let spacing = config.deescalate_spacing.0.as_micros() as i64;
        if new_set
            && self
                .last_counted_us
                .is_none_or(|last| now_us - last >= spacing)
        {
            self.lower_run += 1;
            self.last_counted_us = Some(now_us);
        }
    }

    /// A new alert of `band`: it pages, and waits to be acknowledged.
    fn raise(&mut self, config: &AlertsConfig, now_us: i64, band: Band) {
        self.raised = Some(band);
        self.raised_at_us = Some(now_us);
        self.lower_run = 0;
        self.last_counted_us = None;
        self.next_reminder_us = Some(now_us + reminder_period_us(config, band));
        self.acknowledged_until_us = None;
        self.awaiting = Some(Awaiting::from(config, now_us));
    }

    /// Down to `band`: still raised at it (whoever acknowledged the higher band knows), or no
    /// longer raised at all.
    fn lower(&mut self, config: &AlertsConfig, now_us: i64, band: Band) {
        self.lower_run = 0;
        self.last_counted_us = None;
        if band >= Band::LowMedium {
            self.raised = Some(band);
            let next = now_us + reminder_period_us(config, band);
            self.next_reminder_us = Some(self.acknowledged_until_us.map_or(next, |u| u.max(next)));
        } else {
            *self = BandPolicy {
                previous: self.previous,
                ..BandPolicy::default()
            };
        }
    }

    /// A clinician acknowledged, at `now_us`, the NEWS2 alert of `alert_time_us`. An alert of
    /// the raised band (raised then or later) pauses its reminders for the band's monitoring
    /// frequency and stops its escalation; whether it did.
    pub fn acknowledge(&mut self, config: &AlertsConfig, now_us: i64, alert_time_us: i64) -> bool {
        let (Some(band), Some(raised_at)) = (self.raised, self.raised_at_us) else {
            return false;
        };
        if alert_time_us < raised_at {
            return false;
        }
        let until = now_us + reminder_period_us(config, band);
        self.acknowledged_until_us = Some(until);
        self.awaiting = None;
        if self.next_reminder_us.is_some() {
            self.next_reminder_us = Some(until);
        }
        true
    }

    /// Stops reminding and escalating until [`BandPolicy::resume_reminders`]: there is nothing
    /// current to remind about.
    pub fn pause_reminders(&mut self) {
        self.next_reminder_us = None;
        if let Some(a) = self.awaiting.as_mut() {
            a.escalate_at_us = None;
        }
    }

    /// Reminds again, one period from `now_us`, if a band is raised and reminders were paused.
    pub fn resume_reminders(&mut self, config: &AlertsConfig, now_us: i64) {
        if let (Some(band), None) = (self.raised, self.next_reminder_us) {
            let next = now_us + reminder_period_us(config, band);
            self.next_reminder_us = Some(self.acknowledged_until_us.map_or(next, |u| u.max(next)));
        }
    }

    /// Fires the reminder or escalation due at or before `until_us`, the earlier first.
    pub fn take_due(&mut self, config: &AlertsConfig, until_us: i64) -> Option<BandDue> {
        let reminder = self.next_reminder_us.filter(|&d| d <= until_us);
        let escalation = self
            .awaiting
            .and_then(|a| a.escalate_at_us)
            .filter(|&d| d <= until_us);
        let Some(band) = self.raised else {
            // Nothing raised: nothing to remind of (and a due time left behind must not stall
            // the caller's timer loop).
            self.next_reminder_us = None;
            self.awaiting = None;
            return None;
        };
        match (reminder, escalation) {
            (Some(due), e) if e.is_none_or(|e| due <= e) => {
                self.next_reminder_us = Some(due + reminder_period_us(config, band));
                if self.acknowledged_until_us.is_some_and(|u| u <= due) {
                    self.acknowledged_until_us = None;
                    // The acknowledgement lapsed: this review waits to be acknowledged.
                    self.awaiting = Some(Awaiting::from(config, due));
                }
                Some(BandDue::Reminder { at_us: due, band })
            }
            (_, Some(due)) => {
                let awaiting = self.awaiting.as_mut()?;
                awaiting.escalate_at_us = None;
                Some(BandDue::Unacknowledged {
                    at_us: due,
                    band,
                    since_us: awaiting.since_us,
                })
            }
            _ => None,
        }
    }
}

impl Awaiting {
    fn from(config: &AlertsConfig, since_us: i64) -> Awaiting {
        Awaiting {
            since_us,
            escalate_at_us: Some(since_us + (config.escalate_after.0.as_micros() as i64).max(1)),
        }
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

/// A score update: the NEWS2 total, bounds, band or completeness of a patient changed, or the
/// band in force, `raised` (the policy's: a band stays raised until it comes down), which its
/// severity gives (`info` when none is raised).
pub fn score_update(
    patient: &str,
    time: EventTime,
    score: &Score,
    raised: Option<Band>,
    evidence: Evidence,
) -> Alert {
    let band = match score.band {
        Some(band) => format!(", band {band}"),
        None => String::new(),
    };
    let in_force = match raised {
        Some(r) if score.band != Some(r) => format!("; the {r} band stays raised"),
        _ => String::new(),
    };
    Alert::new(
        patient,
        time,
        AlertKind::News2,
        AlertEvent::Scored,
        raised.map_or(Severity::Info, Severity::of),
        format!("{}{band}{in_force}", total_text(score)),
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

/// An alert nobody acknowledged since `since_us`, due again at `time`: a high band or a single
/// parameter scoring 3 escalates to the second recipient; a medium band pages the ward again.
pub fn unacknowledged_alert(
    patient: &str,
    time: EventTime,
    (band, since_us): (Band, i64),
    score: &Score,
    evidence: Evidence,
) -> Alert {
    let escalates = matches!(band, Band::High | Band::LowMedium) || score.single_parameter_3;
    let minutes = (time.micros() - since_us).max(0) / 60_000_000;
    let since = EventTime::from_micros(since_us).to_rfc3339();
    let (event, what, recipient) = match escalates {
        true => (AlertEvent::Escalated, "escalated", Recipient::Escalation),
        false => (
            AlertEvent::Unacknowledged,
            "paging the ward again",
            Recipient::Ward,
        ),
    };
    let mut alert = Alert::new(
        patient,
        time,
        AlertKind::News2,
        event,
        Severity::of(band),
        format!(
            "NEWS2 band {band} unacknowledged for {minutes} min (since {since}): {what} (now {})",
            total_text(score)
        ),
        format!("{}; nobody has acknowledged the alert", score.response()),
        Some(evidence),
    );
    alert.recipient = recipient;
    alert
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

    fn score_with(rr: f64, hr: f64) -> Score {
        crate::news2::score_of(rr, hr, Some(37.0))
    }

    const H: i64 = 3_600_000_000;

    const MIN: i64 = 60_000_000;

    fn reminder(at_us: i64, band: Band) -> Option<BandDue> {
        Some(BandDue::Reminder { at_us, band })
    }

    fn unacknowledged(at_us: i64, band: Band, since_us: i64) -> Option<BandDue> {
        Some(BandDue::Unacknowledged {
            at_us,
            band,
            since_us,
        })
    }

    #[test]
    fn raises_at_once_escalates_once_and_reminds_at_the_monitoring_frequency() {
        let config = AlertsConfig::default(); // escalate after 15 min
        let mut p = BandPolicy::default();
        assert_eq!(p.on_score(&config, 0, &score_with(16.0, 70.0)), None);
        let low = score_with(22.0, 115.0); // 2 + 2 = 4: low
        assert_eq!(p.on_score(&config, 1, &low), None);
        let medium = score_with(26.0, 135.0); // 3 + 3 = 6: medium
        assert_eq!(
            p.on_score(&config, 2, &medium),
            Some(BandDecision::Raised {
                from: None,
                to: Band::Medium
            })
        );
        // Unacknowledged at exactly 15 minutes, not a microsecond before; once.
        assert_eq!(p.take_due(&config, 15 * MIN + 1), None);
        assert_eq!(
            p.take_due(&config, 15 * MIN + 2),
            unacknowledged(15 * MIN + 2, Band::Medium, 2)
        );
        assert_eq!(p.take_due(&config, H), None);
        assert_eq!(p.take_due(&config, H + 2), reminder(H + 2, Band::Medium));
        assert_eq!(
            p.take_due(&config, 3 * H),
            reminder(2 * H + 2, Band::Medium)
        );
        assert_eq!(p.take_due(&config, 3 * H), None);
        assert_eq!(p.next_due(), Some(3 * H + 2));
    }

    #[test]
    fn an_acknowledgement_pauses_reminders_for_the_band_frequency_and_stops_the_escalation() {
        let config = AlertsConfig::default(); // medium reminded hourly, escalated after 15 min
        let mut p = BandPolicy::default();
        p.on_score(&config, 0, &score_with(26.0, 135.0)); // 3 + 3: medium
        assert_eq!(p.raised(), Some(Band::Medium));
        assert!(p.acknowledge(&config, 5 * MIN, 0));
        // No escalation at 15 min; the review is due 60 min after the acknowledgement.
        assert_eq!(p.next_due(), Some(65 * MIN));
        assert_eq!(p.take_due(&config, 65 * MIN - 1), None);
        assert_eq!(
            p.take_due(&config, 65 * MIN),
            reminder(65 * MIN, Band::Medium)
        );
        // The acknowledgement lapsed: this review waits to be acknowledged, and escalates.
        assert_eq!(
            p.take_due(&config, 80 * MIN),
            unacknowledged(80 * MIN, Band::Medium, 65 * MIN)
        );
        // Acknowledged again, in time this once: no escalation.
        assert!(p.acknowledge(&config, 90 * MIN, 65 * MIN));
        assert_eq!(p.take_due(&config, 150 * MIN - 1), None);
        assert_eq!(
            p.take_due(&config, 150 * MIN),
            reminder(150 * MIN, Band::Medium)
        );
    }

    #[test]
    fn only_an_alert_of_the_raised_band_acknowledges_it() {
        let config = AlertsConfig::default();
        let mut p = BandPolicy::default();
        assert!(!p.acknowledge(&config, 0, 0), "nothing raised");
        p.on_score(&config, MIN, &score_with(26.0, 135.0)); // medium at 1 min
        // A rise to high at 10 min is a new alert: acknowledging the medium one (1 min) does not
        // acknowledge it.
        let mut worse = score_with(26.0, 135.0);
        worse.total = 7;
        worse.band = Some(Band::High);
        assert!(matches!(
            p.on_score(&config, 10 * MIN, &worse),
            Some(BandDecision::Raised { .. })
        ));
        assert!(!p.acknowledge(&config, 12 * MIN, MIN));
        // Its review (every 15 min while high) and its escalation fall due together.
        assert_eq!(
            p.take_due(&config, 25 * MIN),
            reminder(25 * MIN, Band::High)
        );
        assert_eq!(
            p.take_due(&config, 25 * MIN),
            unacknowledged(25 * MIN, Band::High, 10 * MIN)
        );
        assert!(
            p.acknowledge(&config, 26 * MIN, 25 * MIN),
            "the escalation is of it"
        );
    }

    #[test]
    fn a_band_that_comes_down_escalates_nothing() {
        let config = AlertsConfig {
            deescalate_spacing: crate::config::Dur(std::time::Duration::from_micros(1)),
            ..AlertsConfig::default()
        };
        let mut p = BandPolicy::default();
        p.on_score(&config, 0, &score_with(26.0, 135.0));
        for (t, hr) in [(MIN, 70.0), (2 * MIN, 71.0), (3 * MIN, 72.0)] {
            p.on_score(&config, t, &score_with(16.0, hr));
        }
        assert_eq!(p.raised(), None);
        assert_eq!(p.next_due(), None);
        assert_eq!(p.take_due(&config, 10 * H), None);
        assert!(!p.acknowledge(&config, 4 * MIN, 0));
    }

    #[test]
    fn nothing_current_pauses_the_escalation_with_the_reminders() {
        let config = AlertsConfig::default();
        let mut p = BandPolicy::default();
        p.on_score(&config, 0, &score_with(26.0, 135.0));
        p.pause_reminders();
        assert_eq!(p.next_due(), None);
        p.resume_reminders(&config, 2 * H);
        assert_eq!(p.take_due(&config, 4 * H), reminder(3 * H, Band::Medium));
    }

    #[test]
    fn a_high_band_or_a_single_parameter_3_escalates_and_a_medium_band_pages_the_ward() {
        let at = EventTime::from_micros(20 * MIN);
        let evidence = |s: &Score| Evidence::of(s, [None; 7]);
        let mut medium = score_with(26.0, 135.0);
        medium.single_parameter_3 = false;
        let a = unacknowledged_alert("p", at, (Band::Medium, 5 * MIN), &medium, evidence(&medium));
        assert_eq!(
            (a.event, a.recipient),
            (AlertEvent::Unacknowledged, Recipient::Ward)
        );
        assert!(a.pages());
        assert!(
            a.summary.contains("unacknowledged for 15 min"),
            "{}",
            a.summary
        );
        let mut high = medium.clone();
        high.band = Some(Band::High);
        let a = unacknowledged_alert("p", at, (Band::High, 5 * MIN), &high, evidence(&high));
        assert_eq!(
            (a.event, a.recipient),
            (AlertEvent::Escalated, Recipient::Escalation)
        );
        let mut sp3 = medium.clone();
        sp3.single_parameter_3 = true;
        let a = unacknowledged_alert("p", at, (Band::Medium, 5 * MIN), &sp3, evidence(&sp3));
        assert_eq!(
            (a.event, a.recipient),
            (AlertEvent::Escalated, Recipient::Escalation)
        );
        let low_medium = score_with(26.0, 70.0);
        let a = unacknowledged_alert(
            "p",
            at,
            (Band::LowMedium, 5 * MIN),
            &low_medium,
            evidence(&low_medium),
        );
        assert_eq!(a.recipient, Recipient::Escalation);
        let json = a.to_json();
        assert!(json.contains("\"recipient\":\"escalation\""), "{json}");
        let reminder = reminder_alert("p", at, Band::High, &high, evidence(&high));
        assert!(!reminder.pages(), "a reminder is board state");
        assert!(
            !reminder.to_json().contains("recipient"),
            "the ward is the default"
        );
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
        assert_eq!(p.next_due(), None);
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
