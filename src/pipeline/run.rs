//! Assembling and running a pipeline: its source, settings, registry and sinks, then one timely
//! worker per thread, each running the dataflow
//!
//! ```text
//! scope.read_source(..)  ──►  .monitor_patients(prescriptions, ..)  ──►  .alerts_in_order(..)
//! ```
//!
//! and, once it is done, committing its source's final position ([`super::durability`]). Every
//! worker's error is reported, each naming its worker.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use differential_dataflow::input::Input;
use timely::worker::Worker;

use super::cluster::Cluster;
use super::cluster::mirror::Mirror;
use super::durability::{self, Delivery, DeliveryLog};
use super::monitors::{MonitorPatients, Snapshots};
use super::ordered_sink::AlertsInOrder;
use super::placement::{self, Placement};
use super::side::{SharedFiles, SideOutputs};
use super::snapshot::{self, Restored, SnapshotWriter, WardState};
use super::source::{ReadSource, SourceParts};
use super::{
    ARCHIVE_ROWS_PER_FILE, DEFAULT_FLUSH_EVERY, PipelineError, RunOptions, RunSummary, WorkerState,
    clock, feed_registry,
};
use crate::archive::{ArchiveWriter, ArchivedOffsets};
use crate::config::PipelineConfig;
use crate::monitor::MonitorSettings;
use crate::observation::{EventTime, Identifier};
use crate::registry::Prescribed;
use crate::registry::Prescription;
use crate::sinks::{AlertSink, SinkContext};
use crate::sources::jsonl::JsonlConfig;
use crate::sources::{BuildContext, Built, Source, SourceConfig, SourceFactory};

/// Runs a pipeline to the end of its input and returns what it did.
pub fn run(config: &PipelineConfig, options: &RunOptions) -> Result<RunSummary, PipelineError> {
    let mut config = config.clone();
    if let Some(input) = &options.input {
        config.source = SourceConfig::Jsonl(JsonlConfig {
            path: input.clone(),
            format: options.input_format.unwrap_or_default(),
        });
    }
    let kind = config.source.kind();
    let name = kind.name();
    if !options.leads() && !kind.partitioned() {
        // Process 0 of the cluster reads it.
        return execute(
            &config,
            options,
            Sources::Elsewhere,
            &name,
            Resumed::default(),
        );
    }
    let cx = BuildContext {
        stop: options.stop.clone().unwrap_or_default(),
    };
    // Fails before any worker starts if the source cannot be opened.
    match kind.build(&cx)? {
        Built::One(source) => execute(
            &config,
            options,
            Sources::One(source),
            &name,
            Resumed::default(),
        ),
        Built::PerWorker(factory) => {
            // A source of partitions archiving where it archived before resumes over it.
            let archived = match &options.archive {
                Some(dir) => Arc::new(
                    crate::archive::archived_offsets(dir, &name, options.archive_key.as_deref())
                        .map_err(PipelineError::Archive)?,
                ),
                None => Arc::default(),
            };
            let (factory, line_us, snapshot) = match &options.archive {
                Some(dir) if !archived.is_empty() => {
                    let line_us = durability::resume_line(dir, &name, true)
                        .map_err(PipelineError::Archive)?;
                    let snapshot = latest_snapshot(&config, options, dir, line_us)?;
                    let since_us = snapshot.as_ref().map(|s| replay_since(&config, s.tick));
                    let key = options.archive_key.clone();
                    let factory = resuming(factory, dir, &archived, &name, key, since_us);
                    (factory, line_us, snapshot)
                }
                _ => (factory, None, None),
            };
            let sources = Sources::PerWorker {
                factory,
                partitioned: kind.partitioned(),
            };
            let resumed = Resumed {
                archived,
                line_us,
                snapshot,
            };
            execute(&config, options, sources, &name, resumed)
        }
    }
}

/// Runs a pipeline on a given source (a replay, a test) instead of the one it names; `name` is
/// how the archive records the source.
pub fn run_source(
    config: &PipelineConfig,
    options: &RunOptions,
    source: Box<dyn Source>,
    name: &str,
) -> Result<RunSummary, PipelineError> {
    execute(
        config,
        options,
        Sources::One(source),
        name,
        Resumed::default(),
    )
}

/// What a run resumes over: the offsets its archive holds, the delivered line of the earlier
/// run (alerts before it are not sent again), and the snapshot it starts from.
#[derive(Default)]
struct Resumed {
    archived: Arc<ArchivedOffsets>,
    line_us: Option<i64>,
    snapshot: Option<Restored>,
}

/// A tick of the pipeline's, in µs (at least 1).
fn tick_us(config: &PipelineConfig) -> i64 {
    (config.time.tick.0.as_micros() as i64).max(1)
}

/// The latest snapshot of the archive `dir` that a restart can start from: complete, behind the
/// delivered line `line_us`, taken with this run's settings. One that is refused is reported,
/// and the whole archive replayed instead.
fn latest_snapshot(
    config: &PipelineConfig,
    options: &RunOptions,
    dir: &Path,
    line_us: Option<i64>,
) -> Result<Option<Restored>, PipelineError> {
    let tick_us = tick_us(config);
    let settings = snapshot::fingerprint(&monitor_settings(config)?, tick_us);
    let key = options.archive_key.as_deref();
    match snapshot::latest(dir, line_us, tick_us, &settings, key) {
        Ok(Some(restored)) => {
            tracing::info!(
                "starting from the snapshot at {} ({} patients, taken by {} workers): the \
                 archive is replayed from {} on",
                EventTime::from_micros(restored.tick.saturating_mul(tick_us)).to_rfc3339(),
                restored.state.patients.len(),
                restored.workers,
                EventTime::from_micros(replay_since(config, restored.tick)).to_rfc3339(),
            );
            Ok(Some(restored))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            tracing::warn!("{e}: replaying the whole archive instead");
            Ok(None)
        }
    }
}

/// Where a restart from a snapshot at `tick` replays the archive from (µs): far enough back to
/// rebuild each partition's clock and its horizon of duplicates (an observation is remembered
/// until the watermark is twice the allowed lateness, at least a minute, past it).
fn replay_since(config: &PipelineConfig, tick: i64) -> i64 {
    let tick_us = tick_us(config);
    let lateness_us = config.time.allowed_lateness.0.as_micros() as i64;
    tick.saturating_mul(tick_us)
        .saturating_sub(lateness_us)
        .saturating_sub(2 * lateness_us.max(60_000_000))
        .saturating_sub(snapshot::HORIZON_US)
}

/// Where a run's records come from.
enum Sources {
    /// One source, read by worker 0.
    One(Box<dyn Source>),
    /// A source per worker, built on its thread; `partitioned`: each reads a share of them
    /// (otherwise worker 0 reads all, the others idle).
    PerWorker {
        factory: SourceFactory,
        partitioned: bool,
    },
    /// Read by worker 0, in another process of the cluster: nothing is read here.
    Elsewhere,
}

impl Sources {
    /// How patients are placed on the run's `workers`, the same in every process of a
    /// cluster: evenly when every worker reads, with fewer for worker 0 when it reads alone.
    fn placement(&self, workers: usize) -> Placement {
        match self {
            Sources::PerWorker {
                partitioned: true, ..
            } => Placement::even(workers),
            _ => Placement::weighted(workers, placement::SOURCE_WORKER_WEIGHT),
        }
    }
}

/// Each worker's source first replays what the archive holds of its partitions, then reads them
/// on, skipping what the archive holds (see [`crate::sources::resume`]).
fn resuming(
    factory: SourceFactory,
    dir: &Path,
    archived: &Arc<ArchivedOffsets>,
    name: &str,
    key: Option<Arc<crate::archive::ArchiveKey>>,
    since_us: Option<i64>,
) -> SourceFactory {
    let (dir, archived, name) = (dir.to_owned(), Arc::clone(archived), name.to_owned());
    Arc::new(move |worker, workers| {
        let source = factory(worker, workers)?;
        let selection = crate::sources::archive::Selection {
            source: Some(name.clone()),
            partitions: source.partitions(),
            since_us,
            ..Default::default()
        };
        let replay =
            crate::sources::archive::ArchiveReplay::open(&dir, &selection, key.as_deref())?;
        Ok(Box::new(crate::sources::resume::Resume::new(
            replay,
            Arc::clone(&archived),
            source,
        )) as Box<dyn Source>)
    })
}

/// The alert sinks of worker 0 (of process 0) and, with an archive, its delivery log.
type Outputs = (Vec<Box<dyn AlertSink>>, Option<DeliveryLog>);

/// What every worker of a run shares.
struct Shared {
    settings: MonitorSettings,
    /// How often worker 0 asks for snapshots (none: the run takes none).
    snapshots: Option<std::time::Duration>,
    /// [`snapshot::fingerprint`] of `settings`.
    fingerprint: String,
    /// A restart's patients from a snapshot taken before `restored_tick`, per local worker.
    restored: Mutex<Vec<Option<WardState>>>,
    restored_tick: Option<i64>,
    registry: Vec<Prescription>,
    one_source: Mutex<Option<Box<dyn Source>>>,
    factory: Option<SourceFactory>,
    placement: Placement,
    /// Worker 0's sinks and delivery log.
    sinks: Mutex<Option<Outputs>>,
    files: SharedFiles,
    archive: Option<PathBuf>,
    archived: Arc<ArchivedOffsets>,
    name: String,
    /// How the source's messages are written (the archive's `format` column).
    format: Option<crate::formats::InputFormat>,
    delivery: Arc<Delivery>,
    /// How often each worker flushes its archive (and the alerts dataset is written to).
    flush_every: std::time::Duration,
    clock: clock::ClockSettings,
    /// A resumed run: every partition's clock starts at least here.
    resume_clock_us: Option<i64>,
    /// What clinicians acknowledged, each at its event time (given to worker 0's source).
    acknowledgements: Vec<crate::pipeline::Acknowledgement>,
    /// Acknowledgements made on the board during the run (worker 0's source takes them).
    live_acks: Option<Arc<super::acknowledgements::LiveAcks>>,
    options: RunOptions,
}

/// Prepares what the workers share, runs them, and gathers what they did.
fn execute(
    config: &PipelineConfig,
    options: &RunOptions,
    sources: Sources,
    name: &str,
    resumed: Resumed,
) -> Result<RunSummary, PipelineError> {
    let Resumed {
        archived,
        line_us: resume_from,
        snapshot,
    } = resumed;
    let threads = options.workers.unwrap_or(config.workers).max(1);
    let workers = threads * options.cluster.as_ref().map_or(1, Cluster::processes);
    let placement = sources.placement(workers);
    // A source of partitions resumes over its archive: its workers take snapshots for that.
    let snapshots = match (&options.archive, &sources, options.snapshot_every) {
        (Some(_), Sources::PerWorker { .. }, Some(every)) => Some(every),
        _ => None,
    };
    let (one_source, factory) = match sources {
        Sources::One(s) => (Some(s), None),
        Sources::PerWorker { factory, .. } => (None, Some(factory)),
        Sources::Elsewhere => (None, None),
    };
    let leads = options.leads();
    let tick_us = tick_us(config);
    let lateness_us = config.time.allowed_lateness.0.as_micros() as i64;
    // Process 0 alone feeds the registry and delivers alerts.
    let registry = match leads {
        true => read_registry(config, options.archive_key.as_deref())?,
        false => Vec::new(),
    };
    let mut sinks = match leads {
        true => build_sinks(config, options, !archived.is_empty())?,
        false => Vec::new(),
    };
    let live_acks = options.board.as_ref().map(|board| {
        let acks = Arc::new(super::acknowledgements::LiveAcks::new(
            options.archive.clone(),
            options.archive_key.clone(),
        ));
        board.attach(crate::registry::wards(&registry), Arc::clone(&acks));
        sinks.push(Box::new(crate::sinks::board::BoardSink::new(
            Arc::clone(board),
            "the ward board".to_owned(),
        )));
        acks
    });
    let flush_every = options.flush_every.unwrap_or(DEFAULT_FLUSH_EVERY);
    let log = options.archive.as_ref().filter(|_| leads).map(|dir| {
        let key = options.archive_key.clone();
        DeliveryLog::new(dir, name, tick_us, resume_from, flush_every, key)
    });
    if let Some(dir) = &options.archive {
        // An archive is encrypted from its first file or not at all.
        crate::archive::check_encryption(dir, options.archive_key.as_deref())
            .map_err(PipelineError::Archive)?;
        // A replay of the archive scores with the settings of this run.
        if leads {
            crate::archive::write_metadata(dir, config, options.archive_key.as_deref())
                .map_err(PipelineError::Archive)?;
        }
    }
    let side = |path: &Option<PathBuf>| match (path, &options.cluster) {
        (Some(p), Some(cluster)) => Some(cluster.side_path(p)),
        (p, _) => p.clone(),
    };
    let settings = monitor_settings(config)?;
    let local = match &options.cluster {
        Some(cluster) => cluster.workers(threads),
        None => 0..threads,
    };
    let restored_tick = snapshot.as_ref().map(|s| s.tick);
    let restored = match snapshot {
        Some(s) => s.share(&placement, local).into_iter().map(Some).collect(),
        None => Vec::new(),
    };
    let shared = Arc::new(Shared {
        fingerprint: snapshot::fingerprint(&settings, tick_us),
        settings,
        snapshots,
        restored: Mutex::new(restored),
        restored_tick,
        registry,
        one_source: Mutex::new(one_source),
        factory,
        placement,
        sinks: Mutex::new(leads.then_some((sinks, log))),
        files: SharedFiles::open(
            side(&options.dead_letter).as_deref(),
            side(&options.late).as_deref(),
        )?,
        archive: options.archive.clone(),
        archived,
        name: name.to_owned(),
        format: config.source.kind().format(),
        delivery: Arc::new(Delivery::new(workers)),
        flush_every,
        clock: clock::ClockSettings {
            devices: config.time.clock_devices,
            tick_us,
            lateness_us,
            max_jump_us: config.time.max_time_jump.0.as_micros() as i64,
            max_skew_us: Some(config.time.max_clock_skew.0.as_micros() as i64),
        },
        resume_clock_us: resume_from.map(|us| us.saturating_add(lateness_us)),
        acknowledgements: match leads {
            true => acknowledgements(options)?,
            false => Vec::new(),
        },
        live_acks,
        options: options.clone(),
    });
    let started = Instant::now();
    let (timely_config, first) = match &options.cluster {
        Some(cluster) => (cluster.config(threads), cluster.workers(threads).start),
        None => (timely::Config::process(threads), 0),
    };
    let guards = timely::execute(timely_config, move |worker| worker_main(worker, &shared))
        .map_err(PipelineError::Dataflow)?;
    // Timely's network threads panic when another process goes (fail-stop), and joining
    // them passes that on: caught here, to end the run with an error instead.
    let joined = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| guards.join()));
    if options.progress {
        eprint!("\r\x1b[2K");
    }
    match joined {
        Ok(results) => gather(results, threads, first, started),
        Err(_) => Err(PipelineError::Dataflow(LOST_PEER.to_owned())),
    }
}

/// Why a process of a cluster stopped when another one went.
const LOST_PEER: &str = "lost its connection to another process of the cluster, which stopped \
    or cannot be reached: timely stops every process with it; nothing is committed past what is \
    archived and delivered, and a restart of every process resumes";

/// A worker's panic, in words: a lost connection to another process (timely's network
/// threads poison what they share with the workers) says so.
fn panic_reason(worker: usize, panic: &str) -> PipelineError {
    let lost = ["MergeQueue poisoned", "timely communication error"];
    match lost.iter().any(|l| panic.contains(l)) {
        true => PipelineError::Dataflow(format!("worker {worker}: {LOST_PEER}")),
        false => PipelineError::Dataflow(format!("worker {worker}: {panic}")),
    }
}

/// What this process's workers (`first` on) did together, or every error they met, each naming
/// its worker.
fn gather(
    results: Vec<Result<(RunSummary, Option<PipelineError>), String>>,
    workers: usize,
    first: usize,
    started: Instant,
) -> Result<RunSummary, PipelineError> {
    let mut summary = RunSummary {
        workers,
        ..RunSummary::default()
    };
    let mut errors = Vec::new();
    for (index, result) in (first..).zip(results) {
        match result {
            Ok((worker_summary, error)) => {
                summary.merge(&worker_summary);
                errors.extend(error.map(|error| PipelineError::Worker {
                    worker: index,
                    error: Box::new(error),
                }));
            }
            Err(panic) => errors.push(panic_reason(index, &panic)),
        }
    }
    summary.elapsed = started.elapsed();
    match errors.len() {
        0 => Ok(summary),
        1 => Err(errors.remove(0)),
        _ => Err(PipelineError::Workers(errors)),
    }
}

/// The acknowledgements a run applies: `--acks`'s and, with an archive, the archive's (which
/// then records `--acks`'s).
fn acknowledgements(
    options: &RunOptions,
) -> Result<Vec<crate::pipeline::Acknowledgement>, PipelineError> {
    let key = options.archive_key.as_deref();
    let given = match &options.acknowledgements {
        Some(path) => super::acknowledgements::read(path, key)?,
        None => Vec::new(),
    };
    match &options.archive {
        Some(dir) => super::acknowledgements::record(dir, given, key),
        None => Ok(given),
    }
}

/// The monitors' settings, with the pipeline's risk model loaded and checked against them.
fn monitor_settings(config: &PipelineConfig) -> Result<MonitorSettings, PipelineError> {
    let mut settings = MonitorSettings::from_config(config);
    if let Some(risk) = &config.risk {
        let scorer = crate::risk::RiskScorer::load(risk, &settings.picture)?;
        settings.risk = Some(Arc::new(scorer));
    }
    settings.keep_read_windows();
    Ok(settings)
}

/// The registry: the pipeline's own (plaintext), or an encrypted archive's sealed copy.
fn read_registry(
    config: &PipelineConfig,
    key: Option<&crate::archive::ArchiveKey>,
) -> Result<Vec<Prescription>, PipelineError> {
    let Some(r) = &config.registry else {
        return Ok(Vec::new());
    };
    let error = |reason: String| PipelineError::Registry {
        path: r.path.clone(),
        reason,
    };
    let text = crate::archive::sealed::read_text(&r.path, key)
        .map_err(|e| error(e.to_string()))?
        .ok_or_else(|| error("it does not exist".to_owned()))?;
    crate::registry::parse(&text).map_err(|e| error(e.to_string()))
}

/// The pipeline's sinks (without the console when quiet) and `--alerts` (the archive keeps its
/// own copy, see [`DeliveryLog`]). A run that resumes over its archive goes on with the files
/// it wrote.
fn build_sinks(
    config: &PipelineConfig,
    options: &RunOptions,
    resume: bool,
) -> Result<Vec<Box<dyn AlertSink>>, PipelineError> {
    let mut configs = config.sinks.clone();
    if options.quiet {
        configs.retain(|s| !matches!(s, crate::config::SinkConfig::Console(_)));
    }
    let cx = SinkContext { resume };
    Ok(crate::sinks::build(
        &configs,
        options.alerts.as_deref(),
        &cx,
    )?)
}

/// One worker: its source (worker 0's, or its own share), archive and (on worker 0) sinks; the
/// dataflow; and, once it is done, the final commit. Returns what it did and its error.
fn worker_main(worker: &mut Worker, shared: &Shared) -> (RunSummary, Option<PipelineError>) {
    let index = worker.index();
    let state = Rc::new(RefCell::new(WorkerState {
        metrics: shared
            .options
            .metrics
            .clone()
            .map(|m| crate::metrics::Publisher::new(m, index)),
        ..WorkerState::default()
    }));
    let source = worker_source(index, worker.peers(), shared, &state);
    let archive = match (&shared.archive, &source) {
        (Some(dir), Some(_)) => ArchiveWriter::create(
            dir,
            &shared.name,
            shared.format,
            index,
            ARCHIVE_ROWS_PER_FILE,
            Arc::clone(&shared.archived),
            shared.options.archive_key.clone(),
        )
        .map_err(|e| state.borrow_mut().error = Some(PipelineError::Archive(e)))
        .ok(),
        _ => None,
    };
    let (sinks, log) = match index {
        0 => shared.sinks.lock().ok().and_then(|mut s| s.take()).unzip(),
        _ => (None, None),
    };
    let source = Rc::new(RefCell::new(source));
    let parts = SourceParts {
        source: Rc::clone(&source),
        side: Some(SideOutputs::new(archive, shared.files.clone())),
        stop: shared.options.stop.clone().unwrap_or_default(),
        exit_when_idle: shared.options.exit_when_idle,
        flush_every: shared.flush_every,
        delivery: Arc::clone(&shared.delivery),
        worker: index,
        peers: worker.peers() as u64,
        clock: shared.clock,
        resume_clock_us: shared.resume_clock_us,
        progress: shared.options.progress,
        state: Rc::clone(&state),
        acknowledgements: match index {
            0 => shared.acknowledgements.clone(),
            _ => Vec::new(),
        },
        live_acks: shared.live_acks.clone().filter(|_| index == 0),
        snapshot_every: shared.snapshots.filter(|_| index == 0),
    };
    let (mut registry, mut wards) = dataflow(worker, parts, shared, sinks, log.flatten(), &state);
    let mirror = shared.options.cluster.as_ref().map(|cluster| {
        let local = cluster.workers(worker.peers() / cluster.processes());
        Mirror::install(worker, Arc::clone(&shared.delivery), local)
    });
    if index == 0 {
        feed_registry(&mut registry, &shared.registry);
        if shared.options.board.is_some() {
            super::wards::feed_wards(&mut wards, &shared.registry, shared.clock.tick_us);
        }
    }
    // The registry file is read once: the collections are complete.
    registry.close();
    wards.close();
    match mirror {
        Some(mirror) => mirror.run(worker, || state.borrow().error.is_some()),
        None => while worker.step_or_park(None) {},
    }
    // Everything read is archived and, once worker 0's sinks confirm, every alert delivered:
    // only then do the source's positions move.
    if state.borrow().error.is_none()
        && let Some(source) = source.borrow_mut().as_mut()
    {
        let started = std::time::Instant::now();
        match durability::final_commit(source.as_mut(), &shared.delivery) {
            Err(e) => state.borrow_mut().error = Some(e),
            Ok(true) => {
                if let Some(m) = state.borrow().metrics() {
                    m.offsets_committed(started.elapsed());
                }
            }
            Ok(false) => {}
        }
    }
    let mut state = state.borrow_mut();
    state.publish(true);
    (std::mem::take(&mut state.summary), state.error.take())
}

/// Worker `index`'s source: its own share (built on its thread), or the only one (worker 0's),
/// released at the run's speed.
fn worker_source(
    index: usize,
    peers: usize,
    shared: &Shared,
    state: &Rc<RefCell<WorkerState>>,
) -> Option<Box<dyn Source>> {
    let source = match &shared.factory {
        Some(build) => match build(index, peers) {
            Ok(source) => Some(source),
            Err(e) => {
                state.borrow_mut().error = Some(e.into());
                None
            }
        },
        None if index == 0 => shared.one_source.lock().ok().and_then(|mut s| s.take()),
        None => None,
    };
    match shared.options.speed {
        Some(speed) => {
            source.map(|s| Box::new(crate::sources::paced::Paced::new(s, speed)) as Box<dyn Source>)
        }
        None => source,
    }
}

/// Worker `worker`'s snapshots: its writer when the run takes them, and its share of the
/// restart's patients.
fn worker_snapshots(worker: &Worker, shared: &Shared) -> Snapshots {
    let index = worker.index();
    let writer = match (&shared.archive, shared.snapshots) {
        (Some(dir), Some(_)) => Some(SnapshotWriter {
            dir: dir.clone(),
            key: shared.options.archive_key.clone(),
            worker: index as u64,
            workers: worker.peers() as u64,
            settings: shared.fingerprint.clone(),
        }),
        _ => None,
    };
    let first = match &shared.options.cluster {
        Some(cluster) => cluster.workers(worker.peers() / cluster.processes()).start,
        None => 0,
    };
    let restored = shared.restored_tick.and_then(|tick| {
        let mut all = shared.restored.lock().ok()?;
        Some((tick, all.get_mut(index - first)?.take()?))
    });
    Snapshots { writer, restored }
}

/// The registry's input, for worker `index` to feed.
type RegistryInput =
    differential_dataflow::input::InputSession<i64, (Identifier, Prescribed), isize>;

/// Builds the dataflow on `worker`.
fn dataflow(
    worker: &mut Worker,
    parts: SourceParts,
    shared: &Shared,
    sinks: Option<Vec<Box<dyn AlertSink>>>,
    log: Option<DeliveryLog>,
    state: &Rc<RefCell<WorkerState>>,
) -> (RegistryInput, super::wards::WardsInput) {
    let settings = shared.settings.clone();
    let board = shared.options.board.clone();
    let placement = shared.placement;
    let tick_us = shared.clock.tick_us;
    let delivery = Arc::clone(&shared.delivery);
    let snapshots = worker_snapshots(worker, shared);
    let state = Rc::clone(state);
    worker.dataflow::<i64, _, _>(move |scope| {
        let (registry, prescriptions) = scope.new_collection::<(Identifier, Prescribed), isize>();
        let (wards_input, wards) = scope.new_collection::<(String, String), isize>();
        let alerts = scope.read_source(parts).monitor_patients(
            prescriptions.consolidate().inner,
            settings,
            placement,
            tick_us,
            Rc::clone(&state),
            snapshots,
        );
        if let Some(board) = board {
            super::wards::count_wards(alerts.clone(), wards, board);
        }
        alerts.alerts_in_order(sinks, log, delivery, state);
        (registry, wards_input)
    })
}
