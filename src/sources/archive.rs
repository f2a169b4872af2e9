//! Replay of a Parquet archive (see [`crate::archive`]): the observations that were processed
//! live, in event-time order, optionally limited to a time range and to some patients.
//!
//! Rows that arrived late live were archived but not processed; a replay skips them too, so
//! that it gives the alerts the live run gave. Impossible values come back as rejections of a
//! known patient, as they were live.

use std::collections::HashSet;
use std::path::Path;

use super::{Position, Progress, Rejected, Source, SourceError, SourceItem};
use crate::archive::{self, ArchiveError, Row};
use crate::observation::{EventTime, Observation, Subject};

fn position(row: &Row) -> Option<Position> {
    row.offset.map(|offset| Position {
        partition: row.partition,
        offset,
    })
}

/// Event-time order, with a total order for ties (ingest order last).
fn order(
    row: &Row,
) -> (
    EventTime,
    &str,
    crate::observation::Vital,
    Option<&str>,
    i64,
    Option<i64>,
) {
    (
        row.time,
        row.patient.as_str(),
        row.vital,
        row.device.as_ref().map(|d| d.as_str()),
        row.ingest_us,
        row.offset,
    )
}

/// What to replay.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    pub from: Option<EventTime>,
    pub to: Option<EventTime>,
    /// Only these patients, when not empty.
    pub patients: HashSet<String>,
    /// Only rows from this source (`kafka:vitals`), when set.
    pub source: Option<String>,
    /// Only rows from these Kafka partitions, when set.
    pub partitions: Option<Vec<i32>>,
}

impl Selection {
    fn admits(&self, row: &Row) -> bool {
        self.from.is_none_or(|f| row.time >= f)
            && self.to.is_none_or(|t| row.time < t)
            && (self.patients.is_empty() || self.patients.contains(row.patient.as_str()))
            && self
                .partitions
                .as_ref()
                .is_none_or(|ps| row.partition.is_some_and(|p| ps.contains(&p)))
    }
}

/// An archive as a source.
pub struct ArchiveReplay {
    rows: Vec<Row>,
    next: usize,
}

impl ArchiveReplay {
    /// Loads the selected, processed rows of the archive under `dir`.
    pub fn open(dir: &Path, selection: &Selection) -> Result<ArchiveReplay, SourceError> {
        let to_source = |e: ArchiveError| match e {
            ArchiveError::Io { path, source } => SourceError::Io { path, source },
            ArchiveError::Format { path, reason } => SourceError::Format { path, reason },
        };
        let files = archive::files(dir).map_err(to_source)?;
        if files.is_empty() {
            return Err(SourceError::Format {
                path: dir.to_owned(),
                reason: "no archive files (date=*/part-*.parquet)".into(),
            });
        }
        let mut rows = Vec::new();
        for file in &files {
            rows.extend(
                archive::read_file_of(file, selection.source.as_deref())
                    .map_err(to_source)?
                    .into_iter()
                    .filter(|r| r.processed && selection.admits(r)),
            );
        }
        // Event-time order, with a total order for ties (ingest order last).
        rows.sort_by(|a, b| order(a).cmp(&order(b)));
        Ok(ArchiveReplay { rows, next: 0 })
    }

    /// Rows to replay.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl Source for ArchiveReplay {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let end = (self.next + max).min(self.rows.len());
        for row in &self.rows[self.next..end] {
            if let Some(reason) = &row.invalid_reason {
                out.push(SourceItem::Rejected(Rejected {
                    position: format!("archive offset {:?}", row.offset),
                    at: position(row),
                    reason: reason.clone(),
                    field: Some("value"),
                    subject: Some(Subject {
                        patient: row.patient.clone(),
                        time: row.time,
                        vital: row.vital,
                    }),
                    raw: None,
                }));
                continue;
            }
            match Observation::new(
                row.patient.clone(),
                row.device.clone(),
                row.time,
                row.vital,
                row.value,
                row.unit,
            ) {
                Ok(obs) => out.push(SourceItem::Observation(obs, position(row))),
                Err(e) => out.push(SourceItem::Rejected(Rejected {
                    position: format!("archive offset {:?}", row.offset),
                    at: position(row),
                    reason: e.to_string(),
                    field: Some("value"),
                    subject: None,
                    raw: None,
                })),
            }
        }
        self.next = end;
        Ok(self.next < self.rows.len())
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.next as u64,
            total: Some(self.rows.len() as u64),
        }
    }
}
