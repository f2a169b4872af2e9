//! Argument definitions for every subcommand, and their exit codes.

pub mod audit;
pub mod bench;
pub mod evaluate;
pub mod export;
pub mod inspect;
pub mod key;
pub mod logging;
pub mod replay;
pub mod run;
pub mod score;
pub mod simulate;
pub mod train;
pub mod user;
pub mod validate;

use clap::{Parser, Subcommand};

/// Exit code for malformed input data (a bad CSV, an unreadable or missing input file).
pub const EXIT_INPUT: u8 = 1;
/// Exit code for a malformed command line (clap's convention).
pub const EXIT_USAGE: u8 = 2;
/// Exit code for a bad configuration: a pipeline file with problems, a registry or risk model
/// that cannot be used with it.
pub const EXIT_CONFIG: u8 = 3;
/// Exit code for a failure while running: a sink, the archive or the broker failed (a full disk,
/// a broker gone), or a topic could not be read to its end.
pub const EXIT_RUNTIME: u8 = 4;

const EXIT_CODES: &str = "\
Exit codes:
  0  done
  1  bad input: a data file that cannot be read or parsed (an input, a CSV, a dataset)
  2  bad command line
  3  bad configuration: a pipeline file with problems, a registry or risk model that does not fit
  4  failed while running: a sink, the archive or the broker failed (a full disk, a broker
     gone), or a topic could not be read to its end; what was committed is durable";

/// Vigil: streaming early warning for the Internet of Medical Things.
///
/// Vigil scores patients' vital signs with NEWS2 (Royal College of Physicians, 2017), follows
/// them as they stream in, and alerts clinicians when a patient deteriorates.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, propagate_version = true, after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How diagnostics are written to standard error: text (`vigil: ...`, for a person) or
    /// json (one object a line: timestamp, level, target, message and fields, for a log
    /// pipeline). No diagnostic names a patient or a device. Summaries and reports a command
    /// prints are its output, not diagnostics, and keep their form.
    #[arg(
        long = "log-format",
        value_name = "FORMAT",
        global = true,
        default_value = "text"
    )]
    pub log_format: logging::LogFormat,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(Box<run::RunArgs>),
    Replay(replay::ReplayArgs),
    Inspect(inspect::InspectArgs),
    Simulate(simulate::SimulateArgs),
    Validate(validate::ValidateArgs),
    Score(score::ScoreArgs),
    Train(train::TrainArgs),
    Evaluate(evaluate::EvaluateArgs),
    Bench(bench::BenchArgs),
    Audit(audit::AuditArgs),
    Export(export::ExportArgs),
    Key(key::KeyArgs),
    User(user::UserArgs),
}
