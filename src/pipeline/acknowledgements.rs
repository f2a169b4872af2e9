//! Acknowledgements on file: `acks.jsonl` in the archive, one [`Acknowledgement`] a line, each
//! with the event time it took effect at. A run that resumes over the archive, and a replay of
//! it, apply them again at those times, so its reminders and escalations come out exactly as
//! they did live. `vigil run --acks FILE` applies a file of them (and records them in the
//! archive). In an encrypted archive each line is sealed with its key ([`crate::archive::sealed`]).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Acknowledgement, PipelineError};
use crate::archive::{ArchiveKey, sealed};

/// The archive's file of acknowledgements.
pub fn archived(dir: &Path) -> PathBuf {
    dir.join("acks.jsonl")
}

/// Reads a file of acknowledgements, its sealed lines opened with `key`; a line that is not
/// one is an error naming it. A file that does not exist holds none.
pub fn read(path: &Path, key: Option<&ArchiveKey>) -> Result<Vec<Acknowledgement>, PipelineError> {
    let Some(text) = sealed::read_text(path, key)? else {
        return Ok(Vec::new());
    };
    let mut acks = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let ack = serde_json::from_str(line).map_err(|e| PipelineError::Acknowledgements {
            path: path.to_owned(),
            line: i + 1,
            reason: e.to_string(),
        })?;
        acks.push(ack);
    }
    Ok(acks)
}

/// Appends to the archive's file what it does not hold yet, synced; returns them all.
pub fn record(
    dir: &Path,
    given: Vec<Acknowledgement>,
    key: Option<&ArchiveKey>,
) -> Result<Vec<Acknowledgement>, PipelineError> {
    let path = archived(dir);
    let mut all = read(&path, key)?;
    let new: Vec<Acknowledgement> = given.into_iter().filter(|a| !all.contains(a)).collect();
    if new.is_empty() {
        return Ok(all);
    }
    append(&path, &new, key)?;
    all.extend(new);
    Ok(all)
}

/// Appends `acks` to the file at `path`, synced; sealed with `key`, when there is one.
fn append(
    path: &Path,
    acks: &[Acknowledgement],
    key: Option<&ArchiveKey>,
) -> Result<(), PipelineError> {
    let error = |source| PipelineError::Output {
        what: format!("acknowledgements {}", path.display()),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(error)?;
    let mut text = String::new();
    for ack in acks {
        let line = serde_json::to_string(ack).unwrap_or_default();
        match key {
            Some(key) => text.push_str(&sealed::seal_line(key, "acks.jsonl", &line)?),
            None => text.push_str(&line),
        }
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(error)?;
    file.sync_data().map_err(error)
}

/// An acknowledgement a clinician just made (on the board): what it acknowledges, not yet when
/// it takes effect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AckRequest {
    pub patient: crate::observation::Identifier,
    pub alert: String,
    pub kind: crate::alerting::AlertKind,
    pub alert_time_us: i64,
    pub by: String,
    pub note: String,
}

/// Acknowledgements made while a run goes on, waiting for worker 0's source to give them to
/// the dataflow. The source stamps each at the watermark it reads at (so it takes effect at an
/// event time the monitors have not passed), records it in the archive, synced, before the
/// dataflow hears of it, and so a resumed run and a replay apply it at that same instant.
#[derive(Debug, Default)]
pub struct LiveAcks {
    waiting: std::sync::Mutex<Vec<AckRequest>>,
    /// The archive, where each is recorded, and its key.
    archive: Option<PathBuf>,
    key: Option<std::sync::Arc<ArchiveKey>>,
}

impl LiveAcks {
    /// A queue whose acknowledgements are recorded in the archive `dir`, if any.
    pub fn new(archive: Option<PathBuf>, key: Option<std::sync::Arc<ArchiveKey>>) -> LiveAcks {
        LiveAcks {
            waiting: std::sync::Mutex::default(),
            archive,
            key,
        }
    }

    /// Queues one.
    pub fn push(&self, request: AckRequest) {
        if let Ok(mut waiting) = self.waiting.lock() {
            waiting.push(request);
        }
    }

    /// Takes what waits, stamped to take effect at `at_us`, recorded in the archive first.
    pub fn take(&self, at_us: i64) -> Result<Vec<Acknowledgement>, PipelineError> {
        let requests = match self.waiting.lock() {
            Ok(mut waiting) if !waiting.is_empty() => std::mem::take(&mut *waiting),
            _ => return Ok(Vec::new()),
        };
        let acks: Vec<Acknowledgement> = requests
            .into_iter()
            .map(|r| Acknowledgement {
                patient: r.patient,
                alert: r.alert,
                kind: r.kind,
                alert_time_us: r.alert_time_us,
                by: r.by,
                note: r.note,
                at_us,
            })
            .collect();
        if let Some(dir) = &self.archive {
            append(&archived(dir), &acks, self.key.as_deref())?;
        }
        Ok(acks)
    }
}
