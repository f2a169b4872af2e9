//! Research exports: an archive's observations as a de-identified Parquet dataset.
//!
//! `OUT/part-NNNNN.parquet`, one row per observation that was scored (in time, possible, not
//! held), sorted by pseudonym and time, with the columns:
//!
//! | column | type | meaning |
//! | --- | --- | --- |
//! | `pseudonym` | string | `r-` and 24 hex digits: a keyed HMAC-SHA256 of the patient id ([`crate::pseudonym`]) |
//! | `time` | timestamp[µs, UTC] | the event time, shifted by the patient's own whole number of days (100–200 years forward) |
//! | `vital` | string | wire name (`heart_rate`, …) |
//! | `value` | float64, null | the number as sent |
//! | `level` | string, null | the ACVPU letter for consciousness; the code of a device event |
//! | `unit` | string, null | UCUM unit as sent |
//!
//! and `OUT/_export.json`, what was exported and what was left out. Left out of every row: the
//! patient id, the device id, the source and its offsets, the arrival time, a device kind's other
//! fields (free text a device may send), and every observation of a patient whose consent was
//! withdrawn at its time ([`consent`]).
//!
//! Invariants: nothing in `OUT` holds a patient id, a device id or a true date; the same key
//! gives the same pseudonyms and shifts, so exports join; `OUT` is written whole or the export
//! fails (files under temporary names, then renamed).

pub mod consent;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, Float64Builder, RecordBatch, StringDictionaryBuilder, TimestampMicrosecondBuilder,
};
use arrow::datatypes::{Field, Int32Type, Schema, SchemaRef};
use serde::Serialize;
use thiserror::Error;

use crate::archive::{self, ArchiveError, ArchiveKey, Row};
use crate::observation::{Identifier, Unit, Value, Vital};
use crate::pseudonym::Pseudonyms;
use crate::registry::ConsentChange;

/// Rows per file of an export.
const ROWS_PER_FILE: usize = 1_000_000;

/// The manifest beside an export's files.
pub const MANIFEST: &str = "_export.json";

/// What an export wrote and left out.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    /// Rows written.
    pub rows: u64,
    /// Patients (pseudonyms) in them.
    pub patients: u64,
    pub files: u64,
    /// Scored observations left out: their patient's consent was withdrawn at their time.
    pub withdrawn: u64,
    /// Patients with rows left out for consent.
    pub patients_withdrawn: u64,
    /// Records of the archive that were not scored (late, held, impossible): not exported.
    pub not_scored: u64,
}

/// An export that cannot be made.
#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Archive(#[from] ArchiveError),
    #[error("{0} is not empty: an export is written into a new directory")]
    NotEmpty(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The export's Arrow schema.
pub fn schema() -> SchemaRef {
    let dict = archive::dictionary;
    Arc::new(Schema::new(vec![
        Field::new("pseudonym", dict(), false),
        Field::new("time", archive::timestamp(), false),
        Field::new("vital", dict(), false),
        Field::new("value", arrow::datatypes::DataType::Float64, true),
        Field::new("level", dict(), true),
        Field::new("unit", dict(), true),
    ]))
}

/// One exported row, before it is written.
struct Exported {
    pseudonym: String,
    time_us: i64,
    vital: Vital,
    value: Value,
    unit: Option<Unit>,
}

/// Exports the archive under `dir` (decrypted with `key`) to `out`, a new or empty directory.
pub fn research(
    dir: &Path,
    key: Option<&ArchiveKey>,
    out: &Path,
    pseudonyms: &Pseudonyms,
    consents: &[ConsentChange],
    mut progress: impl FnMut(usize, usize),
) -> Result<ExportSummary, ExportError> {
    refuse_unless_empty(out)?;
    let files = archive::files(dir)?;
    let mut rows: Vec<Row> = Vec::new();
    let mut summary = ExportSummary::default();
    for (done, file) in files.iter().enumerate() {
        for row in archive::read_file_of(file, None, key)? {
            match row.processed && row.invalid_reason.is_none() {
                true => rows.push(row),
                false => summary.not_scored += 1,
            }
        }
        progress(done + 1, files.len());
    }
    let at: Vec<_> = rows
        .iter()
        .map(|r| (r.patient.clone(), r.time.micros()))
        .collect();
    let admitted = consent::admitted(at, consents);
    let mut withdrawn = std::collections::HashSet::new();
    // Each patient's pseudonym and shift, made once: two HMACs per row would be most of the
    // export's time. Its size is the number of patients exported.
    let mut exported_patients: std::collections::HashMap<Identifier, (String, i64)> =
        std::collections::HashMap::new();
    let mut exported = Vec::with_capacity(rows.len());
    for (row, admit) in rows.into_iter().zip(admitted) {
        if !admit {
            summary.withdrawn += 1;
            withdrawn.insert(row.patient);
            continue;
        }
        let (pseudonym, shift_us) =
            exported_patients
                .entry(row.patient)
                .or_insert_with_key(|patient| {
                    let id = patient.as_str();
                    (pseudonyms.pseudonym(id), pseudonyms.shift_us(id))
                });
        exported.push(Exported {
            pseudonym: pseudonym.clone(),
            time_us: row.time.micros().saturating_add(*shift_us),
            vital: row.vital,
            value: row.value,
            unit: row.unit,
        });
    }
    summary.patients = exported_patients.len() as u64;
    summary.patients_withdrawn = withdrawn.len() as u64;
    exported.sort_by(|a, b| {
        (&a.pseudonym, a.time_us, a.vital.wire_name()).cmp(&(
            &b.pseudonym,
            b.time_us,
            b.vital.wire_name(),
        ))
    });
    write(out, &exported, &mut summary)?;
    Ok(summary)
}

fn refuse_unless_empty(out: &Path) -> Result<(), ExportError> {
    match std::fs::read_dir(out) {
        Ok(mut entries) => match entries.next() {
            Some(_) => Err(ExportError::NotEmpty(out.to_owned())),
            None => Ok(()),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(ExportError::Io {
            path: out.to_owned(),
            source,
        }),
    }
}

/// Writes the rows in files of [`ROWS_PER_FILE`], then the manifest.
fn write(out: &Path, rows: &[Exported], summary: &mut ExportSummary) -> Result<(), ExportError> {
    for (n, chunk) in rows.chunks(ROWS_PER_FILE).enumerate() {
        let name = format!("part-{n:05}.parquet");
        archive::write_whole(out, &name, |file, tmp| {
            let batch = to_batch(chunk).map_err(|e| archive::format_err(tmp, e))?;
            archive::write_parquet(&batch, None, file).map_err(|e| archive::format_err(tmp, e))
        })?;
        summary.files += 1;
    }
    summary.rows = rows.len() as u64;
    let manifest = serde_json::json!({
        "format": "vigil research export 1",
        "columns": ["pseudonym", "time", "vital", "value", "level", "unit"],
        "time": "event time shifted per patient by a whole number of days, 100 to 200 years forward",
        "summary": summary,
    });
    archive::write_whole(out, MANIFEST, |mut file, tmp| {
        use std::io::Write;
        writeln!(file, "{manifest:#}").map_err(archive::io(tmp))?;
        Ok(file)
    })?;
    Ok(())
}

fn to_batch(rows: &[Exported]) -> Result<RecordBatch, arrow::error::ArrowError> {
    let mut pseudonym = StringDictionaryBuilder::<Int32Type>::new();
    let mut time = TimestampMicrosecondBuilder::with_capacity(rows.len()).with_timezone("UTC");
    let mut vital = StringDictionaryBuilder::<Int32Type>::new();
    let mut value = Float64Builder::with_capacity(rows.len());
    let mut level = StringDictionaryBuilder::<Int32Type>::new();
    let mut unit = StringDictionaryBuilder::<Int32Type>::new();
    for r in rows {
        pseudonym.append_value(&r.pseudonym);
        time.append_value(r.time_us);
        vital.append_value(r.vital.wire_name());
        match r.value {
            Value::Number(n) if n.is_finite() => value.append_value(n),
            _ => value.append_null(),
        }
        level.append_option(match r.value {
            Value::Acvpu(a) => Some(a.letter()),
            Value::Code(c) => Some(c.wire_name()),
            Value::Number(_) | Value::None => None,
        });
        unit.append_option(r.unit.map(Unit::ucum));
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(pseudonym.finish()),
        Arc::new(time.finish()),
        Arc::new(vital.finish()),
        Arc::new(value.finish()),
        Arc::new(level.finish()),
        Arc::new(unit.finish()),
    ];
    RecordBatch::try_new(schema(), columns)
}
