//! Sinks: where alerts go.
//!
//! Alert sinks receive alerts already in their deterministic order (event time, patient, kind);
//! they write and flush, nothing more. Each kind a pipeline's `[[sinks]]` can name is a folder
//! here: its config (checked with line-accurate problems by [`SinkKind::validate`]) and the sink
//! it builds. Adding one is its folder and one line in the `components!` list below.

use std::io;
use std::path::Path;

use thiserror::Error;

use crate::alerting::Alert;
use crate::component::{Problem, Section};

pub mod board;
pub mod console;
pub mod fhir;
pub mod jsonl;
pub mod kafka;
pub mod webhook;

pub use console::Console;
pub use jsonl::JsonLines;

/// Writes alerts somewhere.
pub trait AlertSink: Send {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()>;
    /// Returns once everything written is delivered: on disk, or confirmed by the broker.
    fn flush(&mut self) -> io::Result<()>;
    /// What it is, for an error message: `alerts file target/alerts.jsonl`.
    fn describe(&self) -> String;

    /// The run is over: deliver what is left, as far as the sink can (called once, after the
    /// last flush).
    fn finish(&mut self) -> io::Result<()> {
        Ok(())
    }

    /// Whether it also takes board state (score updates, [`Alert::pages`] false) beside the
    /// alerts that page people.
    fn board_state(&self) -> bool {
        false
    }

    /// Alerts it holds that are not delivered yet (a webhook's outbox), for the metrics.
    fn backlog(&self) -> u64 {
        0
    }
}

/// A sink that cannot be opened or written.
#[derive(Debug, Error)]
#[error("{sink}: {source}")]
pub struct SinkError {
    /// What the sink is: `alerts file target/alerts.jsonl`, `kafka topic alerts`.
    pub sink: String,
    #[source]
    pub source: io::Error,
}

/// What building a sink may need from the run.
#[derive(Clone, Copy, Debug, Default)]
pub struct SinkContext {
    /// The run resumes over an archive: a file sink goes on from what an earlier run wrote
    /// (repairing a last line a crash tore) instead of starting anew.
    pub resume: bool,
}

/// A kind of alert sink, as a pipeline's `[[sinks]]` configures it.
pub trait SinkKind {
    /// What deserialising cannot check, each problem at the line of its key.
    fn validate(&self, _section: &Section) -> Vec<Problem> {
        Vec::new()
    }

    /// Makes relative paths relative to the pipeline file's directory `base`.
    fn resolve_paths(&mut self, _base: &Path) {}

    /// The running sink.
    fn build(&self, cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError>;
}

crate::component::components! {
    /// Where alerts go: one of a pipeline's `[[sinks]]`, by its `kind`.
    SinkConfig: dyn SinkKind, in "sinks", kinds KINDS {
        /// One readable line per alert on standard output.
        "console" => Console(console::ConsoleConfig),
        /// One JSON object per line, in event-time order.
        "jsonl" => Jsonl(jsonl::JsonlConfig),
        /// A Kafka topic, keyed by patient, with an idempotent producer.
        "kafka" => Kafka(kafka::KafkaSinkConfig),
        /// FHIR R4 resources: an NDJSON file and/or transaction Bundles to a FHIR server.
        "fhir" => Fhir(fhir::FhirSinkConfig),
        /// Each alert to people POSTed to a receiver, signed, through a durable outbox.
        "webhook" => Webhook(webhook::WebhookConfig),
    }
}

/// Builds the alert sinks a pipeline names, plus a JSON lines file for `--alerts`.
pub fn build(
    configs: &[SinkConfig],
    alerts_file: Option<&Path>,
    cx: &SinkContext,
) -> Result<Vec<Box<dyn AlertSink>>, SinkError> {
    let mut sinks = Vec::with_capacity(configs.len() + 1);
    for config in configs {
        sinks.push(config.kind().build(cx)?);
    }
    if let Some(path) = alerts_file {
        let file = jsonl::JsonlConfig {
            path: path.to_owned(),
        };
        sinks.push(SinkKind::build(&file, cx)?);
    }
    Ok(sinks)
}

/// An I/O error that names its file.
pub fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}
