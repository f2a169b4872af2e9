//! Where raw records go besides the dataflow: the archive (every record that reached Vigil, in
//! each partition's arrival order), the dead-letter file (rejected and held records, with the
//! reason) and the late file.

use std::collections::VecDeque;
use std::io;
use std::path::Path;
use std::sync::{Arc, Mutex};

use serde::Serialize;

use crate::archive::{ArchiveWriter, Row};
use crate::observation::Observation;
use crate::sinks::{JsonLines, with_path};
use crate::sources::Position;

/// The dead-letter and late files, shared by the workers' sources.
#[derive(Clone, Default)]
pub struct SharedFiles {
    dead_letter: Option<Arc<Mutex<JsonLines>>>,
    late: Option<Arc<Mutex<JsonLines>>>,
}

impl SharedFiles {
    pub fn open(dead_letter: Option<&Path>, late: Option<&Path>) -> io::Result<SharedFiles> {
        let open = |p: Option<&Path>| {
            p.map(|p| {
                JsonLines::create(p)
                    .map(|f| Arc::new(Mutex::new(f)))
                    .map_err(|e| with_path(e, p))
            })
            .transpose()
        };
        Ok(SharedFiles {
            dead_letter: open(dead_letter)?,
            late: open(late)?,
        })
    }
}

/// One line of the dead-letter file.
#[derive(Serialize)]
pub struct DeadLetter<'a> {
    pub position: &'a str,
    pub reason: &'a str,
    pub field: Option<&'a str>,
    pub raw: Option<&'a str>,
}

#[derive(Serialize)]
struct LateRecord {
    reason: &'static str,
    watermark: String,
    observation: serde_json::Value,
}

/// The archive and the side files of one worker's source.
pub struct SideOutputs {
    archive: Option<ArchiveWriter>,
    files: SharedFiles,
}

impl SideOutputs {
    pub fn new(archive: Option<ArchiveWriter>, files: SharedFiles) -> SideOutputs {
        SideOutputs { archive, files }
    }

    pub fn dead_letter(&mut self, record: &DeadLetter<'_>) -> io::Result<()> {
        if let Some(out) = &self.files.dead_letter {
            let mut out = out
                .lock()
                .map_err(|_| io::Error::other("dead-letter file poisoned"))?;
            out.write_record(record)?;
        }
        Ok(())
    }

    pub fn late(&mut self, obs: &Observation, watermark_us: i64) -> io::Result<()> {
        if let Some(out) = &self.files.late {
            let mut out = out
                .lock()
                .map_err(|_| io::Error::other("late file poisoned"))?;
            let observation =
                serde_json::from_str(&obs.to_json()).unwrap_or(serde_json::Value::Null);
            out.write_record(&LateRecord {
                reason: "event time is before its partition's watermark (the clock minus the allowed lateness)",
                watermark: crate::observation::EventTime::from_micros(watermark_us).to_rfc3339(),
                observation,
            })?;
        }
        Ok(())
    }

    /// Archives a row, unless an earlier run over this archive already holds its position.
    pub fn archive(&mut self, row: Row) -> Result<(), crate::archive::ArchiveError> {
        let Some(archive) = &mut self.archive else {
            return Ok(());
        };
        let at = row.offset.map(|offset| Position {
            partition: row.partition,
            offset,
            entry: row.entry,
        });
        if archive.already_archived(at) {
            return Ok(());
        }
        archive.push(row)
    }

    /// Makes everything archived so far durable.
    pub fn flush_archive(&mut self) -> Result<(), crate::archive::ArchiveError> {
        match &mut self.archive {
            Some(archive) => archive.flush(),
            None => Ok(()),
        }
    }

    /// Whether there is an archive.
    pub fn archives(&self) -> bool {
        self.archive.is_some()
    }

    /// (files, rows) archived.
    pub fn archived(&self) -> (u64, u64) {
        self.archive.as_ref().map_or((0, 0), ArchiveWriter::written)
    }

    /// Flushes the dead-letter and late files.
    pub fn flush_files(&mut self) -> io::Result<()> {
        for out in [&self.files.dead_letter, &self.files.late]
            .into_iter()
            .flatten()
        {
            let mut out = out
                .lock()
                .map_err(|_| io::Error::other("side file poisoned"))?;
            crate::sinks::AlertSink::flush(&mut *out)?;
        }
        Ok(())
    }
}

/// One partition's archive rows in arrival order. A record waiting for its verdict (see
/// [`super::clock`]) holds back the rows of the records after it, so that the archive keeps
/// every partition's records in the order they came, and a run resumed over it replays them as
/// they came.
#[derive(Debug, Default)]
pub struct ArchiveOrder {
    /// The number of the record at the front.
    front: u64,
    rows: VecDeque<Option<Row>>,
}

impl ArchiveOrder {
    /// A place for the next record's row; its number.
    pub fn reserve(&mut self) -> u64 {
        self.rows.push_back(None);
        self.front + self.rows.len() as u64 - 1
    }

    /// The row of record `seq`, once it has its verdict.
    pub fn fill(&mut self, seq: u64, row: Row) {
        if let Some(slot) = seq
            .checked_sub(self.front)
            .and_then(|i| self.rows.get_mut(i as usize))
        {
            *slot = Some(row);
        }
    }

    /// The rows now in order to be archived.
    pub fn ready(&mut self) -> impl Iterator<Item = Row> + '_ {
        std::iter::from_fn(|| {
            if !matches!(self.rows.front(), Some(Some(_))) {
                return None;
            }
            self.front += 1;
            self.rows.pop_front().flatten()
        })
    }

    /// The earliest event time of a processed row still held back (µs): the dataflow has it,
    /// the archive does not yet.
    pub fn held_back_processed_us(&self) -> Option<i64> {
        self.rows
            .iter()
            .flatten()
            .filter(|r| r.processed)
            .map(|r| r.time.micros())
            .min()
    }
}
