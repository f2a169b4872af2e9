//! Per-patient rules: what watches a patient's [`Picture`] and raises alerts. NEWS2 and its band
//! policy, data quality, and the risk model are each a rule behind one trait; each keeps its own
//! state, and none knows another's.
//!
//! A patient's monitor ([`crate::monitor`]) keeps the picture and tells every rule, in the order
//! of [`Rules`], when it changes ([`Change`]): observations arrived, a value was impossible, the
//! SpO2 scale changed, parameters went stale, a device's clock was wrong. A rule may keep timers
//! of its own (NEWS2's reminders), fired at their own due time. Rules are driven in event-time
//! order and never read a clock, so their alerts depend only on the patient's inputs.
//!
//! Adding a rule is a folder here and one line in the `rules!` list below.

use crate::alerting::Alert;
use crate::config::AlertsConfig;
use crate::monitor::events::Acknowledgement;
use crate::news2::Parameter;
use crate::observation::{EventTime, Identifier, Observation, Vital};
use crate::picture::{Picture, PictureSettings};
use crate::registry::Prescribed;
use crate::risk::RiskScorer;

pub mod data_quality;
pub mod device;
pub mod glucose;
pub mod medication;
pub mod news2;
pub mod pump;
pub mod risk;

/// What a rule reads: the picture and the settings.
#[derive(Clone, Copy)]
pub struct Context<'a> {
    pub picture: &'a Picture,
    pub settings: &'a PictureSettings,
    pub alerts: &'a AlertsConfig,
    pub risk: Option<&'a RiskScorer>,
    pub rules: &'a RuleSettings,
}

/// Each rule family's own settings, from its section of the pipeline file.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RuleSettings {
    pub glucose: glucose::GlucoseConfig,
    pub medication: medication::MedicationConfig,
    pub devices: device::DevicesConfig,
}

/// How a patient's picture changed.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// New values of NEWS2 parameters at `now` (an observation set).
    Observed { now: i64 },
    /// An impossible value of `parameter` at `now`.
    Invalid {
        now: i64,
        parameter: Parameter,
        reason: &'a str,
    },
    /// The SpO2 scale changed at `now`.
    Scale { now: i64 },
    /// The parameters marked went stale at `due` (or missing, never having had a value).
    Stale { due: i64, parameters: [bool; 7] },
    /// The patient's observations cannot be read from their source (`what`), found at `at`.
    Unreadable { at: EventTime, what: &'a str },
    /// A record of `device` was held aside at `at`: its clock is `how_far` off.
    Held {
        at: EventTime,
        device: Option<&'a Identifier>,
        how_far: &'a str,
    },
}

/// A per-patient rule.
pub trait Rule {
    /// The picture changed.
    fn on_change(&mut self, cx: Context<'_>, change: &Change<'_>, out: &mut Vec<Alert>);

    /// A valid observation of any kind arrived (after the picture took it in): what a rule of
    /// the device kinds (glucose, insulin, doses, device status) reads.
    fn on_observation(&mut self, _cx: Context<'_>, _obs: &Observation, _out: &mut Vec<Alert>) {}

    /// The registry prescribed something for the patient from `now` on (a medication's
    /// schedule): what a rule that follows prescriptions reads.
    fn on_prescribed(
        &mut self,
        _cx: Context<'_>,
        _now: i64,
        _prescribed: &Prescribed,
        _out: &mut Vec<Alert>,
    ) {
    }

    /// A reading that arrived behind the clock (a CGM's backfill), heard at the clock's
    /// `at_us`: to be scored, never to alarm for the past.
    fn on_backfill(
        &mut self,
        _cx: Context<'_>,
        _at_us: i64,
        _obs: &Observation,
        _out: &mut Vec<Alert>,
    ) {
    }

    /// A clinician acknowledged one of the patient's alerts, effective at `ack.at_us`.
    fn on_acknowledged(&mut self, _cx: Context<'_>, _ack: &Acknowledgement, _out: &mut Vec<Alert>) {
    }

    /// When the rule's own next timer is due (µs).
    fn next_due(&self) -> Option<i64> {
        None
    }

    /// Fires the rule's timers due at `due`.
    fn on_timer(&mut self, _cx: Context<'_>, _due: i64, _out: &mut Vec<Alert>) {}

    /// Bytes the rule holds on the heap for its patient.
    fn heap_bytes(&self) -> usize {
        0
    }

    /// Adds to `read` the windows (vital, duration in ms) this rule reads of a picture kept
    /// with `settings`: the others are not kept ([`PictureSettings::keep_windows`]). A rule
    /// that reads a window without naming it here reads it empty.
    fn windows_read(_settings: &Settings<'_>, _read: &mut Vec<(Vital, i64)>)
    where
        Self: Sized,
    {
    }
}

/// What a rule's window needs follow from: the pipeline's settings, before any patient.
#[derive(Clone, Copy)]
pub struct Settings<'a> {
    pub picture: &'a PictureSettings,
    pub risk: Option<&'a RiskScorer>,
    pub rules: &'a RuleSettings,
}

/// Declares the rules every patient is watched by, in the order they hear of a change.
macro_rules! rules {
    ($($(#[$doc:meta])* $field:ident: $rule:ty,)*) => {
        /// Every rule's state for one patient (a snapshot keeps it, see
        /// [`crate::pipeline::snapshot`]).
        #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
        pub struct Rules {
            $($(#[$doc])* pub $field: $rule,)*
        }

        impl Rules {
            pub fn on_change(&mut self, cx: Context<'_>, change: &Change<'_>, out: &mut Vec<Alert>) {
                $(self.$field.on_change(cx, change, out);)*
            }

            pub fn on_observation(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
                $(self.$field.on_observation(cx, obs, out);)*
            }

            pub fn on_prescribed(&mut self, cx: Context<'_>, now: i64, prescribed: &Prescribed, out: &mut Vec<Alert>) {
                $(self.$field.on_prescribed(cx, now, prescribed, out);)*
            }

            pub fn on_backfill(&mut self, cx: Context<'_>, at_us: i64, obs: &Observation, out: &mut Vec<Alert>) {
                $(self.$field.on_backfill(cx, at_us, obs, out);)*
            }

            pub fn on_acknowledged(&mut self, cx: Context<'_>, ack: &Acknowledgement, out: &mut Vec<Alert>) {
                $(self.$field.on_acknowledged(cx, ack, out);)*
            }

            pub fn next_due(&self) -> Option<i64> {
                // Asked after every observation set: a plain fold, not an iterator over an
                // array of options (4 % of a ward's run when it was).
                let mut due = i64::MAX;
                $(if let Some(d) = self.$field.next_due() { due = due.min(d); })*
                (due != i64::MAX).then_some(due)
            }

            pub fn on_timer(&mut self, cx: Context<'_>, due: i64, out: &mut Vec<Alert>) {
                $(self.$field.on_timer(cx, due, out);)*
            }

            pub fn heap_bytes(&self) -> usize {
                0 $(+ self.$field.heap_bytes())*
            }

            /// Every window some rule reads, (vital, duration in ms), each once.
            pub fn windows_read(settings: &Settings<'_>) -> Vec<(Vital, i64)> {
                let mut read = Vec::new();
                $(<$rule as Rule>::windows_read(settings, &mut read);)*
                read
            }
        }
    };
}

rules! {
    /// Missing, stale and impossible values, and wrong device clocks.
    data_quality: data_quality::DataQuality,
    /// The NEWS2 band: raised, reminded, lowered.
    news2: news2::News2,
    /// The risk model's probability.
    risk: risk::Risk,
    /// Glucose: urgent low, low, high, fast changes, urgent low soon, signal loss.
    glucose: glucose::Glucose,
    /// An insulin pump's alarms, escalated by the glucose trend; risky boluses.
    pump: pump::Pump,
    /// Doses against their schedules; rescue-inhaler overuse.
    medication: medication::Medication,
    /// Devices gone silent or back, low batteries, sensors expiring.
    device: device::Devices,
}
