//! A Kafka source resumed over its own archive, after a crash or a stop: patients' state is
//! rebuilt from the archive before the topic is read again, so that a restart gives the alerts an
//! uninterrupted run would have given.
//!
//! A restart reads the topic from the last committed offsets, which lag what the archive holds
//! (offsets are committed only once alerts are delivered too). Without the archive, every
//! patient would start with empty windows and no alert history: a band already raised would be
//! raised again, a reminder due would be forgotten, a de-escalation would restart its count.
//!
//! So each worker first replays the processed rows of the archive that came from its own
//! partitions, in event-time order, through the same dataflow; then it reads those partitions
//! and skips the messages the archive already holds (they were just replayed). Replaying by
//! partition gives every partition's event-time clock back the position it had when the rows
//! were archived, so the same records are late as live. Rows that arrived late live are
//! archived but were not processed, and are not replayed either.

use std::sync::Arc;

use super::archive::ArchiveReplay;
use super::{Checkpoint, Progress, Resumed, Source, SourceError, SourceItem};
use crate::archive::ArchivedOffsets;

/// The archive first, then the topic without what the archive holds.
pub struct Resume {
    replay: Option<ArchiveReplay>,
    archived: Arc<ArchivedOffsets>,
    topic: Box<dyn Source>,
    done: Resumed,
}

impl Resume {
    /// `replay` holds the archive's rows of the partitions `topic` reads; `archived` the
    /// offsets the archive holds.
    pub fn new(
        replay: ArchiveReplay,
        archived: Arc<ArchivedOffsets>,
        topic: Box<dyn Source>,
    ) -> Resume {
        Resume {
            replay: Some(replay),
            archived,
            topic,
            done: Resumed::default(),
        }
    }
}

impl Source for Resume {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        if let Some(replay) = &mut self.replay {
            let before = out.len();
            let more = replay.fill(max, out)?;
            self.done.restored += (out.len() - before) as u64;
            if !more {
                self.replay = None;
            }
            return Ok(true);
        }
        let start = out.len();
        let more = self.topic.fill(max, out)?;
        let before = out.len();
        let mut i = start;
        // In place: keep what the archive does not hold yet.
        out.retain(|item| {
            let keep = i < start || !self.archived.contains(item.position());
            i += 1;
            keep
        });
        self.done.skipped += (before - out.len()) as u64;
        Ok(more)
    }

    fn progress(&self) -> Progress {
        match &self.replay {
            Some(replay) => replay.progress(),
            None => self.topic.progress(),
        }
    }

    fn expected_partitions(&self) -> Option<usize> {
        self.topic.expected_partitions()
    }

    fn resumed(&self) -> Resumed {
        self.done
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        self.topic.checkpoint()
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        self.topic.commit(checkpoint)
    }

    fn live(&self) -> bool {
        self.topic.live()
    }

    fn lag(&self) -> Vec<(i32, i64)> {
        self.topic.lag()
    }

    fn stalled(&mut self) -> Vec<super::kafka::Stall> {
        self.topic.stalled()
    }

    fn drained(&mut self, silent: std::time::Duration) -> Result<super::Drained, SourceError> {
        self.topic.drained(silent)
    }

    fn dead_letter(
        &mut self,
        at: Option<super::Position>,
        patient: &str,
        wire: &str,
        reason: &str,
    ) -> Result<(), SourceError> {
        self.topic.dead_letter(at, patient, wire, reason)
    }
}
