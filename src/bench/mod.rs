//! The end-to-end benchmark harness (`vigil bench` is its front): throughput of the whole
//! dataflow, memory per patient, and Kafka end to end, each next to its limit measured in the
//! same run, on a generated workload of fixed seed and size ([`workload`]).
//!
//! Every figure goes to a [`Report`]: the command line prints it and may append it as JSON.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use thiserror::Error;

use crate::config::PipelineConfig;
use crate::observation::Observation;
use crate::pipeline::{self, PipelineError, RunOptions, RunSummary};
use crate::sources::SourceItem;
use workload::{PER_PATIENT_HOUR, Recorded, Workload, WorkloadConfig};

pub mod kafka;
pub mod workload;

/// A bench that could not be measured.
#[derive(Debug, Error)]
pub enum BenchError {
    #[error("{0}")]
    Pipeline(#[from] PipelineError),
    #[error("{0}")]
    Config(#[from] crate::config::LoadError),
    #[error("{0}")]
    Source(#[from] crate::sources::SourceError),
    #[error("kafka: {what}: {reason}")]
    Kafka { what: String, reason: String },
    #[error("kafka: {0}")]
    Client(#[from] rdkafka::error::KafkaError),
    #[error("{0}")]
    Value(#[from] crate::observation::InvalidValue),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    /// What was measured is not what the bench asked for.
    #[error("{0}")]
    Failed(String),
}

impl BenchError {
    fn kafka(what: impl Into<String>, reason: impl fmt::Display) -> BenchError {
        BenchError::Kafka {
            what: what.into(),
            reason: reason.to_string(),
        }
    }

    fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
        let what = what.into();
        move |source| BenchError::Io { what, source }
    }
}

/// Where a bench's results go.
pub trait Report {
    /// One measured figure.
    fn figure(&mut self, figure: &Figure) -> Result<(), BenchError>;
    /// A result that is not a throughput (latencies): a line for people, a record for files.
    fn note(&mut self, line: &str, record: serde_json::Value) -> Result<(), BenchError>;
}

/// Settings shared by every bench.
#[derive(Clone, Debug)]
pub struct Common {
    /// The pipeline whose settings (windows, staleness, alerts, risk model) the dataflow runs.
    pub pipeline: PathBuf,
    /// Run without the pipeline's risk model (NEWS2 and alerting only).
    pub no_risk: bool,
    /// Seed of the cohort.
    pub seed: u64,
}

/// One measured figure.
#[derive(Debug, Serialize)]
pub struct Figure {
    pub bench: &'static str,
    pub what: String,
    pub patients: u32,
    pub observations: u64,
    pub seconds: f64,
    pub per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alerts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub state_bytes_per_patient: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

impl fmt::Display for Figure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<8} {:<44} {:>12} obs in {:>7.2} s = {:>10.0} obs/s",
            self.bench, self.what, self.observations, self.seconds, self.per_second,
        )?;
        if let Some(b) = self.state_bytes_per_patient {
            write!(f, ", {b:.0} B of state per patient")?;
        }
        if let Some(b) = self.peak_rss_bytes {
            write!(f, ", peak RSS {:.0} MiB", b as f64 / 1048576.0)?;
        }
        Ok(())
    }
}

/// What `vigil bench replay` runs.
#[derive(Clone, Debug)]
pub struct ReplayOptions {
    pub patients: u32,
    /// Minutes of event time.
    pub minutes: u32,
    /// Worker counts to run.
    pub workers: Vec<usize>,
    /// Also write the alerts here (the golden file of the workload); the runs with other worker
    /// counts must give the same bytes, or the bench fails.
    pub alerts: Option<PathBuf>,
    pub common: Common,
}

/// The pipeline a bench runs, without its sinks (and its risk model if asked).
pub fn config(common: &Common) -> Result<PipelineConfig, BenchError> {
    let mut config = PipelineConfig::load(&common.pipeline)?;
    if common.no_risk {
        config.risk = None;
    }
    config.sinks.clear();
    Ok(config)
}

/// The workload of `patients` over `minutes` from the benches' fixed start.
pub fn workload(patients: u32, minutes: u32, seed: u64) -> WorkloadConfig {
    WorkloadConfig {
        patients,
        seconds: minutes * 60,
        seed,
        start_us: 1_767_571_200_000_000,
    }
}

fn quiet(workers: usize) -> RunOptions {
    RunOptions {
        workers: Some(workers),
        quiet: true,
        ..RunOptions::default()
    }
}

/// Replay throughput of the whole dataflow from memory with each worker count, beside the rate
/// at which one core decodes the same observations from the wire format.
pub fn replay(options: &ReplayOptions, out: &mut dyn Report) -> Result<(), BenchError> {
    let config = config(&options.common)?;
    let cohort = workload(options.patients, options.minutes, options.common.seed);
    eprintln!(
        "vigil bench: {} patients × {} min ≈ {:.0} observations",
        options.patients,
        options.minutes,
        f64::from(options.patients) * f64::from(options.minutes) / 60.0 * PER_PATIENT_HOUR
    );
    // The generator alone, and the cohort kept in memory for the runs.
    let started = Instant::now();
    let items = Workload::all(cohort);
    let generated = started.elapsed().as_secs_f64();
    let n = items.len() as u64;
    out.figure(&Figure {
        bench: "replay",
        what: "generate the cohort (not timed below)".into(),
        patients: options.patients,
        observations: n,
        seconds: generated,
        per_second: n as f64 / generated,
        workers: None,
        alerts: None,
        state_bytes_per_patient: None,
        peak_rss_bytes: None,
    })?;
    decode_limit(&items, options.patients, out)?;
    for (run, &workers) in options.workers.iter().enumerate() {
        let mut run_options = quiet(workers);
        // The first run writes the alerts; the others a copy that must be the same bytes.
        run_options.alerts = options.alerts.as_ref().map(|path| match run {
            0 => path.clone(),
            _ => path.with_extension(format!("{workers}-workers.jsonl")),
        });
        let summary = pipeline::run_source(
            &config,
            &run_options,
            Box::new(Recorded::new(items.clone())),
            "bench",
        )?;
        if let (Some(first), Some(this)) = (&options.alerts, &run_options.alerts)
            && first != this
        {
            same_alerts(first, this, workers, options.workers[0])?;
        }
        let what = "whole dataflow from memory";
        out.figure(&run_figure("replay", what, options.patients, &summary))?;
    }
    Ok(())
}

/// The limit: one core decoding and validating the same observations from the wire format.
fn decode_limit(
    items: &[SourceItem],
    patients: u32,
    out: &mut dyn Report,
) -> Result<(), BenchError> {
    let lines: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            SourceItem::Observation(o, _) => Some(o.to_json()),
            SourceItem::Rejected(_) | SourceItem::Archived(_) => None,
        })
        .collect();
    // Decoded as a source does: ids interned.
    let mut ids = crate::observation::Interner::default();
    let started = Instant::now();
    let mut decoded = 0u64;
    for line in &lines {
        decoded += u64::from(Observation::decode_with(line.as_bytes(), &mut ids).is_ok());
    }
    let seconds = started.elapsed().as_secs_f64();
    if decoded != lines.len() as u64 {
        return Err(BenchError::Failed(format!(
            "the workload did not decode: {decoded} of {}",
            lines.len()
        )));
    }
    out.figure(&Figure {
        bench: "replay",
        what: "limit: decode + validate, 1 core".into(),
        patients,
        observations: decoded,
        seconds,
        per_second: decoded as f64 / seconds,
        workers: Some(1),
        alerts: None,
        state_bytes_per_patient: None,
        peak_rss_bytes: None,
    })
}

/// The alerts of another worker count (`this`) are those of the first (`first`), byte for byte.
fn same_alerts(
    first: &Path,
    this: &Path,
    workers: usize,
    first_workers: usize,
) -> Result<(), BenchError> {
    let read =
        |p: &Path| std::fs::read(p).map_err(BenchError::io(format!("cannot read {}", p.display())));
    let same = read(first)? == read(this)?;
    std::fs::remove_file(this)
        .map_err(BenchError::io(format!("cannot remove {}", this.display())))?;
    match same {
        true => Ok(()),
        false => Err(BenchError::Failed(format!(
            "the alerts of {workers} workers differ from those of {first_workers} written to {}",
            first.display()
        ))),
    }
}

/// Writes the workload as wire-format JSON lines; returns how many.
pub fn write_workload(config: WorkloadConfig, path: &Path) -> Result<u64, BenchError> {
    use std::io::Write;
    let what = || format!("cannot write {}", path.display());
    let file = std::fs::File::create(path).map_err(BenchError::io(what()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut source = Workload::new(config);
    let mut items = Vec::new();
    let mut written = 0u64;
    loop {
        items.clear();
        let more = crate::sources::Source::fill(&mut source, 1 << 14, &mut items)?;
        for item in &items {
            if let SourceItem::Observation(o, _) = item {
                writeln!(out, "{}", o.to_json()).map_err(BenchError::io(what()))?;
                written += 1;
            }
        }
        if !more {
            break;
        }
    }
    out.flush().map_err(BenchError::io(what()))?;
    Ok(written)
}

fn run_figure(bench: &'static str, what: &str, patients: u32, s: &RunSummary) -> Figure {
    Figure {
        bench,
        what: format!(
            "{what}, {} worker{}",
            s.workers,
            if s.workers == 1 { "" } else { "s" }
        ),
        patients,
        observations: s.observations,
        seconds: s.elapsed.as_secs_f64(),
        per_second: s.throughput(),
        workers: Some(s.workers),
        alerts: Some(s.alerts),
        state_bytes_per_patient: (s.patients > 0).then(|| s.state_bytes as f64 / s.patients as f64),
        peak_rss_bytes: None,
    }
}

/// Peak resident set of this process (Linux: VmHWM).
pub fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// State per patient and peak resident memory of one cohort size, generated as it runs (run in
/// a process of its own, so that the peak is this cohort's).
pub fn memory_one(
    common: &Common,
    patients: u32,
    minutes: u32,
    out: &mut dyn Report,
) -> Result<(), BenchError> {
    let config = config(common)?;
    let cohort = workload(patients, minutes, common.seed);
    let summary =
        pipeline::run_source(&config, &quiet(1), Box::new(Workload::new(cohort)), "bench")?;
    let what = format!("{minutes} min of event time, generated as it runs");
    let mut figure = run_figure("memory", &what, patients, &summary);
    figure.peak_rss_bytes = peak_rss();
    out.figure(&figure)
}
