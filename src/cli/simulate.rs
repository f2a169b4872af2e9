//! `vigil simulate`: a deterministic cohort as JSON lines, with its ground truth.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use vigil::config::SimulatorConfig;
use vigil::formats::InputFormat;
use vigil::observation::Observation;
use vigil::sources::home::{HomeConfig, HomeSimulator};
use vigil::sources::simulator::Simulator;
use vigil::sources::{Source, SourceItem};

/// Simulate a cohort of patients and write their observations as wire-format JSON lines.
///
/// A ward (the default): observations come out in arrival order, mostly by event time, with the
/// duplicates and out-of-order deliveries of a real ward (a few later than a minute). Patients
/// who deteriorate are listed with their onset in the --truth file.
///
/// At home (--home): CGMs every 5 minutes, insulin pumps, pill bottles and inhalers over --days,
/// with nocturnal hypoglycaemia, missed doses, occlusions, asthma flares and devices dropping out
/// as the --truth file's episodes; --registry writes the medication schedules the cohort's
/// pill bottles are checked against (the pipeline's `[registry]`).
#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Number of patients.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub patients: u32,

    /// Hours of monitoring (a ward).
    #[arg(long, default_value_t = 24, value_parser = clap::value_parser!(u32).range(1..=8760), conflicts_with = "home")]
    pub hours: u32,

    /// A home cohort instead of a ward: CGMs, pumps, pill bottles, inhalers.
    #[arg(long)]
    pub home: bool,

    /// Days of a home cohort.
    #[arg(long, default_value_t = 14, value_parser = clap::value_parser!(u32).range(1..=366), requires = "home")]
    pub days: u32,

    /// Write the home cohort's medication schedules here, as a registry CSV.
    #[arg(long, value_name = "FILE.csv", requires = "home")]
    pub registry: Option<PathBuf>,

    /// Seed: the same seed gives the same cohort.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,

    /// RFC 3339 start of the simulated period (default 2026-01-05T00:00:00Z, at home
    /// 2026-03-01T00:00:00Z).
    #[arg(long)]
    pub start: Option<String>,

    /// Write observations here ('-' or absent: standard output).
    #[arg(long, value_name = "FILE.jsonl")]
    pub out: Option<PathBuf>,

    /// Write the deteriorations (patient, kind, onset) here as JSON lines.
    #[arg(long, value_name = "FILE.jsonl")]
    pub truth: Option<PathBuf>,

    /// Produce to Kafka at these brokers (host:port,...) instead of writing a file.
    #[arg(
        long,
        value_name = "BROKERS",
        requires = "topic",
        conflicts_with = "out"
    )]
    pub kafka: Option<String>,

    /// The topic to produce to (created if missing, with --partitions).
    #[arg(long, value_name = "TOPIC", requires = "kafka")]
    pub topic: Option<String>,

    /// Partitions of a topic that --kafka creates.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(i32).range(1..=1024))]
    pub partitions: i32,

    /// How to write each observation: wire (Vigil's JSON line), fhir (a FHIR R4 Observation
    /// resource a line: NDJSON) or hl7v2 (an HL7 v2.6 ORU^R01 message each, IHE PCD-01 style).
    /// FHIR and HL7 v2 carry the bedside vitals and glucose; --home's device kinds need wire.
    #[arg(long, value_name = "FORMAT", default_value = "wire", value_parser = parse_format)]
    pub format: InputFormat,
}

fn parse_format(s: &str) -> Result<InputFormat, String> {
    s.parse()
}

/// Observations as the chosen format writes them, as one message; `number` counts messages
/// (HL7's MSH-10). Only HL7 groups several (a monitor's readings of one instant in one ORU).
fn encode(format: InputFormat, group: &[Observation], number: u64) -> anyhow::Result<String> {
    let Some(first) = group.first() else {
        return Ok(String::new());
    };
    let unwritable = |e: vigil::formats::fhir::encode::Unwritable| {
        anyhow::anyhow!(
            "{e} (observation of {} at {}); write --format wire",
            first.patient(),
            first.time()
        )
    };
    Ok(match format {
        InputFormat::Wire => first.to_json(),
        InputFormat::Fhir => vigil::formats::fhir::encode::observation(first)
            .map_err(unwritable)?
            .to_string(),
        InputFormat::Hl7v2 => {
            let refs: Vec<&Observation> = group.iter().collect();
            vigil::formats::hl7v2::encode::message(number, &refs).map_err(unwritable)?
        }
    })
}

/// Where simulated observations go, and how they are written.
struct Output {
    to: Destination,
    format: InputFormat,
    sent: u64,
    /// HL7: the observations of one patient, device and instant, sent as one message.
    group: Vec<Observation>,
}

enum Destination {
    Lines(BufWriter<Box<dyn Write>>),
    Kafka(rdkafka::producer::BaseProducer, String),
}

impl Output {
    fn send(&mut self, obs: &Observation) -> anyhow::Result<()> {
        let same = |o: &Observation| {
            o.patient() == obs.patient() && o.device() == obs.device() && o.time() == obs.time()
        };
        if self.format == InputFormat::Hl7v2 && self.group.first().is_none_or(same) {
            self.group.push(obs.clone());
            return Ok(());
        }
        self.flush_group()?;
        self.group.push(obs.clone());
        if self.format != InputFormat::Hl7v2 {
            self.flush_group()?;
        }
        Ok(())
    }

    /// Sends the observations gathered as one message.
    fn flush_group(&mut self) -> anyhow::Result<()> {
        if self.group.is_empty() {
            return Ok(());
        }
        self.sent += 1;
        let payload = encode(self.format, &self.group, self.sent)?;
        let key = self.group[0].patient().clone();
        self.group.clear();
        match &mut self.to {
            Destination::Lines(out) => {
                out.write_all(payload.as_bytes())?;
                // An HL7 message's segments end in `\r`; the line break between messages is
                // for people reading the file.
                out.write_all(b"\n")?;
            }
            Destination::Kafka(producer, topic) => {
                let record = rdkafka::producer::BaseRecord::to(topic.as_str())
                    .key(key.as_str())
                    .payload(payload.as_str());
                vigil::kafka::send_waiting(producer, record)
                    .with_context(|| format!("cannot produce to {topic}"))?;
            }
        }
        Ok(())
    }

    fn finish(mut self) -> anyhow::Result<()> {
        self.flush_group()?;
        match self.to {
            Destination::Lines(mut out) => out.flush()?,
            Destination::Kafka(producer, topic) => {
                use rdkafka::producer::Producer;
                producer
                    .flush(std::time::Duration::from_secs(120))
                    .with_context(|| {
                        format!("observations to {topic} not confirmed by the broker")
                    })?;
            }
        }
        Ok(())
    }
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<ExitCode> {
    let default_start = if args.home {
        "2026-03-01T00:00:00Z"
    } else {
        "2026-01-05T00:00:00Z"
    };
    let start = args
        .start
        .clone()
        .unwrap_or_else(|| default_start.to_owned());
    vigil::observation::EventTime::parse_rfc3339(&start).context("--start")?;
    let mut out = output(args)?;
    if args.home {
        return run_home(args, start, out);
    }
    let config = SimulatorConfig {
        patients: args.patients,
        hours: args.hours,
        seed: args.seed,
        start,
    };
    let mut sim = Simulator::new(&config);
    if let Some(path) = &args.truth {
        write_lines(path, sim.episodes())?;
    }
    let written = drain(&mut sim, &mut out)?;
    out.finish()?;
    eprintln!(
        "vigil simulate: {written} observations of {} patients over {} h, {} deteriorating",
        args.patients,
        args.hours,
        sim.episodes().len()
    );
    Ok(ExitCode::SUCCESS)
}

/// A home cohort: its registry first (it does not depend on the run), then the observations,
/// then the truth (the devices' own reports add to it as they are simulated).
fn run_home(args: &SimulateArgs, start: String, mut out: Output) -> anyhow::Result<ExitCode> {
    let config = HomeConfig {
        patients: args.patients,
        days: args.days,
        seed: args.seed,
        start,
    };
    let mut sim = HomeSimulator::new(&config);
    if let Some(path) = &args.registry {
        std::fs::write(path, sim.registry())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let written = drain(&mut sim, &mut out)?;
    out.finish()?;
    let truth = sim.truth();
    if let Some(path) = &args.truth {
        write_lines(path, &truth)?;
    }
    eprintln!(
        "vigil simulate --home: {written} observations of {} patient{} over {} day{}, {} ground-truth episodes",
        args.patients,
        if args.patients == 1 { "" } else { "s" },
        args.days,
        if args.days == 1 { "" } else { "s" },
        truth.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Where the observations go: Kafka, a file or standard output.
fn output(args: &SimulateArgs) -> anyhow::Result<Output> {
    let to = match (&args.kafka, &args.topic) {
        (Some(brokers), Some(topic)) => {
            let properties = Default::default();
            vigil::kafka::ensure_topic(brokers, topic, args.partitions, &properties)?;
            let producer = vigil::kafka::client_config(brokers, &properties)
                .set("enable.idempotence", "true")
                .set("linger.ms", "20")
                .create()
                .with_context(|| format!("cannot create a producer for {brokers}"))?;
            Destination::Kafka(producer, topic.clone())
        }
        _ => {
            let out: Box<dyn Write> = match &args.out {
                Some(p) if p.as_os_str() != "-" => Box::new(
                    File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
                ),
                _ => Box::new(io::stdout()),
            };
            Destination::Lines(BufWriter::with_capacity(1 << 20, out))
        }
    };
    Ok(Output {
        to,
        format: args.format,
        sent: 0,
        group: Vec::new(),
    })
}

fn write_lines<T: serde::Serialize>(path: &std::path::Path, rows: &[T]) -> anyhow::Result<()> {
    let mut file = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for row in rows {
        serde_json::to_writer(&mut file, row)?;
        file.write_all(b"\n")?;
    }
    file.flush()?;
    Ok(())
}

/// Sends everything the source produces; returns how many observations.
fn drain(sim: &mut dyn Source, out: &mut Output) -> anyhow::Result<u64> {
    let mut items = Vec::new();
    let mut written = 0u64;
    loop {
        items.clear();
        let more = sim.fill(8192, &mut items)?;
        for item in &items {
            if let SourceItem::Observation(o, _) = item {
                out.send(o)?;
                written += 1;
            }
        }
        if !more {
            return Ok(written);
        }
    }
}
