//! The patient registry: which ward a patient is on and which SpO2 scale a clinician prescribed,
//! each from an event time on.
//!
//! CSV with a header `patient,ward,scale,from`: `scale` is 1 or 2, `from` an RFC 3339 time (empty
//! for "from the beginning"). A later row for the same patient changes the prescription from its
//! time on, so a replay applies each change exactly when it happened.
//!
//! ```
//! let rows = vigil::registry::parse("patient,ward,scale,from\np1,ward-7,2,2026-01-05T06:00:00Z\n").unwrap();
//! assert_eq!(rows[0].scale, vigil::news2::Scale::Two);
//! ```

use thiserror::Error;

use crate::news2::Scale;
use crate::observation::{EventTime, Identifier};

/// One registry row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prescription {
    pub patient: Identifier,
    pub ward: Option<String>,
    pub scale: Scale,
    /// From when it applies; `None` from the beginning.
    pub from: Option<EventTime>,
}

/// A registry file that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct RegistryError {
    pub line: u64,
    pub reason: String,
}

/// Parses registry CSV.
pub fn parse(text: &str) -> Result<Vec<Prescription>, RegistryError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let err = |line: u64, reason: String| RegistryError { line, reason };
    let headers = reader.headers().map_err(|e| err(1, e.to_string()))?.clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let patient_col = column("patient").ok_or_else(|| {
        err(
            1,
            "missing column `patient` (expected patient,ward,scale,from)".into(),
        )
    })?;
    let scale_col = column("scale").ok_or_else(|| {
        err(
            1,
            "missing column `scale` (expected patient,ward,scale,from)".into(),
        )
    })?;
    let (ward_col, from_col) = (column("ward"), column("from"));
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| err(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let patient = Identifier::new(cell(Some(patient_col)))
            .map_err(|e| err(line, format!("`patient` {e}")))?;
        let scale = match cell(Some(scale_col)) {
            "1" => Scale::One,
            "2" => Scale::Two,
            other => {
                return Err(err(
                    line,
                    format!("`scale` must be 1 or 2, found {other:?}"),
                ));
            }
        };
        let from = match cell(from_col) {
            "" => None,
            t => Some(EventTime::parse_rfc3339(t).map_err(|e| err(line, e.to_string()))?),
        };
        let ward = Some(cell(ward_col))
            .filter(|w| !w.is_empty())
            .map(str::to_owned);
        rows.push(Prescription {
            patient,
            ward,
            scale,
            from,
        });
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rows_and_reports_bad_ones_with_their_line() {
        let rows =
            parse("patient,ward,scale,from\np1,7A,1,\np1,7A,2,2026-01-05T06:00:00Z\n").unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].from, None);
        assert_eq!(rows[1].scale, Scale::Two);
        assert_eq!(
            parse("patient,scale\np1,3\n").unwrap_err(),
            RegistryError {
                line: 2,
                reason: "`scale` must be 1 or 2, found \"3\"".into()
            }
        );
        assert_eq!(parse("patient,ward\np1,7A\n").unwrap_err().line, 1);
    }
}
