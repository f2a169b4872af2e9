//! The archive's files written on a thread of their own: a worker's source reads and judges
//! on while the file before is encoded, compressed and fsynced (half a second for a file of
//! 500,000 rows, which the worker itself spent before).
//!
//! Invariants: files are written one at a time, in the order they were handed over; at most
//! one waits beside the one being written, so a writer slower than its source holds the source
//! back rather than letting rows pile up; every file handed over is durable once
//! [`WriteBehind::wait`] returns `Ok`, and a file that could not be written is an error of the
//! next call.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::{ArchiveError, Row, format_err};

/// One file to write: its rows, and where.
pub struct File {
    pub dir: PathBuf,
    pub name: String,
    pub rows: Vec<Row>,
}

/// A thread writing files as they are handed over.
pub struct WriteBehind {
    jobs: Option<SyncSender<File>>,
    done: Receiver<Result<u64, ArchiveError>>,
    thread: Option<JoinHandle<()>>,
    /// Files handed over and not yet reported written.
    outstanding: usize,
    /// (files, rows) written.
    written: (u64, u64),
    /// The first file that could not be written, until it is reported.
    failed: Option<ArchiveError>,
    /// Named in an error if the thread stops.
    dir: PathBuf,
}

impl WriteBehind {
    /// A thread named `name` writing each file with `write`.
    pub fn spawn(
        name: String,
        dir: PathBuf,
        write: impl Fn(&File) -> Result<(), ArchiveError> + Send + 'static,
    ) -> Result<WriteBehind, ArchiveError> {
        let (jobs, inbox) = sync_channel::<File>(0);
        let (report, done) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                for file in inbox {
                    let rows = file.rows.len() as u64;
                    if report.send(write(&file).map(|()| rows)).is_err() {
                        return;
                    }
                }
            })
            .map_err(super::io(&dir))?;
        Ok(WriteBehind {
            jobs: Some(jobs),
            done,
            thread: Some(thread),
            outstanding: 0,
            written: (0, 0),
            failed: None,
            dir,
        })
    }

    /// Hands `file` over, once the thread is free for it; an error of a file handed over
    /// earlier.
    pub fn hand_over(&mut self, file: File) -> Result<(), ArchiveError> {
        self.collect(false)?;
        let sent = self
            .jobs
            .as_ref()
            .is_some_and(|jobs| jobs.send(file).is_ok());
        if !sent {
            return Err(self.stopped());
        }
        self.outstanding += 1;
        self.collect(false)
    }

    /// Waits until every file handed over is written and durable.
    pub fn wait(&mut self) -> Result<(), ArchiveError> {
        self.collect(true)
    }

    /// (files, rows) written so far.
    pub fn written(&self) -> (u64, u64) {
        self.written
    }

    /// Takes in what the thread reports: everything outstanding when `all`, else what it has
    /// finished.
    fn collect(&mut self, all: bool) -> Result<(), ArchiveError> {
        while self.outstanding > 0 {
            let report = match all {
                true => self.done.recv().ok(),
                false => match self.done.try_recv() {
                    Ok(r) => Some(r),
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                    Err(std::sync::mpsc::TryRecvError::Disconnected) => None,
                },
            };
            self.outstanding -= 1;
            match report {
                Some(Ok(rows)) => {
                    self.written.0 += 1;
                    self.written.1 += rows;
                }
                Some(Err(e)) => {
                    self.failed.get_or_insert(e);
                }
                None => {
                    self.failed.get_or_insert(self.stopped());
                    self.outstanding = 0;
                }
            }
        }
        match self.failed.take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stopped(&self) -> ArchiveError {
        format_err(&self.dir, "the archive's writer thread stopped")
    }
}

impl Drop for WriteBehind {
    /// Lets the thread finish the files handed over (each is whole or absent either way).
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    fn file(name: &str, rows: usize) -> File {
        let obs = crate::observation::Observation::from_json(
            br#"{"patient":"p1","time":"2026-01-05T00:00:00Z","vital":"heart_rate","value":80,"unit":"/min"}"#,
        )
        .unwrap();
        let row = Row::observation(&obs, 0, None, true, 0);
        File {
            dir: PathBuf::from("/nowhere"),
            name: name.to_owned(),
            rows: vec![row; rows],
        }
    }

    #[test]
    fn files_are_written_in_order_and_a_failed_one_is_the_next_calls_error() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let mut behind = WriteBehind::spawn("test".into(), PathBuf::from("/d"), move |f| {
            log.lock().unwrap().push(f.name.clone());
            match f.name.as_str() {
                "bad" => Err(format_err(&f.dir, "no space left on device")),
                _ => Ok(()),
            }
        })
        .unwrap();
        behind.hand_over(file("a", 3)).unwrap();
        behind.hand_over(file("b", 2)).unwrap();
        behind.wait().unwrap();
        assert_eq!(behind.written(), (2, 5));
        // Whichever call comes after the failure says it, once.
        let said: Vec<ArchiveError> = [behind.hand_over(file("bad", 1)), behind.wait()]
            .into_iter()
            .filter_map(Result::err)
            .collect();
        assert_eq!(said.len(), 1);
        assert!(said[0].to_string().contains("no space left"), "{}", said[0]);
        // Reported once; what comes after is written.
        behind.hand_over(file("c", 4)).unwrap();
        behind.wait().unwrap();
        assert_eq!(behind.written(), (3, 9));
        assert_eq!(*seen.lock().unwrap(), ["a", "b", "bad", "c"]);
    }
}
