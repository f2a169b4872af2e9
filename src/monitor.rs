//! The rolling picture of one patient: windows per vital, the latest value of each NEWS2 parameter,
//! the current score, and the alert policy's state.
//!
//! A [`PatientMonitor`] is driven in event-time order: observations, invalid values and
//! prescription changes as they happen, and [`PatientMonitor::advance`] as event time moves on
//! (so that reminders and staleness fire even when a patient's devices fall silent). It never
//! reads a clock, and timers fire at their own due time, not when they happen to be noticed: the
//! alerts of a patient depend only on that patient's inputs, never on how the dataflow batched
//! them, how many workers ran, or how fast a replay went.
//!
//! Invariant: the inputs of one patient reach it in non-decreasing event time, and a timer due at
//! `t` fires before any input at a time after `t` (and after inputs at exactly `t` only when
//! those came first).

use std::time::Duration;

use crate::alerting::{self, Alert, AlertEvent, BandPolicy, Evidence};
use crate::config::{AlertsConfig, PipelineConfig};
use crate::exact::Exact;
use crate::news2::{self, AirOrOxygen, Input, Parameter, Parameters, Scale, Score};
use crate::observation::{Acvpu, EventTime, Identifier, Observation, Reading, Vital};
use crate::windows::{VitalWindow, WindowSpec, WindowStats};

mod settle;

use settle::Settle;

/// Settings shared by every patient of a pipeline.
#[derive(Clone, Debug)]
pub struct MonitorSettings {
    pub windows: WindowSpec,
    /// Staleness limit per NEWS2 parameter, µs, in chart order.
    pub staleness_us: [i64; 7],
    /// Numeric parameters are scored at their median over this stretch (µs); 0 = latest.
    pub settle_us: i64,
    pub alerts: AlertsConfig,
    /// The risk model, when the pipeline names one.
    pub risk: Option<std::sync::Arc<crate::risk::RiskScorer>>,
}

impl MonitorSettings {
    pub fn from_config(config: &PipelineConfig) -> MonitorSettings {
        MonitorSettings {
            windows: WindowSpec::new(
                config
                    .windows
                    .durations
                    .iter()
                    .map(|d| d.millis())
                    .collect(),
                config.windows.resolution.millis(),
            ),
            staleness_us: Parameter::ALL.map(|p| config.staleness.limit(p).as_micros() as i64),
            settle_us: config.news2.settle.0.as_micros() as i64,
            alerts: config.alerts.clone(),
            risk: None,
        }
    }
}

/// The NEWS2 parameter a vital feeds, if any.
pub fn parameter_of(vital: Vital) -> Option<Parameter> {
    match vital {
        Vital::RespiratoryRate => Some(Parameter::RespirationRate),
        Vital::Spo2 => Some(Parameter::Spo2),
        Vital::SupplementalOxygen => Some(Parameter::AirOrOxygen),
        Vital::SystolicBp => Some(Parameter::SystolicBp),
        Vital::HeartRate => Some(Parameter::Pulse),
        Vital::Consciousness => Some(Parameter::Consciousness),
        Vital::Temperature => Some(Parameter::Temperature),
        Vital::DiastolicBp => None,
    }
}

/// A numeric form of a reading for windows: the canonical quantity, oxygen as 0 (air) / 1,
/// ACVPU as 0 (A) to 4 (U).
pub fn window_value(reading: &Reading) -> f64 {
    match reading {
        Reading::Quantity(q) => q.to_f64(),
        Reading::Oxygen(o) => f64::from(u8::from(o.on_oxygen())),
        Reading::Consciousness(a) => *a as u8 as f64,
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Latest {
    None,
    Value { time_us: i64, value: ParamValue },
    Invalid { time_us: i64, reason: String },
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ParamValue {
    Number(Exact),
    AirOrOxygen(AirOrOxygen),
    Acvpu(Acvpu),
}

impl Latest {
    fn time(&self) -> Option<i64> {
        match self {
            Latest::None => None,
            Latest::Value { time_us, .. } | Latest::Invalid { time_us, .. } => Some(*time_us),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DataQuality {
    /// A stale or missing alert was raised for the current value (or for never having one).
    alerted: bool,
    /// When the last invalid-value alert was raised: at most one per staleness limit.
    last_invalid_alert_us: Option<i64>,
}

/// One patient's state.
#[derive(Clone, Debug)]
pub struct PatientMonitor {
    patient: String,
    first_seen_us: i64,
    scale: Scale,
    latest: [Latest; 7],
    /// Recent numeric values per parameter, within the settle stretch, for the median.
    recent: [Settle; 7],
    data_quality: [DataQuality; 7],
    windows: [VitalWindow; 8],
    band: BandPolicy,
    /// A risk alert is raised and not yet cleared.
    risk_raised: bool,
    /// When the risk was last scored (µs; `i64::MIN`: never).
    risk_scored_us: i64,
    /// When each device whose clock was wrong was last reported (µs); boxed, as few patients
    /// ever have one.
    clock_alerts: Option<Box<ClockAlerts>>,
}

/// Per device (none: observations sent without one), when its wrong clock was last reported.
type ClockAlerts = Vec<(Option<Identifier>, i64)>;

/// A device whose clock stays wrong is reported again at most this often (µs of event time).
const CLOCK_ALERT_EVERY_US: i64 = 3_600_000_000;

impl PatientMonitor {
    /// A patient first seen at `first_seen`.
    pub fn new(patient: &str, first_seen: EventTime, scale: Scale) -> PatientMonitor {
        PatientMonitor {
            patient: patient.to_owned(),
            first_seen_us: first_seen.micros(),
            scale,
            latest: std::array::from_fn(|_| Latest::None),
            recent: Default::default(),
            data_quality: [DataQuality::default(); 7],
            windows: Default::default(),
            band: BandPolicy::default(),
            risk_raised: false,
            risk_scored_us: i64::MIN,
            clock_alerts: None,
        }
    }

    pub fn patient(&self) -> &str {
        &self.patient
    }

    /// When the patient was first seen (µs).
    pub fn first_seen_us(&self) -> i64 {
        self.first_seen_us
    }

    /// The window state of one vital.
    pub fn window(&self, vital: Vital) -> &VitalWindow {
        &self.windows[vital as usize]
    }

    /// Window statistics of one vital at `now` over each configured duration.
    pub fn window_stats(
        &self,
        settings: &MonitorSettings,
        vital: Vital,
        now: EventTime,
    ) -> Vec<Option<WindowStats>> {
        let now_ms = now.millis();
        settings
            .windows
            .durations()
            .iter()
            .map(|&d| self.windows[vital as usize].stats(&settings.windows, d, now_ms))
            .collect()
    }

    /// Asks for the blocks an observation set reads: first the monitor itself (`heap` false),
    /// then, once that has arrived, the blocks it points to (`heap` true). See
    /// [`crate::prefetch`].
    pub fn prefetch(&self, heap: bool) {
        if !heap {
            crate::prefetch::object(self);
            return;
        }
        for recent in &self.recent {
            recent.prefetch();
        }
        for window in &self.windows {
            window.prefetch();
        }
    }

    /// Approximate bytes of state held for this patient.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>()
            + self.patient.len()
            + self
                .windows
                .iter()
                .map(VitalWindow::heap_bytes)
                .sum::<usize>()
            + self.recent.iter().map(Settle::heap_bytes).sum::<usize>()
            + self.clock_alerts.as_ref().map_or(0, |a| {
                std::mem::size_of::<ClockAlerts>()
                    + a.capacity() * std::mem::size_of::<(Option<Identifier>, i64)>()
            })
            + self
                .latest
                .iter()
                .map(|l| match l {
                    Latest::Invalid { reason, .. } => reason.len(),
                    _ => 0,
                })
                .sum::<usize>()
    }

    /// A valid observation of this patient.
    pub fn observe(&mut self, settings: &MonitorSettings, obs: &Observation, out: &mut Vec<Alert>) {
        self.observe_set(settings, std::slice::from_ref(obs), out);
    }

    /// Observations of this patient that share one event time: an observation set, scored once.
    /// Observations at other times are each scored on their own, in the order given.
    pub fn observe_set<O: std::borrow::Borrow<Observation>>(
        &mut self,
        settings: &MonitorSettings,
        observations: &[O],
        out: &mut Vec<Alert>,
    ) {
        for same_time in observations.chunk_by(|a, b| a.borrow().time() == b.borrow().time()) {
            let now = same_time[0].borrow().time().micros();
            self.advance(settings, now, out);
            let mut scored = false;
            for obs in same_time {
                let obs: &Observation = obs.borrow();
                let reading = obs.reading();
                self.windows[obs.vital() as usize].push(
                    &settings.windows,
                    obs.time().millis(),
                    window_value(&reading),
                );
                let Some(parameter) = parameter_of(obs.vital()) else {
                    continue;
                };
                let value = match reading {
                    Reading::Quantity(q) => ParamValue::Number(q),
                    Reading::Oxygen(o) => ParamValue::AirOrOxygen(AirOrOxygen::from(o)),
                    Reading::Consciousness(a) => ParamValue::Acvpu(a),
                };
                self.latest[parameter as usize] = Latest::Value {
                    time_us: now,
                    value,
                };
                self.data_quality[parameter as usize].alerted = false;
                if let ParamValue::Number(q) = value {
                    self.recent[parameter as usize].push(now, q, settings.settle_us);
                }
                scored = true;
            }
            if scored {
                self.rescore(settings, now, out);
                self.assess_risk(settings, now, out);
            }
        }
    }

    /// An impossible value for `vital` at `time`: not scored, reported as a data-quality problem.
    pub fn invalid(
        &mut self,
        settings: &MonitorSettings,
        vital: Vital,
        time: EventTime,
        reason: &str,
        out: &mut Vec<Alert>,
    ) {
        let now = time.micros();
        self.advance(settings, now, out);
        let Some(parameter) = parameter_of(vital) else {
            return;
        };
        let i = parameter as usize;
        self.latest[i] = Latest::Invalid {
            time_us: now,
            reason: reason.to_owned(),
        };
        self.data_quality[i].alerted = false;
        let dq = &mut self.data_quality[i];
        if settings.alerts.data_quality
            && dq
                .last_invalid_alert_us
                .is_none_or(|last| now - last >= settings.staleness_us[i])
        {
            dq.last_invalid_alert_us = Some(now);
            out.push(alerting::data_quality_alert(
                &self.patient,
                time,
                AlertEvent::Invalid,
                parameter,
                reason.to_owned(),
            ));
        }
        self.rescore(settings, now, out);
    }

    /// A record of `device` held aside at `at` because its time was not believed (`how_far`:
    /// "20 months ahead of the ward's clock"): reported once, then at most hourly while the
    /// device's clock stays wrong; never scored.
    pub fn held(
        &mut self,
        settings: &MonitorSettings,
        device: Option<&Identifier>,
        at: EventTime,
        how_far: &str,
        out: &mut Vec<Alert>,
    ) {
        let now = at.micros();
        self.advance(settings, now, out);
        if !settings.alerts.data_quality {
            return;
        }
        let alerts = self.clock_alerts.get_or_insert_with(Default::default);
        match alerts.iter_mut().find(|(d, _)| d.as_ref() == device) {
            Some((_, last)) if now - *last < CLOCK_ALERT_EVERY_US => return,
            Some((_, last)) => *last = now,
            None => alerts.push((device.cloned(), now)),
        }
        out.push(alerting::clock_alert(
            &self.patient,
            at,
            device.map(Identifier::as_str),
            how_far,
        ));
    }

    /// A change of SpO2 scale prescription, effective from `time`.
    pub fn prescribe(
        &mut self,
        settings: &MonitorSettings,
        time: EventTime,
        scale: Scale,
        out: &mut Vec<Alert>,
    ) {
        let now = time.micros();
        self.advance(settings, now, out);
        if self.scale != scale {
            self.scale = scale;
            if self.latest.iter().any(|l| *l != Latest::None) {
                self.rescore(settings, now, out);
            }
        }
    }

    /// When the next timer is due (µs): a reminder, or a parameter going stale or missing.
    pub fn next_due(&self, settings: &MonitorSettings) -> Option<i64> {
        let mut due = self.band.next_reminder();
        for i in 0..7 {
            if let Some(d) = self.data_quality_due(settings, i) {
                due = Some(due.map_or(d, |x| x.min(d)));
            }
        }
        due
    }

    fn data_quality_due(&self, settings: &MonitorSettings, i: usize) -> Option<i64> {
        if self.data_quality[i].alerted {
            return None;
        }
        // Stale once older than the limit: due one microsecond after it.
        let since = self.latest[i].time().unwrap_or(self.first_seen_us);
        Some(since + settings.staleness_us[i] + 1)
    }

    /// Fires every timer due strictly before `until_us`, each at its own due time.
    pub fn advance(&mut self, settings: &MonitorSettings, until_us: i64, out: &mut Vec<Alert>) {
        while let Some(due) = self.next_due(settings).filter(|&d| d < until_us) {
            let mut changed = false;
            for (i, parameter) in Parameter::ALL.into_iter().enumerate() {
                if self.data_quality_due(settings, i) != Some(due) {
                    continue;
                }
                self.data_quality[i].alerted = true;
                changed = true;
                if !settings.alerts.data_quality {
                    continue;
                }
                let limit = human(settings.staleness_us[i]);
                let (event, detail) = match self.latest[i].time() {
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
                    &self.patient,
                    EventTime::from_micros(due),
                    event,
                    parameter,
                    detail,
                ));
            }
            if changed {
                // A parameter going stale changes the score (it becomes incomplete).
                self.rescore(settings, due, out);
            }
            if let Some((at, band)) = self.band.take_reminder(&settings.alerts, due) {
                let (score, ages) = self.score_at(settings, at);
                if score.assessments.iter().all(|a| a.charted.is_none()) {
                    // Nothing current is left (monitoring stopped, or the stay ended): the
                    // data-quality alerts said so; reminders resume with the next value.
                    self.band.pause_reminders();
                    continue;
                }
                let evidence = Evidence::of(&score, ages);
                out.push(alerting::reminder_alert(
                    &self.patient,
                    EventTime::from_micros(at),
                    band,
                    &score,
                    evidence,
                ));
            }
        }
    }

    /// NEWS2 now, with each parameter's age in seconds.
    pub fn score_at(&self, settings: &MonitorSettings, now_us: i64) -> (Score, [Option<i64>; 7]) {
        let mut ages = [None; 7];
        let mut inputs: [Input<ParamValue>; 7] = std::array::from_fn(|_| Input::Missing);
        for i in 0..7 {
            inputs[i] = match &self.latest[i] {
                Latest::None => Input::Missing,
                latest => {
                    let t = latest.time().unwrap_or(now_us);
                    ages[i] = Some((now_us - t).div_euclid(1_000_000));
                    if now_us - t > settings.staleness_us[i] {
                        Input::Stale {
                            age: Duration::from_micros((now_us - t).max(0) as u64),
                            limit: Duration::from_micros(settings.staleness_us[i].max(0) as u64),
                        }
                    } else {
                        match latest {
                            Latest::Value {
                                value: ParamValue::Number(last),
                                ..
                            } => Input::Present(ParamValue::Number(
                                self.recent[i]
                                    .median(now_us, settings.settle_us)
                                    .unwrap_or(*last),
                            )),
                            Latest::Value { value, .. } => Input::Present(*value),
                            Latest::Invalid { reason, .. } => Input::Invalid(reason.clone()),
                            Latest::None => Input::Missing,
                        }
                    }
                }
            };
        }
        let [rr, spo2, air, sbp, hr, acvpu, temp] = inputs;
        let parameters = Parameters {
            respiration_rate: number(rr),
            spo2: number(spo2),
            air_or_oxygen: map_input(air, |v| match v {
                ParamValue::AirOrOxygen(a) => Some(a),
                _ => None,
            }),
            systolic_bp: number(sbp),
            pulse: number(hr),
            consciousness: map_input(acvpu, |v| match v {
                ParamValue::Acvpu(a) => Some(a),
                _ => None,
            }),
            temperature: number(temp),
        };
        (news2::score(&parameters, self.scale), ages)
    }

    /// Scores the risk model on the features at `now_us` (a new observation set changed them),
    /// and raises or clears the risk alert (hysteresis between the two thresholds).
    fn assess_risk(&mut self, settings: &MonitorSettings, now_us: i64, out: &mut Vec<Alert>) {
        let Some(risk) = &settings.risk else {
            return;
        };
        if self.risk_scored_us > i64::MIN && now_us - self.risk_scored_us < risk.every_us {
            return;
        }
        self.risk_scored_us = now_us;
        let now = EventTime::from_micros(now_us);
        let x = risk.features_of(self, settings, now);
        let probability = risk.model.probability(&x);
        let event = if !self.risk_raised && probability >= risk.threshold {
            AlertEvent::Raised
        } else if self.risk_raised && probability < risk.clear_below {
            AlertEvent::Lowered
        } else {
            return;
        };
        self.risk_raised = event == AlertEvent::Raised;
        let top_features = risk
            .model
            .contributions(&x, 5)
            .into_iter()
            .map(|(i, contribution)| alerting::Contribution {
                feature: risk.model.features[i].clone(),
                value: x.get(i).copied().filter(|v| v.is_finite()),
                contribution,
            })
            .collect();
        let evidence = alerting::RiskEvidence {
            model: risk.model.name.clone(),
            version: risk.model.version.clone(),
            outcome: risk.model.outcome.clone(),
            probability,
            threshold: risk.threshold,
            clear_below: risk.clear_below,
            top_features,
        };
        let (score, ages) = self.score_at(settings, now_us);
        out.push(alerting::risk_alert(
            &self.patient,
            now,
            event,
            evidence,
            &risk.model.response,
            Some(Evidence::of(&score, ages)),
        ));
    }

    fn rescore(&mut self, settings: &MonitorSettings, now_us: i64, out: &mut Vec<Alert>) {
        let (score, ages) = self.score_at(settings, now_us);
        if score.assessments.iter().any(|a| a.charted.is_some()) {
            self.band.resume_reminders(&settings.alerts, now_us);
        }
        if let Some(decision) = self.band.on_score(&settings.alerts, now_us, &score) {
            let evidence = Evidence::of(&score, ages);
            out.push(alerting::band_alert(
                &self.patient,
                EventTime::from_micros(now_us),
                decision,
                &score,
                evidence,
            ));
        }
    }
}

fn number(input: Input<ParamValue>) -> Input<Exact> {
    map_input(input, |v| match v {
        ParamValue::Number(n) => Some(n),
        _ => None,
    })
}

fn map_input<T>(input: Input<ParamValue>, f: impl Fn(ParamValue) -> Option<T>) -> Input<T> {
    match input {
        Input::Present(v) => f(v).map_or_else(
            || Input::Invalid("a value of the wrong kind".into()),
            Input::Present,
        ),
        Input::Missing => Input::Missing,
        Input::Stale { age, limit } => Input::Stale { age, limit },
        Input::Invalid(r) => Input::Invalid(r),
    }
}

fn human(us: i64) -> String {
    let s = us / 1_000_000;
    match s {
        _ if s < 120 => format!("{s} s"),
        _ if s < 7200 || s % 3600 != 0 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

#[cfg(test)]
mod tests;
