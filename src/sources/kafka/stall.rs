//! Partitions that cannot be read on. librdkafka retries a fetch it cannot use (a codec it was
//! built without, a corrupt batch) for ever: the partition's position stops while its end moves
//! on, and every patient whose devices send to it goes unmonitored. A partition is stalled when
//! an error was reported since the last check, its next offset is before its end, and it has not
//! moved since that check; it is reported once, until it moves again.

use std::collections::{BTreeMap, HashSet};

use crate::observation::Identifier;

/// A partition that cannot be read on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stall {
    pub partition: i32,
    /// The offset it cannot be read past, and its end.
    pub offset: i64,
    pub end: i64,
    /// What librdkafka said.
    pub why: String,
    /// The patients whose observations were read from it so far, in id order.
    pub patients: Vec<Identifier>,
}

#[derive(Debug, Default)]
struct Watch {
    patients: HashSet<Identifier, foldhash::fast::FixedState>,
    /// Its next offset at the last check, and whether it was reported stalled at it.
    checked: Option<i64>,
    reported: bool,
}

/// What is known of each partition, to tell when one stalls.
#[derive(Debug, Default)]
pub struct Stalls {
    partitions: BTreeMap<i32, Watch>,
}

impl Stalls {
    /// An observation of `patient` was read from `partition`.
    pub fn seen(&mut self, partition: i32, patient: &Identifier) {
        let watch = self.partitions.entry(partition).or_default();
        if !watch.patients.contains(patient) {
            watch.patients.insert(patient.clone());
        }
    }

    /// A check: each partition's `(partition, next offset, end)`, and the error reported since
    /// the last check, if any. Returns the partitions newly stalled.
    pub fn check(&mut self, positions: &[(i32, i64, i64)], error: Option<&str>) -> Vec<Stall> {
        let mut stalled = Vec::new();
        for &(partition, next, end) in positions {
            let watch = self.partitions.entry(partition).or_default();
            let still = watch.checked == Some(next);
            if !still {
                watch.reported = false;
            }
            watch.checked = Some(next);
            let Some(why) = error.filter(|_| still && next < end && !watch.reported) else {
                continue;
            };
            watch.reported = true;
            let mut patients: Vec<Identifier> = watch.patients.iter().cloned().collect();
            patients.sort();
            stalled.push(Stall {
                partition,
                offset: next,
                end,
                why: why.to_owned(),
                patients,
            });
        }
        stalled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partition_is_stalled_when_it_stops_with_an_error_and_data_after_it() {
        let mut stalls = Stalls::default();
        stalls.seen(2, &Identifier::new("p-2").unwrap());
        stalls.seen(2, &Identifier::new("p-1").unwrap());
        let why = "Decompression (codec 0x1) failed: Local: Not implemented";
        // The first check only notes where each partition is.
        assert!(
            stalls
                .check(&[(1, 10, 50), (2, 595, 900)], Some(why))
                .is_empty()
        );
        // Partition 1 moved on; partition 2 did not, with an error and data after it.
        let stalled = stalls.check(&[(1, 20, 50), (2, 595, 950)], Some(why));
        assert_eq!(stalled.len(), 1);
        assert_eq!(stalled[0].partition, 2);
        assert_eq!((stalled[0].offset, stalled[0].end), (595, 950));
        assert_eq!(
            stalled[0].patients,
            ["p-1", "p-2"].map(|p| Identifier::new(p).unwrap())
        );
        // Reported once while it stays there; again once it moved and stopped again.
        assert!(stalls.check(&[(2, 595, 990)], Some(why)).is_empty());
        assert!(stalls.check(&[(2, 700, 990)], Some(why)).is_empty());
        assert_eq!(stalls.check(&[(2, 700, 990)], Some(why)).len(), 1);
        // Read to its end, or without an error, a quiet partition is not stalled.
        assert!(stalls.check(&[(3, 5, 5)], Some(why)).is_empty());
        assert!(stalls.check(&[(3, 5, 5)], Some(why)).is_empty());
        assert!(stalls.check(&[(4, 5, 9)], None).is_empty());
        assert!(stalls.check(&[(4, 5, 9)], None).is_empty());
    }
}
