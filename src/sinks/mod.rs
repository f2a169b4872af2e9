//! Sinks: where alerts and rejected records go.
//!
//! Alert sinks receive alerts already in their deterministic order (event time, patient, kind);
//! they write and flush, nothing more.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::alerting::Alert;
use crate::config::SinkConfig;

pub mod kafka;

/// Writes alerts somewhere.
pub trait AlertSink: Send {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
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
}

/// One JSON object per line in a file.
pub struct JsonLines {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLines {
    /// Creates (or truncates) `path`, creating its directory if needed.
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Ok(JsonLines {
            path: path.to_owned(),
            out: BufWriter::new(File::create(path)?),
        })
    }

    /// Writes one record as a JSON line.
    pub fn write_record<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl AlertSink for JsonLines {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for alert in alerts {
            self.write_record(alert)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }
}

/// Builds the alert sinks a pipeline names, plus a JSON lines file for `--alerts`.
pub fn build(
    configs: &[SinkConfig],
    alerts_file: Option<&Path>,
) -> io::Result<Vec<Box<dyn AlertSink>>> {
    let mut sinks: Vec<Box<dyn AlertSink>> = Vec::new();
    for config in configs {
        match config {
            SinkConfig::Console => sinks.push(Box::new(Console::new())),
            SinkConfig::Kafka {
                brokers,
                topic,
                properties,
            } => sinks.push(Box::new(kafka::KafkaAlerts::connect(
                brokers, topic, properties,
            )?)),
            SinkConfig::Jsonl { path } => sinks.push(Box::new(
                JsonLines::create(path).map_err(|e| with_path(e, path))?,
            )),
        }
    }
    if let Some(path) = alerts_file {
        sinks.push(Box::new(
            JsonLines::create(path).map_err(|e| with_path(e, path))?,
        ));
    }
    Ok(sinks)
}

/// An I/O error that names its file.
pub fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
