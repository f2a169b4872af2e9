//! Replay of a Parquet archive (see [`crate::archive`]): every archived record in event-time
//! order, optionally limited to a time range and to some patients, each with the verdict the live
//! run gave it ([`Archived`]).
//!
//! The pipeline takes those verdicts as recorded rather than judge the records again: a record
//! that arrived late live is late in the replay (not processed), and one held aside for its
//! device's clock is held again, at the time it was held, so that a replay gives the alerts the
//! live run gave. Impossible values come back as rejections of a known patient, as they were
//! live. A held record is replayed at the time it was held (its `clock`), not at its own.

use std::collections::HashSet;
use std::path::Path;

use super::{Archived, Position, Progress, Recorded, Rejected, Source, SourceError, SourceItem};
use crate::archive::{self, ArchiveError, Row};
use crate::observation::{EventTime, Observation, Subject};

fn position(row: &Row) -> Option<Position> {
    row.offset.map(|offset| Position {
        partition: row.partition,
        offset,
        entry: row.entry,
    })
}

/// Event-time order (a held record at the time it was held), with a total order for ties
/// (ingest order last).
fn order(
    row: &Row,
) -> (
    i64,
    &str,
    crate::observation::Vital,
    Option<&str>,
    i64,
    Option<i64>,
) {
    let time = match row.held {
        Some(_) => row.clock_us,
        None => row.time.micros(),
    };
    (
        time,
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
    /// Only rows that happened, or were judged (their partition's clock), from this instant on
    /// (µs): a restart from a snapshot replays the archive after it.
    pub since_us: Option<i64>,
}

impl Selection {
    fn admits(&self, row: &Row) -> bool {
        self.from.is_none_or(|f| row.time >= f)
            && self
                .since_us
                .is_none_or(|s| row.time.micros() >= s || row.clock_us >= s)
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
    /// Loads the selected rows of the archive under `dir`, decrypting them with `key`.
    pub fn open(
        dir: &Path,
        selection: &Selection,
        key: Option<&archive::ArchiveKey>,
    ) -> Result<ArchiveReplay, SourceError> {
        let to_source = |e: ArchiveError| match e {
            ArchiveError::Io { path, source } => SourceError::Io { path, source },
            ArchiveError::Format { path, reason } => SourceError::Format { path, reason },
        };
        let files = archive::files(dir).map_err(to_source)?;
        if files.is_empty() {
            return Err(SourceError::Format {
                path: dir.to_owned(),
                reason: "no archive files (observations/date=*/part-*.parquet)".into(),
            });
        }
        let mut rows = Vec::new();
        for file in &files {
            rows.extend(
                archive::read_file_since(
                    file,
                    selection.source.as_deref(),
                    key,
                    selection.since_us,
                )
                .map_err(to_source)?
                .into_iter()
                .filter(|r| selection.admits(r)),
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
            out.push(SourceItem::Archived(Box::new(archived(row))));
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

    /// Rows are sorted by event time when the archive is opened.
    fn time_ordered(&self) -> bool {
        true
    }
}

/// A row as the record it was, with its verdict.
fn archived(row: &Row) -> Archived {
    let verdict = match (row.held, row.processed) {
        (Some(kind), _) => Recorded::Held(kind),
        (None, true) => Recorded::OnTime,
        (None, false) => Recorded::Late,
    };
    let rejected = |reason: String, subject: Option<Subject>| {
        SourceItem::Rejected(Rejected {
            position: format!("archive offset {:?}", row.offset),
            at: position(row),
            reason,
            field: Some("value"),
            subject,
            raw: None,
        })
    };
    let item = match (&row.invalid_reason, row.held) {
        (Some(reason), None) => rejected(
            reason.clone(),
            Some(Subject {
                patient: row.patient.clone(),
                time: row.time,
                vital: row.vital,
            }),
        ),
        _ => match Observation::with_detail(
            row.patient.clone(),
            row.device.clone(),
            row.time,
            row.vital,
            row.value,
            row.unit,
            row.detail.clone(),
        ) {
            Ok(obs) => SourceItem::Observation(obs, position(row)),
            // An impossible value held for its clock (its reason is the hold's): held again,
            // so that its patient hears of the clock as they did live.
            Err(e) => rejected(
                e.to_string(),
                row.held.map(|_| Subject {
                    patient: row.patient.clone(),
                    time: row.time,
                    vital: row.vital,
                }),
            ),
        },
    };
    Archived {
        item,
        verdict,
        clock_us: row.clock_us,
        ingest_us: row.ingest_us,
        reason: row.held.and(row.invalid_reason.clone()),
    }
}
