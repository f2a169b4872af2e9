//! Pacing: any source replayed at a multiple of real time (`--speed 60`: an hour a minute).
//!
//! Records are released when the wall clock since the first record, times the speed, reaches
//! their event time since the first record's. Pacing changes when results appear, never what
//! they are.
//!
//! Records read but not yet released are not in the checkpoint: committing them would lose them
//! in a crash, as they are neither archived nor processed.

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
    /// The inner source's checkpoint after its last read, and the latest one whose records have
    /// all been released.
    read: Option<Checkpoint>,
    released: Option<Checkpoint>,
}

impl Paced {
    pub fn new(inner: Box<dyn Source>, speed: f64) -> Paced {
        Paced {
            inner,
            speed: speed.max(1e-6),
            buffer: VecDeque::new(),
            exhausted: false,
            origin: None,
            read: None,
            released: None,
        }
    }
}

impl Source for Paced {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        if self.buffer.is_empty() && !self.exhausted {
            let mut items = Vec::new();
            self.exhausted = !self.inner.fill(max, &mut items)?;
            self.buffer.extend(items);
            self.read = self.inner.checkpoint();
        }
        let mut released = 0;
        while released < max {
            let Some(item) = self.buffer.front() else {
                break;
            };
            if let Some(t) = item.time_us() {
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
        if self.buffer.is_empty() {
            self.released.clone_from(&self.read);
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
        self.released.clone()
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        self.inner.commit(checkpoint)
    }

    fn live(&self) -> bool {
        self.inner.live()
    }

    fn lag(&self) -> Vec<(i32, i64)> {
        self.inner.lag()
    }

    fn stalled(&mut self) -> Vec<super::kafka::Stall> {
        self.inner.stalled()
    }

    fn drained(&mut self, silent: Duration) -> Result<super::Drained, SourceError> {
        self.inner.drained(silent)
    }

    fn time_ordered(&self) -> bool {
        self.inner.time_ordered()
    }

    fn dead_letter(
        &mut self,
        at: Option<super::Position>,
        patient: &str,
        wire: &str,
        reason: &str,
    ) -> Result<(), SourceError> {
        self.inner.dead_letter(at, patient, wire, reason)
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

    /// A source of `n` numbered heart rates, one a minute, whose checkpoint counts what it gave.
    struct Counted {
        n: i64,
        given: i64,
    }

    impl Source for Counted {
        fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
            while self.given < self.n && out.len() < max {
                let obs = crate::observation::Observation::new(
                    crate::observation::Identifier::new("p").unwrap(),
                    None,
                    crate::observation::EventTime::from_micros(self.given * 60_000_000),
                    crate::observation::Vital::HeartRate,
                    crate::observation::Value::Number(70.0),
                    Some(crate::observation::Unit::PerMinute),
                )
                .unwrap();
                out.push(SourceItem::Observation(obs, None));
                self.given += 1;
            }
            Ok(self.given < self.n)
        }

        fn progress(&self) -> Progress {
            Progress::default()
        }

        fn checkpoint(&self) -> Option<Checkpoint> {
            Some(Checkpoint {
                offsets: vec![(0, self.given)],
            })
        }
    }

    #[test]
    fn the_checkpoint_never_covers_records_held_back() {
        // 10 minutes of event time at 6,000× real time: 0.1 s, released a few at a time.
        let mut paced = Paced::new(Box::new(Counted { n: 11, given: 0 }), 6_000.0);
        let mut out = Vec::new();
        let mut partial = 0;
        loop {
            let more = paced.fill(1024, &mut out).unwrap();
            let covered = paced.checkpoint().map_or(0, |c| c.offsets[0].1);
            assert!(
                covered <= out.len() as i64,
                "{covered} committable, {} released",
                out.len()
            );
            // The inner source gave all 11 at its first read: anything between is held back.
            partial += usize::from((1..11).contains(&out.len()));
            if !more {
                break;
            }
        }
        assert!(
            partial > 0,
            "nothing was ever held back: the test tests nothing"
        );
        assert_eq!(paced.checkpoint().map(|c| c.offsets[0].1), Some(11));
    }
}
