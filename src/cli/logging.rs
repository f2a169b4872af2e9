//! Where Vigil's diagnostics go: standard error, as a person reads them (`vigil: ...`, the
//! default) or as one JSON object a line for a log pipeline (`--log-format json`).
//!
//! The library reports through `tracing` events whose message is a whole sentence and whose
//! fields (a source, a partition, a sink) say the same for machines. No event carries a patient
//! or device id: a diagnostic names a partition, an offset or a count, never a person.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// How diagnostics are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `vigil: <sentence>`, for a person at a terminal.
    #[default]
    Text,
    /// One JSON object a line: timestamp, level, target and fields (the sentence in `message`).
    Json,
}

/// Installs the diagnostics' writer for the whole process.
pub fn init(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO);
    // A second call (never made) would fail; the first writer stays.
    let _ = match format {
        LogFormat::Text => builder.event_format(Sentence).try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init(),
    };
}

/// The text format: `vigil: ` and the event's sentence, as Vigil has always written them.
struct Sentence;

impl<S, N> FormatEvent<S, N> for Sentence
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _cx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "vigil: {}", message.0)
    }
}

/// The `message` field of an event.
struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }

    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }
}
