//! The audit trail: who viewed, acknowledged or exported what, as an append-only file of JSON
//! lines, each record carrying the SHA-256 of the one before it. Editing a record breaks its
//! own hash; deleting, inserting or moving one breaks the sequence or the chain; and the head
//! (the record count and the last hash) is kept apart, in `FILE.head` or wherever the operator
//! keeps it, so that cutting the tail off, or replacing it, is caught too.
//! [`verify`] says which record and how.
//!
//! Invariants: records are appended and synced before the head moves past them; the head is
//! replaced atomically (written beside it, synced, renamed). A crash between the two leaves
//! one more record than the head counts, which [`verify`] reports as such, never as tampering
//! of what the head covers.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// The `prev` of the first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One audited act.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Its place in the trail, from 1.
    pub seq: u64,
    /// When (wall clock, RFC 3339 UTC).
    pub at: String,
    /// Who did it.
    pub who: String,
    /// What they did: `viewed`, `acknowledged`, `exported`.
    pub action: String,
    /// To what: `alert c71383a8739c7077 of sim-00044`.
    pub what: String,
    /// The hash of the record before (hex SHA-256; [`GENESIS`] for the first).
    pub prev: String,
    /// The hash of this record: SHA-256 of its other fields, as a JSON array, in order.
    pub hash: String,
}

impl Record {
    /// The hash its content and link give.
    pub fn computed_hash(&self) -> String {
        let content = serde_json::json!([
            self.seq,
            self.at,
            self.who,
            self.action,
            self.what,
            self.prev
        ]);
        hex(&Sha256::digest(content.to_string().as_bytes()))
    }
}

/// The head: how many records the trail holds and the last one's hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub records: u64,
    pub hash: String,
}

/// What [`verify`] found wrong, and where.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Tampered {
    #[error("line {line}: not an audit record: {reason}")]
    Unreadable { line: usize, reason: String },
    #[error("line {line}: record {seq} was edited: its hash does not match its content")]
    Edited { line: usize, seq: u64 },
    #[error(
        "line {line}: record {found} where record {expected} belongs: {}",
        if found > expected { "a record before it was deleted" } else { "records were reordered or a record inserted" }
    )]
    Sequence {
        line: usize,
        expected: u64,
        found: u64,
    },
    #[error(
        "line {line}: record {seq} does not follow the record before it: that one was edited (and rehashed), or one was deleted, inserted or moved between them"
    )]
    Broken { line: usize, seq: u64 },
    #[error("the trail holds {records} records but its head counts {head}: the last {} were cut off", head - records)]
    Truncated { records: u64, head: u64 },
    #[error(
        "record {seq}, the one the head names, does not have the head's hash: the tail was replaced"
    )]
    Replaced { seq: u64 },
    #[error("cannot read {what}: {reason}")]
    Io { what: String, reason: String },
}

/// What a trail holds once verified.
#[derive(Debug, PartialEq, Eq)]
pub struct Verified {
    /// Records the head covers.
    pub records: u64,
    /// Records after the head: appended by a run that stopped before moving the head.
    pub beyond_head: u64,
}

/// Where the head of the trail at `path` is kept by default.
pub fn head_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    path.with_file_name(name)
}

/// Checks every record of the trail's text against its hash, its place and the one before,
/// and the whole against `head`.
pub fn verify_text(text: &str, head: &Head) -> Result<Verified, Tampered> {
    let mut prev = GENESIS.to_owned();
    let mut count = 0u64;
    let mut head_hash = None;
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let record: Record = serde_json::from_str(line).map_err(|e| Tampered::Unreadable {
            line: line_no,
            reason: e.to_string(),
        })?;
        let expected = count + 1;
        if record.computed_hash() != record.hash {
            return Err(Tampered::Edited {
                line: line_no,
                seq: record.seq,
            });
        }
        if record.seq != expected {
            return Err(Tampered::Sequence {
                line: line_no,
                expected,
                found: record.seq,
            });
        }
        if record.prev != prev {
            return Err(Tampered::Broken {
                line: line_no,
                seq: record.seq,
            });
        }
        count = expected;
        if count == head.records {
            head_hash = Some(record.hash.clone());
        }
        prev = record.hash;
    }
    if count < head.records {
        return Err(Tampered::Truncated {
            records: count,
            head: head.records,
        });
    }
    match head_hash {
        Some(h) if h != head.hash => Err(Tampered::Replaced { seq: head.records }),
        None if head.records > 0 || head.hash != GENESIS => {
            Err(Tampered::Replaced { seq: head.records })
        }
        _ => Ok(Verified {
            records: head.records,
            beyond_head: count - head.records,
        }),
    }
}

/// Verifies the trail at `path` against the head at `head` ([`head_path`] by default).
pub fn verify(path: &Path, head: &Path) -> Result<Verified, Tampered> {
    let io = |what: &Path, e: &dyn std::fmt::Display| Tampered::Io {
        what: what.display().to_string(),
        reason: e.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| io(path, &e))?;
    let head_text = std::fs::read_to_string(head).map_err(|e| io(head, &e))?;
    let head: Head = serde_json::from_str(&head_text).map_err(|e| io(head, &e))?;
    verify_text(&text, &head)
}

/// An audit trail open for appending.
#[derive(Debug)]
pub struct AuditLog {
    path: PathBuf,
    head_path: PathBuf,
    head: Head,
}

/// The trail cannot be opened or written.
#[derive(Debug, Error)]
pub enum AuditError {
    #[error("audit trail {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("audit trail {path} does not verify, so nothing is appended to it: {tampered}")]
    Tampered { path: PathBuf, tampered: Tampered },
}

impl AuditLog {
    /// Opens the trail at `path` (created if missing), verified first: a trail that does not
    /// verify is refused, so that nothing is chained onto tampered records.
    pub fn open(path: &Path) -> Result<AuditLog, AuditError> {
        let head_path = head_path(path);
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| AuditError::Io { path: p, source }
        };
        if !path.exists() {
            std::fs::write(path, "").map_err(io(path))?;
        }
        let text = std::fs::read_to_string(path).map_err(io(path))?;
        let head = match std::fs::read_to_string(&head_path) {
            Ok(h) => serde_json::from_str(&h).map_err(|e| AuditError::Tampered {
                path: path.to_owned(),
                tampered: Tampered::Io {
                    what: head_path.display().to_string(),
                    reason: e.to_string(),
                },
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && text.is_empty() => Head {
                records: 0,
                hash: GENESIS.to_owned(),
            },
            Err(e) => return Err(io(&head_path)(e)),
        };
        let verified = verify_text(&text, &head).map_err(|tampered| AuditError::Tampered {
            path: path.to_owned(),
            tampered,
        })?;
        // Records a stopped run appended past the head are sound: the head moves over them.
        let last = text
            .lines()
            .last()
            .and_then(|l| serde_json::from_str::<Record>(l).ok());
        let head = match last {
            Some(r) if verified.beyond_head > 0 => Head {
                records: r.seq,
                hash: r.hash,
            },
            _ => head,
        };
        Ok(AuditLog {
            path: path.to_owned(),
            head_path,
            head,
        })
    }

    /// Appends one record, synced, then moves the head over it.
    pub fn record(&mut self, who: &str, action: &str, what: &str) -> Result<Record, AuditError> {
        let mut record = Record {
            seq: self.head.records + 1,
            at: crate::observation::EventTime::from_micros(now_us()).to_rfc3339(),
            who: who.to_owned(),
            action: action.to_owned(),
            what: what.to_owned(),
            prev: self.head.hash.clone(),
            hash: String::new(),
        };
        record.hash = record.computed_hash();
        let io = |p: &Path| {
            let p = p.to_owned();
            move |source| AuditError::Io { path: p, source }
        };
        let mut line = serde_json::to_string(&record).unwrap_or_default();
        line.push('\n');
        let mut file = OpenOptions::new()
            .append(true)
            .open(&self.path)
            .map_err(io(&self.path))?;
        file.write_all(line.as_bytes()).map_err(io(&self.path))?;
        file.sync_data().map_err(io(&self.path))?;
        let head = Head {
            records: record.seq,
            hash: record.hash.clone(),
        };
        let tmp = self.head_path.with_extension("head.tmp");
        let text = serde_json::to_string(&head).unwrap_or_default();
        std::fs::write(&tmp, text).map_err(io(&tmp))?;
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &self.head_path).map_err(io(&self.head_path))?;
        self.head = head;
        Ok(record)
    }
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
