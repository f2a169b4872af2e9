//! De-duplication: an observation is (patient, device, vital, event time, value and detail); the
//! first arrival
//! wins, and a repeat within a horizon of watermark progress is a duplicate, neither processed
//! nor archived.
//!
//! Each partition has its own, forgotten by its own watermark, so which records are duplicates
//! depends only on that partition's records, as their lateness does (see [`super::clock`]).

use std::collections::{BTreeMap, HashSet, VecDeque};

use crate::observation::{Identifier, Observation, Value};

/// The identity of an observation, (patient, device, vital, event time), as a 128-bit
/// fingerprint: two independent 64-bit hashes. The first arrival wins; later ones are duplicates,
/// counted and neither processed nor archived. A fingerprint is 16 bytes where the key itself
/// held two shared strings (48 bytes, kept twice, with reference counts touched at every
/// observation); two distinct observations share one with a probability of about 2⁻¹²⁸ per
/// pair, far below the loss rate of any disk that holds the archive.
type Fingerprint = u128;

fn fingerprint(obs: &Observation) -> Fingerprint {
    use std::hash::{BuildHasher, Hash, Hasher};
    let hash = |seed: u64| {
        let mut h = foldhash::quality::FixedState::with_seed(seed).build_hasher();
        obs.patient().as_str().hash(&mut h);
        obs.device().map(Identifier::as_str).hash(&mut h);
        (obs.vital() as u8).hash(&mut h);
        obs.time().micros().hash(&mut h);
        // A repeat is a duplicate only when it says the same thing. Two values of one device
        // at one instant are two readings: a CGM export that collapsed a fall to 40 mg/dL onto
        // one timestamp must not keep its first, 57, alone; nor a pump's occlusion hide its low
        // battery.
        match obs.value() {
            Value::Number(n) => n.to_bits().hash(&mut h),
            Value::Acvpu(a) => (a as u8).hash(&mut h),
            Value::Code(c) => (c as u8).hash(&mut h),
            Value::None => {}
        }
        obs.detail().hash(&mut h);
        h.finish()
    };
    (hash(0x5eed_0001) as u128) << 64 | hash(0x5eed_0002) as u128
}

/// Remembers each observation for at least one horizon of watermark progress after it arrived,
/// so that a re-delivery within that time is a duplicate, whatever the batches.
///
/// Observations at or ahead of the watermark are filed by second of event time: a duplicate has
/// its original's time, so a lookup touches one small set (hot in cache), and forgetting a
/// second once it leaves the horizon drops its set whole. An observation behind the watermark
/// (a late one, rare) would be forgotten sooner that way, at the end of the very batch that
/// brought it if it is later than the horizon, so it is kept apart until the watermark has moved
/// one horizon on, or until [`MAX_BEHIND`] later late ones have come: an input of nothing but
/// late observations does not move the watermark, and must not grow memory without end.
pub struct Dedup {
    /// The latest second's keys, kept out of `by_second`: most observations fall in it, and
    /// it is looked up without a search.
    hot_s: i64,
    hot: Keys,
    by_second: BTreeMap<i64, Second>,
    /// The first second still kept in `by_second`: earlier ones are forgotten.
    floor_s: i64,
    /// Every second of `by_second` before this one is frozen.
    frozen_below: i64,
    behind: Keys,
    /// The keys of `behind` by the floor at which they are forgotten, oldest arrival first.
    behind_until: BTreeMap<i64, VecDeque<Fingerprint>>,
    max_behind: usize,
    horizon_s: i64,
}

type Keys = HashSet<Fingerprint, foldhash::fast::FixedState>;

/// One second's keys: open while its observations can still come in time; frozen once the
/// watermark has passed it, when it is only looked up (a late arrival is filed in `behind`):
/// sorted, 16 bytes a key, where the hash set took 19 to 39 with its slack. Two of the three
/// minutes a demo partition remembers are behind its watermark.
enum Second {
    Open(Keys),
    Frozen(Box<[Fingerprint]>),
}

impl Second {
    fn contains(&self, key: &Fingerprint) -> bool {
        match self {
            Second::Open(keys) => keys.contains(key),
            Second::Frozen(keys) => keys.binary_search(key).is_ok(),
        }
    }

    fn insert(&mut self, key: Fingerprint) -> bool {
        match self {
            Second::Open(keys) => keys.insert(key),
            // Not reached (a second is frozen only behind the watermark, which never goes
            // back), but an insert must never be lost: open it again.
            Second::Frozen(keys) => {
                let mut open: Keys = keys.iter().copied().collect();
                let new = open.insert(key);
                *self = Second::Open(open);
                new
            }
        }
    }

    fn freeze(&mut self) {
        if let Second::Open(keys) = self {
            let mut sorted: Vec<Fingerprint> = std::mem::take(keys).into_iter().collect();
            sorted.sort_unstable();
            *self = Second::Frozen(sorted.into_boxed_slice());
        }
    }
}

/// The most late observations remembered (16 bytes each, about 40 with the tables): a
/// re-delivery of a late one is recognised unless this many other late ones came in between
/// (or the watermark moved a horizon on).
const MAX_BEHIND: usize = 1 << 20;

impl Dedup {
    pub fn new(lateness_us: i64) -> Dedup {
        // Keep keys for twice the lateness (at least a minute), so that a late re-delivery is
        // still recognised.
        let horizon_us = (2 * lateness_us).max(60_000_000);
        Dedup {
            hot_s: i64::MIN,
            hot: Keys::default(),
            by_second: BTreeMap::new(),
            floor_s: i64::MIN,
            frozen_below: i64::MIN,
            behind: Keys::default(),
            behind_until: BTreeMap::new(),
            max_behind: MAX_BEHIND,
            horizon_s: (horizon_us + 999_999) / 1_000_000,
        }
    }

    /// Whether this is the first observation with its key.
    pub fn first(&mut self, obs: &Observation) -> bool {
        let second = obs.time().micros().div_euclid(1_000_000);
        let key = fingerprint(obs);
        let watermark_s = self.floor_s.saturating_add(self.horizon_s);
        if second == self.hot_s && second >= watermark_s {
            return self.hot.insert(key);
        }
        if second < watermark_s {
            // Its original may have come in time, or late like itself.
            let in_time = match second == self.hot_s {
                true => self.hot.contains(&key),
                false => self
                    .by_second
                    .get(&second)
                    .is_some_and(|set| set.contains(&key)),
            };
            if in_time || !self.behind.insert(key) {
                return false;
            }
            let until = watermark_s.saturating_add(self.horizon_s);
            self.behind_until.entry(until).or_default().push_back(key);
            if self.behind.len() > self.max_behind
                && let Some(mut oldest) = self.behind_until.first_entry()
            {
                if let Some(key) = oldest.get_mut().pop_front() {
                    self.behind.remove(&key);
                }
                if oldest.get().is_empty() {
                    oldest.remove();
                }
            }
            return true;
        }
        // A new second is sized like the latest one, so its set does not grow by rehashing.
        let size = self.hot.len();
        if second > self.hot_s {
            // A new latest second: the one that was joins the others.
            let was = std::mem::replace(
                &mut self.hot,
                Keys::with_capacity_and_hasher(size, Default::default()),
            );
            if self.hot_s > i64::MIN {
                self.by_second.insert(self.hot_s, Second::Open(was));
            }
            self.hot_s = second;
            return self.hot.insert(key);
        }
        if let Some(set) = self.by_second.get_mut(&second) {
            return set.insert(key);
        }
        let mut set = Keys::with_capacity_and_hasher(size, Default::default());
        set.insert(key);
        self.by_second.insert(second, Second::Open(set));
        true
    }

    /// Forgets the keys of every whole second before the horizon, and the late keys that
    /// arrived more than a horizon ago.
    pub fn evict(&mut self, watermark_us: i64) {
        let oldest = watermark_us.saturating_sub(self.horizon_s.saturating_mul(1_000_000));
        self.floor_s = self.floor_s.max(oldest.div_euclid(1_000_000));
        while let Some(entry) = self.by_second.first_entry() {
            if *entry.key() >= self.floor_s {
                break;
            }
            entry.remove();
        }
        if self.hot_s < self.floor_s {
            self.hot.clear();
            self.hot_s = i64::MIN;
        }
        let watermark_s = self.floor_s.saturating_add(self.horizon_s);
        if self.frozen_below < watermark_s {
            for (_, second) in self.by_second.range_mut(self.frozen_below..watermark_s) {
                second.freeze();
            }
            self.frozen_below = watermark_s;
        }
        while let Some(entry) = self.behind_until.first_entry() {
            if *entry.key() > watermark_s {
                break;
            }
            for key in entry.remove() {
                self.behind.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{EventTime, Identifier, Unit, Value, Vital};

    fn hr(patient: &str, device: Option<&str>, time_us: i64, bpm: f64) -> Observation {
        Observation::new(
            Identifier::new(patient).unwrap(),
            device.map(|d| Identifier::new(d).unwrap()),
            EventTime::from_micros(time_us),
            Vital::HeartRate,
            Value::Number(bpm),
            Some(Unit::PerMinute),
        )
        .unwrap()
    }

    #[test]
    fn a_redelivery_is_a_duplicate_until_it_leaves_the_horizon() {
        let mut dedup = Dedup::new(30_000_000); // horizon 60 s
        let t = 1_700_000_000_000_000;
        assert!(dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        // The same patient, device, vital, time and value is a duplicate.
        assert!(!dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        // Any other part of the key makes a new observation: another value of the same
        // instant too (both are scored and archived, never one silently kept).
        assert!(dedup.first(&hr("p1", Some("m1"), t, 81.0)));
        assert!(dedup.first(&hr("p2", Some("m1"), t, 80.0)));
        assert!(dedup.first(&hr("p1", Some("m2"), t, 80.0)));
        assert!(dedup.first(&hr("p1", None, t, 80.0)));
        assert!(dedup.first(&hr("p1", Some("m1"), t + 1, 80.0)));
        // Within the horizon behind the watermark it is remembered; after it, forgotten.
        dedup.evict(t + 60_000_000);
        assert!(!dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        dedup.evict(t + 62_000_000);
        assert!(dedup.first(&hr("p1", Some("m1"), t, 80.0)));
    }

    /// The simulator's seed-17 cohort holds one: an SpO2 285 s late, delivered twice 2 s apart.
    /// Its time was behind the horizon on arrival, so the second copy was archived again when a
    /// batch ended between the two (a flaky CI failure of the paused-broker test).
    #[test]
    fn a_late_observation_is_remembered_for_a_horizon_after_it_arrived() {
        let mut dedup = Dedup::new(60_000_000); // horizon 120 s
        let t = 1_700_000_000_000_000;
        let s = 1_000_000;
        let watermark = t + 285 * s - 60 * s;
        assert!(dedup.first(&hr("p1", Some("m1"), watermark + 60 * s, 80.0)));
        dedup.evict(watermark);
        // Later than the horizon, and just inside it.
        assert!(dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        assert!(dedup.first(&hr("p2", Some("m1"), watermark - 119 * s, 80.0)));
        dedup.evict(watermark + 2 * s);
        assert!(!dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        assert!(!dedup.first(&hr("p2", Some("m1"), watermark - 119 * s, 80.0)));
        // Remembered for one horizon after they arrived, then forgotten like any other.
        dedup.evict(watermark + 119 * s);
        assert!(!dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        assert!(!dedup.first(&hr("p2", Some("m1"), watermark - 119 * s, 80.0)));
        dedup.evict(watermark + 121 * s);
        assert!(dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        assert!(dedup.first(&hr("p2", Some("m1"), watermark - 119 * s, 80.0)));
    }

    #[test]
    fn late_observations_are_remembered_up_to_a_bound_when_the_watermark_stands_still() {
        let mut dedup = Dedup::new(30_000_000);
        dedup.max_behind = 3;
        let t = 1_700_000_000_000_000;
        dedup.evict(t + 600_000_000);
        let late = |k: i64| hr("p1", Some("m1"), t + k * 1_000_000, 80.0);
        for k in 0..5 {
            assert!(dedup.first(&late(k)));
        }
        assert_eq!(dedup.behind.len(), 3);
        // The oldest two were forgotten, the last three are still duplicates.
        assert!(dedup.first(&late(0)));
        assert!(!dedup.first(&late(3)));
        assert!(!dedup.first(&late(4)));
        assert_eq!(dedup.behind.len(), 3);
    }

    #[test]
    fn a_late_redelivery_of_an_observation_that_came_in_time_is_a_duplicate() {
        let mut dedup = Dedup::new(30_000_000); // horizon 60 s
        let t = 1_700_000_000_000_000;
        assert!(dedup.first(&hr("p1", Some("m1"), t, 80.0)));
        dedup.evict(t + 30_000_000);
        assert!(!dedup.first(&hr("p1", Some("m1"), t, 80.0)));
    }

    proptest::proptest! {
        /// Whatever the arrival order and wherever batches end, a key is new the first time,
        /// and a re-delivery is a duplicate while the watermark has moved less than a horizon
        /// (less a second, the granularity of forgetting) since its original arrived.
        #[test]
        fn a_redelivery_within_a_horizon_of_its_original_is_a_duplicate(
            arrivals in proptest::collection::vec((0u8..6, 0i64..900, proptest::bool::ANY), 1..400)
        ) {
            const S: i64 = 1_000_000;
            let (lateness, horizon) = (30 * S, 60 * S);
            let base = 1_700_000_000 * S;
            let mut dedup = Dedup::new(lateness);
            let mut watermark = base - lateness;
            dedup.evict(watermark);
            let mut arrived: std::collections::HashMap<(u8, i64), i64> = Default::default();
            let mut newest = base;
            for (patient, second, batch_ends) in arrivals {
                let time = base + second * S;
                let first = dedup.first(&hr(&format!("p{patient}"), Some("m1"), time, 80.0));
                match arrived.get(&(patient, second)) {
                    None => proptest::prop_assert!(first, "a new key was taken for a duplicate"),
                    Some(&at) if watermark - at < horizon - S => {
                        proptest::prop_assert!(!first, "a re-delivery {} s on was new", (watermark - at) / S);
                    }
                    Some(_) => {}
                }
                if first {
                    arrived.insert((patient, second), watermark);
                }
                newest = newest.max(time);
                if batch_ends {
                    watermark = watermark.max(newest - lateness);
                    dedup.evict(watermark);
                }
            }
        }
    }
}
