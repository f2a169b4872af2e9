//! One patient's picture: what every rule reads. The rolling windows of each vital, the latest
//! value of each NEWS2 parameter with the recent ones it is scored at, the SpO2 scale, and which
//! parameters have gone stale; and from them the NEWS2 score at any instant.
//!
//! The picture holds no alert state: rules ([`crate::rules`]) keep their own. It never reads a
//! clock, and changes only in event-time order (see [`crate::monitor`]).

use std::time::Duration;

use crate::exact::Exact;
use crate::news2::{self, AirOrOxygen, Input, Parameter, Parameters, Scale, Score};
use crate::observation::{Acvpu, EventTime, Observation, Reading, Vital};
use crate::windows::{VitalWindow, WindowSpec, WindowStats};

mod settle;

use settle::Settle;

/// How a picture is kept: the windows, each parameter's staleness limit, the settle stretch.
#[derive(Clone, Debug)]
pub struct PictureSettings {
    /// The pipeline's `[windows]`: what a rule may ask for.
    pub windows: WindowSpec,
    /// The windows each numeric kind keeps ([`Vital::window`] order): every configured one,
    /// until [`PictureSettings::keep_windows`] narrows them to what the rules read.
    layouts: Vec<WindowSpec>,
    /// Staleness limit per NEWS2 parameter, µs, in chart order.
    pub staleness_us: [i64; 7],
    /// Numeric parameters are scored at their median over this stretch (µs); 0 = latest.
    pub settle_us: i64,
}

impl PictureSettings {
    /// The settings a pipeline's `[windows]`, `[staleness]` and `[news2]` give.
    pub fn from_config(config: &crate::config::PipelineConfig) -> PictureSettings {
        let windows = WindowSpec::new(
            config
                .windows
                .durations
                .iter()
                .map(|d| d.millis())
                .collect(),
            config.windows.resolution.millis(),
        );
        PictureSettings {
            layouts: vec![windows.clone(); Vital::WINDOWED],
            windows,
            staleness_us: Parameter::ALL.map(|p| config.staleness.limit(p).as_micros() as i64),
            settle_us: config.news2.settle.0.as_micros() as i64,
        }
    }
}

impl PictureSettings {
    /// The windows `vital` keeps (none for a kind without windows).
    pub fn layout(&self, vital: Vital) -> &WindowSpec {
        static NONE: std::sync::LazyLock<WindowSpec> =
            std::sync::LazyLock::new(|| WindowSpec::new(Vec::new(), 1));
        vital.window().map_or(&NONE, |i| &self.layouts[i])
    }

    /// Keeps, for each vital, only the windows in `read` (vital, duration in ms): a window no
    /// rule reads costs a patient its buckets and every sample a fold, and changes no alert.
    /// A vital no rule reads a window of keeps only its last value.
    pub fn keep_windows(&mut self, read: &[(Vital, i64)]) {
        for vital in Vital::ALL {
            if let Some(i) = vital.window() {
                self.layouts[i] = self.windows.keeping(|d| read.contains(&(vital, d)));
            }
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
        Vital::DiastolicBp
        | Vital::Glucose
        | Vital::Insulin
        | Vital::PumpEvent
        | Vital::Medication
        | Vital::Inhaler
        | Vital::DeviceStatus => None,
    }
}

/// A numeric form of a reading for windows: the canonical quantity, oxygen as 0 (air) / 1,
/// ACVPU as 0 (A) to 4 (U).
pub fn window_value(reading: &Reading) -> f64 {
    match reading {
        Reading::Quantity(q) => q.to_f64(),
        Reading::Oxygen(o) => f64::from(u8::from(o.on_oxygen())),
        Reading::Consciousness(a) => *a as u8 as f64,
        Reading::Code(_) | Reading::Status => 0.0,
    }
}

/// The latest of one parameter.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Latest {
    None,
    Value { time_us: i64, value: ParamValue },
    Invalid { time_us: i64, reason: String },
}

impl Latest {
    pub fn time(&self) -> Option<i64> {
        match self {
            Latest::None => None,
            Latest::Value { time_us, .. } | Latest::Invalid { time_us, .. } => Some(*time_us),
        }
    }
}

/// A parameter's value as scored.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum ParamValue {
    Number(Exact),
    AirOrOxygen(AirOrOxygen),
    Acvpu(Acvpu),
}

/// One patient's picture.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Picture {
    patient: String,
    first_seen_us: i64,
    /// When bedside monitoring began: the first bedside vital, impossible value or
    /// prescription. A patient watched only by home devices (a CGM) is never missing NEWS2
    /// parameters.
    bedside_since_us: Option<i64>,
    scale: Scale,
    latest: [Latest; 7],
    /// Recent numeric values per parameter, within the settle stretch, for the median.
    recent: [Settle; 7],
    /// Per parameter: its going stale (or missing since monitoring began) has been noted for its
    /// current value, so it is noted once.
    stale_noted: [bool; 7],
    /// One per numeric kind ([`Vital::window`]).
    windows: [VitalWindow; Vital::WINDOWED],
}

impl Picture {
    /// A patient first seen at `first_seen`.
    pub fn new(patient: &str, first_seen: EventTime, scale: Scale) -> Picture {
        Picture {
            patient: patient.to_owned(),
            first_seen_us: first_seen.micros(),
            bedside_since_us: None,
            scale,
            latest: std::array::from_fn(|_| Latest::None),
            recent: Default::default(),
            stale_noted: [false; 7],
            windows: Default::default(),
        }
    }

    pub fn patient(&self) -> &str {
        &self.patient
    }

    /// When the patient was first seen (µs).
    pub fn first_seen_us(&self) -> i64 {
        self.first_seen_us
    }

    pub fn scale(&self) -> Scale {
        self.scale
    }

    /// The latest of one parameter.
    pub fn latest(&self, parameter: Parameter) -> &Latest {
        &self.latest[parameter as usize]
    }

    /// Whether any parameter has ever had a value (or an impossible one).
    pub fn any_latest(&self) -> bool {
        self.latest.iter().any(|l| *l != Latest::None)
    }

    /// The window state of one vital (an empty one for a kind without a window).
    pub fn window(&self, vital: Vital) -> &VitalWindow {
        static EMPTY: std::sync::LazyLock<VitalWindow> = std::sync::LazyLock::new(Default::default);
        vital.window().map_or(&EMPTY, |i| &self.windows[i])
    }

    /// Window statistics of one vital at `now` over each configured duration (`None` for an
    /// empty window, or one its layout does not keep).
    pub fn window_stats(
        &self,
        settings: &PictureSettings,
        vital: Vital,
        now: EventTime,
    ) -> Vec<Option<WindowStats>> {
        let now_ms = now.millis();
        settings
            .windows
            .durations()
            .iter()
            .map(|&d| self.window(vital).stats(settings.layout(vital), d, now_ms))
            .collect()
    }

    /// Asks for the blocks an observation set reads: first the picture itself (`heap` false),
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

    /// Bytes held on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.patient.len()
            + self
                .windows
                .iter()
                .map(VitalWindow::heap_bytes)
                .sum::<usize>()
            + self.recent.iter().map(Settle::heap_bytes).sum::<usize>()
            + self
                .latest
                .iter()
                .map(|l| match l {
                    Latest::Invalid { reason, .. } => reason.len(),
                    _ => 0,
                })
                .sum::<usize>()
    }

    /// A valid observation at `now`: into its vital's window and, for a NEWS2 parameter, its
    /// latest value. Returns whether it was a NEWS2 parameter (the score may change).
    pub fn push(&mut self, settings: &PictureSettings, obs: &Observation, now: i64) -> bool {
        let reading = obs.reading();
        if obs.vital().is_bedside() {
            self.bedside_since_us.get_or_insert(now);
        }
        if let Some(i) = obs.vital().window() {
            self.windows[i].push(
                settings.layout(obs.vital()),
                obs.time().millis(),
                window_value(&reading),
            );
        }
        let Some(parameter) = parameter_of(obs.vital()) else {
            return false;
        };
        let value = match reading {
            Reading::Quantity(q) => ParamValue::Number(q),
            Reading::Oxygen(o) => ParamValue::AirOrOxygen(AirOrOxygen::from(o)),
            Reading::Consciousness(a) => ParamValue::Acvpu(a),
            // A NEWS2 parameter is never coded.
            Reading::Code(_) | Reading::Status => return false,
        };
        let i = parameter as usize;
        self.latest[i] = Latest::Value {
            time_us: now,
            value,
        };
        self.stale_noted[i] = false;
        if let ParamValue::Number(q) = value {
            self.recent[i].push(now, q, settings.settle_us);
        }
        true
    }

    /// An impossible value of `parameter` at `now`: its latest, not scored.
    pub fn push_invalid(&mut self, parameter: Parameter, now: i64, reason: &str) {
        self.bedside_since_us.get_or_insert(now);
        let i = parameter as usize;
        self.latest[i] = Latest::Invalid {
            time_us: now,
            reason: reason.to_owned(),
        };
        self.stale_noted[i] = false;
    }

    /// A new SpO2 scale; whether it changed.
    pub fn prescribe(&mut self, scale: Scale, now: i64) -> bool {
        self.bedside_since_us.get_or_insert(now);
        let changed = self.scale != scale;
        self.scale = scale;
        changed
    }

    /// When a parameter next goes stale (or missing, never having had a value), not yet noted:
    /// one microsecond after its limit.
    pub fn next_stale_us(&self, settings: &PictureSettings) -> Option<i64> {
        (0..7).filter_map(|i| self.stale_due(settings, i)).min()
    }

    fn stale_due(&self, settings: &PictureSettings, i: usize) -> Option<i64> {
        if self.stale_noted[i] {
            return None;
        }
        let since = self.latest[i].time().or(self.bedside_since_us)?;
        Some(since + settings.staleness_us[i] + 1)
    }

    /// Notes the parameters that go stale at `due`, and returns them (in chart order).
    pub fn note_stale(&mut self, settings: &PictureSettings, due: i64) -> [bool; 7] {
        std::array::from_fn(|i| {
            let stale = self.stale_due(settings, i) == Some(due);
            if stale {
                self.stale_noted[i] = true;
            }
            stale
        })
    }

    /// NEWS2 now, with each parameter's age in seconds.
    pub fn score_at(&self, settings: &PictureSettings, now_us: i64) -> (Score, [Option<i64>; 7]) {
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

/// A length of event time for a person: 45 s, 12 min, 6 h.
pub fn human(us: i64) -> String {
    let s = us / 1_000_000;
    match s {
        _ if s < 120 => format!("{s} s"),
        _ if s < 7200 || s % 3600 != 0 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}
