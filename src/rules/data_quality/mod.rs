//! The data-quality rule: tells clinicians when a parameter is missing since monitoring began or
//! has gone stale (once per value), when an impossible value arrived (at most once per staleness
//! limit of its parameter), when a device's clock is wrong (once, then hourly while it stays
//! wrong), and when its observations cannot be read from their source (a stalled partition). `[alerts] data_quality = false` silences it; the scores still say what is missing.

use super::{Change, Context, Rule};
use crate::alerting::{self, Alert, AlertEvent};
use crate::news2::Parameter;
use crate::observation::{EventTime, Identifier};
use crate::picture::human;

/// A device whose clock stays wrong is reported again at most this often (µs of event time).
const CLOCK_ALERT_EVERY_US: i64 = 3_600_000_000;

/// Per device (none: observations sent without one), when its wrong clock was last reported.
type ClockAlerts = Vec<(Option<Identifier>, i64)>;

/// One patient's data-quality state.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct DataQuality {
    /// When each parameter's last impossible-value alert was raised (`i64::MIN`: never).
    last_invalid_us: [i64; 7],
    /// Boxed: few patients ever have a device with a wrong clock.
    clock_alerts: Option<Box<ClockAlerts>>,
}

impl Default for DataQuality {
    fn default() -> DataQuality {
        DataQuality {
            last_invalid_us: [i64::MIN; 7],
            clock_alerts: None,
        }
    }
}

impl DataQuality {
    fn stale(&self, cx: Context<'_>, due: i64, parameters: &[bool; 7], out: &mut Vec<Alert>) {
        for (i, parameter) in Parameter::ALL.into_iter().enumerate() {
            if !parameters[i] {
                continue;
            }
            let limit = human(cx.settings.staleness_us[i]);
            let (event, detail) = match cx.picture.latest(parameter).time() {
                None => (
                    AlertEvent::Missing,
                    format!("no value received for {limit} since monitoring began"),
                ),
                Some(t) => (
                    AlertEvent::Stale,
                    format!(
                        "last value is {} old, over the {limit} limit",
                        human(due - t)
                    ),
                ),
            };
            out.push(alerting::data_quality_alert(
                cx.picture.patient(),
                EventTime::from_micros(due),
                event,
                parameter,
                detail,
            ));
        }
    }

    fn invalid(
        &mut self,
        cx: Context<'_>,
        now: i64,
        parameter: Parameter,
        reason: &str,
        out: &mut Vec<Alert>,
    ) {
        let i = parameter as usize;
        let last = self.last_invalid_us[i];
        if last > i64::MIN && now - last < cx.settings.staleness_us[i] {
            return;
        }
        self.last_invalid_us[i] = now;
        out.push(alerting::data_quality_alert(
            cx.picture.patient(),
            EventTime::from_micros(now),
            AlertEvent::Invalid,
            parameter,
            reason.to_owned(),
        ));
    }

    fn held(
        &mut self,
        cx: Context<'_>,
        at: EventTime,
        device: Option<&Identifier>,
        how_far: &str,
        out: &mut Vec<Alert>,
    ) {
        let now = at.micros();
        let alerts = self.clock_alerts.get_or_insert_with(Default::default);
        match alerts.iter_mut().find(|(d, _)| d.as_ref() == device) {
            Some((_, last)) if now - *last < CLOCK_ALERT_EVERY_US => return,
            Some((_, last)) => *last = now,
            None => alerts.push((device.cloned(), now)),
        }
        out.push(alerting::clock_alert(
            cx.picture.patient(),
            at,
            device.map(Identifier::as_str),
            how_far,
        ));
    }
}

impl Rule for DataQuality {
    fn on_change(&mut self, cx: Context<'_>, change: &Change<'_>, out: &mut Vec<Alert>) {
        if !cx.alerts.data_quality {
            return;
        }
        match *change {
            Change::Stale { due, parameters } => self.stale(cx, due, &parameters, out),
            Change::Invalid {
                now,
                parameter,
                reason,
            } => self.invalid(cx, now, parameter, reason, out),
            Change::Held {
                at,
                device,
                how_far,
            } => self.held(cx, at, device, how_far, out),
            Change::Unreadable { at, what } => {
                out.push(alerting::unreadable_alert(cx.picture.patient(), at, what))
            }
            Change::Observed { .. } | Change::Scale { .. } => {}
        }
    }

    fn heap_bytes(&self) -> usize {
        self.clock_alerts.as_ref().map_or(0, |a| {
            std::mem::size_of::<ClockAlerts>()
                + a.capacity() * std::mem::size_of::<(Option<Identifier>, i64)>()
        })
    }
}
