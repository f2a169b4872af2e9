//! `vigil bench`: the front of the benchmark harness ([`vigil::bench`]): its arguments, and
//! its figures printed (and appended as JSON lines with `--json`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use vigil::bench::{self, BenchError, Figure, Report};

const EXAMPLES: &str = "\
Examples:
  vigil bench replay --patients 1000 --minutes 30            # 1 and 2 workers, and the decode limit
  vigil bench memory --patients 10000,100000                # each in its own process
  vigil bench kafka --brokers 127.0.0.1:9092                # topic -> alerts + archive, latency
  vigil bench replay --json target/bench.json               # append results as JSON lines

The workload (src/bench/workload.rs): heart rate and SpO2 every second, respiratory rate every
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
    Kafka(KafkaArgs),
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
fn at_least_one() -> clap::builder::RangedI64ValueParser<u32> {
    clap::value_parser!(u32).range(1..)
}

/// Kafka end to end: throughput from a topic to alerts and archive beside raw consumption and
/// raw decoding of the same messages, then event-to-alert latency at a share of that maximum.
#[derive(Debug, Args)]
pub struct KafkaArgs {
    /// The broker, `host:port`.
    #[arg(long, value_name = "BROKERS")]
    pub brokers: String,
    #[arg(long, default_value_t = 2000, value_parser = at_least_one())]
    pub patients: u32,
    /// Minutes of event time in the throughput topic.
    #[arg(long, default_value_t = 10, value_parser = at_least_one())]
    pub minutes: u32,
    /// Timely workers (each consumes half of the 4 partitions with 2).
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Offered load of the latency run, as a share of the measured throughput.
    #[arg(long, default_value_t = 0.5)]
    pub load: f64,
    /// Seconds of the latency run.
    #[arg(long = "latency-seconds", default_value_t = 30)]
    pub latency_seconds: u64,
    /// Only the latency run, at this many observations/s (skips the throughput runs and the
    /// limits, so a load can be tried in a minute).
    #[arg(long, value_name = "OBS_PER_S")]
    pub rate: Option<f64>,
    #[command(flatten)]
    pub common: Common,
}

impl Common {
    fn library(&self) -> bench::Common {
        bench::Common {
            pipeline: self.pipeline.clone(),
            no_risk: self.no_risk,
            seed: self.seed,
        }
    }
}

/// Prints each figure, and appends it as a JSON line to `--json FILE`.
struct Printer {
    json: Option<PathBuf>,
}

impl Printer {
    fn append(&self, value: &impl serde::Serialize) -> Result<(), BenchError> {
        use std::io::Write;
        let Some(path) = &self.json else {
            return Ok(());
        };
        let io = |source| BenchError::Io {
            what: format!("cannot append to {}", path.display()),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let line = serde_json::to_string(value).unwrap_or_default();
        writeln!(file, "{line}").map_err(io)
    }
}

impl Report for Printer {
    fn figure(&mut self, figure: &Figure) -> Result<(), BenchError> {
        println!("{figure}");
        self.append(figure)
    }

    fn note(&mut self, line: &str, record: serde_json::Value) -> Result<(), BenchError> {
        println!("{line}");
        match record {
            serde_json::Value::Null => Ok(()),
            record => self.append(&record),
        }
    }
}

pub fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    if cfg!(debug_assertions) {
        eprintln!("vigil bench: this is a debug build; build with --release to measure Vigil");
    }
    match &args.what {
        What::Replay(a) => {
            let options = bench::ReplayOptions {
                patients: a.patients,
                minutes: a.minutes,
                workers: a.workers.clone(),
                alerts: a.alerts.clone(),
                common: a.common.library(),
            };
            bench::replay(&options, &mut printer(&a.common))?;
        }
        What::Memory(a) => memory(a)?,
        What::MemoryOne(a) => {
            let common = a.common.library();
            bench::memory_one(&common, a.patients, a.minutes, &mut printer(&a.common))?;
        }
        What::Kafka(a) => {
            let options = bench::kafka::KafkaOptions {
                brokers: a.brokers.clone(),
                patients: a.patients,
                minutes: a.minutes,
                workers: a.workers,
                load: a.load,
                latency_seconds: a.latency_seconds,
                rate: a.rate,
                common: a.common.library(),
            };
            bench::kafka::run(&options, &mut printer(&a.common))?;
        }
        What::Workload(a) => write_workload(a, &a.out)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn printer(common: &Common) -> Printer {
    Printer {
        json: common.json.clone(),
    }
}

fn write_workload(a: &WorkloadArgs, out: &Path) -> anyhow::Result<()> {
    let written = bench::write_workload(bench::workload(a.patients, a.minutes, a.seed), out)?;
    eprintln!("vigil bench: {written} observations in {}", out.display());
    Ok(())
}

/// Each cohort size in a process of its own (`vigil bench memory-one`), so that its peak
/// resident memory is its own.
fn memory(args: &MemoryArgs) -> anyhow::Result<()> {
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
    Ok(())
}
