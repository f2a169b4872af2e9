//! Snapshots of every worker's patients, beside the archive, so that a restart replays only what
//! came after the latest one instead of the whole archive: its cost stays that of a few minutes
//! of data whatever the archive's length.
//!
//! **Taking one.** Every `--snapshot-every` (and at the end of its source), worker 0's source
//! asks every worker's monitors for a snapshot at its capability's tick `R`, as an event at `R`
//! addressed to each worker ([`super::Event::Snapshot`]). Timely delivers it before the
//! frontier passes `R`, so every worker writes its patients as they are once every tick before
//! `R` is processed and none after: one consistent cut of the dataflow, the same in every process
//! of a cluster. Each worker writes `_vigil/snapshots/tick-R/worker-W-of-N.bin` whole (a
//! temporary file fsynced and renamed).
//!
//! **Using one.** A snapshot at `R` stands in for the archive before `R` only once every alert
//! before `R` is delivered and archived and every observation before `R` archived: the archive's
//! delivered line (`_vigil/delivered.json`) has reached `R`. A restart takes the latest complete
//! set behind the line, gives each worker the patients it places on it (so a different number of
//! workers re-shards the state), and replays the archive from [`HORIZON_US`] before `R` only:
//! the rows before `R` rebuild the sources' clocks and duplicate horizons, the monitors drop
//! them, and those from `R` on go through the monitors as they did live.
//!
//! **Refusing one.** A file starts with [`MAGIC`], its format [`VERSION`] and whether it is
//! sealed with the archive's key (AES-256-GCM, its place in the archive as associated data) or
//! carries a SHA-256 of its body; the body names the tick, the worker and the settings it was
//! taken with. A file of another version, changed, moved, taken with other settings or sealed
//! without the key given is refused with the reason, and the restart replays the whole archive
//! (slower, never wrong).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

use super::FastMap;
use super::placement::Placement;
use crate::archive::{ArchiveError, ArchiveKey};
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::observation::Identifier;
use crate::registry::Prescribed;

/// Where an archive keeps its snapshots.
pub const DIR: &str = "_vigil/snapshots";

/// What a snapshot file starts with.
pub const MAGIC: &[u8; 15] = b"vigil-snapshot\n";

/// The format of the body; a file of another is refused.
pub const VERSION: u32 = 1;

/// How far before a snapshot's tick a restart replays the archive: the rows that rebuild each
/// partition's clock and its horizon of duplicates (the allowed lateness) are added to it.
pub const HORIZON_US: i64 = 10 * 60 * 1_000_000;

/// A snapshot that cannot be written or used.
#[derive(Debug, Error)]
pub enum SnapshotError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: refused ({reason})", path.display())]
    Refused { path: PathBuf, reason: String },
    #[error("{0}")]
    Archive(#[from] ArchiveError),
    #[error("a snapshot could not be encoded: {0}")]
    Encode(String),
}

/// One worker's patients: what a snapshot holds.
#[derive(Debug, Default)]
pub struct WardState {
    pub patients: Vec<(Identifier, Box<PatientMonitor>)>,
    /// Prescriptions of patients not seen yet.
    pub waiting: Vec<(Identifier, Vec<Prescribed>)>,
}

#[derive(Serialize)]
struct BodyOut<'a> {
    tick: i64,
    worker: u64,
    workers: u64,
    settings: &'a str,
    patients: Vec<(&'a Identifier, &'a PatientMonitor)>,
    waiting: Vec<(&'a Identifier, &'a Vec<Prescribed>)>,
}

#[derive(Deserialize)]
struct BodyIn {
    tick: i64,
    worker: u64,
    workers: u64,
    settings: String,
    patients: Vec<(Identifier, Box<PatientMonitor>)>,
    waiting: Vec<(Identifier, Vec<Prescribed>)>,
}

/// What identifies the settings a snapshot's monitors were built with: restored under other
/// settings (windows, thresholds, a risk model), they would not be the monitors of this run.
pub fn fingerprint(settings: &MonitorSettings, tick_us: i64) -> String {
    let digest = Sha256::digest(format!("{settings:?} tick {tick_us}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// `tick-R/worker-W-of-N.bin`: also the associated data a sealed file is bound to.
fn name(tick: i64, worker: u64, workers: u64) -> (String, String) {
    (
        format!("tick-{tick}"),
        format!("worker-{worker}-of-{workers}.bin"),
    )
}

/// Writes one worker's snapshots of the archive under `dir`.
#[derive(Clone, Debug)]
pub struct SnapshotWriter {
    pub dir: PathBuf,
    pub key: Option<Arc<ArchiveKey>>,
    pub worker: u64,
    pub workers: u64,
    /// [`fingerprint`] of the run's settings.
    pub settings: String,
}

impl SnapshotWriter {
    /// Writes the worker's patients as they are before tick `tick`, and removes this worker's
    /// snapshots older than the newest a restart could use (behind the delivered line). Returns
    /// the bytes written.
    pub fn write(
        &self,
        tick: i64,
        patients: &FastMap<Identifier, Box<PatientMonitor>>,
        waiting: &FastMap<Identifier, Vec<Prescribed>>,
        tick_us: i64,
    ) -> Result<u64, SnapshotError> {
        let mut patients: Vec<_> = patients.iter().map(|(id, m)| (id, &**m)).collect();
        patients.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let mut waiting: Vec<_> = waiting.iter().collect();
        waiting.sort_unstable_by(|a, b| a.0.cmp(b.0));
        let body = BodyOut {
            tick,
            worker: self.worker,
            workers: self.workers,
            settings: &self.settings,
            patients,
            waiting,
        };
        let body = rmp_serde::to_vec(&body).map_err(|e| SnapshotError::Encode(e.to_string()))?;
        let (set, file) = name(tick, self.worker, self.workers);
        let bytes = seal(&body, &format!("{set}/{file}"), self.key.as_deref())?;
        let set_dir = self.dir.join(DIR).join(&set);
        crate::archive::write_whole(&set_dir, &file, |mut f, path| {
            std::io::Write::write_all(&mut f, &bytes)
                .map(|()| f)
                .map_err(crate::archive::io(path))
        })?;
        self.prune(tick_us);
        Ok(bytes.len() as u64)
    }

    /// Removes this worker's files of the sets older than the newest complete one behind the
    /// delivered line, and the sets left empty. Best effort: a file left behind costs disk,
    /// never correctness (a set another worker is still writing looks incomplete, so an older
    /// one is kept).
    fn prune(&self, tick_us: i64) {
        let root = self.dir.join(DIR);
        let line_us = crate::archive::Delivered::read(&self.dir)
            .ok()
            .flatten()
            .map(|d| d.before_us);
        let Ok(all) = sets(&root) else { return };
        let Some(keep) = usable(&all, line_us, tick_us).map(|(tick, _)| tick) else {
            return;
        };
        for (tick, files) in all {
            if tick >= keep {
                continue;
            }
            for (worker, workers) in files {
                if worker == self.worker {
                    let (set, file) = name(tick, worker, workers);
                    let _ = std::fs::remove_file(root.join(&set).join(file));
                }
            }
            let _ = std::fs::remove_dir(root.join(name(tick, 0, 0).0));
        }
    }
}

/// The file's bytes: [`MAGIC`], [`VERSION`], then either `1`, nonce, ciphertext and tag, or `0`,
/// the body's SHA-256 and the body.
fn seal(body: &[u8], place: &str, key: Option<&ArchiveKey>) -> Result<Vec<u8>, SnapshotError> {
    let mut out = MAGIC.to_vec();
    out.extend(VERSION.to_le_bytes());
    match key {
        Some(key) => {
            out.push(1);
            let sealed = crate::archive::sealed::seal_bytes(key, place, body)
                .map_err(|e| SnapshotError::Encode(e.to_string()))?;
            out.extend(sealed);
        }
        None => {
            out.push(0);
            out.extend(Sha256::digest(body));
            out.extend(body);
        }
    }
    Ok(out)
}

/// The body of the file at `path` (`place` in the archive), checked.
fn open(
    bytes: &[u8],
    path: &Path,
    place: &str,
    key: Option<&ArchiveKey>,
) -> Result<Vec<u8>, SnapshotError> {
    let refused = |reason: String| SnapshotError::Refused {
        path: path.to_owned(),
        reason,
    };
    let rest = bytes
        .strip_prefix(MAGIC.as_slice())
        .ok_or_else(|| refused("not a Vigil snapshot".into()))?;
    let (version, rest) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| refused("cut short".into()))?;
    let version = u32::from_le_bytes(*version);
    if version != VERSION {
        return Err(refused(format!(
            "format version {version}, this Vigil reads version {VERSION}"
        )));
    }
    match rest.split_first() {
        Some((1, sealed)) => {
            let key = key.ok_or_else(|| {
                refused("sealed with the archive's key: give --archive-key FILE".into())
            })?;
            crate::archive::sealed::open_bytes(key, place, sealed).ok_or_else(|| {
                refused(
                    "does not open with this key: a wrong key, or it was changed or moved".into(),
                )
            })
        }
        Some((0, rest)) => {
            let (sum, body) = rest
                .split_first_chunk::<32>()
                .ok_or_else(|| refused("cut short".into()))?;
            if Sha256::digest(body).as_slice() != sum {
                return Err(refused(
                    "its checksum does not match: the file was changed or cut short".into(),
                ));
            }
            Ok(body.to_vec())
        }
        _ => Err(refused("neither sealed nor checksummed".into())),
    }
}

/// The snapshot sets under `root` (`_vigil/snapshots`): by tick, the `(worker, workers)` of
/// each file.
fn sets(root: &Path) -> Result<BTreeMap<i64, Vec<(u64, u64)>>, SnapshotError> {
    let mut out: BTreeMap<i64, Vec<(u64, u64)>> = BTreeMap::new();
    let entries = match std::fs::read_dir(root) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(source) => {
            return Err(SnapshotError::Io {
                path: root.to_owned(),
                source,
            });
        }
    };
    for set in entries.filter_map(Result::ok) {
        let set_name = set.file_name().to_string_lossy().into_owned();
        let Some(tick) = set_name.strip_prefix("tick-").and_then(|t| t.parse().ok()) else {
            continue;
        };
        let files = out.entry(tick).or_default();
        for file in std::fs::read_dir(set.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let n = file.file_name().to_string_lossy().into_owned();
            let parsed = n
                .strip_prefix("worker-")
                .and_then(|n| n.strip_suffix(".bin"))
                .and_then(|n| n.split_once("-of-"))
                .and_then(|(w, of)| Some((w.parse().ok()?, of.parse().ok()?)));
            files.extend(parsed);
        }
    }
    Ok(out)
}

/// The patients of a snapshot set, ready to be shared out among the run's workers.
#[derive(Debug)]
pub struct Restored {
    /// The tick it was taken at: the monitors hold every tick before it.
    pub tick: i64,
    /// The workers that took it.
    pub workers: u64,
    pub state: WardState,
}

impl Restored {
    /// Shares the patients out by `placement` among `workers`, for the workers `local`.
    pub fn share(self, placement: &Placement, local: std::ops::Range<usize>) -> Vec<WardState> {
        let mut out: Vec<WardState> = local.clone().map(|_| WardState::default()).collect();
        let slot = |id: &Identifier| {
            let w = placement.worker(id) as usize;
            local.contains(&w).then(|| w - local.start)
        };
        for (id, monitor) in self.state.patients {
            if let Some(i) = slot(&id) {
                out[i].patients.push((id, monitor));
            }
        }
        for (id, waiting) in self.state.waiting {
            if let Some(i) = slot(&id) {
                out[i].waiting.push((id, waiting));
            }
        }
        out
    }
}

/// The latest complete snapshot set of the archive under `dir` that the delivered line
/// (`line_us`) has passed, read and checked; `None` when there is none. An error when the one
/// that should be used is refused: the caller falls back to replaying the whole archive.
pub fn latest(
    dir: &Path,
    line_us: Option<i64>,
    tick_us: i64,
    settings: &str,
    key: Option<&ArchiveKey>,
) -> Result<Option<Restored>, SnapshotError> {
    let Some(line_us) = line_us else {
        return Ok(None);
    };
    let root = dir.join(DIR);
    let all = sets(&root)?;
    let Some((tick, workers)) = usable(&all, Some(line_us), tick_us) else {
        return Ok(None);
    };
    let mut state = WardState::default();
    for worker in 0..workers {
        let (set, file) = name(tick, worker, workers);
        let path = root.join(&set).join(&file);
        let bytes = std::fs::read(&path).map_err(|source| SnapshotError::Io {
            path: path.clone(),
            source,
        })?;
        let body = open(&bytes, &path, &format!("{set}/{file}"), key)?;
        let body: BodyIn = rmp_serde::from_slice(&body).map_err(|e| SnapshotError::Refused {
            path: path.clone(),
            reason: format!("its body does not decode: {e}"),
        })?;
        check(&body, &path, (tick, worker, workers), settings)?;
        state.patients.extend(body.patients);
        state.waiting.extend(body.waiting);
    }
    Ok(Some(Restored {
        tick,
        workers,
        state,
    }))
}

/// The newest complete set the delivered line has passed, and its number of workers.
fn usable(
    sets: &BTreeMap<i64, Vec<(u64, u64)>>,
    line_us: Option<i64>,
    tick_us: i64,
) -> Option<(i64, u64)> {
    let line_us = line_us?;
    sets.iter()
        .rev()
        .filter(|(tick, _)| tick.saturating_mul(tick_us) <= line_us)
        .find_map(|(tick, files)| Some((*tick, complete(files)?)))
}

/// The number of workers of a set that holds every one of their files.
fn complete(files: &[(u64, u64)]) -> Option<u64> {
    let &(_, workers) = files.first()?;
    let all = (0..workers).all(|w| files.contains(&(w, workers)));
    all.then_some(workers)
}

fn check(
    body: &BodyIn,
    path: &Path,
    (tick, worker, workers): (i64, u64, u64),
    settings: &str,
) -> Result<(), SnapshotError> {
    let refused = |reason: &str| SnapshotError::Refused {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    if (body.tick, body.worker, body.workers) != (tick, worker, workers) {
        return Err(refused(
            "its body is of another tick or worker than its name says",
        ));
    }
    if body.settings != settings {
        return Err(refused(
            "taken with other settings (windows, thresholds, rules or risk model) than this run's",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
