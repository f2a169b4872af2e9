//! One patient's monitor: the patient's [`Picture`] and the state of every [`crate::rules`] rule
//! watching it. It applies the patient's inputs to the picture and tells the rules what changed;
//! it knows no rule's insides.
//!
//! A [`PatientMonitor`] is driven in event-time order: observations, invalid values,
//! prescription changes and held records as they happen, and [`PatientMonitor::advance`] as event
//! time moves on (so that staleness and reminders fire even when a patient's devices fall
//! silent). It never reads a clock, and timers fire at their own due time, not when they happen
//! to be noticed: the alerts of a patient depend only on that patient's inputs, never on how the
//! dataflow batched them, how many workers ran, or how fast a replay went.
//!
//! Invariant: the inputs of one patient reach it in non-decreasing event time, and a timer due at
//! `t` fires before any input at a time after `t` (and after inputs at exactly `t` only when
//! those came first).

use std::sync::Arc;

use crate::alerting::Alert;
use crate::config::{AlertsConfig, PipelineConfig};
use crate::news2::{Scale, Score};
use crate::observation::{EventTime, Identifier, Observation, Vital};
use crate::picture::{Picture, PictureSettings, parameter_of};
use crate::registry::Prescribed;
use crate::rules::{Change, Context, RuleSettings, Rules};
use crate::windows::{VitalWindow, WindowStats};

pub mod events;

/// Settings shared by every patient of a pipeline.
#[derive(Clone, Debug)]
pub struct MonitorSettings {
    pub picture: PictureSettings,
    pub alerts: AlertsConfig,
    /// The risk model, when the pipeline names one.
    pub risk: Option<Arc<crate::risk::RiskScorer>>,
    /// Each rule family's settings.
    pub rules: RuleSettings,
}

impl MonitorSettings {
    pub fn from_config(config: &PipelineConfig) -> MonitorSettings {
        MonitorSettings {
            picture: PictureSettings::from_config(config),
            alerts: config.alerts.clone(),
            risk: None,
            rules: config.rules.clone(),
        }
    }

    /// Keeps only the windows the rules read (with this risk model): what a run's monitors
    /// hold. Training and evaluation keep every configured window, as any feature may be asked.
    pub fn keep_read_windows(&mut self) {
        let read = Rules::windows_read(&crate::rules::Settings {
            picture: &self.picture,
            risk: self.risk.as_deref(),
            rules: &self.rules,
        });
        self.picture.keep_windows(&read);
    }
}

/// One patient's picture and rules.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct PatientMonitor {
    picture: Picture,
    rules: Rules,
    /// The latest observation's time (µs): with the first seen, how long the patient was
    /// monitored (alerts per patient-day).
    last_observed_us: i64,
}

impl PatientMonitor {
    /// A patient first seen at `first_seen`.
    pub fn new(patient: &str, first_seen: EventTime, scale: Scale) -> PatientMonitor {
        PatientMonitor {
            picture: Picture::new(patient, first_seen, scale),
            rules: Rules::default(),
            last_observed_us: first_seen.micros(),
        }
    }

    pub fn patient(&self) -> &str {
        self.picture.patient()
    }

    /// What the rules read.
    pub fn picture(&self) -> &Picture {
        &self.picture
    }

    /// When the patient was first seen (µs).
    pub fn first_seen_us(&self) -> i64 {
        self.picture.first_seen_us()
    }

    /// How long the patient was monitored: first seen to latest observation (µs).
    pub fn monitored_us(&self) -> i64 {
        (self.last_observed_us - self.first_seen_us()).max(0)
    }

    /// The window state of one vital.
    pub fn window(&self, vital: Vital) -> &VitalWindow {
        self.picture.window(vital)
    }

    /// Window statistics of one vital at `now` over each configured duration.
    pub fn window_stats(
        &self,
        settings: &MonitorSettings,
        vital: Vital,
        now: EventTime,
    ) -> Vec<Option<WindowStats>> {
        self.picture.window_stats(&settings.picture, vital, now)
    }

    /// Asks for the blocks an observation set reads (see [`Picture::prefetch`]).
    pub fn prefetch(&self, heap: bool) {
        if heap {
            self.picture.prefetch(true);
        } else {
            crate::prefetch::object(self);
        }
    }

    /// Approximate bytes of state held for this patient.
    pub fn state_bytes(&self) -> usize {
        std::mem::size_of::<Self>() + self.picture.heap_bytes() + self.rules.heap_bytes()
    }

    /// The rules' state (what tests and reports read).
    pub fn rules(&self) -> &Rules {
        &self.rules
    }

    /// Each scheduled medication's adherence over the 7 and 30 days to `now`.
    pub fn adherence(&self, now_us: i64) -> Vec<crate::rules::medication::AdherenceReport> {
        self.rules.medication.adherence(now_us)
    }

    /// NEWS2 now, with each parameter's age in seconds.
    pub fn score_at(&self, settings: &MonitorSettings, now_us: i64) -> (Score, [Option<i64>; 7]) {
        self.picture.score_at(&settings.picture, now_us)
    }

    fn context<'a>(picture: &'a Picture, settings: &'a MonitorSettings) -> Context<'a> {
        Context {
            picture,
            settings: &settings.picture,
            alerts: &settings.alerts,
            risk: settings.risk.as_deref(),
            rules: &settings.rules,
        }
    }

    fn change(&mut self, settings: &MonitorSettings, change: &Change<'_>, out: &mut Vec<Alert>) {
        let cx = Self::context(&self.picture, settings);
        self.rules.on_change(cx, change, out);
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
            self.last_observed_us = self.last_observed_us.max(now);
            let mut scored = false;
            for obs in same_time {
                scored |= self.picture.push(&settings.picture, obs.borrow(), now);
                let cx = Self::context(&self.picture, settings);
                self.rules.on_observation(cx, obs.borrow(), out);
            }
            if scored {
                self.change(settings, &Change::Observed { now }, out);
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
        self.picture.push_invalid(parameter, now, reason);
        let change = Change::Invalid {
            now,
            parameter,
            reason,
        };
        self.change(settings, &change, out);
    }

    /// A prescription from the registry (a change of SpO2 scale, a medication's schedule),
    /// effective from `time`.
    pub fn prescribe(
        &mut self,
        settings: &MonitorSettings,
        time: EventTime,
        prescribed: &Prescribed,
        out: &mut Vec<Alert>,
    ) {
        let now = time.micros();
        self.advance(settings, now, out);
        match prescribed {
            Prescribed::Scale(scale) => {
                if self.picture.prescribe(*scale, now) && self.picture.any_latest() {
                    self.change(settings, &Change::Scale { now }, out);
                }
            }
            Prescribed::Schedule(_) => {
                let cx = Self::context(&self.picture, settings);
                self.rules.on_prescribed(cx, now, prescribed, out);
            }
        }
    }

    /// A record of `device` held aside at `at` because its time was not believed (`how_far`:
    /// "20 months ahead of the ward's clock"); never scored.
    pub fn held(
        &mut self,
        settings: &MonitorSettings,
        device: Option<&Identifier>,
        at: EventTime,
        how_far: &str,
        out: &mut Vec<Alert>,
    ) {
        self.advance(settings, at.micros(), out);
        let change = Change::Held {
            at,
            device,
            how_far,
        };
        self.change(settings, &change, out);
    }

    /// A reading that arrived behind the clock (a CGM's backfill), heard at `at`.
    pub fn backfill(
        &mut self,
        settings: &MonitorSettings,
        at: EventTime,
        obs: &Observation,
        out: &mut Vec<Alert>,
    ) {
        self.advance(settings, at.micros(), out);
        let cx = Self::context(&self.picture, settings);
        self.rules.on_backfill(cx, at.micros(), obs, out);
    }

    /// The patient's observations cannot be read from their source (`what` says which part, and
    /// why), found at `at`.
    pub fn unreadable(
        &mut self,
        settings: &MonitorSettings,
        at: EventTime,
        what: &str,
        out: &mut Vec<Alert>,
    ) {
        self.advance(settings, at.micros(), out);
        self.change(settings, &Change::Unreadable { at, what }, out);
    }

    /// A clinician acknowledged one of this patient's alerts, effective at `ack.at_us`: each rule
    /// hears of it, and the board is told (board state, never paged).
    pub fn acknowledge(
        &mut self,
        settings: &MonitorSettings,
        ack: &events::Acknowledgement,
        out: &mut Vec<Alert>,
    ) {
        self.advance(settings, ack.at_us, out);
        let cx = Self::context(&self.picture, settings);
        self.rules.on_acknowledged(cx, ack, out);
        out.push(crate::alerting::acknowledged(ack));
    }

    /// When the next timer is due (µs): a parameter going stale or missing, or a rule's own.
    pub fn next_due(&self, settings: &MonitorSettings) -> Option<i64> {
        let stale = self.picture.next_stale_us(&settings.picture);
        [stale, self.rules.next_due()].into_iter().flatten().min()
    }

    /// Fires every timer due strictly before `until_us`, each at its own due time.
    pub fn advance(&mut self, settings: &MonitorSettings, until_us: i64, out: &mut Vec<Alert>) {
        while let Some(due) = self.next_due(settings).filter(|&d| d < until_us) {
            let parameters = self.picture.note_stale(&settings.picture, due);
            if parameters.contains(&true) {
                self.change(settings, &Change::Stale { due, parameters }, out);
            }
            let cx = Self::context(&self.picture, settings);
            self.rules.on_timer(cx, due, out);
        }
    }
}

#[cfg(test)]
mod tests;
