//! The streaming engine: a timely dataflow assembled from a pipeline config.
//!
//! ```text
//! source ──► (exchange by patient) ──► monitors: windows → NEWS2 → alert policy ──► (to worker 0) ──► ordered alert sinks
//!   │ late ──► counted, late file                 ▲
//!   └ rejected ──► dead-letter file;              │ as-of join on patient
//!     impossible values of a known patient ──►    │
//! registry (differential collection of (patient, scale), consolidated) ─┘
//! ```
//!
//! **The registry** is a differential-dataflow collection of `(patient, scale)` whose updates
//! carry the event time a prescription takes effect (a change retracts the old scale and adds the
//! new one at that time). The monitors join the observation stream with it *as of* each
//! observation's time: a change of prescription applies from its event time on, never to
//! observations before it, in a live run and in a replay alike.
//!
//! **Event time.** The timely timestamp is the event time in ticks (`[time] tick`). The source
//! holds its capability at the watermark: the latest event time seen minus the allowed lateness.
//! A record older than the watermark is late: counted and sent to the late output, never
//! processed out of order and never dropped silently.
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

pub mod clock;
mod dedup;
pub mod monitors;
mod ordered_sink;
pub mod placement;
mod side;
mod source;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use differential_dataflow::input::Input;
use serde::Serialize;
use thiserror::Error;

use crate::config::{PipelineConfig, SourceConfig};
use crate::monitor::MonitorSettings;
use crate::news2::Scale;
use crate::observation::{EventTime, Identifier};
use placement::Placement;

/// Rows per archive file (at most; files are also closed at each flush and at the end).
const ARCHIVE_ROWS_PER_FILE: usize = 500_000;

/// How often the archive is flushed by default. A flush closes a Parquet file and makes what was
/// read before it committable: shorter re-reads less after a crash but writes more, smaller files.
pub const DEFAULT_FLUSH_EVERY: Duration = Duration::from_secs(5);

pub use crate::monitor::events::{Event, Held};

/// The worker an event goes to: its patient's, or the one an end marker is addressed to.
pub fn worker_of(event: &Event, placement: &Placement) -> u64 {
    match event {
        Event::Observation(o) => placement.worker(o.patient()),
        Event::Invalid { subject, .. } => placement.worker(&subject.patient),
        Event::Prescription { patient, .. } => placement.worker(patient),
        Event::Held(held) => placement.worker(&held.patient),
        Event::End { worker, .. } => *worker,
    }
}

/// Feeds registry rows into the collection, in event-time order: each row adds its scale from its
/// time on and retracts the patient's previous one.
fn feed_registry(
    input: &mut differential_dataflow::input::InputSession<i64, (Identifier, Scale), isize>,
    rows: &[crate::registry::Prescription],
) {
    let mut rows: Vec<&crate::registry::Prescription> = rows.iter().collect();
    rows.sort_by_key(|r| r.from.map_or(i64::MIN, EventTime::micros));
    let mut current: std::collections::HashMap<&Identifier, Scale> =
        std::collections::HashMap::new();
    for row in rows {
        let time = row.from.map_or(i64::MIN, EventTime::micros);
        if let Some(previous) = current.insert(&row.patient, row.scale) {
            input.update_at((row.patient.clone(), previous), time, -1);
        }
        input.update_at((row.patient.clone(), row.scale), time, 1);
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
    /// Replace the source by this JSON lines file.
    pub input: Option<PathBuf>,
    /// Also write every alert as a JSON line here.
    pub alerts: Option<PathBuf>,
    /// Write rejected records here, each with its position and reason.
    pub dead_letter: Option<PathBuf>,
    /// Write late observations here.
    pub late: Option<PathBuf>,
    /// Archive every observation to Parquet under this directory.
    pub archive: Option<PathBuf>,
    /// Set to stop gracefully: sources end, everything is flushed and committed.
    pub stop: Option<Arc<std::sync::atomic::AtomicBool>>,
    /// Stop gracefully once the sources have read nothing for this long (drain a topic and exit).
    pub exit_when_idle: Option<Duration>,
    /// Flush the archive this often ([`DEFAULT_FLUSH_EVERY`] when `None`); the source's
    /// positions are committed only up to the last flush whose alerts are delivered.
    pub flush_every: Option<Duration>,
    /// Release records at this multiple of real time (a replay at `60` plays an hour a minute).
    pub speed: Option<f64>,
    /// Print progress to standard error.
    pub progress: bool,
    /// Do not write to the console sink (scripts and tests).
    pub quiet: bool,
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
    pub alerts: u64,
    /// Rows and files written to the archive.
    pub archived: u64,
    pub archive_files: u64,
    /// Alerts by `kind/event`.
    pub alerts_by_kind: BTreeMap<String, u64>,
    /// Resuming over an archive: rows replayed from it to rebuild patients' state, messages read
    /// again and skipped because it held them, and alerts not sent again because an earlier run
    /// delivered them.
    pub restored: u64,
    pub already_archived: u64,
    pub alerts_already_delivered: u64,
    pub patients: u64,
    /// Bytes of monitor state at the end, all patients.
    pub state_bytes: u64,
    pub workers: usize,
    #[serde(skip)]
    pub elapsed: Duration,
    /// First and last event time processed (µs).
    pub first_event_us: Option<i64>,
    pub last_event_us: Option<i64>,
}

impl RunSummary {
    fn merge(&mut self, other: &RunSummary) {
        self.observations += other.observations;
        self.rejected += other.rejected;
        self.invalid_values += other.invalid_values;
        self.late += other.late;
        self.duplicates += other.duplicates;
        self.held += other.held;
        self.alerts += other.alerts;
        self.archived += other.archived;
        self.archive_files += other.archive_files;
        self.restored += other.restored;
        self.already_archived += other.already_archived;
        self.alerts_already_delivered += other.alerts_already_delivered;
        for (k, v) in &other.alerts_by_kind {
            *self.alerts_by_kind.entry(k.clone()).or_default() += v;
        }
        self.patients += other.patients;
        self.state_bytes += other.state_bytes;
        self.first_event_us = min_some(self.first_event_us, other.first_event_us);
        self.last_event_us = self.last_event_us.max(other.last_event_us);
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
    #[error("cannot read the registry {path}: {reason}")]
    Registry { path: PathBuf, reason: String },
    #[error("cannot write output")]
    Output(#[from] std::io::Error),
    #[error("cannot write the archive")]
    Archive(#[source] crate::archive::ArchiveError),
    #[error("{0}")]
    Risk(#[from] crate::risk::model::ModelError),
    #[error("dataflow failed: {0}")]
    Dataflow(String),
}

/// Shared by the operators of one worker.
#[derive(Default)]
struct WorkerState {
    summary: RunSummary,
    error: Option<PipelineError>,
}

/// Runs a pipeline to the end of its input and returns what it did.
pub fn run(config: &PipelineConfig, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let mut config = config.clone();
    if let Some(input) = &options.input {
        config.source = SourceConfig::Jsonl {
            path: input.clone(),
        };
    }
    let name = crate::sources::describe(&config.source);
    // A Kafka source archiving where it archived before resumes over what it archived.
    let archived = match (&config.source, &options.archive) {
        (SourceConfig::Kafka(_), Some(dir)) => {
            Arc::new(crate::archive::archived_offsets(dir, &name).map_err(PipelineError::Archive)?)
        }
        _ => Arc::default(),
    };
    let sources = match &config.source {
        SourceConfig::Kafka(kafka) => {
            let kafka = kafka.clone();
            let stop = options.stop.clone().unwrap_or_default();
            let resume = options
                .archive
                .clone()
                .filter(|_| !archived.is_empty())
                .map(|dir| (dir, Arc::clone(&archived), name.clone()));
            Sources::PerWorker(Arc::new(move |worker, workers| {
                let topic = crate::sources::kafka::KafkaSource::connect(
                    &kafka,
                    worker,
                    workers,
                    Arc::clone(&stop),
                )?;
                let Some((dir, archived, name)) = &resume else {
                    return Ok(Box::new(topic) as Box<dyn crate::sources::Source>);
                };
                let selection = crate::sources::archive::Selection {
                    source: Some(name.clone()),
                    partitions: Some(topic.partitions().to_vec()),
                    ..Default::default()
                };
                let replay = crate::sources::archive::ArchiveReplay::open(dir, &selection)?;
                Ok(Box::new(crate::sources::resume::Resume::new(
                    replay,
                    Arc::clone(archived),
                    Box::new(topic),
                )) as Box<dyn crate::sources::Source>)
            }))
        }
        // Fail before starting workers if the source cannot be opened.
        other => Sources::One(crate::sources::build(other)?),
    };
    run_sources(&config, options, sources, &name, archived)
}

/// Where a run's records come from.
pub enum Sources {
    /// One source, read by worker 0.
    One(Box<dyn crate::sources::Source>),
    /// A source per worker, built on its thread (Kafka: each takes its share of partitions).
    PerWorker(SourceFactory),
}

/// Builds worker `w` of `n`'s source.
pub type SourceFactory = Arc<
    dyn Fn(usize, usize) -> Result<Box<dyn crate::sources::Source>, crate::sources::SourceError>
        + Send
        + Sync,
>;

/// Runs a pipeline on a given source (a replay, a test) instead of the one it names; `name` is
/// how the archive records the source.
pub fn run_source(
    config: &PipelineConfig,
    options: &RunOptions,
    source: Box<dyn crate::sources::Source>,
    name: &str,
) -> Result<RunSummary, PipelineError> {
    run_sources(config, options, Sources::One(source), name, Arc::default())
}

/// `archived`: what earlier runs of this source archived under `options.archive`; when there is
/// some, the run resumes over it (see [`crate::sources::resume`]).
fn run_sources(
    config: &PipelineConfig,
    options: &RunOptions,
    sources: Sources,
    name: &str,
    archived: Arc<crate::archive::ArchivedOffsets>,
) -> Result<RunSummary, PipelineError> {
    let workers = options.workers.unwrap_or(config.workers).max(1);
    let mut settings = MonitorSettings::from_config(config);
    if let Some(risk) = &config.risk {
        settings.risk = Some(Arc::new(crate::risk::RiskScorer::load(
            risk,
            &settings.picture,
        )?));
    }
    let registry = match &config.registry {
        Some(r) => {
            let text = std::fs::read_to_string(&r.path).map_err(|e| PipelineError::Registry {
                path: r.path.clone(),
                reason: e.to_string(),
            })?;
            crate::registry::parse(&text).map_err(|e| PipelineError::Registry {
                path: r.path.clone(),
                reason: e.to_string(),
            })?
        }
        None => Vec::new(),
    };
    let (one_source, factory) = match sources {
        Sources::One(s) => (Some(s), None),
        Sources::PerWorker(f) => (None, Some(f)),
    };
    let placement = match &factory {
        Some(_) => Placement::even(workers),
        None => Placement::weighted(workers, placement::SOURCE_WORKER_WEIGHT),
    };
    let one_source = Arc::new(Mutex::new(one_source));
    let mut sink_configs = config.sinks.clone();
    if options.quiet {
        sink_configs.retain(|s| !matches!(s, crate::config::SinkConfig::Console));
    }
    let mut sinks = crate::sinks::build(&sink_configs, options.alerts.as_deref())?;
    if let Some(dir) = &options.archive {
        // The alerts are archived beside the observations that caused them.
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let path = dir.join("alerts").join(format!("alerts-{run}.jsonl"));
        sinks.push(Box::new(
            crate::sinks::JsonLines::create(&path)
                .map_err(|e| crate::sinks::with_path(e, &path))?,
        ));
    }
    let sinks = Arc::new(Mutex::new(Some(sinks)));
    let files = side::SharedFiles::open(options.dead_letter.as_deref(), options.late.as_deref())?;
    let archive_dir = options.archive.clone();
    let name = name.to_owned();
    let stop = options.stop.clone().unwrap_or_default();
    let delivery = Arc::new(ordered_sink::Delivery::new(workers));
    let tick_us = (config.time.tick.0.as_micros() as i64).max(1);
    let mut resend_from = None;
    let delivery_log = match &options.archive {
        Some(dir) => {
            let resend_from_us = if archived.is_empty() {
                None
            } else {
                let delivered = crate::archive::Delivered::read(dir)
                    .map_err(PipelineError::Archive)?
                    .filter(|d| d.source == name);
                eprintln!(
                    "vigil: resuming over the archive {}: rebuilding patients' state from it{}",
                    dir.display(),
                    delivered.as_ref().map_or(String::new(), |d| format!(
                        "; alerts before {} were delivered and are not sent again",
                        d.before
                    ))
                );
                delivered.map(|d| d.before_us)
            };
            resend_from = resend_from_us;
            Some(ordered_sink::DeliveryLog {
                dir: dir.clone(),
                source: name.to_owned(),
                tick_us,
                resend_from_us,
            })
        }
        None => None,
    };
    let delivery_log = Arc::new(Mutex::new(delivery_log));

    let lateness_us = config.time.allowed_lateness.0.as_micros() as i64;
    let clock = clock::ClockSettings {
        devices: config.time.clock_devices,
        tick_us,
        lateness_us,
        max_jump_us: config.time.max_time_jump.0.as_micros() as i64,
        max_skew_us: Some(config.time.max_clock_skew.0.as_micros() as i64),
    };
    // A resumed run: what the earlier run delivered is behind every partition's watermark.
    let resume_clock_us = resend_from.map(|us: i64| us.saturating_add(lateness_us));
    let progress = options.progress;
    let exit_when_idle = options.exit_when_idle;
    let flush_every = options.flush_every.unwrap_or(DEFAULT_FLUSH_EVERY);
    let speed = options.speed;
    let registry = Arc::new(registry);
    let started = Instant::now();

    let guards = timely::execute(timely::Config::process(workers), move |worker| {
        let index = worker.index();
        let peers = worker.peers();
        let state = Rc::new(RefCell::new(WorkerState::default()));
        // Worker 0 owns a single source and the sinks; each worker archives what it reads.
        let paced = |s: Box<dyn crate::sources::Source>| match speed {
            Some(speed) => Box::new(crate::sources::paced::Paced::new(s, speed))
                as Box<dyn crate::sources::Source>,
            None => s,
        };
        let my_source = match &factory {
            Some(build) => match build(index, peers) {
                Ok(source) => Some(paced(source)),
                Err(e) => {
                    state.borrow_mut().error = Some(e.into());
                    None
                }
            },
            None if index == 0 => one_source.lock().ok().and_then(|mut s| s.take()).map(paced),
            None => None,
        };
        let (my_sinks, my_log) = if index == 0 {
            (
                sinks.lock().ok().and_then(|mut s| s.take()),
                delivery_log.lock().ok().and_then(|mut l| l.take()),
            )
        } else {
            (None, None)
        };
        let archive = match (&archive_dir, &my_source) {
            (Some(dir), Some(_)) => match crate::archive::ArchiveWriter::create(
                dir,
                &name,
                index,
                ARCHIVE_ROWS_PER_FILE,
                Arc::clone(&archived),
            ) {
                Ok(writer) => Some(writer),
                Err(e) => {
                    state.borrow_mut().error = Some(PipelineError::Archive(e));
                    None
                }
            },
            _ => None,
        };
        let my_side = side::SideOutputs::new(archive, files.clone());
        let my_source = Rc::new(RefCell::new(my_source));
        let commit_source = Rc::clone(&my_source);
        let stop = Arc::clone(&stop);
        let source_delivery = Arc::clone(&delivery);
        let sink_delivery = Arc::clone(&delivery);
        let settings = settings.clone();
        let st = Rc::clone(&state);
        let mut registry_input = worker.dataflow::<i64, _, _>(move |scope| {
            let (registry_input, prescriptions) =
                scope.new_collection::<(Identifier, Scale), isize>();
            let events = source::source(
                scope,
                source::SourceParts {
                    source: my_source,
                    side: Some(my_side),
                    stop,
                    exit_when_idle,
                    flush_every,
                    delivery: source_delivery,
                    worker: index,
                    peers: peers as u64,
                    clock,
                    resume_clock_us,
                    progress,
                    state: Rc::clone(&st),
                },
            );
            let alerts = monitors::monitors(
                events,
                prescriptions.consolidate().inner,
                settings,
                placement,
                tick_us,
                Rc::clone(&st),
            );
            ordered_sink::ordered_sink(alerts, my_sinks, my_log, sink_delivery, Rc::clone(&st));
            registry_input
        });
        if index == 0 {
            feed_registry(&mut registry_input, &registry);
        }
        // The registry file is read once: the collection is complete.
        registry_input.close();
        while worker.step_or_park(None) {}
        // Everything read is archived (flushed at the end of the source) and, once worker 0's
        // sinks confirm, every alert delivered: only then do the source's positions move.
        if state.borrow().error.is_none()
            && let Some(source) = commit_source.borrow_mut().as_mut()
            && let Some(checkpoint) = source.checkpoint()
        {
            let result = if delivery.wait_all(std::time::Duration::from_secs(300)) {
                source.commit(&checkpoint).map_err(PipelineError::from)
            } else {
                Err(PipelineError::Dataflow(
                    "alerts were not delivered; offsets not committed".into(),
                ))
            };
            if let Err(e) = result {
                state.borrow_mut().error = Some(e);
            }
        }
        let mut state = state.borrow_mut();
        (
            std::mem::take(&mut state.summary),
            state.error.take().map(|e| e.to_string()),
        )
    })
    .map_err(PipelineError::Dataflow)?;

    let mut summary = RunSummary {
        workers,
        ..RunSummary::default()
    };
    let mut errors = Vec::new();
    for result in guards.join() {
        match result {
            Ok((worker_summary, error)) => {
                summary.merge(&worker_summary);
                errors.extend(error);
            }
            Err(e) => errors.push(e),
        }
    }
    summary.elapsed = started.elapsed();
    if progress {
        eprint!("\r\x1b[2K");
    }
    match errors.into_iter().next() {
        Some(e) => Err(PipelineError::Dataflow(e)),
        None => Ok(summary),
    }
}
