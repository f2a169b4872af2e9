//! Which worker monitors which patient.
//!
//! A patient's events and prescriptions all go to one worker, chosen from a stable hash of its
//! id. Where a patient is monitored never changes what is alerted (monitors are per patient and
//! alerts are written in a total order), only how the work is shared.
//!
//! When one worker also reads the only source (files, the simulator, replays), it decodes,
//! de-duplicates and routes every record besides monitoring its own patients: given an equal
//! share of patients it finishes last and the others wait for it. So that worker gets a smaller
//! share, [`SOURCE_WORKER_WEIGHT`] of the others'.

use crate::observation::Identifier;

/// The share of patients of the worker that reads the only source, relative to the others'.
///
/// Measured with `vigil bench replay` (thread CPU time of each worker, 2 workers): with equal
/// shares the source's worker was busy 1.5 times as long as the other (2.4 s against 1.6 s);
/// at 0.5 they were within 10 % of each other and the replay 20 % faster. The source's own cost
/// differs by kind (a file is decoded there, the simulator generates there); the demo and a
/// JSON-lines replay ran as fast or faster at 0.5 too.
pub const SOURCE_WORKER_WEIGHT: f64 = 0.5;

/// Units of weight of a worker without a source: fine enough for any weight to a percent.
const UNITS: u64 = 100;

/// Maps a patient to its worker.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    /// Units of the first worker's share (others have [`UNITS`]).
    first: u64,
    total: u64,
}

impl Placement {
    /// Equal shares among `workers`.
    pub fn even(workers: usize) -> Placement {
        Placement::weighted(workers, 1.0)
    }

    /// Worker 0 has `weight` (0 to 1) times the share of each other worker.
    pub fn weighted(workers: usize, weight: f64) -> Placement {
        let others = workers.max(1) as u64 - 1;
        // At least one unit: a worker with no patient at all would still hold timers' ticks.
        let first = ((weight.clamp(0.0, 1.0) * UNITS as f64).round() as u64).max(1);
        Placement {
            first,
            total: first + others * UNITS,
        }
    }

    /// The worker that monitors `patient`.
    pub fn worker(&self, patient: &Identifier) -> u64 {
        self.worker_of_hash(patient_hash(patient))
    }

    /// The worker for a patient hash (see [`patient_hash`]).
    pub fn worker_of_hash(&self, hash: u64) -> u64 {
        // FNV's low bits differ little between ids such as "p00012" and "p00013": mix first,
        // then scale the hash onto the units (uniform, no modulo bias).
        let point = ((u128::from(mix(hash)) * u128::from(self.total)) >> 64) as u64;
        if point < self.first {
            0
        } else {
            1 + (point - self.first) / UNITS
        }
    }
}

/// FNV-1a of the patient id: stable across runs, machines and releases.
pub fn patient_hash(patient: &Identifier) -> u64 {
    patient.stable_hash()
}

/// The finaliser of MurmurHash3: every input bit moves every output bit.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(placement: Placement, workers: usize, patients: usize) -> Vec<usize> {
        let mut counts = vec![0; workers];
        for i in 0..patients {
            let id = Identifier::new(&format!("p{i:06}")).unwrap();
            counts[placement.worker(&id) as usize] += 1;
        }
        counts
    }

    #[test]
    fn patients_are_shared_by_weight() {
        let n = 100_000;
        for workers in 1..=4 {
            let even = shares(Placement::even(workers), workers, n);
            for c in &even {
                let expected = n / workers;
                assert!(c.abs_diff(expected) < expected / 50, "{even:?}");
            }
        }
        let weighted = shares(Placement::weighted(2, 0.6), 2, n);
        let first = weighted[0] as f64 / n as f64;
        assert!((first - 0.6 / 1.6).abs() < 0.01, "{weighted:?}");
        let weighted = shares(Placement::weighted(4, 0.5), 4, n);
        let first = weighted[0] as f64 / n as f64;
        assert!((first - 0.5 / 3.5).abs() < 0.01, "{weighted:?}");
    }

    #[test]
    fn every_worker_gets_patients_and_none_outside_the_range() {
        for workers in 1..=8 {
            for weight in [0.0, 0.3, 1.0] {
                let counts = shares(Placement::weighted(workers, weight), workers, 10_000);
                assert!(
                    counts.iter().all(|c| *c > 0),
                    "{workers} {weight} {counts:?}"
                );
            }
        }
        let one = Placement::even(1);
        assert!((0..1000u64).all(|h| one.worker_of_hash(h.wrapping_mul(0x9e37_79b9)) == 0));
    }
}
