//! `vigil validate`: check a pipeline file and report every problem with its line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use vigil::config::{LoadError, PipelineConfig};

/// Check a pipeline file: every problem is reported with its line.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The pipeline file.
    #[arg(value_name = "PIPELINE.toml")]
    pub pipeline: PathBuf,
}

pub fn run(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let path = args.pipeline.display();
    match PipelineConfig::load(&args.pipeline) {
        Ok(config) => {
            let mut notes = Vec::new();
            if let vigil::config::SourceConfig::Jsonl(jsonl) = &config.source
                && let path = &jsonl.path
                && !path.exists()
            {
                notes.push(format!(
                    "warning: source file {} does not exist",
                    path.display()
                ));
            }
            for note in &notes {
                eprintln!("{path}: {note}");
            }
            if let Some(risk) = &config.risk {
                let settings = vigil::monitor::MonitorSettings::from_config(&config);
                if let Err(e) = vigil::risk::RiskScorer::load(risk, &settings.picture) {
                    eprintln!("{path}: [risk] {e}");
                    return Ok(ExitCode::from(super::EXIT_CONFIG));
                }
            }
            if let Some(board) = &config.board
                && let Err(e) = check_board(board)
            {
                eprintln!("{path}: [board] {e}");
                return Ok(ExitCode::from(super::EXIT_CONFIG));
            }
            println!("{path}: ok");
            Ok(ExitCode::SUCCESS)
        }
        Err(LoadError::Invalid { error, .. }) => {
            for problem in &error.problems {
                match problem.line {
                    Some(line) => eprintln!("{path}:{line}: {}", problem.message),
                    None => eprintln!("{path}: {}", problem.message),
                }
            }
            eprintln!(
                "{path}: {} problem{}",
                error.problems.len(),
                if error.problems.len() == 1 { "" } else { "s" }
            );
            Ok(ExitCode::from(super::EXIT_CONFIG))
        }
        Err(e) => Err(e.into()),
    }
}

/// The board's certificate and users, read as the run would read them.
fn check_board(board: &vigil::sinks::board::BoardConfig) -> anyhow::Result<()> {
    use vigil::sinks::board::{access::Access, tls};
    if let Some((cert, key)) = board.tls() {
        tls::server_config(cert, key)?;
    }
    if let Some(users) = &board.users {
        Access::open(users, board.tls().is_some())?;
    }
    Ok(())
}
