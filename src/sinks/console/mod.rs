//! Alerts on standard output, one readable line each.

use std::io::{self, BufWriter, Write};

use serde::Deserialize;

use super::{AlertSink, SinkContext, SinkError, SinkKind};
use crate::alerting::Alert;

/// The `[[sinks]]` of the console: it has no settings.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsoleConfig {}

impl SinkKind for ConsoleConfig {
    fn build(&self, _cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError> {
        Ok(Box::new(Console::new()))
    }
}

/// One readable line per alert on standard output.
pub struct Console {
    out: BufWriter<io::Stdout>,
}

impl Console {
    pub fn new() -> Console {
        Console {
            out: BufWriter::new(io::stdout()),
        }
    }
}

impl Default for Console {
    fn default() -> Self {
        Console::new()
    }
}

impl AlertSink for Console {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for alert in alerts {
            writeln!(self.out, "{alert}")?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn describe(&self) -> String {
        "the console (standard output)".to_owned()
    }
}
