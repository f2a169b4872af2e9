//! A deterministic simulated cohort: the demo source, and the ground truth for testing alerts.
//!
//! Each patient has realistic baselines, circadian variation and sensor noise. Bedside monitors
//! send heart rate, SpO2 and respiratory rate continuously, non-invasive blood pressure every
//! 15 minutes; nurses chart temperature, ACVPU and air/oxygen every 4 hours. On top of that the
//! simulator adds what real wards send: probe-off SpO2 drops, motion heart-rate spikes, monitor
//! dropouts, duplicated and out-of-order deliveries (a few beyond the allowed lateness). A share
//! of patients deteriorate: sepsis-like (rising HR, RR and temperature, falling SBP and SpO2),
//! respiratory failure (rising RR, falling SpO2, oxygen started) or hypotension. Their onset
//! times are the ground truth ([`Simulator::episodes`]).
//!
//! Everything is derived from the seed with a generator of our own (SplitMix64 and
//! xoshiro256**), so a cohort is the same on every machine and every version of every crate.
//! Each patient draws from its own stream, so patient `k` is the same in a cohort of 10 or
//! 10,000.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

use super::{BuildContext, Built, Progress, Source, SourceError, SourceItem, SourceKind};
use crate::component::{Problem, Section};
use crate::observation::{Acvpu, EventTime, Identifier, Observation, Unit, Value, Vital};

/// The `[source]` of a simulated cohort.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SimulatorConfig {
    pub patients: u32,
    pub hours: u32,
    pub seed: u64,
    /// RFC 3339 start of the simulated period.
    pub start: String,
}

impl Default for SimulatorConfig {
    fn default() -> SimulatorConfig {
        SimulatorConfig {
            patients: 50,
            hours: 24,
            seed: 7,
            start: "2026-01-05T00:00:00Z".to_owned(),
        }
    }
}

impl SourceKind for SimulatorConfig {
    fn name(&self) -> String {
        "simulator".to_owned()
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.patients == 0 {
            problems.push(section.problem("patients", "`patients` must be at least 1"));
        }
        if EventTime::parse_rfc3339(&self.start).is_err() {
            problems.push(section.problem(
                "start",
                format!("`start` {:?} is not an RFC 3339 time", self.start),
            ));
        }
        problems
    }

    fn build(&self, _cx: &BuildContext) -> Result<Built, SourceError> {
        Ok(Built::One(Box::new(Simulator::new(self))))
    }
}

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
const HOUR: i64 = 60 * MIN;

/// Sampling periods in seconds.
const MONITOR_PERIOD: i64 = 5; // HR and SpO2
const RR_PERIOD: i64 = 30;
const NIBP_PERIOD: i64 = 15 * 60;
const CHARTING_PERIOD: i64 = 4 * 3600;

/// The kinds of deterioration simulated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EpisodeKind {
    Sepsis,
    RespiratoryFailure,
    Hypotension,
}

/// One deterioration: the ground truth.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Episode {
    pub patient: String,
    pub kind: EpisodeKind,
    /// RFC 3339.
    pub onset: String,
    #[serde(skip)]
    pub onset_us: i64,
    /// Hours from onset to full severity.
    pub ramp_hours: f64,
}

/// SplitMix64, to seed.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// xoshiro256**: small, fast, and fixed forever.
#[derive(Clone, Debug)]
pub(crate) struct Rng([u64; 4]);

impl Rng {
    pub(crate) fn new(seed: u64, stream: u64) -> Rng {
        let mut s = seed ^ stream.wrapping_mul(0xd1b5_4a32_d192_ed03);
        Rng([
            splitmix(&mut s),
            splitmix(&mut s),
            splitmix(&mut s),
            splitmix(&mut s),
        ])
    }

    pub(crate) fn next(&mut self) -> u64 {
        let s = &mut self.0;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
}

/// A transient disturbance of one signal.
#[derive(Clone, Copy, Debug)]
struct Artefact {
    start: i64,
    end: i64,
    depth: f64,
}

#[derive(Clone, Debug)]
struct SimPatient {
    id: Identifier,
    monitor: Identifier,
    rng: Rng,
    phase: i64,
    hr: f64,
    rr: f64,
    spo2: f64,
    sbp: f64,
    temp: f64,
    /// Slow drift of heart rate (AR(1)).
    drift: f64,
    episode: Option<(EpisodeKind, i64, i64, f64)>,
    probe_off: Option<Artefact>,
    motion: Option<Artefact>,
    dropout_until: i64,
}

impl SimPatient {
    fn new(seed: u64, index: u32) -> SimPatient {
        let mut rng = Rng::new(seed, index as u64 + 1);
        let mut clamp_normal =
            |mean: f64, sd: f64, lo: f64, hi: f64| (mean + sd * rng.normal()).clamp(lo, hi);
        let hr = clamp_normal(76.0, 8.0, 58.0, 90.0);
        let rr = clamp_normal(15.0, 1.5, 12.5, 18.5);
        let spo2 = clamp_normal(97.5, 0.8, 96.5, 99.5);
        let sbp = clamp_normal(128.0, 10.0, 115.0, 160.0);
        let temp = clamp_normal(36.8, 0.15, 36.4, 37.3);
        SimPatient {
            id: Identifier::new(&format!("sim-{index:05}")).expect("a valid id"),
            monitor: Identifier::new(&format!("mon-{index:05}")).expect("a valid id"),
            phase: (rng.unit() * 6.0 * HOUR as f64) as i64,
            rng,
            hr,
            rr,
            spo2,
            sbp,
            temp,
            drift: 0.0,
            episode: None,
            probe_off: None,
            motion: None,
            dropout_until: i64::MIN,
        }
    }

    /// 0 before onset, rising to the severity over the ramp.
    fn severity(&self, t: i64, kind: EpisodeKind) -> f64 {
        match self.episode {
            Some((k, onset, ramp, severity)) if k == kind && t > onset => {
                ((t - onset) as f64 / ramp as f64).min(1.0) * severity
            }
            _ => 0.0,
        }
    }

    /// Circadian factor in [-1, 1], peaking mid-afternoon.
    fn circadian(&self, t: i64) -> f64 {
        let day = 24.0 * HOUR as f64;
        (2.0 * std::f64::consts::PI * ((t + self.phase) as f64 / day - 0.25)).sin()
    }

    fn on_oxygen(&self, t: i64) -> bool {
        self.severity(t, EpisodeKind::RespiratoryFailure) > 0.4
    }

    /// The true (noise-free) vital signs at `t` (µs since the start).
    fn truth(&self, t: i64) -> [f64; 5] {
        let c = self.circadian(t);
        let sepsis = self.severity(t, EpisodeKind::Sepsis);
        let resp = self.severity(t, EpisodeKind::RespiratoryFailure);
        let hypo = self.severity(t, EpisodeKind::Hypotension);
        let oxygen_relief = if self.on_oxygen(t) { 4.0 } else { 0.0 };
        [
            self.hr + 4.0 * c + self.drift + 40.0 * sepsis + 25.0 * resp + 35.0 * hypo,
            self.rr + 0.5 * c + 12.0 * sepsis + 16.0 * resp + 3.0 * hypo,
            (self.spo2 - 5.0 * sepsis - 13.0 * resp + oxygen_relief * resp).min(100.0),
            self.sbp + 5.0 * c - 35.0 * sepsis - 50.0 * hypo,
            self.temp + 0.25 * c + 2.2 * sepsis,
        ]
    }

    fn acvpu(&self, t: i64) -> Acvpu {
        if self.severity(t, EpisodeKind::Hypotension) > 0.95
            || self.severity(t, EpisodeKind::Sepsis) > 0.95
        {
            Acvpu::V
        } else if self.severity(t, EpisodeKind::Sepsis) > 0.8 {
            Acvpu::C
        } else {
            Acvpu::A
        }
    }
}

/// An observation waiting for its (possibly delayed) delivery.
struct Pending {
    arrival: i64,
    seq: u64,
    obs: Observation,
}

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        (self.arrival, self.seq) == (other.arrival, other.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.arrival, self.seq).cmp(&(other.arrival, other.seq))
    }
}

/// The simulated cohort as a source, in arrival order.
pub struct Simulator {
    start_us: i64,
    end_s: i64,
    second: i64,
    patients: Vec<SimPatient>,
    episodes: Vec<Episode>,
    delivery: Rng,
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    emitted: u64,
}

impl Simulator {
    /// A cohort per `config`; its start must be RFC 3339 (checked by config validation; an
    /// invalid one falls back to 2026-01-05T00:00:00Z).
    pub fn new(config: &SimulatorConfig) -> Simulator {
        let start_us = EventTime::parse_rfc3339(&config.start)
            .map(EventTime::micros)
            .unwrap_or(1_767_571_200_000_000);
        let hours = config.hours.max(1) as i64;
        let mut patients: Vec<SimPatient> = (0..config.patients)
            .map(|i| SimPatient::new(config.seed, i))
            .collect();
        let mut episodes = Vec::new();
        for p in &mut patients {
            // About 30 % deteriorate, with an onset leaving time to develop.
            if hours >= 6 && p.rng.chance(0.3) {
                let kind = match p.rng.next() % 3 {
                    0 => EpisodeKind::Sepsis,
                    1 => EpisodeKind::RespiratoryFailure,
                    _ => EpisodeKind::Hypotension,
                };
                let latest = (hours - 4).max(2);
                let onset = (p.rng.range(2.0, latest as f64) * HOUR as f64) as i64;
                let ramp_hours = p.rng.range(2.0, 4.0);
                let ramp = (ramp_hours * HOUR as f64) as i64;
                let severity = p.rng.range(0.9, 1.15);
                p.episode = Some((kind, onset, ramp, severity));
                episodes.push(Episode {
                    patient: p.id.to_string(),
                    kind,
                    onset: EventTime::from_micros(start_us + onset).to_rfc3339(),
                    onset_us: start_us + onset,
                    ramp_hours,
                });
            }
        }
        Simulator {
            start_us,
            end_s: hours * 3600,
            second: 0,
            patients,
            episodes,
            delivery: Rng::new(config.seed, 0),
            queue: BinaryHeap::new(),
            seq: 0,
            emitted: 0,
        }
    }

    /// The deteriorations, in patient order: the ground truth.
    pub fn episodes(&self) -> &[Episode] {
        &self.episodes
    }

    /// Queues one observation with its delivery delay (and sometimes a duplicate).
    fn send(
        &mut self,
        t: i64,
        patient: usize,
        vital: Vital,
        value: Value,
        unit: Option<Unit>,
        monitor: bool,
    ) {
        let p = &self.patients[patient];
        let device = if monitor {
            Some(p.monitor.clone())
        } else {
            None
        };
        let time = EventTime::from_micros(self.start_us + t);
        let Ok(obs) = Observation::new(p.id.clone(), device, time, vital, value, unit) else {
            return; // the simulator only produces possible values; anything else is skipped
        };
        let rng = &mut self.delivery;
        let delay = if rng.chance(0.0005) {
            rng.range(90.0, 300.0) // beyond the default allowed lateness: late
        } else if rng.chance(0.02) {
            rng.range(1.0, 30.0)
        } else {
            0.0
        };
        let duplicate = rng.chance(0.005);
        let arrival = t + (delay * S as f64) as i64;
        for copy in 0..=usize::from(duplicate) {
            self.seq += 1;
            self.queue.push(Reverse(Pending {
                arrival: arrival + copy as i64 * 2 * S,
                seq: self.seq,
                obs: obs.clone(),
            }));
        }
    }

    /// Generates the samples of second `s`.
    fn step(&mut self, s: i64) {
        let t = s * S;
        for i in 0..self.patients.len() {
            let p = &mut self.patients[i];
            // Artefacts and dropouts start at random.
            if s % MONITOR_PERIOD == 0 {
                p.drift = 0.995 * p.drift + 0.35 * p.rng.normal();
                if p.rng.chance(MONITOR_PERIOD as f64 / (8.0 * 3600.0)) {
                    let len = p.rng.range(10.0, 60.0);
                    p.probe_off = Some(Artefact {
                        start: t,
                        end: t + (len * S as f64) as i64,
                        depth: p.rng.range(15.0, 35.0),
                    });
                }
                if p.rng.chance(MONITOR_PERIOD as f64 / (6.0 * 3600.0)) {
                    let len = p.rng.range(5.0, 20.0);
                    p.motion = Some(Artefact {
                        start: t,
                        end: t + (len * S as f64) as i64,
                        depth: p.rng.range(30.0, 60.0),
                    });
                }
                if p.rng.chance(MONITOR_PERIOD as f64 / (24.0 * 3600.0)) {
                    p.dropout_until = t + (p.rng.range(10.0, 90.0) * MIN as f64) as i64;
                }
            }
            let truth = p.truth(t);
            let monitoring = t >= p.dropout_until;
            let mut samples: Vec<(Vital, Value, Option<Unit>, bool)> = Vec::new();
            if monitoring && s % MONITOR_PERIOD == 0 {
                let mut hr = truth[0] + 2.0 * p.rng.normal();
                if let Some(a) = p.motion.filter(|a| t < a.end) {
                    hr += a.depth
                        * (((t - a.start) as f64 / (a.end - a.start).max(1) as f64)
                            * std::f64::consts::PI)
                            .sin();
                }
                let mut spo2 = truth[2] + 0.6 * p.rng.normal();
                if let Some(a) = p.probe_off.filter(|a| t < a.end) {
                    spo2 -= a.depth;
                }
                samples.push((
                    Vital::HeartRate,
                    Value::Number(hr.round().clamp(20.0, 250.0)),
                    Some(Unit::PerMinute),
                    true,
                ));
                samples.push((
                    Vital::Spo2,
                    Value::Number(spo2.round().clamp(50.0, 100.0)),
                    Some(Unit::Percent),
                    true,
                ));
            }
            if monitoring && s % RR_PERIOD == 0 {
                let rr = truth[1] + 1.0 * p.rng.normal();
                samples.push((
                    Vital::RespiratoryRate,
                    Value::Number(rr.round().clamp(4.0, 60.0)),
                    Some(Unit::PerMinute),
                    true,
                ));
            }
            if s % NIBP_PERIOD == 0 {
                let sbp = (truth[3] + 5.0 * p.rng.normal()).round().clamp(50.0, 240.0);
                let dbp = (sbp * 0.62 + 3.0 * p.rng.normal()).round();
                samples.push((
                    Vital::SystolicBp,
                    Value::Number(sbp),
                    Some(Unit::MillimetresOfMercury),
                    true,
                ));
                samples.push((
                    Vital::DiastolicBp,
                    Value::Number(dbp),
                    Some(Unit::MillimetresOfMercury),
                    true,
                ));
            }
            // Nurses chart at their own times (offset per patient), more often once the patient
            // is visibly unwell.
            let charting = if p.episode.is_some_and(|(_, onset, _, _)| t > onset + HOUR) {
                CHARTING_PERIOD / 4
            } else {
                CHARTING_PERIOD
            };
            if (s + p.phase / S) % charting == 0 {
                let temp = ((truth[4] + 0.1 * p.rng.normal()) * 10.0).round() / 10.0;
                samples.push((
                    Vital::Temperature,
                    Value::Number(temp),
                    Some(Unit::Celsius),
                    false,
                ));
                samples.push((Vital::Consciousness, Value::Acvpu(p.acvpu(t)), None, false));
                let flow = if p.on_oxygen(t) { 4.0 } else { 0.0 };
                samples.push((
                    Vital::SupplementalOxygen,
                    Value::Number(flow),
                    Some(Unit::LitresPerMinute),
                    false,
                ));
            }
            for (vital, value, unit, monitor) in samples {
                self.send(t, i, vital, value, unit, monitor);
            }
        }
    }
}

impl Source for Simulator {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let mut produced = 0;
        while produced < max {
            // Deliver what has arrived by the current second.
            let now = self.second * S;
            while let Some(Reverse(p)) = self.queue.peek() {
                if p.arrival > now && self.second <= self.end_s {
                    break;
                }
                let Some(Reverse(p)) = self.queue.pop() else {
                    break;
                };
                out.push(SourceItem::Observation(p.obs, None));
                produced += 1;
                self.emitted += 1;
            }
            if self.second > self.end_s {
                return Ok(!self.queue.is_empty());
            }
            if self.second < self.end_s {
                self.step(self.second);
            }
            self.second += 1;
        }
        Ok(true)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.second.min(self.end_s) as u64,
            total: Some(self.end_s as u64),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(patients: u32, hours: u32, seed: u64) -> SimulatorConfig {
        SimulatorConfig {
            patients,
            hours,
            seed,
            ..SimulatorConfig::default()
        }
    }

    fn all(sim: &mut Simulator) -> Vec<Observation> {
        let mut out = Vec::new();
        while sim.fill(4096, &mut out).unwrap() {}
        out.into_iter()
            .map(|i| match i {
                SourceItem::Observation(o, _) => o,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn the_same_seed_gives_the_same_cohort() {
        let a = all(&mut Simulator::new(&config(5, 8, 42)));
        let b = all(&mut Simulator::new(&config(5, 8, 42)));
        let c = all(&mut Simulator::new(&config(5, 8, 43)));
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn a_patient_is_the_same_in_a_bigger_cohort() {
        let small = Simulator::new(&config(3, 12, 9));
        let big = Simulator::new(&config(30, 12, 9));
        let first = |s: &Simulator| {
            s.episodes()
                .iter()
                .filter(|e| e.patient.as_str() < "sim-00003")
                .cloned()
                .collect::<Vec<_>>()
        };
        assert_eq!(first(&small), first(&big));
    }

    #[test]
    fn sends_every_vital_with_realistic_rates_and_disorder() {
        let obs = all(&mut Simulator::new(&config(4, 24, 1)));
        for vital in Vital::BEDSIDE {
            assert!(obs.iter().any(|o| o.vital() == vital), "{vital} never sent");
        }
        let hr = obs.iter().filter(|o| o.vital() == Vital::HeartRate).count();
        // 4 patients × 24 h × 720 samples/h, less dropouts, plus duplicates.
        assert!((60_000..=70_000).contains(&hr), "{hr} heart rates");
        let out_of_order = obs.windows(2).filter(|w| w[1].time() < w[0].time()).count();
        assert!(out_of_order > 0, "deliveries are never out of order");
    }

    #[test]
    fn deteriorations_are_recorded_as_ground_truth() {
        let sim = Simulator::new(&config(100, 24, 3));
        let n = sim.episodes().len();
        assert!((15..=45).contains(&n), "{n} episodes in 100 patients");
        for e in sim.episodes() {
            assert!(e.onset_us >= sim.start_us + 2 * HOUR);
            assert!(e.onset_us <= sim.start_us + 20 * HOUR);
        }
    }
}
