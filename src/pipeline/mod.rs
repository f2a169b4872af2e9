//! The streaming engine: a timely dataflow assembled from a pipeline config.
//!
//! ```text
//! source ──► (exchange by patient) ──► monitors: windows → NEWS2 → alert policy ──► (to worker 0) ──► ordered alert sinks
//!   │ late ──► counted, late file                 ▲
//!   └ rejected ──► dead-letter file;              │ as-of join on patient
//!     impossible values of a known patient ──►    │
//! registry (differential collection of (patient, prescribed), consolidated) ─┘
//! ```
//!
//! **The registry** is a differential-dataflow collection of `(patient, prescribed)` (an SpO2
//! scale, a medication's schedule) whose updates carry the event time a prescription takes
//! effect (a change retracts the old scale or schedule and adds the new one at that time). The monitors join the observation stream with it *as of* each
//! observation's time: a change of prescription applies from its event time on, never to
//! observations before it, in a live run and in a replay alike.
//!
//! **Event time.** The timely timestamp is the event time in ticks (`[time] tick`). Each
//! partition of a source has its own clock ([`clock`]), and the source holds its capability at
//! the slowest partition's watermark. A record behind its partition's watermark is late: counted
//! and sent to the late output, never processed out of order and never dropped silently.
//!
//! **Determinism.** Monitors act only when the frontier has passed a tick, and then process the
//! tick's records in a total order (time, patient, kind, vital, device, value), with exact
//! duplicates removed; timers fire at their own due time (see [`crate::monitor`]). Alerts are
//! written by worker 0 in (event time, patient, kind) order once the frontier has passed them.
//! The same input therefore gives byte-identical alerts with any number of workers.
//!
//! **End of input.** A finite source ends by telling every worker the latest event time it saw;
//! timers (reminders, staleness) fire up to that time and no further, so the end of a file is
//! the same instant in every run.
//!
//! The dataflow reads as its picture ([`run`]): `scope.read_source(...)` ([`source`]) then
//! `.monitor_patients(...)` ([`monitors`]) then `.alerts_in_order(...)` ([`ordered_sink`]); how
//! nothing is lost is one protocol in [`durability`].

pub mod acknowledgements;
pub mod clock;
pub mod cluster;
mod dedup;
pub mod durability;
mod monitors;
mod ordered_sink;
mod pending;
pub mod placement;
mod run;
mod side;
pub mod snapshot;
mod source;
mod wards;

pub use run::{run, run_source};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use thiserror::Error;

use crate::observation::{EventTime, Identifier};
use crate::registry::Prescribed;
use placement::Placement;

/// Rows per archive file (at most; files are also closed at each flush and at the end).
const ARCHIVE_ROWS_PER_FILE: usize = 500_000;

/// How often the archive is flushed by default. A flush closes a Parquet file and makes what was
/// read before it committable: shorter re-reads less after a crash but writes more, smaller files.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(5);

pub use crate::monitor::events::{Acknowledgement, Backfill, Event, Held, Unreadable};

/// The worker an event goes to: its patient's, or the one an end marker is addressed to.
pub fn worker_of(event: &Event, placement: &Placement) -> u64 {
    match event {
        Event::Observation(o) => placement.worker(o.patient()),
        Event::Invalid { subject, .. } => placement.worker(&subject.patient),
        Event::Prescription { patient, .. } => placement.worker(patient),
        Event::Held(held) => placement.worker(&held.patient),
        Event::Backfill(b) => placement.worker(b.obs.patient()),
        Event::Unreadable(u) => placement.worker(&u.patient),
        Event::Acknowledged(a) => placement.worker(&a.patient),
        Event::End { worker, .. } | Event::Snapshot { worker, .. } => *worker,
    }
}

/// Feeds registry rows into the collection, in event-time order: each row adds what it
/// prescribes from its time on and retracts what it replaces (the patient's scale, or the
/// medication's schedule).
fn feed_registry(
    input: &mut differential_dataflow::input::InputSession<i64, (Identifier, Prescribed), isize>,
    rows: &[crate::registry::Prescription],
) {
    let rows = rows.iter().map(|row| {
        let what = match &row.prescribed {
            Prescribed::Scale(_) => None,
            Prescribed::Schedule(s) => Some(s.medication.clone()),
        };
        let time = row.from.map_or(i64::MIN, EventTime::micros);
        (time, (row.patient.clone(), what), row.prescribed.clone())
    });
    feed_latest(rows.collect(), |(patient, _), prescribed, time, diff| {
        input.update_at((patient.clone(), prescribed), time, diff)
    });
}

/// Feeds a value that changes over time, per key, from rows `(time, key, value)`: in time
/// order (a file's order within a time), each row adds its value from its time on and retracts
/// the key's value before it, through `update(key, value, time, diff)`.
pub(crate) fn feed_latest<K: std::hash::Hash + Eq, V: Clone>(
    mut rows: Vec<(i64, K, V)>,
    mut update: impl FnMut(&K, V, i64, isize),
) {
    rows.sort_by_key(|(time, _, _)| *time);
    let mut current: std::collections::HashMap<K, V> = std::collections::HashMap::new();
    for (time, key, value) in rows {
        if let Some(previous) = current.get(&key) {
            update(&key, previous.clone(), time, -1);
        }
        update(&key, value.clone(), time, 1);
        current.insert(key, value);
    }
}

/// A hash map for the per-patient state of the hot path: foldhash with a fixed seed (no
/// HashDoS exposure here: keys are ids from the operator's own devices, and the map's order is
/// never observed).
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;

/// Run-time choices on top of the pipeline file.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Workers; the config's when `None`.
    pub workers: Option<usize>,
    /// Replace the source by this file (wire-format JSON lines unless `input_format` says).
    pub input: Option<PathBuf>,
    /// How `input` is written; with no `input`, overrides the format of a jsonl or kafka source.
    pub input_format: Option<crate::formats::InputFormat>,
    /// Also write every alert as a JSON line here.
    pub alerts: Option<PathBuf>,
    /// Write rejected records here, each with its position and reason.
    pub dead_letter: Option<PathBuf>,
    /// Write late observations here.
    pub late: Option<PathBuf>,
    /// Archive every observation to Parquet under this directory.
    pub archive: Option<PathBuf>,
    /// Encrypt every file of the archive with this key (and read the archive's earlier files
    /// with it, on a resumed run).
    pub archive_key: Option<Arc<crate::archive::ArchiveKey>>,
    /// Set to stop gracefully: sources end, everything is flushed and committed.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Stop gracefully once the sources have read nothing for this long (drain a topic and exit).
    pub exit_when_idle: Option<Duration>,
    /// Flush the archive this often ([`DEFAULT_FLUSH_EVERY`] when `None`); the source's
    /// positions are committed only up to the last flush whose alerts are delivered.
    pub flush_every: Option<Duration>,
    /// With an archive and a source of partitions, how often worker 0 asks for snapshots of
    /// patients ([`snapshot`]); none: no snapshots.
    pub snapshot_every: Option<Duration>,
    /// Release records at this multiple of real time (a replay at `60` plays an hour a minute).
    pub speed: Option<f64>,
    /// Apply these acknowledgements (JSON lines), each at its event time; with `archive`, also
    /// the archive's own, and these are recorded in it.
    pub acknowledgements: Option<PathBuf>,
    /// Show the run on this ward board (its server is the caller's): every alert and board
    /// state goes to it, and its acknowledgements come back through worker 0's source.
    pub board: Option<Arc<crate::sinks::board::Board>>,
    /// Publish the run's metrics here as it goes (`--metrics`; the caller serves them).
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
    /// Run as one process of a cluster (`--processes`, `--process`, `--hosts`); `workers` is
    /// then each process's.
    pub cluster: Option<cluster::Cluster>,
    /// Print progress to standard error.
    pub progress: bool,
    /// Do not write to the console sink (scripts and tests).
    pub quiet: bool,
}

impl RunOptions {
    /// Whether this process leads the run: the only one, or process 0 of a cluster (it reads a
    /// single-reader source and runs the sinks).
    pub fn leads(&self) -> bool {
        self.cluster.as_ref().is_none_or(|c| c.process == 0)
    }
}

/// What a run did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunSummary {
    pub observations: u64,
    pub rejected: u64,
    /// Rejected records whose patient was known and that came in time (not late): reported to
    /// the patient's monitor. A late one is only rejected, like a late observation is only late.
    pub invalid_values: u64,
    pub late: u64,
    pub duplicates: u64,
    /// Records held aside because their device's clock could not be believed.
    pub held: u64,
    /// Glucose readings that arrived behind the clock (a CGM's backfill): archived and scored,
    /// never paging for the past; not counted late.
    pub backfilled: u64,
    pub alerts: u64,
    /// Rows and files written to the archive's observations, and alerts to its alerts.
    pub archived: u64,
    pub archive_files: u64,
    pub alerts_archived: u64,
    /// Alerts by `kind/event`.
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Resuming over an archive: rows replayed from it to rebuild patients' state, messages read
    /// again and skipped because it held them, and alerts not sent again because an earlier run
    /// delivered them.
    pub restored: u64,
    pub already_archived: u64,
    pub alerts_already_delivered: u64,
    /// Snapshots of patients written, and patients a restart took from one instead of
    /// replaying the archive before it.
    pub snapshots: u64,
    pub snapshot_patients: u64,
    /// Bytes of each worker's latest snapshot, all workers, and the longest a worker took to
    /// write one (ms): its dataflow waits meanwhile.
    pub snapshot_bytes: u64,
    pub snapshot_max_ms: u64,
    pub patients: u64,
    /// How long patients were monitored, all patients (first seen to latest observation, µs).
    pub monitored_us: u64,
    /// Bytes of monitor state at the end, all patients.
    pub state_bytes: u64,
    pub workers: usize,
    #[serde(skip)]
    pub elapsed: Duration,
    /// First and last event time processed (µs).
    pub first_event_us: Option<i64>,
    pub last_event_us: Option<i64>,
    /// Per patient with a medication schedule, each medication's adherence over the 7 and 30
    /// days to the end of the input.
    pub adherence: BTreeMap<String, Vec<crate::rules::medication::AdherenceReport>>,
}

impl RunSummary {
    fn merge(&mut self, other: &RunSummary) {
        self.observations += other.observations;
        self.rejected += other.rejected;
        self.invalid_values += other.invalid_values;
        self.late += other.late;
        self.duplicates += other.duplicates;
        self.held += other.held;
        self.backfilled += other.backfilled;
        self.alerts += other.alerts;
        self.archived += other.archived;
        self.archive_files += other.archive_files;
        self.alerts_archived += other.alerts_archived;
        self.restored += other.restored;
        self.already_archived += other.already_archived;
        self.alerts_already_delivered += other.alerts_already_delivered;
        self.snapshots += other.snapshots;
        self.snapshot_patients += other.snapshot_patients;
        self.snapshot_bytes += other.snapshot_bytes;
        self.snapshot_max_ms = self.snapshot_max_ms.max(other.snapshot_max_ms);
        for (k, v) in &other.alerts_by_kind {
            *self.alerts_by_kind.entry(k.clone()).or_default() += v;
        }
        self.patients += other.patients;
        self.monitored_us += other.monitored_us;
        self.state_bytes += other.state_bytes;
        self.first_event_us = min_some(self.first_event_us, other.first_event_us);
        self.last_event_us = self.last_event_us.max(other.last_event_us);
        self.adherence
            .extend(other.adherence.iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    /// Patient-days monitored.
    pub fn patient_days(&self) -> f64 {
        self.monitored_us as f64 / 86_400e6
    }

    /// Alerts to people per patient-day: all (`None`), or of one `kind/event`.
    pub fn alerts_per_patient_day(&self, kind: Option<&str>) -> Option<f64> {
        let days = self.patient_days();
        let n = match kind {
            None => self.alerts,
            Some(k) => self.alerts_by_kind.get(k).copied().unwrap_or(0),
        };
        (days > 0.0).then(|| n as f64 / days)
    }

    /// Observations per second of wall time.
    pub fn throughput(&self) -> f64 {
        self.observations as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }
}

fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A run that could not complete.
#[derive(Debug, Error)]
pub enum PipelineError {
    #[error("{0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("{0}")]
    Sink(#[from] crate::sinks::SinkError),
    #[error("cannot read the registry {path}: {reason}")]
    Registry { path: PathBuf, reason: String },
    #[error("cannot write {what}: {source}")]
    Output {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the archive: {0}")]
    Archive(#[source] crate::archive::ArchiveError),
    #[error("{0}")]
    Risk(#[from] crate::risk::model::ModelError),
    #[error("alerts were not delivered within 5 minutes of the end; offsets not committed")]
    Undelivered,
    #[error("worker {worker}: {error}")]
    Worker {
        worker: usize,
        #[source]
        error: Box<PipelineError>,
    },
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Workers(Vec<PipelineError>),
    #[error("{}:{line}: not an acknowledgement: {reason}", .path.display())]
    Acknowledgements {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{0}")]
    Sealed(#[from] crate::archive::sealed::SealError),
    #[error("the dataflow failed: {0}")]
    Dataflow(String),
}

impl From<std::io::Error> for PipelineError {
    fn from(source: std::io::Error) -> PipelineError {
        PipelineError::Output {
            what: "a side file".to_owned(),
            source,
        }
    }
}

impl PipelineError {
    /// Whether the pipeline's own files are at fault (its registry, its risk model), rather than
    /// something that failed while it ran.
    pub fn is_configuration(&self) -> bool {
        match self {
            PipelineError::Registry { .. } | PipelineError::Risk(_) => true,
            PipelineError::Worker { error, .. } => error.is_configuration(),
            PipelineError::Workers(errors) => errors.iter().all(PipelineError::is_configuration),
            _ => false,
        }
    }
}

/// Shared by the operators of one worker.
#[derive(Default)]
struct WorkerState {
    summary: RunSummary,
    error: Option<PipelineError>,
    /// With `--metrics`, where the summary is published as it grows.
    metrics: Option<crate::metrics::Publisher>,
}

impl WorkerState {
    /// Whether the metrics are due to be published (never without metrics).
    fn metrics_due(&self) -> bool {
        self.metrics
            .as_ref()
            .is_some_and(crate::metrics::Publisher::due)
    }

    /// Publishes the summary to the metrics, when due or when `now`.
    fn publish(&mut self, now: bool) {
        if let Some(p) = self.metrics.as_mut()
            && (now || p.due())
        {
            p.publish(&self.summary);
        }
    }

    /// The shared metrics, to record what an operator measures.
    fn metrics(&self) -> Option<&crate::metrics::Metrics> {
        self.metrics
            .as_ref()
            .map(crate::metrics::Publisher::metrics)
    }
}
