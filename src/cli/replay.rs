//! `vigil replay`: an archive through the same dataflow, to the same alerts.

use std::collections::HashSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use vigil::config::PipelineConfig;
use vigil::observation::EventTime;
use vigil::pipeline::{self, RunOptions};
use vigil::sources::archive::{ArchiveReplay, Selection};

/// Replay an archive (written by `vigil run --archive DIR`) through the same dataflow.
///
/// With the archive's own pipeline settings (kept in DIR/_vigil/pipeline.toml), `--alerts FILE` gets the
/// alerts of the live run, byte for byte: compare them with `cmp`.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The archive directory.
    #[arg(value_name = "DIR")]
    pub archive: PathBuf,

    /// The key the archive was encrypted with (`vigil run --archive-key FILE`).
    #[arg(long = "archive-key", value_name = "FILE")]
    pub archive_key: Option<PathBuf>,

    /// Pipeline settings to score with (default: DIR/_vigil/pipeline.toml, those of the live run).
    #[arg(long, value_name = "PIPELINE.toml")]
    pub pipeline: Option<PathBuf>,

    /// Write every alert as one JSON line to FILE, ordered as `vigil run --alerts` orders them.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,

    /// Only observations at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub from: Option<String>,

    /// Only observations before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub to: Option<String>,

    /// Only this patient (repeat for more).
    #[arg(long = "patient", value_name = "ID")]
    pub patients: Vec<String>,

    /// Timely worker threads.
    #[arg(long, short = 'w', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Replay at this multiple of real time (60: an hour a minute); as fast as possible without.
    #[arg(long, value_name = "X", value_parser = super::run::parse_speed)]
    pub speed: Option<f64>,

    /// Also produce the alerts to Kafka: BROKERS/TOPIC, e.g. 127.0.0.1:9092/alerts-replay.
    #[arg(long = "kafka-alerts", value_name = "BROKERS/TOPIC")]
    pub kafka_alerts: Option<String>,

    /// Do not print alerts on the console.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

pub fn run(args: &ReplayArgs) -> anyhow::Result<ExitCode> {
    let pipeline = args
        .pipeline
        .clone()
        .unwrap_or_else(|| vigil::archive::pipeline_file(&args.archive));
    if !pipeline.exists() {
        bail!(
            "{} not found: give the pipeline the archive was recorded with (--pipeline FILE)",
            pipeline.display()
        );
    }
    let mut config = PipelineConfig::load(&pipeline)?;
    config.sinks = if args.quiet {
        Vec::new()
    } else {
        vec![vigil::config::SinkConfig::Console(Default::default())]
    };
    if let Some(target) = &args.kafka_alerts {
        let Some((brokers, topic)) = target.rsplit_once('/') else {
            bail!(
                "--kafka-alerts {target:?}: write BROKERS/TOPIC, e.g. 127.0.0.1:9092/alerts-replay"
            );
        };
        config.sinks.push(vigil::config::SinkConfig::Kafka(
            vigil::sinks::kafka::KafkaSinkConfig {
                brokers: brokers.to_owned(),
                topic: topic.to_owned(),
                properties: Default::default(),
                security: Default::default(),
            },
        ));
    }
    let time = |flag: &str, value: &Option<String>| -> anyhow::Result<Option<EventTime>> {
        value
            .as_deref()
            .map(EventTime::parse_rfc3339)
            .transpose()
            .with_context(|| format!("--{flag}"))
    };
    let selection = Selection {
        from: time("from", &args.from)?,
        to: time("to", &args.to)?,
        patients: args.patients.iter().cloned().collect::<HashSet<_>>(),
        source: None,
        partitions: None,
        since_us: None,
    };
    let key = super::key::archive_key(args.archive_key.as_deref())?;
    let source = ArchiveReplay::open(&args.archive, &selection, key.as_deref())?;
    let options = RunOptions {
        workers: args.workers.map(usize::from),
        alerts: args.alerts.clone(),
        // What clinicians acknowledged live applies at the same event times.
        acknowledgements: Some(vigil::pipeline::acknowledgements::archived(&args.archive)),
        // Which opens the archive's sealed registry copy and acknowledgements.
        archive_key: key.clone(),
        quiet: args.quiet,
        speed: args.speed,
        progress: std::io::stderr().is_terminal(),
        ..RunOptions::default()
    };
    let summary = pipeline::run_source(&config, &options, Box::new(source), "archive")
        .with_context(|| format!("replay of {}", args.archive.display()))?;
    eprint!("{}", super::run::human_summary(&summary, &options));
    Ok(ExitCode::SUCCESS)
}
