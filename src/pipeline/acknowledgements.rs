//! Acknowledgements on file: `acks.jsonl` in the archive, one [`Acknowledgement`] a line, each
//! with the event time it took effect at. A run that resumes over the archive, and a replay of
//! it, apply them again at those times, so its reminders and escalations come out exactly as
//! they did live. `vigil run --acks FILE` applies a file of them (and records them in the
//! archive).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::{Acknowledgement, PipelineError};

/// The archive's file of acknowledgements.
pub fn archived(dir: &Path) -> PathBuf {
    dir.join("acks.jsonl")
}

/// Reads a file of acknowledgements; a line that is not one is an error naming it. A file that
/// does not exist holds none.
pub fn read(path: &Path) -> Result<Vec<Acknowledgement>, PipelineError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(PipelineError::Output {
                what: format!("acknowledgements {}", path.display()),
                source,
            });
        }
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
) -> Result<Vec<Acknowledgement>, PipelineError> {
    let path = archived(dir);
    let mut all = read(&path)?;
    let new: Vec<Acknowledgement> = given.into_iter().filter(|a| !all.contains(a)).collect();
    if new.is_empty() {
        return Ok(all);
    }
    let error = |source| PipelineError::Output {
        what: format!("acknowledgements {}", path.display()),
        source,
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(error)?;
    let mut text = String::new();
    for ack in &new {
        text.push_str(&serde_json::to_string(ack).unwrap_or_default());
        text.push('\n');
    }
    file.write_all(text.as_bytes()).map_err(error)?;
    file.sync_data().map_err(error)?;
    all.extend(new);
    Ok(all)
}
