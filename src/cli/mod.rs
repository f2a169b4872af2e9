//! Argument definitions for every subcommand, and their exit codes.

pub mod bench;
pub mod evaluate;
pub mod inspect;
pub mod replay;
pub mod run;
pub mod score;
pub mod simulate;
pub mod train;
pub mod validate;

use clap::{Parser, Subcommand};

/// Exit code for malformed input data (a bad CSV, an unreadable file).
pub const EXIT_INPUT: u8 = 1;
/// Exit code for a malformed command line (clap's convention).
pub const EXIT_USAGE: u8 = 2;

/// Vigil: streaming early warning for the Internet of Medical Things.
///
/// Vigil scores patients' vital signs with NEWS2 (Royal College of Physicians, 2017), follows
/// them as they stream in, and alerts clinicians when a patient deteriorates.
#[derive(Debug, Parser)]
#[command(name = "vigil", version, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
    Replay(replay::ReplayArgs),
    Inspect(inspect::InspectArgs),
    Simulate(simulate::SimulateArgs),
    Validate(validate::ValidateArgs),
    Score(score::ScoreArgs),
    Train(train::TrainArgs),
    Evaluate(evaluate::EvaluateArgs),
    Bench(bench::BenchArgs),
}
