//! Rolling windows over event time, per patient and vital: last value and its age, count, mean,
//! minimum, maximum, standard deviation and slope per hour over each configured duration.
//!
//! Samples are folded into fixed-width buckets, so a window's state is bounded whatever the
//! sampling rate. Each window has its own bucket width: the pipeline's `resolution`, or a whole
//! multiple of it up to a twelfth of the window ([`BUCKETS_PER_WINDOW`]), so a 12 h window is
//! kept in 1 h buckets and a 15 min one in 5 min buckets rather than both in the finest. Windows
//! of the same width share one ring of buckets (a *level*), which keeps what the longest of them
//! covers. A window of duration `d` at time `now` covers the buckets of its level whose start is
//! at or after `now − d` rounded down to the level's width, so its edge is exact to one bucket:
//! at most a twelfth of the window, and never finer than `resolution`.
//!
//! Samples are expected in event-time order per vital (the dataflow guarantees it); one that
//! arrives earlier than the newest bucket is still folded into its own bucket.
//!
//! ```
//! use vigil::windows::{VitalWindow, WindowSpec};
//!
//! let spec = WindowSpec::new(vec![3_600_000], 60_000); // 1 h: 5 min buckets (a twelfth)
//! let mut w = VitalWindow::default();
//! for minute in 0..60 {
//!     w.push(&spec, minute * 60_000, 80.0 + minute as f64 * 0.5); // rising 30 /min per hour
//! }
//! let stats = w.stats(&spec, 3_600_000, 59 * 60_000).unwrap();
//! assert_eq!(stats.count, 60);
//! assert!((stats.slope_per_hour - 30.0).abs() < 1e-9);
//! ```

use std::collections::VecDeque;

use serde::Serialize;

const MS_PER_HOUR: f64 = 3_600_000.0;

/// A window is kept in at least this many buckets (when the resolution allows): its edge is
/// exact to a twelfth of its length.
pub const BUCKETS_PER_WINDOW: i64 = 12;

/// Window durations and bucket widths, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    durations: Vec<i64>,
    /// The finest width; every level's width is a whole multiple of it.
    resolution: i64,
    /// Bucket widths in use, finest first.
    levels: Vec<Level>,
    /// The level of each duration, in the order of `durations`.
    level_of: Vec<usize>,
}

/// One bucket width and the longest window it serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Level {
    width: i64,
    span: i64,
}

impl WindowSpec {
    /// `durations` and `resolution` in milliseconds; a zero resolution is taken as 1 ms.
    pub fn new(durations: Vec<u64>, resolution: u64) -> WindowSpec {
        let durations: Vec<i64> = durations.into_iter().map(|d| d as i64).collect();
        let resolution = (resolution as i64).max(1);
        let width_of = |d: i64| resolution * (d / (BUCKETS_PER_WINDOW * resolution)).max(1);
        let mut levels: Vec<Level> = Vec::new();
        for &d in &durations {
            let width = width_of(d);
            match levels.iter_mut().find(|l| l.width == width) {
                Some(level) => level.span = level.span.max(d),
                None => levels.push(Level { width, span: d }),
            }
        }
        levels.sort_by_key(|l| l.width);
        let level_of = durations
            .iter()
            .map(|&d| {
                let width = width_of(d);
                levels.iter().position(|l| l.width == width).unwrap_or(0)
            })
            .collect();
        WindowSpec {
            durations,
            resolution,
            levels,
            level_of,
        }
    }

    /// The configured durations, in milliseconds.
    pub fn durations(&self) -> &[i64] {
        &self.durations
    }

    /// The same resolution with only those of this spec's durations that `keep` names: a
    /// vital's layout when nothing reads its other windows. Each kept duration has the bucket
    /// width it had here, so its statistics are the same to the bit.
    pub fn keeping(&self, keep: impl Fn(i64) -> bool) -> WindowSpec {
        let durations = self.durations.iter().copied().filter(|&d| keep(d));
        WindowSpec::new(
            durations.map(|d| d as u64).collect(),
            self.resolution as u64,
        )
    }

    /// Whether no window is kept: a vital of this layout keeps only its last value.
    pub fn is_empty(&self) -> bool {
        self.levels.is_empty()
    }

    /// The bucket width of the window of `duration_ms` (a configured one; otherwise the finest
    /// level that covers it, or the coarsest).
    pub fn width(&self, duration_ms: i64) -> i64 {
        self.levels
            .get(self.level(duration_ms))
            .map_or(1, |l| l.width)
    }

    /// The most buckets one vital can hold.
    pub fn max_buckets(&self) -> usize {
        self.levels
            .iter()
            .map(|l| (l.span / l.width) as usize + 1)
            .sum()
    }

    fn level(&self, duration_ms: i64) -> usize {
        if let Some(i) = self.durations.iter().position(|&d| d == duration_ms) {
            return self.level_of[i];
        }
        self.levels
            .iter()
            .position(|l| l.span >= duration_ms)
            .unwrap_or(self.levels.len().saturating_sub(1))
    }
}

/// Statistics of one window.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct WindowStats {
    pub count: u32,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    /// Population standard deviation.
    pub std: f64,
    /// Least-squares slope in units per hour; 0 with fewer than two distinct times.
    pub slope_per_hour: f64,
}

/// Sums over the samples of one bucket; times are hours since the bucket's start.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize)]
struct Bucket {
    index: i64,
    count: u32,
    sum: f64,
    sum_sq: f64,
    min: f64,
    max: f64,
    sum_t: f64,
    sum_tt: f64,
    sum_tv: f64,
}

impl Bucket {
    fn empty(index: i64) -> Bucket {
        Bucket {
            index,
            count: 0,
            sum: 0.0,
            sum_sq: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            sum_t: 0.0,
            sum_tt: 0.0,
            sum_tv: 0.0,
        }
    }

    /// Folds in `other`, whose times are `shift` hours after this bucket's start.
    fn merge(&mut self, other: &Bucket, shift: f64) {
        let c = other.count as f64;
        self.count += other.count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
        self.sum_t += c * shift + other.sum_t;
        self.sum_tt += c * shift * shift + 2.0 * shift * other.sum_t + other.sum_tt;
        self.sum_tv += shift * other.sum + other.sum_tv;
    }

    fn add(&mut self, hours_into_bucket: f64, value: f64) {
        self.count += 1;
        self.sum += value;
        self.sum_sq += value * value;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
        self.sum_t += hours_into_bucket;
        self.sum_tt += hours_into_bucket * hours_into_bucket;
        self.sum_tv += hours_into_bucket * value;
    }
}

/// The rolling state of one vital of one patient.
///
/// A sample is added to one bucket: `pending`, the newest resolution step. When a later step
/// begins, the pending bucket is folded into the bucket of each level that contains it (widths
/// are whole multiples of the resolution, so one always does), so that a 1 Hz vital touches one
/// bucket per sample, not one per level. Statistics add the pending bucket to the level's.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct VitalWindow {
    /// One ring of buckets per level of the spec, oldest first; empty until the first sample.
    levels: Vec<VecDeque<Bucket>>,
    /// The newest resolution step (its index in steps), not yet in `levels`; at most one.
    pending: Option<Box<Bucket>>,
    last: Option<(i64, f64)>,
}

impl VitalWindow {
    /// Asks for the block a push to the current resolution step writes (see
    /// [`crate::prefetch`]).
    pub fn prefetch(&self) {
        if let Some(p) = self.pending.as_deref() {
            crate::prefetch::line(p);
        }
    }

    /// Adds a sample at `time_ms`; as a new resolution step begins, evicts buckets older than
    /// each level's longest window.
    pub fn push(&mut self, spec: &WindowSpec, time_ms: i64, value: f64) {
        if self.last.is_none_or(|(t, _)| time_ms >= t) {
            self.last = Some((time_ms, value));
        }
        if spec.is_empty() {
            return;
        }
        if self.levels.len() != spec.levels.len() {
            self.levels = vec![VecDeque::new(); spec.levels.len()];
        }
        let step = time_ms.div_euclid(spec.resolution);
        let into = (time_ms - step * spec.resolution) as f64 / MS_PER_HOUR;
        match self.pending.as_deref_mut() {
            Some(p) if p.index == step => p.add(into, value),
            Some(p) if p.index > step => {
                // Out of order (rare): straight into the levels, into its own buckets.
                let mut one = Bucket::empty(step);
                one.add(into, value);
                self.fold(spec, &one);
            }
            _ => {
                let mut next = Bucket::empty(step);
                next.add(into, value);
                if let Some(done) = self.pending.replace(Box::new(next)) {
                    self.fold(spec, &done);
                }
                // Buckets leave a level only as time crosses a step: evicting here, not at
                // every sample, keeps at most one bucket more per level (statistics skip it).
                let now = self.last.map_or(time_ms, |(t, _)| t);
                self.evict(spec, now);
            }
        }
    }

    /// Adds a resolution step's bucket to the bucket of each level that contains it.
    fn fold(&mut self, spec: &WindowSpec, step: &Bucket) {
        let start_ms = step.index * spec.resolution;
        for (level, buckets) in spec.levels.iter().zip(&mut self.levels) {
            let index = start_ms.div_euclid(level.width);
            let shift = (start_ms - index * level.width) as f64 / MS_PER_HOUR;
            let at = match buckets.back() {
                Some(b) if b.index == index => buckets.len() - 1,
                Some(b) if b.index > index => {
                    let at = buckets.partition_point(|b| b.index < index);
                    if buckets.get(at).is_none_or(|b| b.index != index) {
                        buckets.insert(at, Bucket::empty(index));
                    }
                    at
                }
                _ => {
                    if buckets.len() == buckets.capacity() {
                        // Grow one bucket at a time: a level holds at most 13 (a rarely sampled
                        // vital far fewer), and doubling would leave up to half of it unused.
                        buckets.reserve_exact(1);
                    }
                    buckets.push_back(Bucket::empty(index));
                    buckets.len() - 1
                }
            };
            buckets[at].merge(step, shift);
        }
    }

    /// Drops buckets that no window ending at `now_ms` or later can cover.
    pub fn evict(&mut self, spec: &WindowSpec, now_ms: i64) {
        for (level, buckets) in spec.levels.iter().zip(&mut self.levels) {
            evict(buckets, level, now_ms);
        }
    }

    /// The last value and its time (ms).
    pub fn last(&self) -> Option<(i64, f64)> {
        self.last
    }

    /// Heap bytes held by this window.
    pub fn heap_bytes(&self) -> usize {
        self.levels.capacity() * std::mem::size_of::<VecDeque<Bucket>>()
            + self
                .pending
                .as_ref()
                .map_or(0, |_| std::mem::size_of::<Bucket>())
            + self
                .levels
                .iter()
                .map(|b| b.capacity() * std::mem::size_of::<Bucket>())
                .sum::<usize>()
    }

    /// Buckets held now, over every level: the measure of this window's memory.
    pub fn buckets(&self) -> usize {
        self.levels.iter().map(VecDeque::len).sum::<usize>() + usize::from(self.pending.is_some())
    }

    /// Statistics over the `duration_ms` ending at `now_ms`; `None` when the window is empty,
    /// or is not one of `spec`'s (a layout that does not keep it, see [`WindowSpec::keeping`]).
    pub fn stats(&self, spec: &WindowSpec, duration_ms: i64, now_ms: i64) -> Option<WindowStats> {
        let at = spec.durations.iter().position(|&d| d == duration_ms)?;
        let level = spec.level_of[at];
        let buckets = self.levels.get(level)?;
        let width = spec.levels[level].width;
        let first = (now_ms - duration_ms).div_euclid(width);
        let last = now_ms.div_euclid(width);
        // Buckets are in index order: skip the old ones, stop at the first after `now`.
        let from = buckets.partition_point(|b| b.index < first);
        let held = buckets
            .range(from..)
            .take_while(|b| b.index <= last)
            .map(|b| (b.index * width, b));
        let pending = self
            .pending
            .as_deref()
            .map(|p| (p.index * spec.resolution, p))
            .filter(|(start, _)| (first..=last).contains(&start.div_euclid(width)));
        let mut total = Bucket::empty(0);
        for (start_ms, b) in held.chain(pending) {
            // Times relative to `now` (negative hours), so sums stay small.
            total.merge(b, (start_ms - now_ms) as f64 / MS_PER_HOUR);
        }
        let Bucket {
            count: n,
            sum,
            sum_sq,
            min,
            max,
            sum_t: st,
            sum_tt: stt,
            sum_tv: stv,
            ..
        } = total;
        if n == 0 {
            return None;
        }
        let nf = n as f64;
        let mean = sum / nf;
        let variance = (sum_sq / nf - mean * mean).max(0.0);
        let t_var = stt / nf - (st / nf) * (st / nf);
        let slope = if t_var > 1e-12 {
            (stv / nf - (st / nf) * mean) / t_var
        } else {
            0.0
        };
        Some(WindowStats {
            count: n,
            mean,
            min,
            max,
            std: variance.sqrt(),
            slope_per_hour: slope,
        })
    }
}

fn evict(buckets: &mut VecDeque<Bucket>, level: &Level, now_ms: i64) {
    let oldest = (now_ms - level.span).div_euclid(level.width);
    while buckets.front().is_some_and(|b| b.index < oldest) {
        buckets.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MIN: i64 = 60_000;

    fn spec() -> WindowSpec {
        WindowSpec::new(vec![15 * MIN as u64, 60 * MIN as u64], MIN as u64)
    }

    #[test]
    fn statistics_of_a_known_series() {
        let spec = spec();
        let mut w = VitalWindow::default();
        for (i, v) in [10.0, 20.0, 30.0, 40.0].into_iter().enumerate() {
            w.push(&spec, i as i64 * MIN, v);
        }
        let s = w.stats(&spec, 60 * MIN, 3 * MIN).unwrap();
        assert_eq!(s.count, 4);
        assert_eq!((s.mean, s.min, s.max), (25.0, 10.0, 40.0));
        assert!((s.std - 125f64.sqrt()).abs() < 1e-9);
        assert!((s.slope_per_hour - 600.0).abs() < 1e-6); // 10 per minute
        assert_eq!(w.last(), Some((3 * MIN, 40.0)));
    }

    #[test]
    fn windows_cover_only_their_duration() {
        let spec = spec();
        let mut w = VitalWindow::default();
        for minute in 0..=60 {
            w.push(&spec, minute * MIN, minute as f64);
        }
        // 15 min ending at minute 60 covers minutes 45..=60.
        let s = w.stats(&spec, 15 * MIN, 60 * MIN).unwrap();
        assert_eq!((s.count, s.min, s.max), (16, 45.0, 60.0));
        // The same window later, with no new samples, has fewer.
        let s = w.stats(&spec, 15 * MIN, 70 * MIN).unwrap();
        assert_eq!((s.count, s.min), (6, 55.0));
        assert_eq!(w.stats(&spec, 15 * MIN, 200 * MIN), None);
    }

    #[test]
    fn state_is_bounded_by_the_longest_window() {
        let spec = spec();
        let mut w = VitalWindow::default();
        for second in 0..(6 * 3600) {
            w.push(&spec, second * 1000, 70.0);
        }
        assert!(w.buckets() <= spec.max_buckets(), "{} buckets", w.buckets());
        // 15 min in 1 min buckets, 1 h in 5 min buckets (a twelfth of it).
        assert_eq!(spec.max_buckets(), 16 + 13);
    }

    #[test]
    fn each_window_is_kept_in_about_twelve_buckets_of_its_own_width() {
        const H: i64 = 60 * MIN;
        let spec = WindowSpec::new(
            [15 * MIN, H, 4 * H, 12 * H].map(|d| d as u64).to_vec(),
            5 * MIN as u64,
        );
        let widths = [15 * MIN, H, 4 * H, 12 * H].map(|d| spec.width(d));
        assert_eq!(widths, [5 * MIN, 5 * MIN, 20 * MIN, H]);
        // A coarse resolution is never refined: PhysioNet's hourly charts stay in 1 h buckets.
        let hourly = WindowSpec::new([H, 4 * H, 12 * H].map(|d| d as u64).to_vec(), H as u64);
        assert_eq!([H, 4 * H, 12 * H].map(|d| hourly.width(d)), [H; 3]);
        let mut w = VitalWindow::default();
        for second in 0..(13 * 3600) {
            w.push(&spec, second * 1000, 70.0 + (second % 7) as f64);
        }
        assert_eq!(w.buckets(), 13 + 13 + 13);
        // The 12 h window ends at now and starts at the hour boundary at or before now − 12 h
        // (0:59:59 → 0:00), the 15 min one at the 5 min boundary (12:44:59 → 12:40).
        let now = 13 * H - 1000;
        let s = w.stats(&spec, 12 * H, now).unwrap();
        assert_eq!(s.count as i64, 13 * H / 1000);
        let s = w.stats(&spec, 12 * H, now + 1000).unwrap();
        assert_eq!(s.count as i64, 12 * H / 1000);
        let s = w.stats(&spec, 15 * MIN, now).unwrap();
        assert_eq!(s.count as i64, 20 * MIN / 1000);
    }

    #[test]
    fn a_constant_series_has_no_spread_and_no_slope() {
        let spec = spec();
        let mut w = VitalWindow::default();
        for second in 0..600 {
            w.push(&spec, 1_700_000_000_000 + second * 1000, 97.0);
        }
        let s = w
            .stats(&spec, 60 * MIN, 1_700_000_000_000 + 599_000)
            .unwrap();
        assert_eq!((s.count, s.mean, s.std), (600, 97.0, 0.0));
        assert!(s.slope_per_hour.abs() < 1e-9);
    }

    proptest! {
        /// Samples delivered out of order (as late as the dataflow allows) give the statistics
        /// of the same samples in order, on every level.
        #[test]
        fn arrival_order_does_not_change_the_statistics(
            samples in proptest::collection::vec((0i64..3 * 3_600_000, 30.0f64..200.0), 1..200),
            swaps in proptest::collection::vec((0usize..200, 0usize..200), 0..50),
        ) {
            let spec = spec();
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| s.0);
            let mut shuffled = sorted.clone();
            for (a, b) in swaps {
                let (a, b) = (a % shuffled.len(), b % shuffled.len());
                shuffled.swap(a, b);
            }
            let (mut x, mut y) = (VitalWindow::default(), VitalWindow::default());
            for &(t, v) in &sorted {
                x.push(&spec, t, v);
            }
            for &(t, v) in &shuffled {
                y.push(&spec, t, v);
            }
            let now = sorted.last().unwrap().0;
            for d in [15 * MIN, 60 * MIN] {
                let (a, b) = (x.stats(&spec, d, now), y.stats(&spec, d, now));
                prop_assert_eq!(a.map(|s| s.count), b.map(|s| s.count));
                if let (Some(a), Some(b)) = (a, b) {
                    prop_assert_eq!((a.min, a.max), (b.min, b.max));
                    prop_assert!((a.mean - b.mean).abs() < 1e-9);
                    prop_assert!((a.std - b.std).abs() < 1e-6);
                    prop_assert!((a.slope_per_hour - b.slope_per_hour).abs() < 1e-6 * (1.0 + a.slope_per_hour.abs()));
                }
            }
        }

        /// Bucketed statistics equal a direct computation over the same samples.
        #[test]
        fn buckets_agree_with_a_direct_computation(
            samples in proptest::collection::vec((0i64..3 * 3_600_000, 30.0f64..200.0), 1..200),
        ) {
            let spec = spec();
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| s.0);
            let mut w = VitalWindow::default();
            for &(t, v) in &sorted {
                w.push(&spec, t, v);
            }
            let now = sorted.last().unwrap().0;
            let width = spec.width(60 * MIN);
            let first = (now - 60 * MIN).div_euclid(width) * width;
            let inside: Vec<(f64, f64)> = sorted.iter().filter(|s| s.0 >= first).map(|&(t, v)| ((t - now) as f64 / MS_PER_HOUR, v)).collect();
            let n = inside.len() as f64;
            let mean = inside.iter().map(|s| s.1).sum::<f64>() / n;
            let tm = inside.iter().map(|s| s.0).sum::<f64>() / n;
            let cov = inside.iter().map(|s| (s.0 - tm) * (s.1 - mean)).sum::<f64>() / n;
            let var_t = inside.iter().map(|s| (s.0 - tm).powi(2)).sum::<f64>() / n;
            let std = (inside.iter().map(|s| (s.1 - mean).powi(2)).sum::<f64>() / n).sqrt();
            let stats = w.stats(&spec, 60 * MIN, now).unwrap();
            prop_assert_eq!(stats.count as usize, inside.len());
            prop_assert!((stats.mean - mean).abs() < 1e-9);
            prop_assert!((stats.std - std).abs() < 1e-6);
            if var_t > 1e-9 {
                prop_assert!((stats.slope_per_hour - cov / var_t).abs() < 1e-3 * (1.0 + (cov / var_t).abs()));
            }
        }
    }
}
