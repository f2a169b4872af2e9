//! `vigil audit verify`: check an audit trail for tampering.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};

/// Work with an audit trail (who viewed, acknowledged or exported what).
#[derive(Debug, Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    pub command: AuditCommand,
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every record against its hash, its place and the record before it, and the whole
    /// trail against its head (the record count and last hash, kept apart): finds an edited,
    /// deleted, inserted, reordered or cut-off record and says which. Exit 0 when intact, 1
    /// when not.
    Verify {
        /// The trail (JSON lines).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Its head, if not FILE.head beside it.
        #[arg(long, value_name = "FILE")]
        head: Option<PathBuf>,
    },
}

pub fn run(args: &AuditArgs) -> anyhow::Result<ExitCode> {
    let AuditCommand::Verify { file, head } = &args.command;
    let head = head
        .clone()
        .unwrap_or_else(|| vigil::audit::head_path(file));
    match vigil::audit::verify(file, &head) {
        Ok(v) => {
            let beyond = match v.beyond_head {
                0 => String::new(),
                n => format!(
                    "; {n} more after the head (appended by a run that stopped before moving it)"
                ),
            };
            println!(
                "{}: intact: {} records, each chained to the one before, the last matching the head{beyond}",
                file.display(),
                v.records
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ vigil::audit::Tampered::Io { .. }) => {
            eprintln!("{}: cannot verify: {e}", file.display());
            Ok(ExitCode::from(super::EXIT_INPUT))
        }
        Err(tampered) => {
            eprintln!("{}: TAMPERED: {tampered}", file.display());
            Ok(ExitCode::from(super::EXIT_INPUT))
        }
    }
}
