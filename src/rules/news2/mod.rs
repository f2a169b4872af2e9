//! The NEWS2 rule: the patient is rescored whenever the picture changes, and the band policy
//! ([`BandPolicy`]) raises, reminds and lowers the band alert.

pub mod policy;

use super::{Change, Context, Rule};
use crate::alerting::{Alert, AlertKind, Evidence};
use crate::monitor::events::Acknowledgement;
use crate::observation::EventTime;
use policy::{BandDue, BandPolicy};

type Reported = (
    u8,
    u8,
    Option<crate::news2::Band>,
    crate::news2::Status,
    Option<crate::news2::Band>,
);

/// The NEWS2 band of one patient, and the last score it reported as board state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct News2 {
    band: BandPolicy,
    /// Total, upper bound, band and completeness of the last score update, and the band in
    /// force then.
    reported: Option<Reported>,
}

impl News2 {
    fn rescore(&mut self, cx: Context<'_>, now_us: i64, out: &mut Vec<Alert>) {
        let (score, ages) = cx.picture.score_at(cx.settings, now_us);
        if score.assessments.iter().any(|a| a.charted.is_some()) {
            self.band.resume_reminders(cx.alerts, now_us);
        }
        let now = EventTime::from_micros(now_us);
        let decision = self.band.on_score(cx.alerts, now_us, &score);
        // The band in force is the policy's (raised until K lower scores bring it down), which
        // the board shows: an update also when only it changed.
        let raised = self.band.raised();
        let shown = Some((
            score.total,
            score.upper_bound,
            score.band,
            score.status,
            raised,
        ));
        if shown != self.reported {
            self.reported = shown;
            let evidence = Evidence::of(&score, ages);
            out.push(policy::score_update(
                cx.picture.patient(),
                now,
                &score,
                raised,
                evidence,
            ));
        }
        if let Some(decision) = decision {
            out.push(policy::band_alert(
                cx.picture.patient(),
                now,
                decision,
                &score,
                Evidence::of(&score, ages),
            ));
        }
    }
}

impl Rule for News2 {
    fn on_change(&mut self, cx: Context<'_>, change: &Change<'_>, out: &mut Vec<Alert>) {
        match *change {
            Change::Observed { now } | Change::Invalid { now, .. } | Change::Scale { now } => {
                self.rescore(cx, now, out)
            }
            // A parameter going stale makes the score incomplete.
            Change::Stale { due, .. } => self.rescore(cx, due, out),
            Change::Held { .. } | Change::Unreadable { .. } => {}
        }
    }

    fn on_acknowledged(&mut self, cx: Context<'_>, ack: &Acknowledgement, _out: &mut Vec<Alert>) {
        if ack.kind == AlertKind::News2 {
            self.band
                .acknowledge(cx.alerts, ack.at_us, ack.alert_time_us);
        }
    }

    fn next_due(&self) -> Option<i64> {
        self.band.next_due()
    }

    fn on_timer(&mut self, cx: Context<'_>, due: i64, out: &mut Vec<Alert>) {
        let Some(fired) = self.band.take_due(cx.alerts, due) else {
            return;
        };
        let at = match fired {
            BandDue::Reminder { at_us, .. } | BandDue::Unacknowledged { at_us, .. } => at_us,
        };
        let (score, ages) = cx.picture.score_at(cx.settings, at);
        if score.assessments.iter().all(|a| a.charted.is_none()) {
            // Nothing current is left (monitoring stopped, or the stay ended): the data-quality
            // alerts said so; reminders resume with the next value.
            self.band.pause_reminders();
            return;
        }
        let patient = cx.picture.patient();
        let time = EventTime::from_micros(at);
        let evidence = Evidence::of(&score, ages);
        out.push(match fired {
            BandDue::Reminder { band, .. } => {
                policy::reminder_alert(patient, time, band, &score, evidence)
            }
            BandDue::Unacknowledged { band, since_us, .. } => {
                policy::unacknowledged_alert(patient, time, (band, since_us), &score, evidence)
            }
        });
    }
}
