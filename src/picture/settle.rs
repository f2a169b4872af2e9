//! The settled value of one NEWS2 parameter: the median of its values over the settle stretch
//! (the pipeline's `[news2] settle`), so that a brief artefact (a probe coming off, a movement)
//! is not charted while a sustained change is.
//!
//! The median is read at every rescore, about once a second per patient from a bedside monitor,
//! and a value is added as often, so neither may sort. A vital sign takes few distinct values
//! within minutes (a 1 Hz heart rate over 2 min holds some 10–30), so the values are kept twice,
//! compactly: as a multiset of distinct values in value order (the median is a walk over at most a
//! few dozen counts), and in time order as 8-byte entries (a time offset and the multiset slot of
//! the value), so that values leave the stretch in the order they came.
//!
//! Invariants: every time entry's slot holds a value with a count equal to the number of entries
//! naming it; `order` lists exactly the slots whose count is not zero, by value; values are
//! pushed in non-decreasing time (an earlier one is accepted and rebases the offsets).

use std::cell::Cell;
use std::collections::VecDeque;

use crate::exact::Exact;

/// The most values kept per parameter, whatever the stretch: a bound on state for a device that
/// floods one patient.
pub(super) const MAX_RECENT: usize = 256;

const SLOT_BITS: u32 = 16;
const SLOT_MASK: u64 = (1 << SLOT_BITS) - 1;
/// Time offsets are 48-bit microseconds: 8.9 years from the oldest value kept.
const MAX_OFFSET: i64 = (1 << (64 - SLOT_BITS)) - 1;

/// A parameter's values over the settle stretch.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub(super) struct Settle {
    /// Time entries are offsets from this (µs).
    base: i64,
    /// `offset << 16 | slot`, oldest first.
    by_time: VecDeque<u64>,
    /// Distinct values and how many time entries hold each; a count of 0 is a free slot.
    slots: Vec<(Exact, u32)>,
    /// The slots in use, by value.
    order: Vec<u16>,
    /// The median of every value held, as of the last push: read at each rescore (of any
    /// parameter) until the oldest value leaves the stretch.
    median: Option<Exact>,
    /// The median of the values held after the oldest `left` have left the stretch, as the
    /// slots of its two middle values (equal for an odd count); emptied by each push, the only
    /// change to the values held (`left` 0 names nothing: that read is the fast path). Between
    /// two pushes of a parameter sampled more slowly than the others (respiratory rate every
    /// 10 s among 1 Hz rescores) each read would otherwise sort what is left; this way it sorts
    /// once each time a value leaves.
    after_leaving: Cell<LeftMedian>,
}

/// See [`Settle::after_leaving`].
#[derive(Clone, Copy, Debug, Default, serde::Serialize, serde::Deserialize)]
struct LeftMedian {
    left: u16,
    slots: (u16, u16),
}

impl Settle {
    /// Adds a value at `now`, dropping those that left the stretch `(now − settle, now]`.
    pub(super) fn push(&mut self, now: i64, value: Exact, settle_us: i64) {
        while let Some(&entry) = self.by_time.front() {
            if self.time_of(entry) > now - settle_us && self.by_time.len() < MAX_RECENT {
                break;
            }
            self.by_time.pop_front();
            self.release((entry & SLOT_MASK) as usize);
        }
        if self.by_time.is_empty() || now < self.base || now - self.base > MAX_OFFSET {
            self.rebase(now);
        }
        let slot = self.acquire(value);
        self.by_time
            .push_back(((now - self.base) as u64) << SLOT_BITS | slot as u64);
        self.median = middle(self.by_time.len(), |k| self.nth(k));
        self.after_leaving.set(LeftMedian::default());
    }

    /// The median of the values in `(now − settle, now]` (the mean of the two middle ones for an
    /// even count, exactly); `None` when there are none.
    pub(super) fn median(&self, now_us: i64, settle_us: i64) -> Option<Exact> {
        let inside = |t: i64| t > now_us - settle_us && t <= now_us;
        let (first, last) = (self.by_time.front()?, self.by_time.back()?);
        if inside(self.time_of(*first)) && inside(self.time_of(*last)) {
            return self.median;
        }
        if self.time_of(*last) <= now_us {
            // Read later than the last value: the oldest `left` have left the stretch.
            let left = self
                .by_time
                .partition_point(|&e| self.time_of(e) <= now_us - settle_us);
            let n = self.by_time.len() - left;
            if n == 0 {
                return None;
            }
            let cached = self.after_leaving.get();
            let slots = if usize::from(cached.left) == left && left > 0 {
                cached.slots
            } else {
                let mut held: Vec<(Exact, u16)> = self
                    .by_time
                    .range(left..)
                    .map(|&e| {
                        let slot = (e & SLOT_MASK) as u16;
                        (self.slots[usize::from(slot)].0, slot)
                    })
                    .collect();
                held.sort_unstable();
                let slots = (held[(n - 1) / 2].1, held[n / 2].1);
                // `left` is below MAX_RECENT + 1, so it fits.
                self.after_leaving.set(LeftMedian {
                    left: left as u16,
                    slots,
                });
                slots
            };
            let value = |slot: u16| self.slots[usize::from(slot)].0;
            return if slots.0 == slots.1 {
                Some(value(slots.0))
            } else {
                mean(value(slots.0), value(slots.1))
            };
        }
        // Read earlier than the last value (not done by the monitor; kept exact anyway).
        let mut values: Vec<Exact> = self
            .by_time
            .iter()
            .filter(|&&e| inside(self.time_of(e)))
            .map(|&e| self.slots[(e & SLOT_MASK) as usize].0)
            .collect();
        values.sort();
        middle(values.len(), |k| values[k])
    }

    /// Asks for the heap blocks a push or a median reads (see [`crate::prefetch`]).
    pub(super) fn prefetch(&self) {
        let (a, b) = self.by_time.as_slices();
        crate::prefetch::line(a.as_ptr());
        let back = if b.is_empty() { a } else { b };
        crate::prefetch::line(back.as_ptr().wrapping_add(back.len().saturating_sub(1)));
        crate::prefetch::line(self.slots.as_ptr());
        crate::prefetch::line(self.order.as_ptr());
    }

    /// Heap bytes held.
    pub(super) fn heap_bytes(&self) -> usize {
        self.by_time.capacity() * std::mem::size_of::<u64>()
            + self.slots.capacity() * std::mem::size_of::<(Exact, u32)>()
            + self.order.capacity() * std::mem::size_of::<u16>()
    }

    fn time_of(&self, entry: u64) -> i64 {
        self.base + (entry >> SLOT_BITS) as i64
    }

    /// Moves the base to `now` when it is older than every entry allows (or empty), keeping the
    /// entries' times; entries that cannot be expressed any more (beyond 8.9 years) are dropped.
    fn rebase(&mut self, now: i64) {
        if self.by_time.is_empty() {
            // The common case (a parameter slower than the stretch): keep the deque's block,
            // which a new deque would free and allocate again at every push.
            self.base = now;
            return;
        }
        let oldest = self.by_time.front().map_or(now, |&e| self.time_of(e));
        let base = oldest.min(now);
        let mut kept = VecDeque::with_capacity(self.by_time.len());
        let mut dropped = Vec::new();
        for &entry in &self.by_time {
            let offset = self.time_of(entry) - base;
            if (0..=MAX_OFFSET).contains(&offset) && now - base <= MAX_OFFSET {
                kept.push_back((offset as u64) << SLOT_BITS | (entry & SLOT_MASK));
            } else {
                dropped.push((entry & SLOT_MASK) as usize);
            }
        }
        for slot in dropped {
            self.release(slot);
        }
        self.by_time = kept;
        self.base = if self.by_time.is_empty() { now } else { base };
    }

    /// The slot of `value`, counted once more.
    fn acquire(&mut self, value: Exact) -> u16 {
        let at = self
            .order
            .partition_point(|&s| self.slots[s as usize].0 < value);
        if let Some(&s) = self.order.get(at)
            && self.slots[s as usize].0 == value
        {
            self.slots[s as usize].1 += 1;
            return s;
        }
        let slot = match self.slots.iter().position(|&(_, count)| count == 0) {
            Some(free) => {
                self.slots[free] = (value, 1);
                free
            }
            None => {
                self.slots.push((value, 1));
                self.slots.len() - 1
            }
        };
        // At most MAX_RECENT + 1 values are ever held, so a slot fits in 16 bits.
        let slot = slot as u16;
        self.order.insert(at, slot);
        slot
    }

    fn release(&mut self, slot: usize) {
        let Some((value, count)) = self.slots.get_mut(slot) else {
            return;
        };
        *count = count.saturating_sub(1);
        if *count == 0 {
            let value = *value;
            let at = self
                .order
                .partition_point(|&s| self.slots[s as usize].0 < value);
            if self.order.get(at) == Some(&(slot as u16)) {
                self.order.remove(at);
            }
        }
    }

    /// The `k`-th smallest value held (0-based); `k` is below the number held.
    fn nth(&self, k: usize) -> Exact {
        let mut seen = 0;
        for &s in &self.order {
            let (value, count) = self.slots[s as usize];
            seen += count as usize;
            if seen > k {
                return value;
            }
        }
        // Unreachable while the invariants hold; the largest value is the safe answer.
        self.order
            .last()
            .map_or(Exact::integer(0), |&s| self.slots[s as usize].0)
    }
}

/// The median of `n` values given by rank (`nth(k)` is the `k`-th smallest): the middle one,
/// or the exact mean of the two middle ones for an even count; `None` when there are none.
fn middle(n: usize, nth: impl Fn(usize) -> Exact) -> Option<Exact> {
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(nth(n / 2)),
        _ => mean(nth(n / 2 - 1), nth(n / 2)),
    }
}

fn mean(a: Exact, b: Exact) -> Option<Exact> {
    a.checked_add(b).and_then(Exact::half)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive(values: &[(i64, i64)], now: i64, settle: i64) -> Option<Exact> {
        let kept = &values[values.len().saturating_sub(MAX_RECENT)..];
        let mut inside: Vec<Exact> = kept
            .iter()
            .filter(|&&(t, _)| t > now - settle && t <= now)
            .map(|&(_, v)| Exact::ratio(v, 10).unwrap())
            .collect();
        inside.sort();
        let n = inside.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(inside[n / 2]),
            _ => mean(inside[n / 2 - 1], inside[n / 2]),
        }
    }

    #[test]
    fn the_median_of_an_even_count_is_the_exact_mean_of_the_middle_two() {
        let mut s = Settle::default();
        for (t, v) in [(1, 970), (2, 985), (3, 990), (4, 1000)] {
            s.push(t, Exact::ratio(v, 10).unwrap(), 100);
        }
        // 98.5 and 99.0: 98.75, not a rounded binary float.
        assert_eq!(s.median(4, 100), Exact::ratio(9875, 100));
        // Later, the first two have left the stretch (t > 105 − 100 = 5 is none of them).
        assert_eq!(s.median(105, 100), None);
        assert_eq!(s.median(102, 100), Exact::ratio(995, 10));
    }

    #[test]
    fn the_state_is_bounded_by_distinct_values_not_by_samples() {
        let mut s = Settle::default();
        for t in 0..120_000_000i64 / 1_000_000 * 10 {
            // A 1 Hz heart rate wandering over 12 values, for 20 minutes.
            s.push(t * 1_000_000, Exact::integer(70 + t % 12), 120_000_000);
        }
        assert!(s.by_time.len() <= 120, "{}", s.by_time.len());
        assert_eq!(s.order.len(), 12);
        assert!(s.heap_bytes() < 2_000, "{} bytes", s.heap_bytes());
    }

    proptest! {
        /// The settled median equals a sort of the values in the stretch, read at any time.
        #[test]
        fn the_median_equals_a_direct_computation(
            steps in proptest::collection::vec((0i64..8, 300i64..320, 0i64..40), 1..400),
            settle in 1i64..3000,
            read_after in 0i64..3000,
        ) {
            let mut s = Settle::default();
            let mut values = Vec::new();
            let mut t = 1_700_000_000_000_000i64;
            for (dt, v, later) in steps {
                t += dt;
                s.push(t, Exact::ratio(v, 10).unwrap(), settle);
                values.push((t, v));
                prop_assert_eq!(s.median(t, settle), naive(&values, t, settle));
                // Reads between pushes, as other parameters' rescores make them: the same
                // time twice, then later, as values leave the stretch one by one.
                for read in [later, later, later * 25, later * 25 + 1] {
                    prop_assert_eq!(s.median(t + read, settle), naive(&values, t + read, settle));
                }
            }
            prop_assert_eq!(s.median(t + read_after, settle), naive(&values, t + read_after, settle));
            let held: u32 = s.slots.iter().map(|&(_, c)| c).sum();
            prop_assert_eq!(held as usize, s.by_time.len());
        }
    }
}
