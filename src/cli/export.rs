//! `vigil export`: an archive's observations as a de-identified research dataset.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use vigil::archive::{KeyFile, KeyProvider};
use vigil::pseudonym::Pseudonyms;

/// Export an archive for research, de-identified: patient ids replaced by keyed pseudonyms,
/// device ids dropped, times shifted per patient, withdrawn consent honoured.
///
/// OUT gets part-NNNNN.parquet (columns pseudonym, time, vital, value, level, unit: every
/// observation that was scored) and _export.json (what was written and left out). The same
/// pseudonym key gives the same pseudonyms and shifts, so exports join; keep it away from the
/// archive and from the researchers.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The archive directory.
    #[arg(value_name = "DIR")]
    pub archive: PathBuf,

    /// The key the archive was encrypted with (`vigil run --archive-key FILE`).
    #[arg(long = "archive-key", value_name = "FILE")]
    pub archive_key: Option<PathBuf>,

    /// Write the research dataset to OUT (a new or empty directory).
    #[arg(long, value_name = "OUT")]
    pub research: PathBuf,

    /// The key pseudonyms and date shifts are made with (256 bits in base64; `vigil key new
    /// FILE`). It must not be in the archive, nor be the archive's key.
    #[arg(long = "pseudonym-key", value_name = "FILE")]
    pub pseudonym_key: PathBuf,

    /// The registry whose `consent` column is honoured (default: the archive's copy, from the
    /// live run). Give the current one: a withdrawal made since the run must count.
    #[arg(long, value_name = "FILE")]
    pub registry: Option<PathBuf>,

    /// Record the export in the audit trail FILE (who, which archive, where, how many rows).
    #[arg(long, value_name = "FILE")]
    pub audit: Option<PathBuf>,

    /// Who exports, for the audit trail (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub by: Option<String>,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<ExitCode> {
    let archive_key = super::key::archive_key(args.archive_key.as_deref())?;
    let pseudonyms = pseudonyms(args, archive_key.as_deref())?;
    let consents = consents(args, archive_key.as_deref())?;
    let mut audit = args
        .audit
        .as_deref()
        .map(vigil::audit::AuditLog::open)
        .transpose()?;
    let who = args
        .by
        .clone()
        .or_else(|| std::env::var("USER").ok())
        .unwrap_or_else(|| "unknown".to_owned());
    let what = format!(
        "research export of {} to {}",
        args.archive.display(),
        args.research.display()
    );
    // Recorded before anything is read: an export the trail does not hold never happens.
    if let Some(audit) = &mut audit {
        audit.record(&who, "export", &what)?;
    }
    let summary = vigil::export::research(
        &args.archive,
        archive_key.as_deref(),
        &args.research,
        &pseudonyms,
        &consents,
        |done, of| {
            if done == of || done % 10 == 0 {
                eprintln!("vigil: read {done} of {of} archive files");
            }
        },
    )?;
    if let Some(audit) = &mut audit {
        let done = format!(
            "{what}: {} rows, {} patients, {} rows withheld for consent",
            summary.rows, summary.patients, summary.withdrawn
        );
        audit.record(&who, "exported", &done)?;
    }
    eprintln!(
        "vigil: exported {} rows of {} patients in {} files to {}; left out {} rows of {} \
         patients whose consent was withdrawn, and {} records that were not scored",
        summary.rows,
        summary.patients,
        summary.files,
        args.research.display(),
        summary.withdrawn,
        summary.patients_withdrawn,
        summary.not_scored
    );
    Ok(ExitCode::SUCCESS)
}

/// The pseudonym key, refused when it sits in the archive or is the archive's own key.
fn pseudonyms(
    args: &ExportArgs,
    archive_key: Option<&vigil::archive::ArchiveKey>,
) -> anyhow::Result<Pseudonyms> {
    let inside = |path: &Path, dir: &Path| {
        let (Ok(path), Ok(dir)) = (path.canonicalize(), dir.canonicalize()) else {
            return false;
        };
        path.starts_with(dir)
    };
    if inside(&args.pseudonym_key, &args.archive) {
        bail!(
            "--pseudonym-key {}: the key is inside the archive; keep it apart, or anyone with \
             the archive can link pseudonyms back to patients",
            args.pseudonym_key.display()
        );
    }
    let key = KeyFile(args.pseudonym_key.clone()).archive_key()?;
    super::key::warn_if_readable(&args.pseudonym_key);
    if archive_key.is_some_and(|a| a.to_base64() == key.to_base64()) {
        bail!("--pseudonym-key is the archive's key: make one of its own with `vigil key new`");
    }
    Ok(Pseudonyms::new(&key))
}

/// The consent changes of the registry given, or of the archive's copy (sealed when the
/// archive is encrypted).
fn consents(
    args: &ExportArgs,
    key: Option<&vigil::archive::ArchiveKey>,
) -> anyhow::Result<Vec<vigil::registry::ConsentChange>> {
    let path = args.registry.clone().unwrap_or_else(|| {
        args.archive
            .join(vigil::archive::META)
            .join(vigil::archive::REGISTRY_FILE)
    });
    if args.registry.is_none() && !path.exists() {
        eprintln!(
            "vigil: warning: the archive has no registry copy and --registry was not given: \
             no consent withdrawal is known, every patient is exported"
        );
        return Ok(Vec::new());
    }
    let text = vigil::archive::sealed::read_text(&path, key)?
        .with_context(|| format!("{}: no such file", path.display()))?;
    vigil::registry::consents(&text).with_context(|| format!("registry {}", path.display()))
}
