//! The pump rule: an insulin pump's alarms become alerts, and the ones that matter more given
//! the patient's glucose escalate.
//!
//! * `occlusion`, `no_delivery` and `suspended` (the pump reported `suspend`): medium; **high**
//!   while glucose is rising (the shortest window's trend at 1 mg/dL/min or more) or above the
//!   high threshold, since no insulin is going in.
//! * `low_reservoir`, `low_battery`: warning.
//! * `risky_bolus`: a bolus while glucose is falling fast (at `[glucose] fast_rate` or more) and
//!   below 100 mg/dL: high.
//!
//! The same alarm again within [`REPEAT_US`] is not alerted again unless it escalates (a pump
//! repeats its alarms until they are cleared). Glucose is read from the picture's shared glucose
//! window: the rule keeps no readings of its own, and reads none older than [`CURRENT_US`].

use serde_json::json;

use super::{Change, Context, Rule, Settings};
use crate::alerting::{Alert, AlertEvent, AlertKind, Head, Severity};
use crate::observation::{Code, Delivery, Detail, Observation, Reading, Vital};

/// An alarm repeated within this long (µs of event time) is the same alarm.
pub const REPEAT_US: i64 = 15 * 60_000_000;

/// Glucose older than this says nothing of now.
pub const CURRENT_US: i64 = 30 * 60_000_000;

/// Rising at this rate (mg/dL/min) or more: a pump not delivering is more urgent.
pub const RISING_RATE: f64 = 1.0;

/// A bolus below this glucose (mg/dL), falling fast, risks a severe low.
pub const BOLUS_FALLING_BELOW: f64 = 100.0;

/// The alarms, in the order of [`Pump`]'s state.
const ALARMS: [AlertEvent; 5] = [
    AlertEvent::Occlusion,
    AlertEvent::NoDelivery,
    AlertEvent::Suspended,
    AlertEvent::LowReservoir,
    AlertEvent::LowBattery,
];

/// One patient's pump state: when each alarm was last alerted, and at what severity (boxed: a
/// patient without a pump pays one pointer).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Pump {
    last: Option<Box<Alerted>>,
}

/// Per alarm of [`ALARMS`], when it was last alerted and at what severity.
type Alerted = [Option<(i64, Severity)>; ALARMS.len()];

/// The patient's glucose now, from the picture's window.
#[derive(Clone, Copy, Debug)]
struct Glucose {
    mg_dl: f64,
    rate: Option<f64>,
}

impl Pump {
    fn glucose(cx: &Context<'_>, now_us: i64) -> Option<Glucose> {
        let window = cx.picture.window(Vital::Glucose);
        let (time_ms, mg_dl) = window.last()?;
        if now_us - time_ms * 1000 > CURRENT_US {
            return None;
        }
        let shortest = trend_window(cx.settings)?;
        let layout = cx.settings.layout(Vital::Glucose);
        let stats = window.stats(layout, shortest, now_us.div_euclid(1000));
        let rate = stats
            .filter(|s| s.count >= 3)
            .map(|s| s.slope_per_hour / 60.0);
        Some(Glucose { mg_dl, rate })
    }

    /// Whether `event` at `severity` was alerted within the repeat interval at that severity or
    /// higher; if not, it is noted as alerted now.
    fn repeated(&mut self, event: AlertEvent, now: i64, severity: Severity) -> bool {
        let Some(i) = ALARMS.iter().position(|a| *a == event) else {
            return false;
        };
        let last = &mut self.last.get_or_insert_with(Default::default)[i];
        if last.is_some_and(|(at, s)| now - at < REPEAT_US && s >= severity) {
            return true;
        }
        *last = Some((now, severity));
        false
    }

    fn alarm(&mut self, cx: Context<'_>, obs: &Observation, code: Code, out: &mut Vec<Alert>) {
        let now = obs.time().micros();
        let glucose = Self::glucose(&cx, now);
        let high = cx.rules.glucose.high.on().unwrap_or(250.0);
        let rising =
            glucose.is_some_and(|g| g.rate.is_some_and(|r| r >= RISING_RATE) || g.mg_dl > high);
        let (event, base, what, response) = match code {
            Code::Occlusion => (
                AlertEvent::Occlusion,
                Severity::Medium,
                "an occlusion: insulin is not getting through",
                NO_INSULIN,
            ),
            Code::NoDelivery => (
                AlertEvent::NoDelivery,
                Severity::Medium,
                "no delivery: insulin is not being given",
                NO_INSULIN,
            ),
            Code::Suspend => (
                AlertEvent::Suspended,
                Severity::Medium,
                "delivery suspended",
                NO_INSULIN,
            ),
            Code::LowReservoir => (
                AlertEvent::LowReservoir,
                Severity::Warning,
                "the reservoir is low",
                "refill or change the reservoir soon",
            ),
            Code::LowBattery => (
                AlertEvent::LowBattery,
                Severity::Warning,
                "the battery is low",
                "charge or change the pump's battery soon",
            ),
            _ => return,
        };
        let escalated = base == Severity::Medium && rising;
        let severity = if escalated { Severity::High } else { base };
        if self.repeated(event, now, severity) {
            return;
        }
        let device = obs.device().map_or("the pump", |d| d.as_str());
        let mut summary = format!("pump {device}: {what}");
        if escalated && let Some(g) = glucose {
            summary.push_str(&format!(" while glucose is {} mg/dL and rising", g.mg_dl));
        }
        out.push(pump_alert(
            cx.picture.patient(),
            now,
            event,
            severity,
            summary,
            response,
            glucose,
        ));
    }

    fn bolus(&mut self, cx: Context<'_>, obs: &Observation, units: f64, out: &mut Vec<Alert>) {
        let now = obs.time().micros();
        let Some(g) = Self::glucose(&cx, now) else {
            return;
        };
        let falling_fast = g.rate.is_some_and(|r| r <= -cx.rules.glucose.fast_rate);
        if !(falling_fast && g.mg_dl < BOLUS_FALLING_BELOW) {
            return;
        }
        let summary = format!(
            "a {units} U bolus while glucose is {} mg/dL and falling fast",
            g.mg_dl
        );
        let response =
            "check the bolus was intended; watch closely for a severe low and treat early";
        out.push(pump_alert(
            cx.picture.patient(),
            now,
            AlertEvent::RiskyBolus,
            Severity::High,
            summary,
            response,
            Some(g),
        ));
    }
}

/// The window the glucose trend is read over: the pipeline's shortest.
fn trend_window(settings: &crate::picture::PictureSettings) -> Option<i64> {
    settings.windows.durations().iter().min().copied()
}

impl Rule for Pump {
    fn windows_read(settings: &Settings<'_>, read: &mut Vec<(Vital, i64)>) {
        if let Some(shortest) = trend_window(settings.picture) {
            read.push((Vital::Glucose, shortest));
        }
    }

    fn on_change(&mut self, _: Context<'_>, _: &Change<'_>, _: &mut Vec<Alert>) {}

    fn on_observation(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        // Every observation comes here: a bedside vital's reading is not even made.
        if !matches!(obs.vital(), Vital::PumpEvent | Vital::Insulin) {
            return;
        }
        match (obs.vital(), obs.reading(), obs.detail()) {
            (Vital::PumpEvent, Reading::Code(code), _) => self.alarm(cx, obs, code, out),
            (
                Vital::Insulin,
                Reading::Quantity(units),
                Some(Detail::Insulin {
                    delivery: Delivery::Bolus,
                }),
            ) => self.bolus(cx, obs, units.to_f64(), out),
            _ => {}
        }
    }

    fn heap_bytes(&self) -> usize {
        self.last
            .as_ref()
            .map_or(0, |l| std::mem::size_of_val(l.as_ref()))
    }
}

const NO_INSULIN: &str = "check the infusion set and the pump now; without insulin glucose rises and ketones follow within hours: give insulin another way if it cannot be restored";

fn pump_alert(
    patient: &str,
    time_us: i64,
    event: AlertEvent,
    severity: Severity,
    summary: String,
    response: &str,
    glucose: Option<Glucose>,
) -> Alert {
    let facts = json!({
        "glucose_mg_dl": glucose.map(|g| g.mg_dl),
        "glucose_rate_mg_dl_per_min": glucose.and_then(|g| g.rate).map(|r| (r * 100.0).round() / 100.0),
    });
    let head = Head {
        patient,
        time_us,
        kind: AlertKind::Pump,
        event,
        severity,
    };
    Alert::of_facts(head, summary, response, facts)
}

#[cfg(test)]
mod tests;
