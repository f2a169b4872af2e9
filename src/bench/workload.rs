//! The benchmark workload: a cohort of fixed seed and size sending at a bedside monitor's rates —
//! heart rate and SpO2 every second, respiratory rate every 10 s, blood pressure every 15 min,
//! temperature, ACVPU and oxygen every 4 h — in event-time order, with no disorder, so that what
//! is measured is the engine and not the delivery.
//!
//! Unlike the [`crate::sources::simulator`], which models a ward's artefacts and late deliveries for the
//! clinical tests, this generator is cheap (a few arithmetic operations per value) and streams:
//! 100,000 patients cost no memory beyond the batch being sent. One patient in ten deteriorates
//! (a sepsis-like ramp over two hours from a random time, and back over two more), so alerts
//! rise and come down. Each patient's
//! slow vitals are staggered by its index, as a ward's devices are.

use crate::observation::{Acvpu, EventTime, Identifier, Observation, Unit, Value, Vital};
use crate::sources::{Progress, Source, SourceError, SourceItem};

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct WorkloadConfig {
    pub patients: u32,
    /// Seconds of event time.
    pub seconds: u32,
    pub seed: u64,
    /// Event time of second 0 (µs since the epoch).
    pub start_us: i64,
}

/// Observations per patient and hour at the workload's rates.
pub const PER_PATIENT_HOUR: f64 = 2.0 * 3600.0 + 360.0 + 2.0 * 4.0 + 3.0 / 4.0;

/// The workload as a source.
pub struct Workload {
    config: WorkloadConfig,
    ids: Vec<Identifier>,
    /// Each patient's bedside monitor.
    devices: Vec<Identifier>,
    second: u32,
    patient: u32,
    emitted: u64,
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Uniform in [0, 1) from a key.
fn unit(key: u64) -> f64 {
    (mix(key) >> 11) as f64 / (1u64 << 53) as f64
}

impl Workload {
    pub fn new(config: WorkloadConfig) -> Workload {
        let id = |prefix: &str, p: u32| {
            Identifier::new(&format!("{prefix}-{p:06}")).expect("a generated id is valid")
        };
        Workload {
            ids: (0..config.patients).map(|p| id("bench", p)).collect(),
            devices: (0..config.patients).map(|p| id("monitor", p)).collect(),
            config,
            second: 0,
            patient: 0,
            emitted: 0,
        }
    }

    /// Every observation, in order (for runs that must not time the generator).
    pub fn all(config: WorkloadConfig) -> Vec<SourceItem> {
        let mut source = Workload::new(config);
        let mut out = Vec::new();
        while source.fill(1 << 16, &mut out).unwrap_or(false) {}
        out
    }

    /// How much a patient has deteriorated at `second` (0 to 1): one in ten, from a random
    /// time, over two hours, then recovering over the next two (so bands come down too).
    fn severity(&self, p: u32, second: u32) -> f64 {
        let key = self.config.seed ^ (u64::from(p) << 20);
        if unit(key ^ 0xd1) >= 0.1 {
            return 0.0;
        }
        let onset = unit(key ^ 0xd2) * f64::from(self.config.seconds.max(1)) * 0.6;
        let hours = (f64::from(second) - onset) / 3600.0;
        (1.0 - (hours - 2.0).abs() / 2.0).clamp(0.0, 1.0)
    }

    fn push(&mut self, out: &mut Vec<SourceItem>, p: u32, vital: Vital, value: Value) {
        let unit = match vital {
            Vital::HeartRate | Vital::RespiratoryRate => Some(Unit::PerMinute),
            Vital::Spo2 => Some(Unit::Percent),
            Vital::Temperature => Some(Unit::Celsius),
            Vital::SystolicBp | Vital::DiastolicBp => Some(Unit::MillimetresOfMercury),
            Vital::SupplementalOxygen => Some(Unit::LitresPerMinute),
            _ => None,
        };
        let time =
            EventTime::from_micros(self.config.start_us + i64::from(self.second) * 1_000_000);
        if let Ok(obs) = Observation::new(
            self.ids[p as usize].clone(),
            Some(self.devices[p as usize].clone()),
            time,
            vital,
            value,
            unit,
        ) {
            out.push(SourceItem::Observation(obs, None));
            self.emitted += 1;
        }
    }

    /// The observations of patient `p` at the current second.
    fn patient_second(&mut self, p: u32, out: &mut Vec<SourceItem>) {
        let s = self.second;
        let sev = self.severity(p, s);
        let patient_key = self.config.seed ^ (u64::from(p) << 20);
        let key = patient_key ^ (u64::from(s) << 1);
        let noise = |k: u64| unit(key ^ k) - 0.5;
        let base = |k: u64, lo: f64, hi: f64| lo + (hi - lo) * unit(patient_key ^ k);
        let hr = base(1, 62.0, 88.0) + 45.0 * sev + 4.0 * noise(11);
        let spo2 = base(2, 95.0, 99.0) - 6.0 * sev + noise(12);
        self.push(out, p, Vital::HeartRate, Value::Number(hr.round()));
        self.push(out, p, Vital::Spo2, Value::Number(spo2.round().min(100.0)));
        if (s + p).is_multiple_of(10) {
            let rr = base(3, 12.0, 18.0) + 12.0 * sev + 2.0 * noise(13);
            self.push(out, p, Vital::RespiratoryRate, Value::Number(rr.round()));
        }
        if (s + p).is_multiple_of(900) {
            let sbp = base(4, 110.0, 140.0) - 40.0 * sev + 6.0 * noise(14);
            self.push(out, p, Vital::SystolicBp, Value::Number(sbp.round()));
            self.push(
                out,
                p,
                Vital::DiastolicBp,
                Value::Number((sbp * 0.62).round()),
            );
        }
        if (s + p).is_multiple_of(14_400) {
            let temp = base(5, 36.4, 37.2) + 1.8 * sev;
            self.push(
                out,
                p,
                Vital::Temperature,
                Value::Number((temp * 10.0).round() / 10.0),
            );
            let level = if sev > 0.8 { Acvpu::C } else { Acvpu::A };
            self.push(out, p, Vital::Consciousness, Value::Acvpu(level));
            let flow = if sev > 0.5 { 4.0 } else { 0.0 };
            self.push(out, p, Vital::SupplementalOxygen, Value::Number(flow));
        }
    }
}

impl Source for Workload {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let start = out.len();
        while out.len() - start < max {
            if self.second >= self.config.seconds || self.config.patients == 0 {
                return Ok(false);
            }
            self.patient_second(self.patient, out);
            self.patient += 1;
            if self.patient >= self.config.patients {
                self.patient = 0;
                self.second += 1;
            }
        }
        Ok(self.second < self.config.seconds)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.emitted,
            total: Some(
                (f64::from(self.config.patients) * f64::from(self.config.seconds) / 3600.0
                    * PER_PATIENT_HOUR) as u64,
            ),
        }
    }
}

/// Items recorded in memory, replayed as they are: a run that times the engine, not a generator
/// or a file.
pub struct Recorded {
    items: std::vec::IntoIter<SourceItem>,
    total: u64,
}

impl Recorded {
    pub fn new(items: Vec<SourceItem>) -> Recorded {
        Recorded {
            total: items.len() as u64,
            items: items.into_iter(),
        }
    }
}

impl Source for Recorded {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        out.extend(self.items.by_ref().take(max));
        Ok(self.items.len() > 0)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.total - self.items.len() as u64,
            total: Some(self.total),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(patients: u32, seconds: u32) -> WorkloadConfig {
        WorkloadConfig {
            patients,
            seconds,
            seed: 1,
            start_us: 1_767_571_200_000_000,
        }
    }

    #[test]
    fn sends_at_a_bedside_monitors_rates() {
        let items = Workload::all(config(20, 3600));
        let count = |v: Vital| {
            items
                .iter()
                .filter(|i| matches!(i, SourceItem::Observation(o, _) if o.vital() == v))
                .count()
        };
        assert_eq!(count(Vital::HeartRate), 20 * 3600);
        assert_eq!(count(Vital::Spo2), 20 * 3600);
        assert_eq!(count(Vital::RespiratoryRate), 20 * 360);
        assert_eq!(count(Vital::SystolicBp), 20 * 4);
        // Every 4 h, staggered: in one hour, the patients whose turn falls in it.
        assert!(count(Vital::Temperature) <= 20);
        assert!(
            items
                .iter()
                .all(|i| matches!(i, SourceItem::Observation(..)))
        );
        // In event-time order.
        let times: Vec<i64> = items
            .iter()
            .filter_map(|i| match i {
                SourceItem::Observation(o, _) => Some(o.time().micros()),
                _ => None,
            })
            .collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn the_same_seed_gives_the_same_workload() {
        let a = Workload::all(config(5, 600));
        assert_eq!(a, Workload::all(config(5, 600)));
        let mut other = config(5, 600);
        other.seed = 2;
        assert_ne!(a, Workload::all(other));
    }

    #[test]
    fn a_cohort_of_no_patients_is_empty() {
        assert!(Workload::all(config(0, 600)).is_empty());
        assert!(Workload::all(config(5, 0)).is_empty());
    }
}
