//! Rolling windows over event time, per patient and vital: last value and its age, count, mean,
//! minimum, maximum, standard deviation and slope per hour over each configured duration.
//!
//! Samples are folded into fixed-width buckets (the `resolution` of the pipeline's `[windows]`), so
//! a window's state is bounded by `max(durations) / resolution` buckets whatever the sampling rate;
//! buckets older than the longest window are evicted as time moves on. A window of duration `d`
//! at time `now` covers the buckets whose start is at or after `now − d` rounded down to the
//! resolution, so its edge is exact to one bucket.
//!
//! Samples are expected in event-time order per vital (the dataflow guarantees it); one that
//! arrives earlier than the newest bucket is still folded into its own bucket.
//!
//! ```
//! use vigil::windows::{VitalWindow, WindowSpec};
//!
//! let spec = WindowSpec::new(vec![3_600_000], 60_000); // 1 h at 1 min resolution
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

/// Window durations and bucket width, in milliseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowSpec {
    durations: Vec<i64>,
    resolution: i64,
    longest: i64,
}

impl WindowSpec {
    /// `durations` and `resolution` in milliseconds; a zero resolution is taken as 1 ms.
    pub fn new(durations: Vec<u64>, resolution: u64) -> WindowSpec {
        let durations: Vec<i64> = durations.into_iter().map(|d| d as i64).collect();
        let longest = durations.iter().copied().max().unwrap_or(0);
        WindowSpec {
            durations,
            resolution: (resolution as i64).max(1),
            longest,
        }
    }

    /// The configured durations, in milliseconds.
    pub fn durations(&self) -> &[i64] {
        &self.durations
    }

    /// The most buckets one vital can hold.
    pub fn max_buckets(&self) -> usize {
        (self.longest / self.resolution) as usize + 1
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
#[derive(Clone, Copy, Debug)]
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
#[derive(Clone, Debug, Default)]
pub struct VitalWindow {
    buckets: VecDeque<Bucket>,
    last: Option<(i64, f64)>,
}

impl VitalWindow {
    /// Adds a sample at `time_ms` and evicts buckets older than the longest window.
    pub fn push(&mut self, spec: &WindowSpec, time_ms: i64, value: f64) {
        if self.last.is_none_or(|(t, _)| time_ms >= t) {
            self.last = Some((time_ms, value));
        }
        let index = time_ms.div_euclid(spec.resolution);
        let into = (time_ms - index * spec.resolution) as f64 / MS_PER_HOUR;
        match self.buckets.back_mut() {
            Some(b) if b.index == index => b.add(into, value),
            Some(b) if b.index > index => {
                // Out of order (rare): find or insert the bucket, keeping the order.
                let at = self.buckets.partition_point(|b| b.index < index);
                if self.buckets.get(at).is_none_or(|b| b.index != index) {
                    self.buckets.insert(at, Bucket::empty(index));
                }
                self.buckets[at].add(into, value);
            }
            _ => {
                let mut b = Bucket::empty(index);
                b.add(into, value);
                self.buckets.push_back(b);
            }
        }
        self.evict(spec, self.last.map_or(time_ms, |(t, _)| t));
    }

    /// Drops buckets that no window ending at `now_ms` or later can cover.
    pub fn evict(&mut self, spec: &WindowSpec, now_ms: i64) {
        let oldest = (now_ms - spec.longest).div_euclid(spec.resolution);
        while self.buckets.front().is_some_and(|b| b.index < oldest) {
            self.buckets.pop_front();
        }
    }

    /// The last value and its time (ms).
    pub fn last(&self) -> Option<(i64, f64)> {
        self.last
    }

    /// Heap bytes held by this window.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Bucket>()
    }

    /// Buckets held now: the measure of this window's memory.
    pub fn buckets(&self) -> usize {
        self.buckets.len()
    }

    /// Statistics over the `duration_ms` ending at `now_ms`; `None` when the window is empty.
    pub fn stats(&self, spec: &WindowSpec, duration_ms: i64, now_ms: i64) -> Option<WindowStats> {
        let first = (now_ms - duration_ms).div_euclid(spec.resolution);
        let last = now_ms.div_euclid(spec.resolution);
        let (mut n, mut sum, mut sum_sq) = (0u32, 0.0, 0.0);
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        let (mut st, mut stt, mut stv) = (0.0, 0.0, 0.0);
        for b in self
            .buckets
            .iter()
            .filter(|b| b.index >= first && b.index <= last)
        {
            // Shift the bucket's times to hours relative to `now`, so sums stay small.
            let s = (b.index * spec.resolution - now_ms) as f64 / MS_PER_HOUR;
            let c = b.count as f64;
            n += b.count;
            sum += b.sum;
            sum_sq += b.sum_sq;
            min = min.min(b.min);
            max = max.max(b.max);
            st += c * s + b.sum_t;
            stt += c * s * s + 2.0 * s * b.sum_t + b.sum_tt;
            stv += s * b.sum + b.sum_tv;
        }
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
        assert_eq!(spec.max_buckets(), 61);
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
        /// Bucketed statistics equal a direct computation over the same samples.
        #[test]
        fn buckets_agree_with_a_direct_computation(
            samples in proptest::collection::vec((0i64..3_600_000, 30.0f64..200.0), 1..200),
        ) {
            let spec = spec();
            let mut sorted = samples.clone();
            sorted.sort_by_key(|s| s.0);
            let mut w = VitalWindow::default();
            for &(t, v) in &sorted {
                w.push(&spec, t, v);
            }
            let now = sorted.last().unwrap().0;
            let first = (now - 60 * MIN).div_euclid(MIN) * MIN;
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
