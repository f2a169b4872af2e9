//! Pacing: any source replayed at a multiple of real time (`--speed 60`: an hour a minute).
//!
//! Records are released when the wall clock since the first record, times the speed, reaches
//! their event time since the first record's. Pacing changes when results appear, never what
//! they are.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{Checkpoint, Progress, Source, SourceError, SourceItem};

/// How long one call may wait for the next record's time to come.
const MAX_WAIT: Duration = Duration::from_millis(50);

/// A source released at `speed` × real time.
pub struct Paced {
    inner: Box<dyn Source>,
    speed: f64,
    buffer: VecDeque<SourceItem>,
    exhausted: bool,
    origin: Option<(Instant, i64)>,
}

impl Paced {
    pub fn new(inner: Box<dyn Source>, speed: f64) -> Paced {
        Paced {
            inner,
            speed: speed.max(1e-6),
            buffer: VecDeque::new(),
            exhausted: false,
            origin: None,
        }
    }
}

fn time_of(item: &SourceItem) -> Option<i64> {
    match item {
        SourceItem::Observation(o, _) => Some(o.time().micros()),
        SourceItem::Rejected(r) => r.subject.as_ref().map(|s| s.time.micros()),
    }
}

impl Source for Paced {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        if self.buffer.is_empty() && !self.exhausted {
            let mut items = Vec::new();
            self.exhausted = !self.inner.fill(max, &mut items)?;
            self.buffer.extend(items);
        }
        let mut released = 0;
        while released < max {
            let Some(item) = self.buffer.front() else {
                break;
            };
            if let Some(t) = time_of(item) {
                let (start, first) = *self.origin.get_or_insert((Instant::now(), t));
                let due =
                    start + Duration::from_secs_f64(((t - first).max(0) as f64 / 1e6) / self.speed);
                let now = Instant::now();
                if due > now {
                    if released == 0 {
                        std::thread::sleep((due - now).min(MAX_WAIT));
                    }
                    break;
                }
            }
            if let Some(item) = self.buffer.pop_front() {
                out.push(item);
                released += 1;
            }
        }
        Ok(!(self.exhausted && self.buffer.is_empty()))
    }

    fn progress(&self) -> Progress {
        self.inner.progress()
    }

    fn expected_partitions(&self) -> Option<usize> {
        self.inner.expected_partitions()
    }

    fn resumed(&self) -> super::Resumed {
        self.inner.resumed()
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        self.inner.checkpoint()
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        self.inner.commit(checkpoint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SimulatorConfig;
    use crate::sources::simulator::Simulator;

    #[test]
    fn releases_event_time_at_the_given_speed() {
        // One hour of a small cohort at 36,000× real time: about 0.1 s.
        let config = SimulatorConfig {
            patients: 2,
            hours: 1,
            ..SimulatorConfig::default()
        };
        let mut paced = Paced::new(Box::new(Simulator::new(&config)), 36_000.0);
        let started = Instant::now();
        let mut out = Vec::new();
        while paced.fill(1024, &mut out).unwrap() {}
        let elapsed = started.elapsed().as_secs_f64();
        assert!(elapsed >= 0.09, "released too fast: {elapsed} s");
        assert!(elapsed < 2.0, "released too slowly: {elapsed} s");
        let mut all = Vec::new();
        let mut plain = Simulator::new(&config);
        while plain.fill(1024, &mut all).unwrap() {}
        assert_eq!(out, all, "pacing changed what was read");
    }
}
