//! The alerts dataset of an archive: every alert a run delivered, as Parquet beside the
//! observations that caused it, `DIR/alerts/date=YYYY-MM-DD/part-<run>-<seq>.parquet`.
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `id` | string | the alert's content-derived id |
//! | `patient` | string | patient id |
//! | `time` | timestamp[µs, UTC] | event time |
//! | `kind` | string | `news2`, `risk`, `data_quality` |
//! | `event` | string | `raised`, `reminder`, `lowered`, `missing`, `stale`, `invalid`, `clock` |
//! | `severity` | string | `info`, `warning`, `low-medium`, `medium`, `high` |
//! | `summary` | string | one sentence for a person |
//! | `response` | string | the recommended clinical response |
//! | `evidence` | string, null | the NEWS2 evidence, as JSON |
//! | `risk` | string, null | the risk model's evidence, as JSON |
//!
//! Files are written whole, like the observations' (temporary name, fsync, rename), at most once
//! per flush interval and at the end; [`AlertsWriter::persist`] returns once everything given so
//! far is durable.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, RecordBatch, StringBuilder, StringDictionaryBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};

use super::{
    ALERTS, ArchiveError, ArchiveKey, DAY_US, date_of, format_err, io, write_parquet, write_whole,
};
use crate::alerting::Alert;

/// The alerts dataset's Arrow schema.
pub fn schema() -> SchemaRef {
    let dict = super::dictionary;
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, false),
        Field::new("patient", dict(), false),
        Field::new("time", super::timestamp(), false),
        Field::new("kind", dict(), false),
        Field::new("event", dict(), false),
        Field::new("severity", dict(), false),
        Field::new("summary", DataType::Utf8, false),
        Field::new("response", DataType::Utf8, false),
        Field::new("evidence", DataType::Utf8, true),
        Field::new("risk", DataType::Utf8, true),
    ]))
}

/// Writes alerts into an archive's alerts dataset.
pub struct AlertsWriter {
    dir: PathBuf,
    name_prefix: String,
    seq: u64,
    /// By UTC day number.
    buffered: BTreeMap<i64, Vec<Alert>>,
    written: u64,
    /// Every file is encrypted with it, when there is one.
    key: Option<Arc<ArchiveKey>>,
}

impl AlertsWriter {
    /// The alerts dataset of the archive under `dir`, encrypted with `key` when there is one.
    pub fn new(dir: &Path, key: Option<Arc<ArchiveKey>>) -> AlertsWriter {
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        AlertsWriter {
            dir: dir.join(ALERTS),
            name_prefix: format!("part-{run}"),
            seq: 0,
            buffered: BTreeMap::new(),
            written: 0,
            key,
        }
    }

    /// Buffers alerts (in their order).
    pub fn push(&mut self, alerts: &[Alert]) {
        for alert in alerts {
            let day = alert.time_us.div_euclid(DAY_US);
            self.buffered.entry(day).or_default().push(alert.clone());
        }
    }

    /// Whether alerts wait to be written.
    pub fn has_buffered(&self) -> bool {
        !self.buffered.is_empty()
    }

    /// Alerts written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Writes every buffered alert to durable files (one per date). The dataset's directory
    /// exists once this has been called, alerts or none.
    pub fn persist(&mut self) -> Result<(), ArchiveError> {
        fs::create_dir_all(&self.dir).map_err(io(&self.dir))?;
        for (day, alerts) in std::mem::take(&mut self.buffered) {
            let dir = self.dir.join(format!("date={}", date_of(day)));
            self.seq += 1;
            let name = format!("{}-{:06}.parquet", self.name_prefix, self.seq);
            write_whole(&dir, &name, |file, tmp| {
                let batch = to_batch(&alerts).map_err(|e| format_err(tmp, e))?;
                write_parquet(&batch, self.key.as_deref(), file).map_err(|e| format_err(tmp, e))
            })?;
            self.written += alerts.len() as u64;
        }
        Ok(())
    }
}

/// The alerts in the alerts dataset of the archive under `dir` (from the files' footers,
/// decrypted with `key`).
pub fn count(dir: &Path, key: Option<&ArchiveKey>) -> Result<u64, ArchiveError> {
    let mut total = 0;
    for path in super::dataset_files(&dir.join(ALERTS))? {
        let reader = super::open_parquet(&path, key)?;
        total += reader.metadata().file_metadata().num_rows() as u64;
    }
    Ok(total)
}

fn to_batch(alerts: &[Alert]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let dict = StringDictionaryBuilder::<Int32Type>::new;
    let (mut patient, mut kind, mut event, mut severity) = (dict(), dict(), dict(), dict());
    let mut id = StringBuilder::new();
    let mut time = TimestampMicrosecondBuilder::with_capacity(alerts.len()).with_timezone("UTC");
    let (mut summary, mut response) = (StringBuilder::new(), StringBuilder::new());
    let (mut evidence, mut risk) = (StringBuilder::new(), StringBuilder::new());
    for a in alerts {
        id.append_value(&a.id);
        patient.append_value(&a.patient);
        time.append_value(a.time_us);
        kind.append_value(a.kind.name());
        event.append_value(a.event.name());
        severity.append_value(a.severity.name());
        summary.append_value(&a.summary);
        response.append_value(&a.response);
        evidence.append_option(a.evidence.as_ref().map(json));
        risk.append_option(a.risk.as_ref().map(json));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(patient.finish()),
        Arc::new(time.finish()),
        Arc::new(kind.finish()),
        Arc::new(event.finish()),
        Arc::new(severity.finish()),
        Arc::new(summary.finish()),
        Arc::new(response.finish()),
        Arc::new(evidence.finish()),
        Arc::new(risk.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// JSON text of an alert's part (serialising it cannot fail: plain strings and numbers).
fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
