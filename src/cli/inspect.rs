//! `vigil inspect`: what an archive holds.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;

use vigil::archive;
use vigil::observation::EventTime;

/// Show an archive's files, rows, alerts, time span, patients and vitals.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The archive directory.
    #[arg(value_name = "DIR")]
    pub archive: PathBuf,

    /// The key the archive was encrypted with (`vigil run --archive-key FILE`).
    #[arg(long = "archive-key", value_name = "FILE")]
    pub archive_key: Option<PathBuf>,

    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Serialize)]
struct Inspection {
    files: usize,
    rows: u64,
    processed: u64,
    late: u64,
    held: u64,
    invalid: u64,
    /// Alerts in the alerts dataset.
    alerts: u64,
    first: Option<String>,
    last: Option<String>,
    patients: usize,
    vitals: BTreeMap<String, u64>,
    dates: BTreeMap<String, u64>,
}

pub fn run(args: &InspectArgs) -> anyhow::Result<ExitCode> {
    let key = super::key::archive_key(args.archive_key.as_deref())?;
    let key = key.as_deref();
    let files = archive::files(&args.archive)?;
    let mut patients = BTreeSet::new();
    let mut out = Inspection {
        files: files.len(),
        rows: 0,
        processed: 0,
        late: 0,
        held: 0,
        invalid: 0,
        alerts: archive::alerts::count(&args.archive, key)?,
        first: None,
        last: None,
        patients: 0,
        vitals: BTreeMap::new(),
        dates: BTreeMap::new(),
    };
    let (mut first, mut last) = (i64::MAX, i64::MIN);
    for file in &files {
        let date = file
            .parent()
            .and_then(|d| d.file_name())
            .map(|d| d.to_string_lossy().trim_start_matches("date=").to_owned())
            .unwrap_or_default();
        let rows = archive::read_file_of(file, None, key)?;
        *out.dates.entry(date).or_default() += rows.len() as u64;
        for r in rows {
            out.rows += 1;
            if r.invalid_reason.is_some() {
                out.invalid += 1;
            }
            match (r.processed, r.held) {
                (true, _) => out.processed += 1,
                (false, Some(_)) => out.held += 1,
                (false, None) => out.late += 1,
            }
            first = first.min(r.time.micros());
            last = last.max(r.time.micros());
            *out.vitals
                .entry(r.vital.wire_name().to_owned())
                .or_default() += 1;
            patients.insert(r.patient);
        }
    }
    out.patients = patients.len();
    if out.rows > 0 {
        out.first = Some(EventTime::from_micros(first).to_rfc3339());
        out.last = Some(EventTime::from_micros(last).to_rfc3339());
    }
    if args.json {
        println!("{}", serde_json::to_string(&out)?);
    } else {
        println!("{}", args.archive.display());
        println!("  files      {}", out.files);
        println!(
            "  rows       {} ({} processed, {} late, {} held, {} impossible values)",
            out.rows, out.processed, out.late, out.held, out.invalid
        );
        println!("  alerts     {}", out.alerts);
        println!(
            "  event time {} to {}",
            out.first.as_deref().unwrap_or("-"),
            out.last.as_deref().unwrap_or("-")
        );
        println!("  patients   {}", out.patients);
        let vitals: Vec<String> = out.vitals.iter().map(|(v, n)| format!("{v} {n}")).collect();
        println!("  vitals     {}", vitals.join(", "));
        let dates: Vec<String> = out.dates.iter().map(|(d, n)| format!("{d} {n}")).collect();
        println!("  dates      {}", dates.join(", "));
    }
    Ok(ExitCode::SUCCESS)
}
