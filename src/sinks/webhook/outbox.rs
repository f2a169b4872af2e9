//! The webhook's durable outbox: a directory holding `outbox.jsonl`, every alert to send (one
//! request body a line, appended and fsynced at each flush), and `delivered`, how many of its
//! bytes the receiver has accepted.
//!
//! Invariants: a line is in the file, whole and synced, before the pipeline counts it delivered
//! (so a crash after that loses nothing); the receiver is sent lines in file order, a line again
//! only if the mark that it was accepted was lost (at least once: a receiver de-duplicates by
//! `Idempotency-Key`); the mark never passes a line not accepted. A torn last line (a crash
//! mid-append) is cut when the outbox is opened. Once everything is accepted and the file has
//! grown past [`COMPACT_AT`], it is emptied, the mark with it.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::sinks::with_path;

/// Bytes of delivered lines past which the file is emptied, once nothing is pending.
const COMPACT_AT: u64 = 1 << 20;

/// The outbox of one webhook.
pub struct Outbox {
    dir: PathBuf,
    file: File,
    /// Bytes written and synced: what may be sent.
    len: u64,
    /// Bytes accepted by the receiver.
    delivered: u64,
}

impl Outbox {
    /// Opens (or creates) the outbox in `dir`: a torn last line is cut, and the mark is kept
    /// within the file.
    pub fn open(dir: &Path) -> io::Result<Outbox> {
        fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
        let path = dir.join("outbox.jsonl");
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(|e| with_path(e, &path))?;
        let len = whole_lines(&mut file).map_err(|e| with_path(e, &path))?;
        file.set_len(len).map_err(|e| with_path(e, &path))?;
        file.sync_all().map_err(|e| with_path(e, &path))?;
        let delivered = read_mark(dir)?.min(len);
        Ok(Outbox {
            dir: dir.to_owned(),
            file,
            len,
            delivered,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends request bodies, a line each (not yet synced: [`Outbox::sync`]).
    pub fn append<'a>(&mut self, bodies: impl Iterator<Item = &'a str>) -> io::Result<()> {
        let mut buffer = Vec::new();
        for body in bodies {
            buffer.extend_from_slice(body.as_bytes());
            buffer.push(b'\n');
        }
        self.file
            .write_all(&buffer)
            .map_err(|e| with_path(e, &self.dir))
    }

    /// Makes everything appended durable and sendable.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| with_path(e, &self.dir))?;
        self.len = self
            .file
            .metadata()
            .map_err(|e| with_path(e, &self.dir))?
            .len();
        Ok(())
    }

    /// Bytes not yet accepted by the receiver.
    pub fn pending(&self) -> u64 {
        self.len - self.delivered
    }

    /// The lines after the mark, up to `max` of them, each with the offset just past it.
    pub fn next(&self, max: usize) -> io::Result<Vec<(String, u64)>> {
        let mut reader = BufReader::new(File::open(self.dir.join("outbox.jsonl"))?);
        reader.seek(SeekFrom::Start(self.delivered))?;
        let mut out = Vec::new();
        let mut at = self.delivered;
        let mut line = String::new();
        while out.len() < max && at < self.len {
            line.clear();
            let n = reader.read_line(&mut line)?;
            if n == 0 || !line.ends_with('\n') {
                break;
            }
            at += n as u64;
            out.push((line.trim_end().to_owned(), at));
        }
        Ok(out)
    }

    /// The receiver accepted everything before `offset`. Once it has accepted all and the file
    /// is large, the file is emptied.
    pub fn accepted(&mut self, offset: u64) -> io::Result<()> {
        self.delivered = offset.min(self.len);
        // (Only with nothing appended since the last sync either.)
        let unsynced = self.file.metadata().map_or(true, |m| m.len() != self.len);
        if self.delivered == self.len && self.len >= COMPACT_AT && !unsynced {
            // Emptied first: a crash before the mark is rewritten leaves a mark past the end,
            // which opening cuts back to it.
            self.file.set_len(0).map_err(|e| with_path(e, &self.dir))?;
            self.file.sync_all().map_err(|e| with_path(e, &self.dir))?;
            self.len = 0;
            self.delivered = 0;
        }
        write_mark(&self.dir, self.delivered)
    }
}

/// The length of `file`'s whole lines: up to and including its last newline.
fn whole_lines(file: &mut File) -> io::Result<u64> {
    let len = file.metadata()?.len();
    let mut at = len;
    let mut buffer = [0u8; 4096];
    while at > 0 {
        let n = (at as usize).min(buffer.len());
        file.seek(SeekFrom::Start(at - n as u64))?;
        file.read_exact(&mut buffer[..n])?;
        if let Some(i) = buffer[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(at - n as u64 + i as u64 + 1);
        }
        at -= n as u64;
    }
    Ok(0)
}

fn read_mark(dir: &Path) -> io::Result<u64> {
    let path = dir.join("delivered");
    match fs::read_to_string(&path) {
        Ok(text) => text.trim().parse().map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: not a byte offset ({:?}); delete it to send the whole outbox again",
                    path.display(),
                    text.trim()
                ),
            )
        }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(with_path(e, &path)),
    }
}

/// Writes the mark through a rename, so it is never torn. Not synced: a mark lost in a crash
/// only sends some lines again, which the receiver de-duplicates.
fn write_mark(dir: &Path, offset: u64) -> io::Result<()> {
    let path = dir.join("delivered");
    let temporary = dir.join("delivered.new");
    fs::write(&temporary, offset.to_string()).map_err(|e| with_path(e, &temporary))?;
    fs::rename(&temporary, &path).map_err(|e| with_path(e, &path))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vigil-outbox-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn lines_are_sent_in_order_and_the_mark_survives_a_reopening() {
        let dir = scratch("order");
        let mut outbox = Outbox::open(&dir).unwrap();
        outbox.append(["a", "bb", "ccc"].into_iter()).unwrap();
        assert!(
            outbox.next(10).unwrap().is_empty(),
            "nothing before the sync"
        );
        outbox.sync().unwrap();
        let next = outbox.next(2).unwrap();
        assert_eq!(next, vec![("a".into(), 2), ("bb".into(), 5)]);
        outbox.accepted(5).unwrap();
        drop(outbox);
        let outbox = Outbox::open(&dir).unwrap();
        assert_eq!(outbox.next(10).unwrap(), vec![("ccc".into(), 9)]);
        assert_eq!(outbox.pending(), 4);
    }

    #[test]
    fn a_torn_last_line_is_cut_and_a_mark_past_the_end_is_kept_within_it() {
        let dir = scratch("torn");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("outbox.jsonl"), "one\ntwo\nthr").unwrap();
        fs::write(dir.join("delivered"), "400").unwrap();
        let mut outbox = Outbox::open(&dir).unwrap();
        assert_eq!(outbox.pending(), 0);
        assert_eq!(
            fs::read_to_string(dir.join("outbox.jsonl")).unwrap(),
            "one\ntwo\n"
        );
        outbox.append(["four"].into_iter()).unwrap();
        outbox.sync().unwrap();
        assert_eq!(outbox.next(10).unwrap(), vec![("four".into(), 13)]);
    }

    #[test]
    fn a_mark_that_is_not_a_number_is_refused_with_what_to_do() {
        let dir = scratch("mark");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join("delivered"), "x").unwrap();
        let e = Outbox::open(&dir).err().unwrap().to_string();
        assert!(
            e.contains("not a byte offset") && e.contains("delete it"),
            "{e}"
        );
    }

    #[test]
    fn a_delivered_outbox_is_emptied_once_large() {
        let dir = scratch("compact");
        let mut outbox = Outbox::open(&dir).unwrap();
        let body = "x".repeat(1000);
        outbox
            .append(std::iter::repeat_n(body.as_str(), 1100))
            .unwrap();
        outbox.sync().unwrap();
        let end = outbox.len;
        outbox.accepted(end - 1001).unwrap();
        assert!(outbox.len > 0, "one line is still pending");
        outbox.accepted(end).unwrap();
        assert_eq!(fs::metadata(dir.join("outbox.jsonl")).unwrap().len(), 0);
        assert_eq!(fs::read_to_string(dir.join("delivered")).unwrap(), "0");
    }
}
