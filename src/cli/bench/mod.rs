//! `vigil bench`: the end-to-end harness. Throughput of the whole dataflow, memory per patient,
//! and Kafka end to end, each next to its limit measured in the same run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use serde::Serialize;

use vigil::config::PipelineConfig;
use vigil::observation::Observation;
use vigil::pipeline::{self, RunOptions, RunSummary};
use vigil::sources::SourceItem;
use vigil::sources::workload::{PER_PATIENT_HOUR, Recorded, Workload, WorkloadConfig};

mod kafka;

const EXAMPLES: &str = "\
Examples:
  vigil bench replay --patients 1000 --minutes 30            # 1 and 2 workers, and the decode limit
  vigil bench memory --patients 10000,100000                # each in its own process
  vigil bench kafka --brokers 127.0.0.1:9092                # topic -> alerts + archive, latency
  vigil bench replay --json target/bench.json               # append results as JSON lines

The workload (src/sources/workload.rs): heart rate and SpO2 every second, respiratory rate every
10 s, blood pressure every 15 min, temperature, ACVPU and oxygen every 4 h; one patient in ten
deteriorates. Build with --release: a debug build measures the compiler, not Vigil.
BENCHMARKS.md has the figures of this machine and how they were taken.";

/// Measure throughput, memory and latency on a generated cohort of fixed seed and size.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub what: What,
}

#[derive(Debug, Subcommand)]
pub enum What {
    Replay(ReplayArgs),
    Memory(MemoryArgs),
    Kafka(kafka::KafkaArgs),
    Workload(WorkloadArgs),
    #[command(hide = true)]
    MemoryOne(MemoryOneArgs),
}

/// Settings shared by every bench.
#[derive(Debug, Args, Clone)]
pub struct Common {
    /// The pipeline whose settings (windows, staleness, alerts, risk model) the dataflow runs.
    #[arg(
        long,
        value_name = "PIPELINE.toml",
        default_value = "pipelines/demo.toml"
    )]
    pub pipeline: PathBuf,

    /// Run without the pipeline's risk model (NEWS2 and alerting only).
    #[arg(long = "no-risk")]
    pub no_risk: bool,

    /// Seed of the cohort.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Append each result as one JSON line to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Replay throughput of the whole dataflow from memory, with 1 and 2 workers, beside the rate
/// at which one core decodes the same observations from the wire format.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[arg(long, default_value_t = 1000, value_parser = at_least_one())]
    pub patients: u32,
    /// Minutes of event time.
    #[arg(long, default_value_t = 30, value_parser = at_least_one())]
    pub minutes: u32,
    /// Worker counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,2")]
    pub workers: Vec<usize>,
    /// Also write the alerts to FILE as JSON lines (the golden file of the workload); the runs
    /// with other worker counts must give the same bytes, or the bench fails.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,
    #[command(flatten)]
    pub common: Common,
}

/// State per patient and peak resident memory at each cohort size (one process each).
#[derive(Debug, Args)]
pub struct MemoryArgs {
    /// Cohort sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "10000,100000", value_parser = at_least_one())]
    pub patients: Vec<u32>,
    /// Minutes of event time for each size.
    #[arg(long, default_value_t = 2, value_parser = at_least_one())]
    pub minutes: u32,
    /// Patients of the steady-state run, which lasts longer than the longest window (13 h of
    /// event time); 0 skips it.
    #[arg(long = "steady-patients", default_value_t = 100)]
    pub steady_patients: u32,
    #[command(flatten)]
    pub common: Common,
}

/// Write the workload as wire-format JSON lines (for a peer engine, or `vigil run --input`).
#[derive(Debug, Args)]
pub struct WorkloadArgs {
    #[arg(long, default_value_t = 1000, value_parser = at_least_one())]
    pub patients: u32,
    #[arg(long, default_value_t = 30, value_parser = at_least_one())]
    pub minutes: u32,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The file to write.
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: PathBuf,
}

#[derive(Debug, Args)]
pub struct MemoryOneArgs {
    #[arg(long, value_parser = at_least_one())]
    pub patients: u32,
    #[arg(long, value_parser = at_least_one())]
    pub minutes: u32,
    #[command(flatten)]
    pub common: Common,
}

/// A cohort of no patients, or of no minutes, measures nothing: refused when parsed.
pub(super) fn at_least_one() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

/// One measured figure.
#[derive(Debug, Serialize)]
struct Figure {
    bench: &'static str,
    what: String,
    patients: u32,
    observations: u64,
    seconds: f64,
    per_second: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    workers: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alerts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state_bytes_per_patient: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peak_rss_bytes: Option<u64>,
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!("vigil bench: this is a debug build; build with --release to measure Vigil");
    }
    match &args.what {
        What::Replay(a) => replay(a),
        What::Memory(a) => memory(a),
        What::MemoryOne(a) => memory_one(a),
        What::Kafka(a) => kafka::run(a).map(|()| ExitCode::SUCCESS),
        What::Workload(a) => write_workload(a),
    }
}

fn config(common: &Common) -> anyhow::Result<PipelineConfig> {
    let mut config = PipelineConfig::load(&common.pipeline)?;
    if common.no_risk {
        config.risk = None;
    }
    config.sinks.clear();
    Ok(config)
}

fn workload(patients: u32, minutes: u32, seed: u64) -> WorkloadConfig {
    WorkloadConfig {
        patients,
        seconds: minutes * 60,
        seed,
        start_us: 1_767_571_200_000_000,
    }
}

fn report(figure: &Figure, json: Option<&PathBuf>) -> anyhow::Result<()> {
    println!(
        "{:<8} {:<44} {:>12} obs in {:>7.2} s = {:>10.0} obs/s{}{}",
        figure.bench,
        figure.what,
        figure.observations,
        figure.seconds,
        figure.per_second,
        figure
            .state_bytes_per_patient
            .map_or(String::new(), |b| format!(
                ", {b:.0} B of state per patient"
            )),
        figure.peak_rss_bytes.map_or(String::new(), |b| format!(
            ", peak RSS {:.0} MiB",
            b as f64 / 1048576.0
        )),
    );
    if let Some(path) = json {
        append_json(path, figure)?;
    }
    Ok(())
}

/// Appends one result to a JSON lines file.
fn append_json(path: &std::path::Path, value: &impl Serialize) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(value)?)?;
    Ok(())
}

fn quiet(workers: usize) -> RunOptions {
    RunOptions {
        workers: Some(workers),
        quiet: true,
        ..RunOptions::default()
    }
}

fn replay(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args.common)?;
    let json = args.common.json.as_ref();
    let cohort = workload(args.patients, args.minutes, args.common.seed);
    eprintln!(
        "vigil bench: {} patients × {} min ≈ {:.0} observations",
        args.patients,
        args.minutes,
        f64::from(args.patients) * f64::from(args.minutes) / 60.0 * PER_PATIENT_HOUR
    );

    // The generator alone, and the cohort kept in memory for the runs.
    let started = Instant::now();
    let items = Workload::all(cohort);
    let generated = started.elapsed().as_secs_f64();
    let n = items.len() as u64;
    report(
        &Figure {
            bench: "replay",
            what: "generate the cohort (not timed below)".into(),
            patients: args.patients,
            observations: n,
            seconds: generated,
            per_second: n as f64 / generated,
            workers: None,
            alerts: None,
            state_bytes_per_patient: None,
            peak_rss_bytes: None,
        },
        json,
    )?;

    // The limit: one core decoding and validating the same observations from the wire format.
    let lines: Vec<String> = items
        .iter()
        .filter_map(|i| match i {
            SourceItem::Observation(o, _) => Some(o.to_json()),
            SourceItem::Rejected(_) | SourceItem::Archived(_) => None,
        })
        .collect();
    // Decoded as a source does: ids interned.
    let mut ids = vigil::observation::Interner::default();
    let started = Instant::now();
    let mut decoded = 0u64;
    for line in &lines {
        decoded += u64::from(Observation::decode_with(line.as_bytes(), &mut ids).is_ok());
    }
    let seconds = started.elapsed().as_secs_f64();
    if decoded != lines.len() as u64 {
        bail!("the workload did not decode: {decoded} of {}", lines.len());
    }
    report(
        &Figure {
            bench: "replay",
            what: "limit: decode + validate, 1 core".into(),
            patients: args.patients,
            observations: decoded,
            seconds,
            per_second: decoded as f64 / seconds,
            workers: Some(1),
            alerts: None,
            state_bytes_per_patient: None,
            peak_rss_bytes: None,
        },
        json,
    )?;
    drop(lines);

    for (run, &workers) in args.workers.iter().enumerate() {
        let mut options = quiet(workers);
        // The first run writes the alerts; the others a copy that must be the same bytes.
        options.alerts = args.alerts.as_ref().map(|path| match run {
            0 => path.clone(),
            _ => path.with_extension(format!("{workers}-workers.jsonl")),
        });
        let summary = pipeline::run_source(
            &config,
            &options,
            Box::new(Recorded::new(items.clone())),
            "bench",
        )?;
        if let (Some(first), Some(this)) = (&args.alerts, &options.alerts)
            && first != this
        {
            let same = std::fs::read(first)? == std::fs::read(this)?;
            std::fs::remove_file(this)?;
            if !same {
                bail!(
                    "the alerts of {workers} workers differ from those of {} written to {}",
                    args.workers[0],
                    first.display()
                );
            }
        }
        report(
            &run_figure(
                "replay",
                "whole dataflow from memory",
                args.patients,
                &summary,
            ),
            json,
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

fn write_workload(args: &WorkloadArgs) -> anyhow::Result<ExitCode> {
    use std::io::Write;
    let file = std::fs::File::create(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut source = Workload::new(workload(args.patients, args.minutes, args.seed));
    let mut items = Vec::new();
    let mut written = 0u64;
    loop {
        items.clear();
        let more = vigil::sources::Source::fill(&mut source, 1 << 14, &mut items)?;
        for item in &items {
            if let SourceItem::Observation(o, _) = item {
                writeln!(out, "{}", o.to_json())?;
                written += 1;
            }
        }
        if !more {
            break;
        }
    }
    out.flush()?;
    eprintln!(
        "vigil bench: {written} observations in {}",
        args.out.display()
    );
    Ok(ExitCode::SUCCESS)
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
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn memory(args: &MemoryArgs) -> anyhow::Result<ExitCode> {
    let exe = std::env::current_exe().context("cannot find the vigil binary")?;
    let mut runs: Vec<(u32, u32)> = args.patients.iter().map(|&p| (p, args.minutes)).collect();
    // Steady state: longer than the longest window (12 h in the shipped pipelines), on fewer
    // patients.
    if args.steady_patients > 0 {
        runs.push((args.steady_patients, 13 * 60));
    }
    for (patients, minutes) in runs {
        let mut command = std::process::Command::new(&exe);
        command.args([
            "bench",
            "memory-one",
            "--patients",
            &patients.to_string(),
            "--minutes",
            &minutes.to_string(),
            "--pipeline",
            &args.common.pipeline.display().to_string(),
            "--seed",
            &args.common.seed.to_string(),
        ]);
        if args.common.no_risk {
            command.arg("--no-risk");
        }
        if let Some(json) = &args.common.json {
            command.args(["--json", &json.display().to_string()]);
        }
        let status = command.status().context("cannot run a memory bench")?;
        if !status.success() {
            bail!("the memory bench of {patients} patients failed");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn memory_one(args: &MemoryOneArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args.common)?;
    let cohort = workload(args.patients, args.minutes, args.common.seed);
    let summary =
        pipeline::run_source(&config, &quiet(1), Box::new(Workload::new(cohort)), "bench")?;
    let mut figure = run_figure(
        "memory",
        &format!("{} min of event time, generated as it runs", args.minutes),
        args.patients,
        &summary,
    );
    figure.peak_rss_bytes = peak_rss();
    report(&figure, args.common.json.as_ref())?;
    Ok(ExitCode::SUCCESS)
}
