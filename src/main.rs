//! The `vigil` command line: parses arguments, calls the library, prints. No clinical or dataflow
//! logic lives here.

mod cli;

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return usage_error(err),
    };
    let result = match cli.command {
        Command::Run(args) => cli::run::run(&args),
        Command::Replay(args) => cli::replay::run(&args),
        Command::Inspect(args) => cli::inspect::run(&args),
        Command::Simulate(args) => cli::simulate::run(&args),
        Command::Validate(args) => cli::validate::run(&args),
        Command::Score(args) => cli::score::run(&args),
        Command::Train(args) => cli::train::run(&args),
        Command::Evaluate(args) => cli::evaluate::run(&args),
        Command::Bench(args) => cli::bench::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // One line, with every cause: written for the person at the terminal.
            eprintln!("error: {err:#}");
            ExitCode::from(cli::EXIT_INPUT)
        }
    }
}

/// Prints a clap error on one line (help and version keep clap's own output).
fn usage_error(err: clap::Error) -> ExitCode {
    match err.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => err.exit(),
        _ => {
            let rendered = err.render().to_string();
            let line: Vec<&str> = rendered
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .filter(|l| !l.starts_with("Usage:"))
                .collect();
            eprintln!("{} (see --help)", line.join(" "));
            ExitCode::from(cli::EXIT_USAGE)
        }
    }
}
