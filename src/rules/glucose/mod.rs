//! The glucose rule: a patient's glucose readings watched as CGM makers ship their alerts
//! (Dexcom G7's defaults, `[glucose]` to change them): urgent low, low, high, rising and falling
//! fast, urgent low soon, and signal loss.
//!
//! * **Urgent low**: a reading below `urgent_low` (55 mg/dL, never lower, never off) always
//!   alerts, CGM or meter, and again every `urgent_low_repeat` (5 min) while readings stay below.
//!   A sudden drop into it (faster than [`COMPRESSION_RATE`], as when a sensor is lain on) is
//!   annotated in the evidence as a suspected compression low: never downgraded.
//! * **Low** below `low` (70), **high** above `high` (250): once per excursion, again after the
//!   glucose came back.
//! * **Rising fast / falling fast**: the least-squares rate over the CGM readings of the last
//!   `trend` (15 min, at least three readings over ten minutes) at `fast_rate` (2 mg/dL/min) or
//!   more; again, more urgent, if it reaches `rapid_rate` (3); re-armed once it slows.
//! * **Urgent low soon**: that trend reaches urgent low within `urgent_low_soon` (20 min); once
//!   per approach.
//! * **Signal loss**: no CGM reading for `signal_loss` (20 min), at the instant it is due.
//! * **Warm-up**: readings of a sensor within `warmup` of its session start (from its
//!   `device_status`) are not used; the first is a data-quality alert.
//!
//! Alerts have kind `glucose` (warm-up: `data_quality`) and their readings as evidence. State is
//! allocated at a patient's first glucose reading: a bedside patient pays one pointer.

use std::collections::VecDeque;

use serde_json::json;

use super::{Context, Rule};
use crate::alerting::{Alert, AlertEvent, AlertKind, Severity};
use crate::observation::{Detail, EventTime, Identifier, Method, Observation, Reading, Vital};

mod backfill;
mod config;

pub use config::{GlucoseConfig, Toggle, URGENT_LOW_FLOOR};

/// A fall faster than this (mg/dL/min) into urgent low is faster than blood glucose falls: a
/// suspected compression low (the sensor pressed), annotated, never downgraded.
pub const COMPRESSION_RATE: f64 = 4.0;

const MIN_US: f64 = 60_000_000.0;

/// One patient's glucose state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Glucose {
    state: Option<Box<State>>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    /// CGM readings (µs, mg/dL) of the last trend stretch, oldest first.
    recent: VecDeque<(i64, f64)>,
    /// The latest CGM reading's time, and when its signal is lost if none follows.
    last_cgm_us: Option<i64>,
    signal_due_us: Option<i64>,
    /// The urgent-low episode: when it began and when it was last alerted.
    urgent: Option<(i64, i64)>,
    low: bool,
    high: bool,
    /// The fast change alerted: rising (true) or falling, and whether at the rapid rate.
    fast: Option<(bool, bool)>,
    soon: bool,
    /// Per sensor, when its warm-up ends, and whether it was reported.
    warmups: Vec<(Identifier, i64, bool)>,
    /// Backfilled readings not reported yet.
    backfill: Option<Box<backfill::Burst>>,
}

impl Glucose {
    fn state(&mut self) -> &mut State {
        self.state.get_or_insert_with(Default::default)
    }
}

impl Rule for Glucose {
    fn on_change(&mut self, _: Context<'_>, _: &super::Change<'_>, _: &mut Vec<Alert>) {}

    fn on_observation(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        // Every observation comes here: a bedside vital's reading is not even made.
        if !matches!(obs.vital(), Vital::Glucose | Vital::DeviceStatus) {
            return;
        }
        match (obs.vital(), obs.reading(), obs.detail()) {
            (Vital::DeviceStatus, _, Some(Detail::Status(status))) => {
                if let (Some(start), Some(device)) = (status.sensor_start, obs.device()) {
                    let until = start.micros() + cx.rules.glucose.warmup.0.as_micros() as i64;
                    self.state().sensor_started(device, until);
                }
            }
            (Vital::Glucose, Reading::Quantity(q), detail) => {
                let cgm = !matches!(
                    detail,
                    Some(Detail::Glucose {
                        method: Method::Meter
                    })
                );
                let reading = Sample {
                    time_us: obs.time().micros(),
                    mg_dl: q.to_f64(),
                    cgm,
                };
                let patient = cx.picture.patient();
                let state = self.state();
                if state.warming_up(patient, obs.device(), reading.time_us, out) {
                    return;
                }
                state.reading(&cx.rules.glucose, patient, reading, out);
            }
            _ => {}
        }
    }

    fn on_backfill(&mut self, cx: Context<'_>, at_us: i64, obs: &Observation, _: &mut Vec<Alert>) {
        let (Vital::Glucose, Reading::Quantity(q)) = (obs.vital(), obs.reading()) else {
            return;
        };
        let config = &cx.rules.glucose;
        let (time_us, mg_dl) = (obs.time().micros(), q.to_f64());
        self.state()
            .backfill
            .get_or_insert_with(|| Box::new(backfill::Burst::new(time_us, mg_dl, at_us)))
            .add(time_us, mg_dl, at_us, config.urgent_low(), config.low.on());
    }

    fn next_due(&self) -> Option<i64> {
        let state = self.state.as_ref()?;
        let burst = state.backfill.as_ref().map(|b| b.due_us);
        match (state.signal_due_us, burst) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn on_timer(&mut self, cx: Context<'_>, due: i64, out: &mut Vec<Alert>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        if let Some(burst) = state.backfill.take_if(|b| b.due_us <= due) {
            out.push(burst.alert(cx.picture.patient(), cx.rules.glucose.urgent_low()));
        }
        let Some(last) = state
            .last_cgm_us
            .filter(|_| state.signal_due_us == Some(due))
        else {
            return;
        };
        state.signal_due_us = None;
        let silence = crate::picture::human(due - last);
        let alert = glucose_alert(
            cx.picture.patient(),
            due,
            AlertEvent::SignalLoss,
            Severity::Warning,
            format!("no CGM reading for {silence}: glucose is not being watched"),
            "check the sensor and the receiver or phone are within range; check glucose with a meter",
        );
        out.push(alert.with_facts(json!({
            "last_reading": EventTime::from_micros(last).to_rfc3339(),
            "silence_s": (due - last) / 1_000_000,
        })));
    }

    fn heap_bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| {
            std::mem::size_of::<State>()
                + s.recent.capacity() * std::mem::size_of::<(i64, f64)>()
                + s.warmups.capacity() * std::mem::size_of::<(Identifier, i64, bool)>()
        })
    }
}

/// One glucose reading.
#[derive(Clone, Copy, Debug)]
struct Sample {
    time_us: i64,
    mg_dl: f64,
    cgm: bool,
}

impl State {
    fn sensor_started(&mut self, device: &Identifier, until_us: i64) {
        match self.warmups.iter_mut().find(|(d, _, _)| d == device) {
            Some(w) if w.1 != until_us => *w = (device.clone(), until_us, false),
            Some(_) => {}
            None => self.warmups.push((device.clone(), until_us, false)),
        }
    }

    /// Whether a reading of `device` at `time_us` is its sensor's warm-up (reported once).
    fn warming_up(
        &mut self,
        patient: &str,
        device: Option<&Identifier>,
        time_us: i64,
        out: &mut Vec<Alert>,
    ) -> bool {
        let Some(w) = device.and_then(|d| self.warmups.iter_mut().find(|(w, _, _)| w == d)) else {
            return false;
        };
        if time_us >= w.1 {
            return false;
        }
        if !w.2 {
            w.2 = true;
            let left = crate::picture::human(w.1 - time_us);
            out.push(Alert::new(
                patient,
                EventTime::from_micros(time_us),
                AlertKind::DataQuality,
                AlertEvent::Warmup,
                Severity::Warning,
                format!(
                    "glucose: sensor {} is warming up for {left} more; its readings are not used",
                    w.0
                ),
                "check glucose with a meter until the sensor's readings start".to_owned(),
                None,
            ));
        }
        true
    }

    /// A glucose reading, in event-time order.
    fn reading(&mut self, config: &GlucoseConfig, patient: &str, r: Sample, out: &mut Vec<Alert>) {
        let previous = self.recent.back().copied();
        if r.cgm {
            self.recent.push_back((r.time_us, r.mg_dl));
            let keep = config.trend.0.as_micros() as i64;
            while self
                .recent
                .front()
                .is_some_and(|&(t, _)| t < r.time_us - keep)
            {
                self.recent.pop_front();
            }
            self.last_cgm_us = Some(r.time_us);
            self.signal_due_us = config
                .signal_loss
                .on()
                .map(|d| r.time_us + d.0.as_micros() as i64);
        }
        let rate = if r.cgm { self.rate() } else { None };
        let cx = Evaluation {
            config,
            patient,
            r,
            rate,
        };
        self.urgent_low(&cx, previous, out);
        self.low_and_high(&cx, out);
        if let Some(rate) = rate {
            self.fast(&cx, rate, out);
            self.soon(&cx, rate, out);
        }
    }

    /// The least-squares rate (mg/dL/min) of the recent CGM readings: at least three, over at
    /// least ten minutes.
    fn rate(&self) -> Option<f64> {
        let (first, last) = (self.recent.front()?, self.recent.back()?);
        if self.recent.len() < 3 || last.0 - first.0 < 10 * 60_000_000 {
            return None;
        }
        let n = self.recent.len() as f64;
        let t0 = first.0;
        let xs = || {
            self.recent
                .iter()
                .map(move |&(t, _)| (t - t0) as f64 / MIN_US)
        };
        let mean_x = xs().sum::<f64>() / n;
        let mean_y = self.recent.iter().map(|&(_, v)| v).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for (x, &(_, y)) in xs().zip(&self.recent) {
            sxy += (x - mean_x) * (y - mean_y);
            sxx += (x - mean_x) * (x - mean_x);
        }
        (sxx > 0.0).then(|| sxy / sxx)
    }

    /// The readings and trend an alert rests on.
    fn facts(&self, r: Sample, rate: Option<f64>) -> serde_json::Value {
        let readings: Vec<serde_json::Value> = self
            .recent
            .iter()
            .map(|&(t, v)| json!({"time": EventTime::from_micros(t).to_rfc3339(), "mg_dl": v}))
            .collect();
        json!({
            "mg_dl": r.mg_dl,
            "method": if r.cgm { "cgm" } else { "meter" },
            "rate_mg_dl_per_min": rate.map(round2),
            "readings": readings,
        })
    }

    fn urgent_low(
        &mut self,
        cx: &Evaluation<'_>,
        previous: Option<(i64, f64)>,
        out: &mut Vec<Alert>,
    ) {
        let threshold = cx.config.urgent_low();
        let now = cx.r.time_us;
        if cx.r.mg_dl >= threshold {
            self.urgent = None;
            return;
        }
        let repeat = cx.config.urgent_low_repeat.0.as_micros() as i64;
        let since = match self.urgent {
            None => now,
            Some((since, last)) if now - last >= repeat => since,
            Some(_) => return,
        };
        self.urgent = Some((since, now));
        // Below urgent low is below low, and past the approach.
        self.low = true;
        self.soon = true;
        let mut facts = self.facts(cx.r, cx.rate);
        facts["episode_start"] = json!(EventTime::from_micros(since).to_rfc3339());
        if let Some(drop) = compression(previous, cx.r) {
            facts["suspected_compression"] = drop;
        }
        let summary = if since == now {
            format!(
                "urgent low: glucose {} mg/dL, below {threshold}",
                cx.r.mg_dl
            )
        } else {
            format!(
                "urgent low for {}: glucose {} mg/dL, below {threshold}",
                crate::picture::human(now - since),
                cx.r.mg_dl
            )
        };
        out.push(cx.alert(
            AlertEvent::UrgentLow,
            Severity::High,
            summary,
            URGENT_RESPONSE,
            facts,
        ));
    }

    fn low_and_high(&mut self, cx: &Evaluation<'_>, out: &mut Vec<Alert>) {
        let v = cx.r.mg_dl;
        if let Some(low) = cx.config.low.on() {
            if v >= low {
                self.low = false;
            } else if !self.low {
                self.low = true;
                let summary = format!("low: glucose {v} mg/dL, below {low}");
                out.push(cx.alert(
                    AlertEvent::Low,
                    Severity::Medium,
                    summary,
                    LOW_RESPONSE,
                    self.facts(cx.r, cx.rate),
                ));
            }
        }
        if let Some(high) = cx.config.high.on() {
            if v <= high {
                self.high = false;
            } else if !self.high {
                self.high = true;
                let summary = format!("high: glucose {v} mg/dL, above {high}");
                out.push(cx.alert(
                    AlertEvent::High,
                    Severity::Warning,
                    summary,
                    HIGH_RESPONSE,
                    self.facts(cx.r, cx.rate),
                ));
            }
        }
    }

    fn fast(&mut self, cx: &Evaluation<'_>, rate: f64, out: &mut Vec<Alert>) {
        if rate.abs() < cx.config.fast_rate {
            self.fast = None;
            return;
        }
        let rising = rate > 0.0;
        let rapid = rate.abs() >= cx.config.rapid_rate;
        match self.fast {
            Some((r, was_rapid)) if r == rising && (was_rapid || !rapid) => return,
            _ => self.fast = Some((rising, rapid)),
        }
        let (event, word, response) = if rising {
            (AlertEvent::RisingFast, "rising", RISING_RESPONSE)
        } else {
            (AlertEvent::FallingFast, "falling", FALLING_RESPONSE)
        };
        let severity = if rapid {
            Severity::Medium
        } else {
            Severity::Warning
        };
        let summary = format!(
            "glucose {word} {} mg/dL/min, now {} mg/dL",
            round2(rate.abs()),
            cx.r.mg_dl
        );
        out.push(cx.alert(
            event,
            severity,
            summary,
            response,
            self.facts(cx.r, cx.rate),
        ));
    }

    fn soon(&mut self, cx: &Evaluation<'_>, rate: f64, out: &mut Vec<Alert>) {
        let Some(horizon) = cx.config.urgent_low_soon.on() else {
            return;
        };
        let minutes = horizon.0.as_secs_f64() / 60.0;
        let threshold = cx.config.urgent_low();
        let predicted = cx.r.mg_dl + rate * minutes;
        if predicted >= threshold || self.urgent.is_some() {
            self.soon = self.urgent.is_some();
            return;
        }
        if self.soon {
            return;
        }
        self.soon = true;
        let eta = ((cx.r.mg_dl - threshold) / -rate).max(0.0);
        let mut facts = self.facts(cx.r, cx.rate);
        facts["predicted_mg_dl"] = json!(round2(predicted));
        facts["minutes_to_urgent_low"] = json!(round2(eta));
        let summary = format!(
            "urgent low soon: glucose {} mg/dL falling {} mg/dL/min, below {threshold} in about {} min",
            cx.r.mg_dl,
            round2(-rate),
            eta.round()
        );
        out.push(cx.alert(
            AlertEvent::UrgentLowSoon,
            Severity::Medium,
            summary,
            SOON_RESPONSE,
            facts,
        ));
    }
}

/// A reading being judged, and what its alerts say.
struct Evaluation<'a> {
    config: &'a GlucoseConfig,
    patient: &'a str,
    r: Sample,
    /// The CGM trend, when there is one.
    rate: Option<f64>,
}

impl Evaluation<'_> {
    fn alert(
        &self,
        event: AlertEvent,
        severity: Severity,
        summary: String,
        response: &str,
        facts: serde_json::Value,
    ) -> Alert {
        glucose_alert(
            self.patient,
            self.r.time_us,
            event,
            severity,
            summary,
            response,
        )
        .with_facts(facts)
    }
}

/// A fall into urgent low faster than [`COMPRESSION_RATE`] since the previous CGM reading.
fn compression(previous: Option<(i64, f64)>, r: Sample) -> Option<serde_json::Value> {
    let (t, v) = previous?;
    let minutes = (r.time_us - t) as f64 / MIN_US;
    if !r.cgm || minutes <= 0.0 || minutes > 15.0 {
        return None;
    }
    let rate = (v - r.mg_dl) / minutes;
    (rate >= COMPRESSION_RATE).then(|| {
        json!({
            "from_mg_dl": v,
            "over_min": round2(minutes),
            "fall_mg_dl_per_min": round2(rate),
            "note": "faster than blood glucose falls: check for pressure on the sensor, and confirm with a meter; the alarm stands",
        })
    })
}

fn glucose_alert(
    patient: &str,
    time_us: i64,
    event: AlertEvent,
    severity: Severity,
    summary: String,
    response: &str,
) -> Alert {
    Alert::new(
        patient,
        EventTime::from_micros(time_us),
        AlertKind::Glucose,
        event,
        severity,
        summary,
        response.to_owned(),
        None,
    )
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

const URGENT_RESPONSE: &str = "treat now: 15-20 g of fast-acting carbohydrate, recheck in 15 minutes; if the patient cannot swallow, glucagon and emergency help";
const LOW_RESPONSE: &str = "treat with 15 g of fast-acting carbohydrate and recheck in 15 minutes";
const HIGH_RESPONSE: &str = "check for missed insulin, illness or a pump problem; follow the patient's high-glucose plan (ketones if above 250 mg/dL for long)";
const RISING_RESPONSE: &str = "watch for a high; check that insulin was given for the last meal";
const FALLING_RESPONSE: &str =
    "watch for a low; consider carbohydrate, and check for recent insulin or exercise";
const SOON_RESPONSE: &str =
    "act before the low: take fast-acting carbohydrate now and recheck in 15 minutes";

#[cfg(test)]
mod tests;
