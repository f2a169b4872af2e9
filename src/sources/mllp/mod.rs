//! `[source] kind = "mllp"`: a live HL7 v2 listener, as device gateways (IHE PCD-01) send to
//! an EHR's interface engine over MLLP (`0x0B message 0x1C 0x0D` on a TCP connection).
//!
//! Each message is appended to the intake log and fsynced ([`intake`]), then answered with an
//! HL7 ACK: `AA` when every OBX was read, `AE` with the reasons when some were not, `AR` when
//! the message could not be read at all (its header, type or version); the message is in the
//! log in every case, so what is not an observation is dead-lettered like any other. An ACK so
//! means the message is durable: it takes an fsync (milliseconds), not the archive's flush. A
//! sender that disconnects mid-frame loses only that unacknowledged frame.
//!
//! The pipeline reads the log's records in order, as partition 0 with the record number as
//! offset, so the archive's resume protocol applies as to a Kafka partition: offsets are
//! committed (to `<intake>.committed`) once archived and alerted, and a restart replays the log
//! from the last commit, skipping what the archive already holds.

pub mod intake;
mod listener;

use std::collections::VecDeque;
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Deserialize;

use super::{
    BuildContext, Built, Checkpoint, Position, Progress, Source, SourceError, SourceItem,
    SourceKind,
};
use crate::component::{Problem, Section};
use crate::formats::{self, Decoded, InputFormat};
use crate::observation::Interner;

/// The `[source]` of an MLLP listener.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MllpConfig {
    /// `host:port` to listen on (`127.0.0.1:2575`; 2575 is MLLP's registered port).
    pub listen: String,
    /// The intake log: every message received, durable before it is acknowledged.
    pub intake: PathBuf,
}

impl SourceKind for MllpConfig {
    fn name(&self) -> String {
        format!("mllp:{}", self.listen)
    }

    fn format(&self) -> Option<InputFormat> {
        Some(InputFormat::Hl7v2)
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        match address(&self.listen) {
            Ok(_) => Vec::new(),
            Err(reason) => vec![section.problem("listen", reason)],
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.intake.is_relative() {
            self.intake = base.join(&self.intake);
        }
    }

    /// Binds now (a port in use fails the run before it starts); worker 0 reads the log, the
    /// other workers have nothing of their own to read.
    fn build(&self, cx: &BuildContext) -> Result<Built, SourceError> {
        let source = MllpSource::start(self, Arc::clone(&cx.stop))?;
        let once = Arc::new(Mutex::new(Some(source)));
        let stop = Arc::clone(&cx.stop);
        Ok(Built::PerWorker(Arc::new(move |worker, _| {
            let taken = match worker {
                0 => once.lock().ok().and_then(|mut s| s.take()),
                _ => None,
            };
            Ok(match taken {
                Some(source) => Box::new(source) as Box<dyn Source>,
                None => Box::new(Idle(Arc::clone(&stop))),
            })
        })))
    }
}

fn address(listen: &str) -> Result<SocketAddr, String> {
    listen
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| format!("`listen` {listen:?} is not a host:port to listen on"))
}

/// A worker's source with nothing to read: idle until the run stops.
struct Idle(Arc<AtomicBool>);

impl Source for Idle {
    fn fill(&mut self, _max: usize, _out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        std::thread::sleep(Duration::from_millis(50));
        Ok(!self.0.load(Ordering::Relaxed))
    }

    fn progress(&self) -> Progress {
        Progress::default()
    }

    fn live(&self) -> bool {
        true
    }

    fn partitions(&self) -> Option<Vec<i32>> {
        Some(Vec::new())
    }
}

/// The listener's messages, in log order, for the pipeline.
pub struct MllpSource {
    log: PathBuf,
    /// Records logged before this run and not committed: read first.
    backlog: VecDeque<(u64, Vec<u8>)>,
    received: Receiver<(u64, Vec<u8>)>,
    /// The next record to read.
    next: u64,
    stop: Arc<AtomicBool>,
    /// Stops the listener when the source is dropped.
    listener_stop: Arc<AtomicBool>,
    listener: Option<std::thread::JoinHandle<()>>,
    ids: Interner,
    decoded: Vec<Decoded>,
    read: u64,
}

impl MllpSource {
    /// Opens the intake log, reads what was not committed, and starts listening.
    pub fn start(config: &MllpConfig, stop: Arc<AtomicBool>) -> Result<MllpSource, SourceError> {
        let io = |source| SourceError::Io {
            path: config.intake.clone(),
            source,
        };
        let log = intake::IntakeLog::open(&config.intake).map_err(io)?;
        let committed = intake::committed(&config.intake).map_err(io)?;
        let records = log.records();
        let backlog = intake::read_range(&config.intake, committed, records)
            .map_err(io)?
            .into_iter()
            .enumerate()
            .map(|(i, m)| (committed + i as u64, m))
            .collect();
        let addr = address(&config.listen).map_err(|reason| SourceError::Format {
            path: config.intake.clone(),
            reason,
        })?;
        let socket = TcpListener::bind(addr).map_err(|e| SourceError::Format {
            path: config.intake.clone(),
            reason: format!("cannot listen on {addr}: {e}"),
        })?;
        let listener_stop = Arc::new(AtomicBool::new(false));
        let (tx, received) = std::sync::mpsc::sync_channel(4096);
        let handle = listener::spawn(
            socket,
            log,
            tx,
            Arc::clone(&stop),
            Arc::clone(&listener_stop),
        )
        .map_err(io)?;
        Ok(MllpSource {
            log: config.intake.clone(),
            backlog,
            received,
            next: committed,
            stop,
            listener_stop,
            listener: Some(handle),
            ids: Interner::default(),
            decoded: Vec::new(),
            read: 0,
        })
    }

    fn push(&mut self, record: u64, message: &[u8], out: &mut Vec<SourceItem>) {
        self.decoded.clear();
        formats::decode(
            InputFormat::Hl7v2,
            message,
            &mut self.ids,
            &mut self.decoded,
        );
        let at = Position {
            partition: Some(0),
            offset: record as i64,
            entry: None,
        };
        let label = format!("mllp record {record}");
        super::push_decoded(&label, at, message, self.decoded.drain(..), out);
        self.next = record + 1;
        self.read += 1;
    }
}

/// How long a read waits for a message when none is queued (as the Kafka source's poll).
const WAIT: Duration = Duration::from_millis(1);

impl Source for MllpSource {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let start = out.len();
        while out.len() - start < max {
            if let Some((record, message)) = self.backlog.pop_front() {
                self.push(record, &message, out);
                continue;
            }
            let wait = if out.len() == start {
                WAIT
            } else {
                Duration::ZERO
            };
            match self.received.recv_timeout(wait) {
                Ok((record, message)) => self.push(record, &message, out),
                Err(RecvTimeoutError::Timeout) => break,
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(SourceError::Format {
                        path: self.log.clone(),
                        reason: "the MLLP listener stopped".into(),
                    });
                }
            }
        }
        Ok(!self.stop.load(Ordering::Relaxed))
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.read,
            total: None,
        }
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            offsets: vec![(0, self.next as i64)],
        })
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        for &(_, next) in &checkpoint.offsets {
            intake::commit(&self.log, next.max(0) as u64).map_err(|source| SourceError::Io {
                path: self.log.clone(),
                source,
            })?;
        }
        Ok(())
    }

    fn live(&self) -> bool {
        true
    }

    fn partitions(&self) -> Option<Vec<i32>> {
        Some(vec![0])
    }
}

impl Drop for MllpSource {
    fn drop(&mut self) {
        self.listener_stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.listener.take() {
            let _ = handle.join();
        }
    }
}
