//! `vigil run`: a pipeline from its TOML file, with run-time overrides.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;

use vigil::config::PipelineConfig;
use vigil::formats::InputFormat;
use vigil::observation::EventTime;
use vigil::pipeline::{self, RunOptions, RunSummary};
use vigil::sinks::board::BoardConfig;
use vigil::sources::SourceConfig;

const EXAMPLES: &str = "\
Examples:
  vigil run pipelines/demo.toml
  vigil run pipelines/demo.toml --workers 2 --alerts alerts.jsonl --quiet
  vigil simulate --patients 20 --hours 12 --out cohort.jsonl
  vigil run pipelines/demo.toml --input cohort.jsonl --alerts alerts.jsonl --dead-letter rejected.jsonl
  vigil simulate --patients 20 --hours 12 --format fhir --out cohort.ndjson
  vigil run pipelines/demo.toml --input cohort.ndjson --input-format fhir --dead-letter rejected.jsonl
  vigil run pipelines/demo.toml --input oru.hl7 --input-format hl7v2

Alerts go to the pipeline's sinks (console, JSON lines); --alerts also writes every alert as one
JSON line, ordered by event time, then patient, then kind, so that two runs can be compared byte
for byte. A summary goes to standard error at the end.";

/// Run a pipeline (pipelines/*.toml) to the end of its input.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct RunArgs {
    /// The pipeline file.
    #[arg(value_name = "PIPELINE.toml")]
    pub pipeline: PathBuf,

    /// Timely worker threads (overrides the pipeline's `workers`).
    #[arg(long, short = 'w', value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub workers: Option<u16>,

    /// Run as one of N processes of a cluster (timely's cluster mode): start the same command
    /// on every host with its own --process, and each process's --workers read their share of
    /// the Kafka topic's partitions. Process 0 reads any other source and runs the sinks and
    /// the board; every process archives what it reads into the one --archive DIR, which the
    /// hosts must share. Standard out shows timely's connection progress until all are up.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub processes: u16,

    /// This process's index in the cluster, 0 to N-1 (its line in --hosts).
    #[arg(long, value_name = "I", default_value_t = 0)]
    pub process: u16,

    /// The cluster's hosts file: one host:port a line, process 0's first, where each process
    /// listens for the others (# comments and blank lines are skipped). Needed with --processes.
    #[arg(long, value_name = "FILE")]
    pub hosts: Option<PathBuf>,

    /// Read observations from this file instead of the pipeline's source ('-' for stdin): wire
    /// JSON lines, or as --input-format says.
    #[arg(long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// How --input is written: wire (Vigil's JSON lines), fhir (FHIR R4 Observations and
    /// Bundles, NDJSON or pretty-printed) or hl7v2 (HL7 v2 ORU^R01 messages, bare or MLLP-framed).
    /// Without --input, the format of the pipeline's jsonl or kafka source.
    #[arg(long = "input-format", value_name = "FORMAT", value_parser = parse_format)]
    pub input_format: Option<InputFormat>,

    /// Also write every alert as one JSON line to FILE, in a deterministic order.
    #[arg(long, value_name = "FILE")]
    pub alerts: Option<PathBuf>,

    /// Write each rejected record to FILE as JSON, with its position and reason.
    #[arg(long = "dead-letter", value_name = "FILE")]
    pub dead_letter: Option<PathBuf>,

    /// Write observations that arrived later than the allowed lateness to FILE.
    #[arg(long, value_name = "FILE")]
    pub late: Option<PathBuf>,

    /// Apply clinicians' acknowledgements from FILE (JSON lines: patient, alert, kind,
    /// alert_time_us, by, note, at_us), each at the event time it took effect at. With
    /// --archive they are recorded in DIR/acks.jsonl, which a resumed run and `vigil replay`
    /// apply again.
    #[arg(long = "acks", value_name = "FILE")]
    pub acknowledgements: Option<PathBuf>,

    /// Archive every record and alert to Parquet under DIR (DIR/observations/date=…/,
    /// DIR/alerts/date=…/; replay settings in DIR/_vigil/).
    #[arg(long, value_name = "DIR")]
    pub archive: Option<PathBuf>,

    /// Encrypt every Parquet file of the archive (observations and alerts) with the key in
    /// FILE (256 bits in base64; `vigil key new FILE` writes one): Parquet modular encryption,
    /// AES-GCM, which DuckDB and pyarrow read given the key. Overrides [archive] key_file. An
    /// archive is encrypted from its first file or not at all.
    #[arg(long = "archive-key", value_name = "FILE")]
    pub archive_key: Option<PathBuf>,

    /// Stop (drain, flush, commit, exit 0) once nothing has been read for this long, e.g. 10s:
    /// read a Kafka topic to its end and exit. A topic not yet read to its end is read on while
    /// the broker is merely slow (up to 60 s without a message); with an error reported, the
    /// run fails (exit 4) naming each partition's offset.
    #[arg(long = "exit-when-idle", value_name = "DURATION", value_parser = parse_duration)]
    pub exit_when_idle: Option<std::time::Duration>,

    /// Flush the archive this often, e.g. 1s or 30s: each flush closes a Parquet file, and the
    /// topic's offsets are committed only up to a flush whose alerts are delivered. Shorter means
    /// less to read again after a crash, but more and smaller files.
    #[arg(long = "flush-every", value_name = "DURATION", default_value = "5s", value_parser = parse_interval)]
    pub flush_every: std::time::Duration,

    /// With --archive, snapshot every patient's state this often, e.g. 30s or 5m (and once more
    /// when the run ends), into the archive's _vigil/snapshots/: a restart starts from the
    /// latest whose alerts are delivered and replays only the archive after it, instead of all
    /// of it. A snapshot of another Vigil version, changed, or taken with other settings is
    /// refused with the reason and the whole archive replayed instead.
    #[arg(long = "snapshot-every", value_name = "DURATION", default_value = "60s", value_parser = parse_interval)]
    pub snapshot_every: std::time::Duration,

    /// Serve the ward board at ADDR (127.0.0.1:8080): the overview at /, each patient's page,
    /// a JSON API (/api/patients, /api/patients/ID, /api/wards), the live stream /events, and
    /// acknowledgements, which take effect at the watermark and are recorded with --archive.
    /// Without --board-users anyone who reaches it sees every patient, so it listens on a
    /// loopback address only; any other address needs --board-users and --board-cert/-key.
    /// When the input ends the board stays up, until Ctrl-C or SIGTERM. Overrides the
    /// pipeline's [board] section.
    #[arg(long, value_name = "ADDR")]
    pub board: Option<std::net::SocketAddr>,

    /// The board's users (`vigil user add FILE ...`): every page then needs a sign-in, a
    /// clinician sees only their wards, and views and sign-ins go to --audit. Read again when
    /// it changes. Overrides [board] users.
    #[arg(long = "board-users", value_name = "FILE")]
    pub board_users: Option<PathBuf>,

    /// Serve the board over HTTPS with this certificate chain (PEM, leaf first) and
    /// --board-key's private key (PEM). Overrides [board] tls_cert and tls_key.
    #[arg(long = "board-cert", value_name = "FILE", requires = "board_key")]
    pub board_cert: Option<PathBuf>,

    /// The private key of --board-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long = "board-key", value_name = "FILE", requires = "board_cert")]
    pub board_key: Option<PathBuf>,

    /// Record every acknowledgement made on the board in the audit trail FILE before it takes
    /// effect: append-only, each record chained to the one before by its SHA-256, the head in
    /// FILE.head; `vigil audit verify FILE` checks it. A trail that does not verify is refused.
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    /// Serve Prometheus metrics at http://ADDR/metrics (127.0.0.1:9100): observations in,
    /// rejected, late and duplicates by source; consumer lag per partition; the watermark's
    /// delay behind the wall clock; alerts by kind; patients and state bytes per worker; archive
    /// flush and offset commit times; each sink's undelivered alerts. No label names a patient.
    /// Like the board, it stays up after the input ends only while the board does.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Replay at this multiple of real time (60: an hour a minute); as fast as possible without.
    #[arg(long, value_name = "X", value_parser = parse_speed)]
    pub speed: Option<f64>,

    /// Do not print alerts on the console (the other sinks still get them).
    #[arg(long, short = 'q')]
    pub quiet: bool,

    /// Progress on standard error: auto (when it is a terminal), always or never.
    #[arg(long, value_name = "WHEN", default_value = "auto", value_parser = ["auto", "always", "never"])]
    pub progress: String,

    /// Print the summary as one JSON object on standard error.
    #[arg(long = "summary-json")]
    pub summary_json: bool,
}

pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = PipelineConfig::load(&args.pipeline)?;
    if let (None, Some(format)) = (&args.input, args.input_format) {
        match &mut config.source {
            SourceConfig::Jsonl(c) => c.format = format,
            SourceConfig::Kafka(c) => c.format = format,
            _ => anyhow::bail!(
                "--input-format applies to --input or to a jsonl or kafka source; {} reads its own format",
                config.source.kind().name()
            ),
        }
    }
    let key_file = args
        .archive_key
        .as_ref()
        .or(config.archive.key_file.as_ref());
    if key_file.is_some() && args.archive.is_none() {
        anyhow::bail!("an archive key encrypts the archive: give --archive DIR too");
    }
    let archive_key = super::key::archive_key(key_file.map(PathBuf::as_path))?;
    let cluster = cluster(args)?;
    let stop = stop_on_signals()?;
    // In a cluster the board shows process 0's sinks: the other processes serve none.
    let board = match args.process {
        0 => start_board(
            board_config(args, config.board.clone()),
            args.audit.as_deref(),
        )?,
        _ => None,
    };
    if board.is_some() && args.archive.is_none() {
        tracing::warn!(
            "acknowledgements made on the board apply to this run only: with --archive DIR \
             they are recorded (DIR/acks.jsonl) for a resumed run and a replay"
        );
    }
    let options = RunOptions {
        workers: args.workers.map(usize::from),
        input: args.input.clone(),
        input_format: args.input_format,
        alerts: args.alerts.clone(),
        dead_letter: args.dead_letter.clone(),
        late: args.late.clone(),
        archive: args.archive.clone(),
        archive_key,
        acknowledgements: args.acknowledgements.clone(),
        stop: Some(stop.clone()),
        exit_when_idle: args.exit_when_idle,
        flush_every: Some(args.flush_every),
        snapshot_every: Some(args.snapshot_every),
        speed: args.speed,
        progress: match args.progress.as_str() {
            "always" => true,
            "never" => false,
            _ => std::io::stderr().is_terminal(),
        },
        quiet: args.quiet,
        cluster,
        board: board.clone(),
        metrics: start_metrics(args, &config)?,
    };
    let summary = pipeline::run(&config, &options)
        .with_context(|| format!("pipeline {}", args.pipeline.display()))?;
    if args.summary_json {
        eprintln!("{}", serde_json::to_string(&summary)?);
    } else {
        eprint!("{}", human_summary(&summary, &options));
    }
    if board.is_some() {
        // The input ended: the board stays up to be read, until Ctrl-C or SIGTERM.
        if !stop.load(std::sync::atomic::Ordering::Relaxed) {
            tracing::info!("the run is over; the board stays up until Ctrl-C");
        }
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The board's settings: the pipeline's `[board]`, with what the command line says over it.
fn board_config(args: &RunArgs, section: Option<BoardConfig>) -> Option<BoardConfig> {
    let mut board = match (args.board, section) {
        (Some(listen), Some(section)) => BoardConfig { listen, ..section },
        (Some(listen), None) => BoardConfig::at(listen),
        (None, section) => section?,
    };
    if let Some(users) = &args.board_users {
        board.users = Some(users.clone());
    }
    if let (Some(cert), Some(key)) = (&args.board_cert, &args.board_key) {
        board.tls_cert = Some(cert.clone());
        board.tls_key = Some(key.clone());
    }
    Some(board)
}

/// Starts the ward board's server, if asked: its users and certificate read now, so that a
/// mistake in either stops the run before it starts.
fn start_board(
    config: Option<BoardConfig>,
    audit: Option<&std::path::Path>,
) -> anyhow::Result<Option<std::sync::Arc<vigil::sinks::board::Board>>> {
    use vigil::sinks::board::{Board, access::Access, server, tls};
    let Some(config) = config else {
        if audit.is_some() {
            anyhow::bail!("--audit records what is done on the board: give --board ADDR too");
        }
        return Ok(None);
    };
    let addr = config.listen;
    if let Some(why) = config.refuse() {
        anyhow::bail!("--board {addr}: {why}");
    }
    let tls = config
        .tls()
        .map(|(cert, key)| tls::server_config(cert, key))
        .transpose()?;
    let access = config
        .users
        .as_deref()
        .map(|users| Access::open(users, tls.is_some()))
        .transpose()?;
    match (&access, &tls) {
        (None, _) => tracing::warn!(
            "the board has no sign-in: anyone who reaches {addr} sees every patient \
             (give --board-users FILE, made with `vigil user add`)"
        ),
        (Some(_), None) => tracing::warn!(
            "the board signs people in over plain HTTP: give --board-cert and \
             --board-key for HTTPS"
        ),
        (Some(_), Some(_)) => {}
    }
    let board = match audit {
        Some(path) => Board::with_audit(vigil::audit::AuditLog::open(path)?),
        None => Board::default(),
    };
    let board = std::sync::Arc::new(board);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let served = server::Server::new(std::sync::Arc::clone(&board), access, tls.is_some());
    let running = server::serve(addr, served, tls)
        .with_context(|| format!("the ward board cannot listen at {addr}"))?;
    tracing::info!("ward board at {scheme}://{}/", running.addr);
    Ok(Some(board))
}

/// The cluster this process is one of, from --processes, --process and --hosts.
fn cluster(args: &RunArgs) -> anyhow::Result<Option<pipeline::cluster::Cluster>> {
    let (processes, process) = (usize::from(args.processes), usize::from(args.process));
    match &args.hosts {
        None if processes == 1 && process == 0 => Ok(None),
        None => anyhow::bail!(
            "a cluster needs --hosts FILE: one host:port a line, one line per process"
        ),
        Some(hosts) => Ok(Some(pipeline::cluster::Cluster::from_hostfile(
            hosts, processes, process,
        )?)),
    }
}

/// Starts the metrics endpoint, if asked: in a cluster, process I's at the port plus I.
fn start_metrics(
    args: &RunArgs,
    config: &PipelineConfig,
) -> anyhow::Result<Option<std::sync::Arc<vigil::metrics::Metrics>>> {
    let Some(mut addr) = args.metrics else {
        return Ok(None);
    };
    if args.process > 0 {
        let port = addr.port().checked_add(args.process).with_context(|| {
            format!(
                "--metrics {addr}: its port plus --process {} is past 65535",
                args.process
            )
        })?;
        addr.set_port(port);
    }
    let source = match &args.input {
        Some(_) => "jsonl".to_owned(),
        None => config.source.kind().name(),
    };
    let metrics = std::sync::Arc::new(vigil::metrics::Metrics::new(&source));
    let running = vigil::metrics::serve(addr, std::sync::Arc::clone(&metrics))
        .with_context(|| format!("the metrics endpoint cannot listen at {addr}"))?;
    tracing::info!("metrics at http://{}/metrics", running.addr);
    Ok(Some(metrics))
}

/// A positive, finite speed.
pub fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(format!(
            "'{text}' is not a positive number (60 plays an hour a minute)"
        )),
    }
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    vigil::config::Dur::parse(text).map(|d| d.0)
}

fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    match parse_duration(text)? {
        d if d.is_zero() => Err("must be longer than 0s, e.g. 1s".into()),
        d => Ok(d),
    }
}

/// A flag raised by SIGINT or SIGTERM: the pipeline then stops reading, drains, flushes and
/// commits, and exits 0.
pub fn stop_on_signals() -> anyhow::Result<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, std::sync::Arc::clone(&stop))
            .context("cannot handle signals")?;
    }
    Ok(stop)
}

/// Medication adherence, a line per patient and medication (the first few; `--summary-json`
/// has them all).
fn adherence_lines(s: &RunSummary) -> String {
    const SHOWN: usize = 12;
    let rate = |a: vigil::rules::medication::Adherence| match a.rate() {
        Some(r) => format!("{:.0} % ({} of {})", r * 100.0, a.taken, a.due),
        None => "none due".to_owned(),
    };
    let rows: Vec<String> = s
        .adherence
        .iter()
        .flat_map(|(patient, meds)| {
            meds.iter().map(move |m| {
                format!(
                    "{patient} {}: 7 days {}, 30 days {}",
                    m.medication,
                    rate(m.days_7),
                    rate(m.days_30)
                )
            })
        })
        .collect();
    let mut text = String::new();
    for (i, row) in rows.iter().take(SHOWN).enumerate() {
        let head = if i == 0 {
            "  adherence   "
        } else {
            "              "
        };
        text.push_str(&format!("{head}{row}\n"));
    }
    if rows.len() > SHOWN {
        text.push_str(&format!(
            "              ... and {} more (--summary-json has them all)\n",
            rows.len() - SHOWN
        ));
    }
    text
}

/// Alerts to people per patient-day, by kind: the burden a ward bears.
fn burden_line(s: &RunSummary) -> String {
    let Some(all) = s.alerts_per_patient_day(None) else {
        return String::new();
    };
    let kinds: Vec<String> = s
        .alerts_by_kind
        .keys()
        .filter_map(|k| Some(format!("{k} {:.2}", s.alerts_per_patient_day(Some(k))?)))
        .collect();
    format!(
        "  to people   {all:.2} alerts per patient-day over {:.1} patient-days{}\n",
        s.patient_days(),
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        }
    )
}

/// The summary for a person.
pub fn human_summary(s: &RunSummary, options: &RunOptions) -> String {
    let span = match (s.first_event_us, s.last_event_us) {
        (Some(a), Some(b)) => format!(
            "{} to {}",
            EventTime::from_micros(a).to_rfc3339(),
            EventTime::from_micros(b).to_rfc3339()
        ),
        _ => "no events".to_owned(),
    };
    let kinds: Vec<String> = s
        .alerts_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    let per_patient = s.state_bytes.checked_div(s.patients).unwrap_or(0);
    let mut text = format!(
        "\nvigil: {} observations in {:.2} s ({:.0} observations/s, {} worker{})\n\
         \x20 event time  {span}\n\
         \x20 patients    {} ({:.1} KiB of state, {:.1} KiB per patient)\n\
         \x20 rejected    {} ({} impossible values reported to clinicians), late {}, duplicates {}, held {}, backfilled {}\n\
         \x20 alerts      {}{}\n",
        s.observations,
        s.elapsed.as_secs_f64(),
        s.throughput(),
        s.workers,
        if s.workers == 1 { "" } else { "s" },
        s.patients,
        s.state_bytes as f64 / 1024.0,
        per_patient as f64 / 1024.0,
        s.rejected,
        s.invalid_values,
        s.late,
        s.duplicates,
        s.held,
        s.backfilled,
        s.alerts,
        if kinds.is_empty() {
            String::new()
        } else {
            format!(" ({})", kinds.join(", "))
        },
    );
    text.push_str(&burden_line(s));
    text.push_str(&adherence_lines(s));
    if let Some(dir) = &options.archive {
        text.push_str(&format!(
            "  archive     {} rows in {} files and {} alerts under {}\n",
            s.archived,
            s.archive_files,
            s.alerts_archived,
            dir.display()
        ));
    }
    if s.snapshot_patients > 0 {
        text.push_str(&format!(
            "  snapshot    {} patients taken from the archive's latest snapshot; only the \
             archive after it was replayed\n",
            s.snapshot_patients
        ));
    }
    if s.restored > 0 || s.already_archived > 0 {
        text.push_str(&format!(
            "  resumed     {} archived records replayed to rebuild patients' state; {} messages \
             read again and skipped (already archived); {} alerts already delivered, not sent again\n",
            s.restored, s.already_archived, s.alerts_already_delivered
        ));
    }
    if s.rejected > 0 && options.dead_letter.is_none() {
        text.push_str(
            "  (use --dead-letter FILE to keep the rejected records and their reasons)\n",
        );
    }
    if s.held > 0 && options.dead_letter.is_none() {
        text.push_str(
            "  (held: records whose device clock could not be believed; --dead-letter FILE keeps them with the reason)\n",
        );
    }
    if s.late > 0 && options.late.is_none() {
        text.push_str("  (use --late FILE to keep the late observations)\n");
    }
    text
}

fn parse_format(s: &str) -> Result<InputFormat, String> {
    s.parse()
}
