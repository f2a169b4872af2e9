//! `vigil key new`: a key for an encrypted archive, or for research pseudonyms.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use vigil::archive::{ArchiveKey, KeyFile, KeyProvider};

/// Make keys: an archive's (`--archive-key`), or the one research pseudonyms are made with
/// (`--pseudonym-key`).
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(subcommand)]
    pub command: KeyCommand,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Write a new random 256-bit key to FILE, in base64, readable by its owner only (mode
    /// 0600). Refuses to overwrite a file: a lost archive key is a lost archive. Keep the key
    /// away from the archive, and back it up.
    New {
        /// Where to write it (must not exist).
        #[arg(value_name = "FILE")]
        file: PathBuf,
    },
}

pub fn run(args: &KeyArgs) -> anyhow::Result<ExitCode> {
    let KeyCommand::New { file } = &args.command;
    let key = ArchiveKey::generate().context("the system's random generator")?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut out = match options.open(file) {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            bail!("{} exists: a key is never overwritten", file.display())
        }
        Err(e) => return Err(e).with_context(|| file.display().to_string()),
    };
    writeln!(out, "{}", key.to_base64())
        .and_then(|_| out.sync_all())
        .with_context(|| file.display().to_string())?;
    eprintln!("vigil: wrote a new 256-bit key to {}", file.display());
    Ok(ExitCode::SUCCESS)
}

/// The archive key in `path`, when one is given; warns when others may read the file.
pub fn archive_key(path: Option<&Path>) -> anyhow::Result<Option<Arc<ArchiveKey>>> {
    let Some(path) = path else { return Ok(None) };
    let key = KeyFile(path.to_owned()).archive_key()?;
    warn_if_readable(path);
    Ok(Some(Arc::new(key)))
}

/// A key file others can read is a key others may have.
pub fn warn_if_readable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "vigil: warning: {} can be read by others than its owner (chmod 600 it)",
            path.display()
        );
    }
}
