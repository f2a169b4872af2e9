//! The Parquet archive: every raw observation that reached Vigil, readable as-is by DuckDB,
//! Polars and pandas, and replayable to the same alerts.
//!
//! # Layout
//!
//! Two datasets and the archive's own records, so that each dataset opens as it is in pyarrow,
//! pandas, Polars and DuckDB (they skip names that start with `_`):
//!
//! ```text
//! DIR/observations/date=YYYY-MM-DD/part-<run>-<writer>-<seq>.parquet   every record that reached Vigil
//! DIR/alerts/date=YYYY-MM-DD/part-<run>-<seq>.parquet                  every alert (see [`alerts`])
//! DIR/_vigil/pipeline.toml, risk-model.json, delivered.json            for replay and resume
//! ```
//!
//! Both datasets are partitioned by the UTC date of the event time, zstd-compressed, strings
//! dictionary-encoded. An archive written before this layout (`DIR/date=…/`, `DIR/pipeline.toml`)
//! is still read.
//!
//! # Observations (schema version 4)
//!
//! One row per record:
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `patient` | string | patient id |
//! | `device` | string, null | device id |
//! | `time` | timestamp[µs, UTC] | event time |
//! | `vital` | string | wire name (`heart_rate`, …) |
//! | `value` | float64, null | the number as sent (null for consciousness and the coded kinds) |
//! | `level` | string, null | the ACVPU letter for consciousness; the code of a `pump_event`, `medication` or `inhaler` |
//! | `unit` | string, null | UCUM unit as sent |
//! | `ingest_time` | timestamp[µs, UTC] | when Vigil received it (wall clock) |
//! | `source` | string | `jsonl:<file>`, `simulator`, `physionet2019`, `kafka:<topic>` |
//! | `partition` | int32, null | Kafka partition |
//! | `offset` | int64, null | Kafka offset, or line number in a file |
//! | `processed` | bool | false when it arrived later than the allowed lateness, or was held |
//! | `invalid_reason` | string, null | set when the value was impossible, or the time held (reported, not scored) |
//! | `clock` | timestamp[µs, UTC] | its partition's event-time clock when it was judged (see [`crate::pipeline::clock`]) |
//! | `held` | string, null | `ahead`, `behind` or `wall_clock` when its time was not believed |
//! | `detail` | string (JSON), null | a v1.1 device kind's other fields as sent: `{"method":"cgm"}`, `{"medication":"metformin","schedule":"am"}` |
//! | `format` | string, null | how the message was written: `wire`, `fhir` or `hl7v2`; null for a simulator or dataset |
//! | `entry` | int32, null | which part of its message: a FHIR Bundle's entry index, an HL7 v2 OBX segment's number |
//!
//! For a file, `offset` is the line a wire message or FHIR document starts on, or an HL7 v2
//! message's number in the file. Version 3 had no `format` nor `entry`, version 2 no `detail`,
//! version 1 neither `clock` nor `held`; all are still read.
//!
//! `_vigil/pipeline.toml` keeps the live run's settings for replay, with a copy of its risk model
//! (`_vigil/risk-model.json`, [`write_metadata`]), and `_vigil/delivered.json` how far its alerts
//! were delivered ([`Delivered`]), for a run that resumes over the archive.
//!
//! # Durability
//!
//! Rows are buffered and written as whole files: a file is written under a temporary name,
//! fsynced, renamed into place and its directory fsynced, so a reader (or a crash) never sees a
//! partial file. [`ArchiveWriter::flush`] returns only once everything given so far is durable.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBuilder, DictionaryArray, Float64Array, Float64Builder,
    Int32Array, Int32Builder, Int64Array, Int64Builder, RecordBatch, StringArray,
    StringDictionaryBuilder, TimestampMicrosecondArray, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use thiserror::Error;

use crate::formats::InputFormat;
use crate::monitor::events::HoldKind;
use crate::observation::{
    Acvpu, Code, Detail, EventTime, Identifier, Observation, Subject, Unit, Value, Vital,
};
use crate::sources::Position;

pub mod alerts;
mod behind;
pub mod key;
pub mod sealed;

pub use key::{ArchiveKey, KeyError, KeyFile, KeyProvider};

/// The observations dataset, under an archive's directory.
pub const OBSERVATIONS: &str = "observations";

/// The alerts dataset, under an archive's directory.
pub const ALERTS: &str = "alerts";

/// The archive's own records, under its directory (a name readers skip).
pub const META: &str = "_vigil";

/// The copy of the live pipeline kept in an archive, read by `vigil replay`.
pub const PIPELINE_FILE: &str = "_vigil/pipeline.toml";

/// The copy of the live run's risk model, beside the pipeline's copy.
pub const RISK_MODEL_FILE: &str = "risk-model.json";

/// The copy of the live run's registry (scales and medication schedules), beside it too.
pub const REGISTRY_FILE: &str = "registry.csv";

/// Where an archive's pipeline is: its copy, or that of an archive written before `_vigil/`.
pub fn pipeline_file(dir: &Path) -> PathBuf {
    current_or_older(dir, PIPELINE_FILE)
}

/// `dir/name` (a path under `_vigil/`), or where an archive written before `_vigil/` kept that
/// file (at its top), when only that one exists.
fn current_or_older(dir: &Path, name: &str) -> PathBuf {
    let current = dir.join(name);
    let older = dir.join(name.trim_start_matches("_vigil/"));
    match !current.exists() && older.exists() {
        true => older,
        false => current,
    }
}

/// Keeps the live pipeline's settings (and its risk model) in the archive under `dir`, so that
/// a replay scores with them however `pipelines/` and `models/` move on.
pub fn write_metadata(
    dir: &Path,
    config: &crate::config::PipelineConfig,
    key: Option<&ArchiveKey>,
) -> Result<(), ArchiveError> {
    let meta = dir.join(META);
    fs::create_dir_all(&meta).map_err(io(&meta))?;
    let copy = dir.join(PIPELINE_FILE);
    fs::write(&copy, pipeline_for_replay(&config.text)).map_err(io(&copy))?;
    if let Some(risk) = &config.risk {
        let model = meta.join(RISK_MODEL_FILE);
        fs::copy(&risk.model, &model).map_err(io(&model))?;
    }
    if let Some(registry) = &config.registry {
        let copy = meta.join(REGISTRY_FILE);
        match key {
            // Patients, wards and consent: sealed like the rest of an encrypted archive.
            Some(key) => {
                let text = fs::read_to_string(&registry.path).map_err(io(&registry.path))?;
                let sealed = sealed::seal_text(key, REGISTRY_FILE, &text)
                    .map_err(|e| format_err(&copy, e))?;
                fs::write(&copy, sealed).map_err(io(&copy))?;
            }
            None => {
                fs::copy(&registry.path, &copy).map_err(io(&copy))?;
            }
        }
    }
    Ok(())
}

/// The pipeline text kept for replay: the same settings, with the source, sinks, archive key
/// and board left out (a replay reads the archive, with the key it is given, and writes where
/// it is told; the board's users and certificate are the live machine's), and the risk model read from its copy
/// beside the archive ([`RISK_MODEL_FILE`]), so that a replay scores with the model the live
/// run used even after `models/` has moved on; the registry likewise ([`REGISTRY_FILE`]).
pub fn pipeline_for_replay(text: &str) -> String {
    let mut out = String::from(
        "# The pipeline this archive was recorded with (source and sinks removed).\nsinks = []\n",
    );
    let mut skipping = false;
    let mut in_sinks = false;
    let mut section = "";
    let key = |line: &str, name: &str| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    for line in text.lines() {
        let trimmed = line.trim();
        // A top-level `sinks = [...]` (one line or several): the replay's own is above.
        if section.is_empty() && (in_sinks || key(trimmed, "sinks")) {
            in_sinks = !trimmed.contains(']');
            continue;
        }
        if trimmed.starts_with('[') {
            skipping = trimmed == "[source]"
                || trimmed == "[[sinks]]"
                || trimmed == "[archive]"
                || trimmed == "[board]"
                || trimmed.starts_with("[source.");
            section = trimmed;
        }
        if skipping {
            continue;
        }
        if section == "[risk]" && key(trimmed, "model") {
            out.push_str(&format!("model = \"{RISK_MODEL_FILE}\"\n"));
        } else if section == "[registry]" && key(trimmed, "path") {
            out.push_str(&format!("path = \"{REGISTRY_FILE}\"\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out.push_str("\n[source]\nkind = \"jsonl\"\npath = \"-\"\n");
    out
}

/// The file in an archive that says how far the alerts of the runs that wrote it were
/// delivered (see [`Delivered`]).
pub const DELIVERED_FILE: &str = "_vigil/delivered.json";

/// How far a run over this archive delivered its alerts: every alert with an event time before
/// `before` reached the sinks, and every observation processed before it is in the archive. A
/// run that resumes over the archive rebuilds patients' state from it and does not send those
/// alerts again.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Delivered {
    /// The source whose alerts these are (`kafka:vitals`).
    pub source: String,
    /// RFC 3339, for people.
    pub before: String,
    /// The same instant, µs since the epoch.
    pub before_us: i64,
}

impl Delivered {
    pub fn new(source: &str, before_us: i64) -> Delivered {
        Delivered {
            source: source.to_owned(),
            before: EventTime::from_micros(before_us).to_rfc3339(),
            before_us,
        }
    }

    /// The record under `dir`, if there is one (where an archive written before `_vigil/` kept
    /// it too).
    pub fn read(dir: &Path) -> Result<Option<Delivered>, ArchiveError> {
        let path = current_or_older(dir, DELIVERED_FILE);
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| format_err(&path, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    /// Replaces the record under `dir` durably: a temporary file, fsynced, renamed.
    pub fn write(&self, dir: &Path) -> Result<(), ArchiveError> {
        let text =
            serde_json::to_vec(self).map_err(|e| format_err(&dir.join(DELIVERED_FILE), e))?;
        let name = DELIVERED_FILE.trim_start_matches("_vigil/");
        write_whole(&dir.join(META), name, |mut file, tmp| {
            std::io::Write::write_all(&mut file, &text).map_err(io(tmp))?;
            Ok(file)
        })
    }
}

/// An archive that cannot be written or read.
#[derive(Debug, Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {reason}")]
    Format { path: PathBuf, reason: String },
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io {
        path: path.to_owned(),
        source,
    }
}

pub(crate) fn format_err(path: &Path, reason: impl ToString) -> ArchiveError {
    ArchiveError::Format {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// Writes `name` under `dir` (created if needed) whole: `write` fills a temporary file (its name
/// starts with `.`, so dataset readers skip it), which is fsynced, renamed to `name`, and the
/// directory fsynced. A crash leaves the file complete or absent, never torn.
pub(crate) fn write_whole(
    dir: &Path,
    name: &str,
    write: impl FnOnce(File, &Path) -> Result<File, ArchiveError>,
) -> Result<(), ArchiveError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let tmp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    let file = File::create(&tmp).map_err(io(&tmp))?;
    let file = write(file, &tmp)?;
    file.sync_all().map_err(io(&tmp))?;
    drop(file);
    fs::rename(&tmp, &path).map_err(io(&path))?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

/// Writes `batch` as one Parquet file (zstd, dictionary-encoded strings, encrypted with `key`
/// when there is one) to `out`, and gives `out` back: the encoding of every dataset of the
/// archive.
pub(crate) fn write_parquet<W: std::io::Write + Send>(
    batch: &RecordBatch,
    key: Option<&ArchiveKey>,
    out: W,
) -> Result<W, parquet::errors::ParquetError> {
    let mut props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()))
        .set_dictionary_enabled(true);
    if let Some(key) = key {
        // One page per column chunk: DuckDB (2.0) fails to authenticate the second and later
        // data pages of a chunk written by the parquet crate ("Computed AES tag differs"),
        // though pyarrow reads them; a file is one row group of at most a flush's rows, so a
        // page is at most a few MB per column. With one page, a page index would say nothing
        // the footer does not: leaving it out leaves no encrypted module a reader skips, so a
        // changed byte anywhere fails to authenticate.
        props = props
            .with_file_encryption_properties(key.encryption()?)
            .set_offset_index_disabled(true)
            .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
            .set_data_page_row_count_limit(usize::MAX)
            .set_data_page_size_limit(usize::MAX)
            .set_dictionary_page_size_limit(usize::MAX);
    }
    let props = props.build();
    let mut writer = ArrowWriter::try_new(out, batch.schema(), Some(props))?;
    writer.write(batch)?;
    writer.into_inner()
}

/// Opens one file of an archive for reading, decrypting it with `key`; refuses an encrypted
/// file without a key and a plaintext one with a key (see [`key`]).
pub(crate) fn open_parquet(
    path: &Path,
    key: Option<&ArchiveKey>,
) -> Result<ParquetRecordBatchReaderBuilder<File>, ArchiveError> {
    let mut file = File::open(path).map_err(io(path))?;
    let encrypted = key::is_encrypted(&mut file).map_err(io(path))?;
    if let Some(why) = key::refusal(path, encrypted, key.is_some()) {
        return Err(format_err(path, why));
    }
    let mut options = ArrowReaderOptions::new();
    if let Some(key) = key {
        let decryption = key.decryption().map_err(|e| format_err(path, e))?;
        options = options.with_file_decryption_properties(decryption);
    }
    ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| unreadable(path, key.is_some(), e))
}

/// A file that cannot be read: with a key, most likely because it is not the file's or the
/// file was changed (AES-GCM authenticates every byte it decrypts).
pub(crate) fn unreadable(path: &Path, with_key: bool, e: impl std::fmt::Display) -> ArchiveError {
    match with_key {
        true => format_err(
            path,
            format!(
                "cannot be decrypted with this key: a wrong key, or the file was changed ({e})"
            ),
        ),
        false => format_err(path, e),
    }
}

/// A dictionary-encoded string column's type.
pub(crate) fn dictionary() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The type of a timestamp column: µs, UTC.
pub(crate) fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// The archive's Arrow schema (version 4: version 3 and `format` and `entry`, which a reader of
/// an older file takes as null; version 3 added `detail`, version 2 `clock` and `held`).
pub fn schema() -> SchemaRef {
    let (dict, ts) = (dictionary, timestamp);
    Arc::new(Schema::new(vec![
        Field::new("patient", dict(), false),
        Field::new("device", dict(), true),
        Field::new("time", ts(), false),
        Field::new("vital", dict(), false),
        Field::new("value", DataType::Float64, true),
        Field::new("level", dict(), true),
        Field::new("unit", dict(), true),
        Field::new("ingest_time", ts(), false),
        Field::new("source", dict(), false),
        Field::new("partition", DataType::Int32, true),
        Field::new("offset", DataType::Int64, true),
        Field::new("processed", DataType::Boolean, false),
        Field::new("invalid_reason", DataType::Utf8, true),
        Field::new("clock", ts(), false),
        Field::new("held", dict(), true),
        Field::new("detail", DataType::Utf8, true),
        Field::new("format", dict(), true),
        Field::new("entry", DataType::Int32, true),
    ]))
}

/// One archived record: a valid observation, or an impossible value of a known patient.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    pub patient: Identifier,
    pub device: Option<Identifier>,
    pub time: EventTime,
    pub vital: Vital,
    pub value: Value,
    pub unit: Option<Unit>,
    pub ingest_us: i64,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// Which part of its message (a Bundle's entry, an OBX segment), for FHIR and HL7 v2.
    pub entry: Option<u32>,
    pub processed: bool,
    pub invalid_reason: Option<String>,
    /// The partition's event-time clock when the record was judged (µs).
    pub clock_us: i64,
    /// Set when its time was not believed.
    pub held: Option<HoldKind>,
    /// A v1.1 device kind's fields beyond value and unit.
    pub detail: Option<Detail>,
}

impl Row {
    /// A row for a valid observation, judged when its partition's clock read `clock_us`.
    pub fn observation(
        obs: &Observation,
        ingest_us: i64,
        at: Option<Position>,
        processed: bool,
        clock_us: i64,
    ) -> Row {
        Row {
            patient: obs.patient().clone(),
            device: obs.device().cloned(),
            time: obs.time(),
            vital: obs.vital(),
            value: obs.value(),
            unit: obs.unit(),
            ingest_us,
            partition: at.and_then(|p| p.partition),
            offset: at.map(|p| p.offset),
            entry: at.and_then(|p| p.entry),
            processed,
            invalid_reason: None,
            clock_us,
            held: None,
            detail: obs.detail().cloned(),
        }
    }

    /// A row for an impossible value of a known patient (its number is not known here).
    pub fn invalid(
        subject: &Subject,
        reason: &str,
        ingest_us: i64,
        at: Option<Position>,
        processed: bool,
        clock_us: i64,
    ) -> Row {
        Row {
            patient: subject.patient.clone(),
            device: None,
            time: subject.time,
            vital: subject.vital,
            value: Value::Number(f64::NAN),
            unit: None,
            ingest_us,
            partition: at.and_then(|p| p.partition),
            offset: at.map(|p| p.offset),
            entry: at.and_then(|p| p.entry),
            processed,
            invalid_reason: Some(reason.to_owned()),
            clock_us,
            held: None,
            detail: None,
        }
    }

    /// The same row, held aside for `reason`: not processed.
    pub fn held(mut self, kind: HoldKind, reason: String) -> Row {
        self.processed = false;
        self.held = Some(kind);
        self.invalid_reason = Some(reason);
        self
    }
}

/// Refuses to add to the archive under `dir` with `key` when its files were written otherwise
/// (encrypted, and `key` is `None`; or not encrypted, and it is given): an archive is encrypted
/// from its first file or not at all. Reads one file of each dataset.
pub fn check_encryption(dir: &Path, key: Option<&ArchiveKey>) -> Result<(), ArchiveError> {
    let first = |dataset: PathBuf| dataset_files(&dataset).map(|f| f.into_iter().next());
    for file in [first(dir.join(OBSERVATIONS))?, first(dir.join(ALERTS))?]
        .into_iter()
        .flatten()
    {
        open_parquet(&file, key)?;
    }
    Ok(())
}

/// Per Kafka partition, the highest offset an archive holds from one source. Each worker archives
/// its partitions in offset order and files are written whole, so every offset up to it is in
/// the archive (or was a duplicate, or a dead letter, neither of which is archived).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ArchivedOffsets {
    up_to: std::collections::HashMap<i32, i64>,
}

impl ArchivedOffsets {
    /// Whether a record at this position is in the archive.
    pub fn contains(&self, at: Option<Position>) -> bool {
        match at {
            Some(Position {
                partition: Some(p),
                offset,
                ..
            }) => self.up_to.get(&p).is_some_and(|max| offset <= *max),
            _ => false,
        }
    }

    /// Whether the archive holds nothing of the source.
    pub fn is_empty(&self) -> bool {
        self.up_to.is_empty()
    }
}

/// What the archive under `dir` holds from `source` (nothing when there is no archive yet).
pub fn archived_offsets(
    dir: &Path,
    source: &str,
    key: Option<&ArchiveKey>,
) -> Result<ArchivedOffsets, ArchiveError> {
    let mut up_to = std::collections::HashMap::new();
    if !dir.exists() {
        return Ok(ArchivedOffsets { up_to });
    }
    for file in files(dir)? {
        for (source_name, partition, offset) in read_positions(&file, key)? {
            if source_name == source {
                let max = up_to.entry(partition).or_insert(offset);
                *max = (*max).max(offset);
            }
        }
    }
    Ok(ArchivedOffsets { up_to })
}

/// Writes rows into the archive as whole, durable files.
pub struct ArchiveWriter {
    dir: PathBuf,
    name_prefix: String,
    seq: u64,
    rows_per_file: usize,
    /// By UTC day number (days since the epoch): the date directory is named at the flush.
    buffered: BTreeMap<i64, Vec<Row>>,
    buffered_rows: usize,
    /// What earlier runs of this source archived: a restart re-reads from the last committed
    /// offset, and those rows are skipped.
    archived: Arc<ArchivedOffsets>,
    /// Writes the files (naming the source, and how its messages are written), encrypted with
    /// the archive's key when there is one.
    behind: behind::WriteBehind,
}

impl ArchiveWriter {
    /// An archive under `dir` (created if needed); `source` names where rows come from and
    /// `writer` which worker writes, so that concurrent writers never share a file name.
    /// `archived` is what earlier runs of this source archived ([`archived_offsets`]): rows at
    /// those positions are not archived again. With `key`, every file is encrypted with it.
    pub fn create(
        dir: &Path,
        source: &str,
        format: Option<InputFormat>,
        writer: usize,
        rows_per_file: usize,
        archived: Arc<ArchivedOffsets>,
        key: Option<Arc<ArchiveKey>>,
    ) -> Result<ArchiveWriter, ArchiveError> {
        fs::create_dir_all(dir).map_err(io(dir))?;
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros());
        let name = source.to_owned();
        let behind =
            behind::WriteBehind::spawn(format!("vigil:archive-{writer}"), dir.to_owned(), {
                move |f: &behind::File| {
                    write_whole(&f.dir, &f.name, |file, tmp| {
                        encode(&f.rows, &name, format, key.as_deref(), file)
                            .map_err(|e| format_err(tmp, e))
                    })
                }
            })?;
        Ok(ArchiveWriter {
            dir: dir.to_owned(),
            archived,
            name_prefix: format!("part-{run}-{writer}"),
            seq: 0,
            rows_per_file: rows_per_file.max(1),
            buffered: BTreeMap::new(),
            buffered_rows: 0,
            behind,
        })
    }

    /// Buffers a row; writes files once enough rows are buffered.
    pub fn push(&mut self, row: Row) -> Result<(), ArchiveError> {
        let day = row.time.micros().div_euclid(DAY_US);
        self.buffered.entry(day).or_default().push(row);
        self.buffered_rows += 1;
        if self.buffered_rows >= self.rows_per_file {
            self.hand_over()?;
        }
        Ok(())
    }

    /// Whether a record at this position is already archived (by an earlier run that crashed
    /// after archiving it and before committing its offset).
    pub fn already_archived(&self, at: Option<Position>) -> bool {
        self.archived.contains(at)
    }

    /// Rows buffered and not yet durable.
    pub fn buffered(&self) -> usize {
        self.buffered_rows
    }

    /// (files, rows) written so far.
    pub fn written(&self) -> (u64, u64) {
        self.behind.written()
    }

    /// Writes every row pushed so far to durable files (a file per date of each hand-over):
    /// returns once they are.
    pub fn flush(&mut self) -> Result<(), ArchiveError> {
        self.hand_over()?;
        self.behind.wait()
    }

    /// Hands the buffered rows to the writer thread, a file per date.
    fn hand_over(&mut self) -> Result<(), ArchiveError> {
        let buffered = std::mem::take(&mut self.buffered);
        self.buffered_rows = 0;
        for (day, rows) in buffered {
            if rows.is_empty() {
                continue;
            }
            let dir = self
                .dir
                .join(OBSERVATIONS)
                .join(format!("date={}", date_of(day)));
            self.seq += 1;
            let name = format!("{}-{:06}.parquet", self.name_prefix, self.seq);
            self.behind.hand_over(behind::File { dir, name, rows })?;
        }
        Ok(())
    }
}

/// Writes rows as one Parquet file (the archive's schema, zstd, dictionary-encoded strings,
/// encrypted with `key` when there is one) to `out`, and gives `out` back.
pub fn encode<W: std::io::Write + Send>(
    rows: &[Row],
    source: &str,
    format: Option<InputFormat>,
    key: Option<&ArchiveKey>,
    out: W,
) -> Result<W, parquet::errors::ParquetError> {
    write_parquet(&to_batch(rows, source, format)?, key, out)
}

pub(crate) const DAY_US: i64 = 86_400_000_000;

/// `YYYY-MM-DD` of a UTC day number.
pub(crate) fn date_of(day: i64) -> String {
    let rfc = EventTime::from_micros(day.saturating_mul(DAY_US)).to_rfc3339();
    rfc.get(..10).unwrap_or("unknown").to_owned()
}

/// A dictionary column of a small set of values (vitals, units, levels, the source), found by a
/// linear search of those seen so far: a dictionary builder hashes every row's string, which
/// is for the open sets (patients, devices).
fn small_dictionary<'a, T: Copy + PartialEq>(
    rows: impl Iterator<Item = Option<T>>,
    name: impl Fn(T) -> &'a str,
) -> DictionaryArray<Int32Type> {
    let mut seen: Vec<T> = Vec::new();
    let keys: Int32Array = rows
        .map(|v| {
            v.map(|v| match seen.iter().position(|s| *s == v) {
                Some(k) => k as i32,
                None => {
                    seen.push(v);
                    seen.len() as i32 - 1
                }
            })
        })
        .collect();
    let values = StringArray::from_iter_values(seen.iter().map(|v| name(*v)));
    DictionaryArray::new(keys, Arc::new(values))
}

fn to_batch(
    rows: &[Row],
    source: &str,
    format: Option<InputFormat>,
) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut patient = StringDictionaryBuilder::<Int32Type>::new();
    let mut device = StringDictionaryBuilder::<Int32Type>::new();
    let mut time = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut value = Float64Builder::with_capacity(rows.len());
    let mut ingest = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut partition = Int32Builder::with_capacity(rows.len());
    let mut offset = Int64Builder::with_capacity(rows.len());
    let mut processed = BooleanBuilder::with_capacity(rows.len());
    let mut invalid = arrow::array::StringBuilder::new();
    let mut clock = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut detail = arrow::array::StringBuilder::new();
    let mut entry = Int32Builder::with_capacity(rows.len());
    for r in rows {
        entry.append_option(r.entry.map(|e| e.min(i32::MAX as u32) as i32));
        patient.append_value(r.patient.as_str());
        device.append_option(r.device.as_ref().map(Identifier::as_str));
        time.append_value(r.time.micros());
        match r.value {
            Value::Number(n) if n.is_finite() => value.append_value(n),
            Value::Number(_) | Value::Acvpu(_) | Value::Code(_) | Value::None => {
                value.append_null()
            }
        }
        detail.append_option(
            r.detail
                .as_ref()
                .map(|d| serde_json::Value::Object(d.to_json_members()).to_string()),
        );
        ingest.append_value(r.ingest_us);
        partition.append_option(r.partition);
        offset.append_option(r.offset);
        processed.append_value(r.processed);
        invalid.append_option(r.invalid_reason.as_deref());
        clock.append_value(r.clock_us);
    }
    let vital = small_dictionary(rows.iter().map(|r| Some(r.vital)), Vital::wire_name);
    let level = small_dictionary(
        rows.iter().map(|r| match r.value {
            Value::Acvpu(a) => Some(a.letter()),
            Value::Code(c) => Some(c.wire_name()),
            Value::Number(_) | Value::None => None,
        }),
        |name| name,
    );
    let unit = small_dictionary(rows.iter().map(|r| r.unit), Unit::ucum);
    let src = small_dictionary(rows.iter().map(|_| Some(())), |()| source);
    let held = small_dictionary(rows.iter().map(|r| r.held), HoldKind::name);
    let format = small_dictionary(rows.iter().map(|_| format), InputFormat::name);
    let columns: Vec<ArrayRef> = vec![
        Arc::new(patient.finish()),
        Arc::new(device.finish()),
        Arc::new(time.finish()),
        Arc::new(vital),
        Arc::new(value.finish()),
        Arc::new(level),
        Arc::new(unit),
        Arc::new(ingest.finish()),
        Arc::new(src),
        Arc::new(partition.finish()),
        Arc::new(offset.finish()),
        Arc::new(processed.finish()),
        Arc::new(invalid.finish()),
        Arc::new(clock.finish()),
        Arc::new(held),
        Arc::new(detail.finish()),
        Arc::new(format),
        Arc::new(entry.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}

/// The archive's observation files, sorted by path (and those of an archive written before
/// `observations/`, at its top).
pub fn files(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut out = dataset_files(&dir.join(OBSERVATIONS))?;
    out.extend(dataset_files(dir)?);
    out.sort();
    Ok(out)
}

/// The `date=*/part-*.parquet` files of a dataset directory (none if it does not exist).
pub fn dataset_files(dir: &Path) -> Result<Vec<PathBuf>, ArchiveError> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io(dir)(e)),
    };
    for entry in entries.filter_map(Result::ok) {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() && name.starts_with("date=") {
            for file in fs::read_dir(&path)
                .map_err(io(&path))?
                .filter_map(Result::ok)
            {
                let p = file.path();
                let n = file.file_name().to_string_lossy().into_owned();
                if n.starts_with("part-") && n.ends_with(".parquet") {
                    out.push(p);
                }
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The (source, partition, offset) of each Kafka row of one file.
fn read_positions(
    path: &Path,
    key: Option<&ArchiveKey>,
) -> Result<Vec<(String, i32, i64)>, ArchiveError> {
    // Only the three columns needed: a restart reads every file of the archive.
    let builder = open_parquet(path, key)?;
    let mask = parquet::arrow::ProjectionMask::columns(
        builder.parquet_schema(),
        ["source", "partition", "offset"],
    );
    let reader = builder
        .with_projection(mask)
        .with_batch_size(65536)
        .build()
        .map_err(|e| unreadable(path, key.is_some(), e))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(path, key.is_some(), e))?;
        let source: &DictionaryArray<Int32Type> =
            column(&batch, "source").map_err(|e| format_err(path, e))?;
        let partition: &Int32Array =
            column(&batch, "partition").map_err(|e| format_err(path, e))?;
        let offset: &Int64Array = column(&batch, "offset").map_err(|e| format_err(path, e))?;
        for i in 0..batch.num_rows() {
            if !partition.is_null(i) && !offset.is_null(i) {
                out.push((
                    dict_str(source, i).unwrap_or("").to_owned(),
                    partition.value(i),
                    offset.value(i),
                ));
            }
        }
    }
    Ok(out)
}

/// Reads every row of one archive file that is not encrypted.
pub fn read_file(path: &Path) -> Result<Vec<Row>, ArchiveError> {
    read_file_of(path, None, None)
}

/// Reads the rows of one archive file that came from `source` (every row when `None`),
/// decrypting it with `key`.
pub fn read_file_of(
    path: &Path,
    source: Option<&str>,
    key: Option<&ArchiveKey>,
) -> Result<Vec<Row>, ArchiveError> {
    read_file_since(path, source, key, None)
}

/// [`read_file_of`], skipping the row groups whose statistics show every row happened and was
/// judged (its `time` and its `clock`) before `since_us`: a restart from a snapshot reads only
/// the archive's tail. Rows of the row groups read are all returned; the caller filters them.
pub fn read_file_since(
    path: &Path,
    source: Option<&str>,
    key: Option<&ArchiveKey>,
    since_us: Option<i64>,
) -> Result<Vec<Row>, ArchiveError> {
    let mut builder = open_parquet(path, key)?;
    let groups = builder.metadata().row_groups();
    let mut expected: usize = groups.iter().map(|g| g.num_rows().max(0) as usize).sum();
    if let Some(since) = since_us {
        let (time, clock) = (
            row_group_max(&builder, "time"),
            row_group_max(&builder, "clock"),
        );
        let wanted: Vec<usize> = (0..builder.metadata().num_row_groups())
            .filter(|&i| {
                // Without statistics (or a version 1 file without `clock`), it is read.
                let after =
                    |max: &[Option<i64>]| max.get(i).copied().flatten().is_none_or(|m| m >= since);
                after(&time) || (clock.is_empty() || after(&clock))
            })
            .collect();
        expected = wanted
            .iter()
            .map(|&i| builder.metadata().row_group(i).num_rows().max(0) as usize)
            .sum();
        builder = builder.with_row_groups(wanted);
    }
    let reader = builder
        .with_batch_size(65536)
        .build()
        .map_err(|e| unreadable(path, key.is_some(), e))?;
    // Rows are large: one allocation, not a copy at each doubling.
    let mut rows = Vec::with_capacity(expected);
    for batch in reader {
        let batch = batch.map_err(|e| unreadable(path, key.is_some(), e))?;
        read_batch(&batch, source, &mut rows).map_err(|e| format_err(path, e))?;
    }
    Ok(rows)
}

/// The largest value of the 64-bit column `name` (a timestamp) in each row group, from the
/// file's statistics (`None` for a row group without them); empty when the file has no such
/// column.
fn row_group_max(builder: &ParquetRecordBatchReaderBuilder<File>, name: &str) -> Vec<Option<i64>> {
    let Some(at) = builder
        .parquet_schema()
        .columns()
        .iter()
        .position(|c| c.name() == name)
    else {
        return Vec::new();
    };
    builder
        .metadata()
        .row_groups()
        .iter()
        .map(|group| match group.column(at).statistics() {
            Some(parquet::file::statistics::Statistics::Int64(s)) => s.max_opt().copied(),
            _ => None,
        })
        .collect()
}

fn column<'a, T: 'static>(batch: &'a RecordBatch, name: &str) -> Result<&'a T, String> {
    batch
        .column_by_name(name)
        .and_then(|c| c.as_any().downcast_ref::<T>())
        .ok_or_else(|| format!("column `{name}` is missing or of the wrong type"))
}

/// The string of a dictionary column at `i`, if not null.
fn dict_str(array: &DictionaryArray<Int32Type>, i: usize) -> Option<&str> {
    if array.is_null(i) {
        return None;
    }
    let values = array.values().as_any().downcast_ref::<StringArray>()?;
    let key = array.keys().value(i);
    Some(values.value(key as usize))
}

/// The ids of a dictionary column (patients, devices), each made once a batch when a row first
/// names it: a row then clones one (a reference count) where it made its own (an allocation).
struct DictIds<'a> {
    array: &'a DictionaryArray<Int32Type>,
    made: Vec<Option<Identifier>>,
}

impl<'a> DictIds<'a> {
    fn new(array: &'a DictionaryArray<Int32Type>) -> DictIds<'a> {
        DictIds {
            array,
            made: vec![None; array.values().len()],
        }
    }

    /// Row `i`'s id, if it has one.
    fn at(&mut self, i: usize) -> Result<Option<Identifier>, String> {
        if self.array.is_null(i) {
            return Ok(None);
        }
        let key = self.array.keys().value(i) as usize;
        if let Some(Some(id)) = self.made.get(key) {
            return Ok(Some(id.clone()));
        }
        let Some(text) = dict_str(self.array, i) else {
            return Ok(None);
        };
        let id = Identifier::new(text).map_err(|e| format!("row {i}: {e}"))?;
        if let Some(slot) = self.made.get_mut(key) {
            *slot = Some(id.clone());
        }
        Ok(Some(id))
    }
}

fn read_batch(batch: &RecordBatch, only: Option<&str>, rows: &mut Vec<Row>) -> Result<(), String> {
    let source: &DictionaryArray<Int32Type> = column(batch, "source")?;
    let patient: &DictionaryArray<Int32Type> = column(batch, "patient")?;
    let device: &DictionaryArray<Int32Type> = column(batch, "device")?;
    let time: &TimestampMicrosecondArray = column(batch, "time")?;
    let vital: &DictionaryArray<Int32Type> = column(batch, "vital")?;
    let value: &Float64Array = column(batch, "value")?;
    let level: &DictionaryArray<Int32Type> = column(batch, "level")?;
    let unit: &DictionaryArray<Int32Type> = column(batch, "unit")?;
    let ingest: &TimestampMicrosecondArray = column(batch, "ingest_time")?;
    let partition: &Int32Array = column(batch, "partition")?;
    let offset: &Int64Array = column(batch, "offset")?;
    let processed: &BooleanArray = column(batch, "processed")?;
    let invalid: &StringArray = column(batch, "invalid_reason")?;
    // Version 1 files have neither: the clock is taken as the event time, nothing as held.
    let clock: Option<&TimestampMicrosecondArray> = column(batch, "clock").ok();
    let held: Option<&DictionaryArray<Int32Type>> = column(batch, "held").ok();
    // Version 2 files have no device kinds, and no details.
    let detail: Option<&StringArray> = column(batch, "detail").ok();
    // Version 3 files have no parts of messages.
    let entry: Option<&Int32Array> = column(batch, "entry").ok();
    let (mut patients, mut devices) = (DictIds::new(patient), DictIds::new(device));
    for i in 0..batch.num_rows() {
        if only.is_some_and(|only| dict_str(source, i) != Some(only)) {
            continue;
        }
        let patient = patients
            .at(i)?
            .ok_or_else(|| format!("row {i}: no patient"))?;
        let vital_name = dict_str(vital, i).unwrap_or("");
        let vital: Vital = vital_name
            .parse()
            .map_err(|e: crate::observation::DecodeError| e.to_string())?;
        let bad_level = |name: &str| format!("row {i}: level {name:?} of {vital}");
        let value = match dict_str(level, i) {
            Some(name) if vital == Vital::Consciousness => {
                Value::Acvpu(Acvpu::from_letter(name).ok_or_else(|| bad_level(name))?)
            }
            Some(name) => Value::Code(Code::parse(vital, name).ok_or_else(|| bad_level(name))?),
            None if vital == Vital::DeviceStatus => Value::None,
            None if value.is_null(i) => Value::Number(f64::NAN),
            None => Value::Number(value.value(i)),
        };
        let unit = match dict_str(unit, i) {
            Some(u) => Some(Unit::from_ucum(u).ok_or_else(|| format!("row {i}: unit {u:?}"))?),
            None => None,
        };
        let detail = match detail.filter(|d| !d.is_null(i)) {
            Some(d) => Some(
                Observation::detail_from_json(vital, unit, d.value(i))
                    .map_err(|e| format!("row {i}: detail: {e}"))?,
            ),
            None => None,
        };
        rows.push(Row {
            patient,
            device: devices.at(i)?,
            time: EventTime::from_micros(time.value(i)),
            vital,
            value,
            unit,
            ingest_us: ingest.value(i),
            partition: (!partition.is_null(i)).then(|| partition.value(i)),
            offset: (!offset.is_null(i)).then(|| offset.value(i)),
            entry: entry
                .filter(|e| !e.is_null(i))
                .map(|e| e.value(i).max(0) as u32),
            processed: processed.value(i),
            invalid_reason: (!invalid.is_null(i)).then(|| invalid.value(i).to_owned()),
            clock_us: clock.map_or(time.value(i), |c| c.value(i)),
            held: match held.and_then(|h| dict_str(h, i)) {
                Some(name) => Some(
                    HoldKind::from_name(name).ok_or_else(|| format!("row {i}: held {name:?}"))?,
                ),
                None => None,
            },
            detail,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(patient: &str, t: i64, vital: Vital, value: Value, unit: Option<Unit>) -> Observation {
        Observation::new(
            Identifier::new(patient).unwrap(),
            Identifier::new("mon-1").ok(),
            EventTime::from_micros(t),
            vital,
            value,
            unit,
        )
        .unwrap()
    }

    #[test]
    fn the_replay_pipeline_keeps_settings_and_reads_the_archived_model() {
        let text = "workers = 2\n[source]\nkind = \"kafka\"\ntopic = \"v\"\n[source.properties]\na = \"b\"\n\
                    [windows]\ndurations = [\"4h\"]\n[risk]\nmodel = \"../models/m.json\"\nthreshold = 0.2\n\
                    [registry]\npath = \"home-registry.csv\"\n[[sinks]]\nkind = \"console\"\n";
        let replay = pipeline_for_replay(text);
        let config =
            crate::config::PipelineConfig::parse(&replay, Some(Path::new("/archive"))).unwrap();
        assert_eq!(config.workers, 2);
        assert!(config.sinks.is_empty());
        let risk = config.risk.unwrap();
        assert_eq!(risk.model, Path::new("/archive").join(RISK_MODEL_FILE));
        assert_eq!(risk.threshold, Some(0.2));
        let registry = config.registry.unwrap();
        assert_eq!(registry.path, Path::new("/archive").join(REGISTRY_FILE));
        assert!(matches!(
            config.source,
            crate::config::SourceConfig::Jsonl { .. }
        ));
    }

    #[test]
    fn a_pipeline_with_its_own_sinks_list_replays() {
        for sinks in ["sinks = []\n", "sinks = [\n  { kind = \"console\" },\n]\n"] {
            let text = format!("{sinks}workers = 3\n[windows]\ndurations = [\"4h\"]\n");
            let replay = pipeline_for_replay(&text);
            let config = crate::config::PipelineConfig::parse(&replay, None)
                .unwrap_or_else(|e| panic!("{replay}: {e}"));
            assert!(config.sinks.is_empty(), "{replay}");
            assert_eq!(config.workers, 3);
        }
    }

    #[test]
    fn rows_round_trip_through_parquet_files_partitioned_by_date() {
        let dir = std::env::temp_dir().join(format!("vigil-archive-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut writer =
            ArchiveWriter::create(&dir, "test", None, 0, 1000, Arc::default(), None).unwrap();
        let day = 86_400_000_000;
        let rows = vec![
            Row::observation(
                &obs(
                    "p1",
                    1_767_571_200_000_000,
                    Vital::HeartRate,
                    Value::Number(72.0),
                    Some(Unit::PerMinute),
                ),
                5,
                Some(Position {
                    partition: Some(3),
                    offset: 1,
                    entry: None,
                }),
                true,
                1_767_571_200_000_000,
            ),
            Row::observation(
                &obs(
                    "p2",
                    1_767_571_200_000_000 + day,
                    Vital::Consciousness,
                    Value::Acvpu(Acvpu::V),
                    None,
                ),
                6,
                Some(Position::line(2)),
                true,
                1_767_571_200_000_000,
            ),
            Row::observation(
                &obs(
                    "p1",
                    1_767_571_200_000_001,
                    Vital::Temperature,
                    Value::Number(100.4),
                    Some(Unit::Fahrenheit),
                ),
                7,
                None,
                false,
                1_767_571_200_000_000,
            ),
        ];
        for r in &rows {
            writer.push(r.clone()).unwrap();
        }
        assert_eq!(writer.buffered(), 3);
        writer.flush().unwrap();
        assert_eq!(writer.written(), (2, 3));
        let files = files(&dir).unwrap();
        assert_eq!(files.len(), 2);
        assert!(
            files[0]
                .to_string_lossy()
                .contains("observations/date=2026-01-05/part-")
        );
        assert!(
            files[1]
                .to_string_lossy()
                .contains("observations/date=2026-01-06/part-")
        );
        let mut back: Vec<Row> = files.iter().flat_map(|f| read_file(f).unwrap()).collect();
        back.sort_by_key(|r| (r.time, r.vital));
        let mut expected = rows.clone();
        expected.sort_by_key(|r| (r.time, r.vital));
        assert_eq!(back, expected);
        // No temporary file is left behind.
        for f in fs::read_dir(dir.join(OBSERVATIONS).join("date=2026-01-05")).unwrap() {
            assert!(!f.unwrap().file_name().to_string_lossy().ends_with(".tmp"));
        }
        fs::remove_dir_all(&dir).unwrap();
    }

    /// An encrypted file, its rows and the key.
    fn encrypted_file(dir: &Path) -> (PathBuf, Vec<Row>, ArchiveKey) {
        let key = ArchiveKey::from_bytes([42; key::KEY_BYTES]);
        let rows: Vec<Row> = (0..40)
            .map(|i| {
                let o = obs(
                    &format!("bed-0007-p{}", i % 3),
                    1_767_571_200_000_000 + i * 60_000_000,
                    Vital::HeartRate,
                    Value::Number(60.0 + i as f64),
                    Some(Unit::PerMinute),
                );
                Row::observation(
                    &o,
                    i,
                    Some(Position::line(i as u64)),
                    true,
                    o.time().micros(),
                )
            })
            .collect();
        let path = dir.join("part-0.parquet");
        let file = File::create(&path).unwrap();
        encode(&rows, "test", None, Some(&key), file).unwrap();
        (path, rows, key)
    }

    #[test]
    fn a_file_wholly_before_a_restarts_tail_is_not_read_and_one_in_it_is_read_whole() {
        let dir = std::env::temp_dir().join(format!("vigil-since-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        // Rows at 2026-01-05T00:00 + 0..40 min, encrypted: the statistics open with the key.
        let (path, rows, key) = encrypted_file(&dir);
        let read = |since| read_file_since(&path, None, Some(&key), Some(since)).unwrap();
        let start = 1_767_571_200_000_000;
        assert_eq!(
            read(start + 40 * 60_000_000),
            Vec::new(),
            "every row before the tail"
        );
        assert_eq!(read(start + 39 * 60_000_000), rows, "the last row is in it");
        assert_eq!(read(i64::MIN), rows);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_encrypted_file_reads_back_with_its_key_only() {
        let dir = std::env::temp_dir().join(format!("vigil-archive-enc-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (path, rows, key) = encrypted_file(&dir);
        assert_eq!(read_file_of(&path, None, Some(&key)).unwrap(), rows);
        // Nothing of it is readable as plaintext: not the ids, not the footer's schema.
        let bytes = fs::read(&path).unwrap();
        let contains = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        assert!(!contains(b"bed-0007") && !contains(b"heart_rate") && !contains(b"patient"));
        let err = read_file(&path).unwrap_err().to_string();
        assert!(
            err.contains("encrypted: give its key with --archive-key"),
            "{err}"
        );
        let wrong = ArchiveKey::from_bytes([43; key::KEY_BYTES]);
        let err = read_file_of(&path, None, Some(&wrong))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cannot be decrypted with this key"), "{err}");
        // A plaintext file in an encrypted archive is refused, not read.
        let plain = dir.join("part-1.parquet");
        encode(&rows, "test", None, None, File::create(&plain).unwrap()).unwrap();
        let err = read_file_of(&plain, None, Some(&key))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not encrypted, in an archive read with a key"),
            "{err}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_flipped_byte_of_an_encrypted_file_is_detected() {
        let dir = std::env::temp_dir().join(format!("vigil-archive-flip-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let (path, rows, key) = encrypted_file(&dir);
        let bytes = fs::read(&path).unwrap();
        let flipped = dir.join("flipped.parquet");
        let (mut refused, mut unchanged, mut other) = (0, Vec::new(), Vec::new());
        for at in 0..bytes.len() {
            let mut copy = bytes.clone();
            copy[at] ^= 0x01;
            fs::write(&flipped, &copy).unwrap();
            match read_file_of(&flipped, None, Some(&key)) {
                Err(_) => refused += 1,
                Ok(back) if back == rows => unchanged.push(at),
                Ok(_) => other.push(at),
            }
        }
        assert!(other.is_empty(), "flips read as other data at {other:?}");
        // What is read unchanged are bytes no reader needs: the 4-byte length in front of each
        // page's encrypted body, which the (authenticated) page header already gives, and
        // padding of the plaintext crypto metadata. Everything else fails to authenticate.
        let pages = 2 * schema().fields().len();
        assert!(
            unchanged.len() <= 4 * pages + 4,
            "{} flips unnoticed: {unchanged:?}",
            unchanged.len()
        );
        assert_eq!(refused + unchanged.len(), bytes.len());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn every_device_kind_round_trips_with_its_detail() {
        let dir = std::env::temp_dir().join(format!("vigil-archive-kinds-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let mut writer =
            ArchiveWriter::create(&dir, "test", None, 0, 1000, Arc::default(), None).unwrap();
        let rows: Vec<Row> = [
            r#""vital":"glucose","value":3.1,"unit":"mmol/L","method":"meter""#,
            r#""vital":"insulin","value":0.8,"unit":"U/h","delivery":"basal""#,
            r#""vital":"pump_event","value":"occlusion""#,
            r#""vital":"medication","value":"taken","medication":"metformin","schedule":"pm""#,
            r#""vital":"inhaler","value":"rescue","puffs":2"#,
            r#""vital":"device_status","battery":9,"sensor_expires":"2026-01-06T00:00:00Z","error":"E7""#,
        ]
        .iter()
        .enumerate()
        .map(|(i, rest)| {
            let line = format!(
                r#"{{"patient":"h-1","device":"d","time":"2026-01-05T00:00:0{i}Z",{rest}}}"#
            );
            let obs = Observation::from_json(line.as_bytes()).unwrap();
            Row::observation(&obs, 1, Some(Position::line(i as u64)), true, 0)
        })
        .collect();
        for r in &rows {
            writer.push(r.clone()).unwrap();
        }
        writer.flush().unwrap();
        let mut back: Vec<Row> = files(&dir)
            .unwrap()
            .iter()
            .flat_map(|f| read_file(f).unwrap())
            .collect();
        back.sort_by_key(|r| r.time);
        assert_eq!(back, rows);
        fs::remove_dir_all(&dir).unwrap();
    }
}
