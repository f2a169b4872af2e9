//! The patient registry: what clinicians prescribed for each patient, each from an event time
//! on — the ward they are on, the SpO2 scale NEWS2 uses, and the schedule of each medication.
//!
//! One CSV, one row per change, with a header naming its columns (any order, all but `patient`
//! optional; later issues add columns of their own):
//!
//! | column | meaning |
//! |---|---|
//! | `patient` | the patient's id |
//! | `ward` | the ward they are on |
//! | `from` | RFC 3339: the change applies from this event time on (empty: from the beginning) |
//! | `scale` | `1` or `2`: the SpO2 scale (NEWS2); empty leaves it as it was |
//! | `medication` | a medication's code, as its pill bottle or dose reports name it |
//! | `schedule` | its slots: `am=08:00 pm=20:00` (a slot's name is what a device credits a dose to; a bare `08:00` is named by its time); empty stops the schedule |
//! | `grace` | how long after a slot's time a dose still counts as on time (default `2h`); then the dose is missed |
//! | `utc_offset` | the patient's local time as an offset from UTC (`-07:00`; default `+00:00`): slots are local times of day |
//! | `consent` | `given` or `withdrawn`: whether the patient's data may go to research exports, from `from` on (see [`consents`]); empty leaves it as it was |
//!
//! A row sets `scale`, or a `medication`'s schedule, or `consent`, or several. Consent is not a
//! prescription: clinical monitoring never reads it, [`parse`] leaves it out and [`consents`]
//! reads it alone. A schedule needs `from`: doses
//! are not expected before it. A later row for the same patient (or medication) changes it
//! from its time on, so a replay applies each change exactly when it happened.
//!
//! ```
//! let rows = vigil::registry::parse("patient,ward,scale,from\np1,ward-7,2,2026-01-05T06:00:00Z\n").unwrap();
//! assert_eq!(rows[0].prescribed, vigil::registry::Prescribed::Scale(vigil::news2::Scale::Two));
//! ```

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::component::Dur;
use crate::news2::Scale;
use crate::observation::{EventTime, Identifier};

/// The default grace after a slot's time.
pub const DEFAULT_GRACE_S: u32 = 2 * 3600;

/// One change of the registry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Prescription {
    pub patient: Identifier,
    pub ward: Option<String>,
    /// From when it applies; `None` from the beginning.
    pub from: Option<EventTime>,
    pub prescribed: Prescribed,
}

/// What a registry row prescribes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Prescribed {
    /// The SpO2 scale NEWS2 scores with.
    Scale(Scale),
    /// A medication's schedule (boxed: the scale is the common case, and every event in flight
    /// is as large as the largest kind).
    Schedule(Box<Schedule>),
}

/// When a medication is due each day.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Schedule {
    pub medication: Identifier,
    /// The day's slots, in time order; none when the schedule is stopped.
    pub slots: Vec<Slot>,
    /// A dose up to this long after its slot is on time (s).
    pub grace_s: u32,
    /// The patient's local time, seconds east of UTC.
    pub utc_offset_s: i32,
}

/// One dose a day is due at.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Slot {
    pub name: Identifier,
    /// Local minutes after midnight.
    pub minute: u16,
}

/// Each patient's ward, as the registry's latest row naming one gives it.
pub fn wards(rows: &[Prescription]) -> std::collections::HashMap<String, String> {
    let mut latest: std::collections::HashMap<String, (Option<EventTime>, String)> =
        std::collections::HashMap::new();
    for row in rows {
        let Some(ward) = &row.ward else { continue };
        let entry = latest
            .entry(row.patient.as_str().to_owned())
            .or_insert((row.from, ward.clone()));
        if row.from >= entry.0 {
            *entry = (row.from, ward.clone());
        }
    }
    latest.into_iter().map(|(p, (_, w))| (p, w)).collect()
}

/// A registry file that cannot be read.
#[derive(Debug, Error, PartialEq, Eq)]
#[error("line {line}: {reason}")]
pub struct RegistryError {
    pub line: u64,
    pub reason: String,
}

/// The columns a registry has, by name.
struct Columns {
    patient: usize,
    ward: Option<usize>,
    from: Option<usize>,
    scale: Option<usize>,
    medication: Option<usize>,
    schedule: Option<usize>,
    grace: Option<usize>,
    utc_offset: Option<usize>,
    consent: Option<usize>,
}

const EXPECTED: &str =
    "expected patient,ward,scale,from and optionally medication,schedule,grace,utc_offset,consent";

/// Parses registry CSV.
/// A reader of registry CSV, and its header.
fn open(text: &str) -> Result<(csv::Reader<&[u8]>, csv::StringRecord), RegistryError> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| error(1, e.to_string()))?
        .clone();
    Ok((reader, headers))
}

pub fn parse(text: &str) -> Result<Vec<Prescription>, RegistryError> {
    let (mut reader, headers) = open(text)?;
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let columns = Columns {
        patient: column("patient")
            .ok_or_else(|| error(1, format!("missing column `patient` ({EXPECTED})")))?,
        ward: column("ward"),
        from: column("from"),
        scale: column("scale"),
        medication: column("medication"),
        schedule: column("schedule"),
        grace: column("grace"),
        utc_offset: column("utc_offset"),
        consent: column("consent"),
    };
    if columns.scale.is_none() && columns.medication.is_none() && columns.consent.is_none() {
        return Err(error(
            1,
            format!("missing column `scale`, `medication` or `consent` ({EXPECTED})"),
        ));
    }
    let mut rows = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| error(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        read_row(&columns, &record, line, &mut rows)?;
    }
    Ok(rows)
}

fn error(line: u64, reason: String) -> RegistryError {
    RegistryError { line, reason }
}

/// The prescriptions of one row (a scale, a schedule, or both).
fn read_row(
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
    rows: &mut Vec<Prescription>,
) -> Result<(), RegistryError> {
    let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
    let patient = Identifier::new(cell(Some(columns.patient)))
        .map_err(|e| error(line, format!("`patient` {e}")))?;
    let from = match cell(columns.from) {
        "" => None,
        t => Some(EventTime::parse_rfc3339(t).map_err(|e| error(line, format!("`from` {e}")))?),
    };
    let ward = Some(cell(columns.ward))
        .filter(|w| !w.is_empty())
        .map(str::to_owned);
    let row = |prescribed| Prescription {
        patient: patient.clone(),
        ward: ward.clone(),
        from,
        prescribed,
    };
    let before = rows.len();
    match cell(columns.scale) {
        "" => {}
        "1" => rows.push(row(Prescribed::Scale(Scale::One))),
        "2" => rows.push(row(Prescribed::Scale(Scale::Two))),
        other => {
            return Err(error(
                line,
                format!("`scale` must be 1 or 2, found {other:?}"),
            ));
        }
    }
    if let Some(schedule) = read_schedule(columns, record, line)? {
        if from.is_none() {
            return Err(error(
                line,
                format!(
                    "the schedule of `{}` needs `from`: doses are not expected before it",
                    schedule.medication
                ),
            ));
        }
        rows.push(row(Prescribed::Schedule(Box::new(schedule))));
    }
    let consent = consent_of(cell(columns.consent), line)?;
    if rows.len() == before && consent.is_none() {
        return Err(error(
            line,
            "a row sets `scale`, or a `medication` and its `schedule`, or `consent`".into(),
        ));
    }
    Ok(())
}

/// Whether a patient's data may go to research exports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Consent {
    Given,
    Withdrawn,
}

/// A change of a patient's consent, from an event time on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentChange {
    pub patient: Identifier,
    /// From when it applies; `None` from the beginning.
    pub from: Option<EventTime>,
    pub consent: Consent,
}

fn consent_of(cell: &str, line: u64) -> Result<Option<Consent>, RegistryError> {
    match cell.to_ascii_lowercase().as_str() {
        "" => Ok(None),
        "given" | "yes" => Ok(Some(Consent::Given)),
        "withdrawn" | "no" => Ok(Some(Consent::Withdrawn)),
        other => Err(error(
            line,
            format!("`consent` must be given or withdrawn, found {other:?}"),
        )),
    }
}

/// The consent changes of registry CSV, in file order. A patient with none has consented (the
/// registry records withdrawals); a withdrawal applies from its `from` on, and a later `given`
/// gives it back from its own.
pub fn consents(text: &str) -> Result<Vec<ConsentChange>, RegistryError> {
    parse(text)?;
    let (mut reader, headers) = open(text)?;
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(patient), from, Some(consent)) =
        (column("patient"), column("from"), column("consent"))
    else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for record in reader.records() {
        let record =
            record.map_err(|e| error(e.position().map_or(0, |p| p.line()), e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
        let Some(value) = consent_of(cell(Some(consent)), line)? else {
            continue;
        };
        out.push(ConsentChange {
            patient: Identifier::new(cell(Some(patient)))
                .map_err(|e| error(line, format!("`patient` {e}")))?,
            from: match cell(from) {
                "" => None,
                t => Some(
                    EventTime::parse_rfc3339(t).map_err(|e| error(line, format!("`from` {e}")))?,
                ),
            },
            consent: value,
        });
    }
    Ok(out)
}

/// The row's medication schedule, if it names a medication.
fn read_schedule(
    columns: &Columns,
    record: &csv::StringRecord,
    line: u64,
) -> Result<Option<Schedule>, RegistryError> {
    let cell = |c: Option<usize>| c.and_then(|c| record.get(c)).unwrap_or("");
    let medication = match cell(columns.medication) {
        "" => return Ok(None),
        m => Identifier::new(m).map_err(|e| error(line, format!("`medication` {e}")))?,
    };
    let slots = slots(cell(columns.schedule)).map_err(|e| error(line, e))?;
    let grace_s = match cell(columns.grace) {
        "" => DEFAULT_GRACE_S,
        g => {
            let d = Dur::parse(g).map_err(|e| error(line, format!("`grace` {e}")))?;
            let s = d.0.as_secs();
            if s == 0 || s > 24 * 3600 {
                return Err(error(
                    line,
                    format!("`grace` {d} must be longer than 0 and at most 1d"),
                ));
            }
            s as u32
        }
    };
    let utc_offset_s = match cell(columns.utc_offset) {
        "" => 0,
        o => utc_offset(o).map_err(|e| error(line, e))?,
    };
    Ok(Some(Schedule {
        medication,
        slots,
        grace_s,
        utc_offset_s,
    }))
}

/// `am=08:00 pm=20:00` (or `08:00 20:00`), in time order.
fn slots(text: &str) -> Result<Vec<Slot>, String> {
    let mut slots = Vec::new();
    for word in text.split([' ', ';']).filter(|w| !w.is_empty()) {
        let (name, time) = word.split_once('=').unwrap_or((word, word));
        let minute = time_of_day(time).ok_or_else(|| {
            format!("`schedule` slot {word:?}: write name=HH:MM (am=08:00) or HH:MM")
        })?;
        let name = Identifier::new(name).map_err(|e| format!("`schedule` slot name {e}"))?;
        slots.push(Slot { name, minute });
    }
    slots.sort_by_key(|s| s.minute);
    if let Some(w) = slots
        .windows(2)
        .find(|w| w[0].minute == w[1].minute || w[0].name == w[1].name)
    {
        return Err(format!(
            "`schedule` has two slots at {} or named {}: each slot is its own time and name",
            hhmm(w[1].minute),
            w[1].name
        ));
    }
    Ok(slots)
}

fn time_of_day(text: &str) -> Option<u16> {
    let (h, m) = text.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60 && text.len() == 5).then_some(h * 60 + m)
}

/// `HH:MM` of a minute of the day.
pub fn hhmm(minute: u16) -> String {
    format!("{:02}:{:02}", minute / 60, minute % 60)
}

fn utc_offset(text: &str) -> Result<i32, String> {
    let bad = || format!("`utc_offset` {text:?}: write +HH:MM or -HH:MM (like -07:00)");
    let sign = match text.as_bytes().first() {
        Some(b'+') => 1,
        Some(b'-') => -1,
        _ => return Err(bad()),
    };
    let minute = time_of_day(&text[1..]).ok_or_else(bad)?;
    if minute > 14 * 60 {
        return Err(bad());
    }
    Ok(sign * i32::from(minute) * 60)
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
        assert_eq!(rows[1].prescribed, Prescribed::Scale(Scale::Two));
        assert_eq!(
            parse("patient,scale\np1,3\n").unwrap_err(),
            RegistryError {
                line: 2,
                reason: "`scale` must be 1 or 2, found \"3\"".into()
            }
        );
        assert_eq!(parse("patient,ward\np1,7A\n").unwrap_err().line, 1);
    }

    #[test]
    fn consent_is_read_apart_from_what_is_prescribed() {
        let text = "patient,ward,scale,from,consent\n\
                    p1,4A,1,,\n\
                    p1,,,2026-01-05T06:00:00Z,withdrawn\n\
                    p2,4B,2,,Given\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 2, "a consent-only row prescribes nothing");
        let consents = consents(text).unwrap();
        assert_eq!(consents.len(), 2);
        assert_eq!(consents[0].patient.as_str(), "p1");
        assert_eq!(consents[0].consent, Consent::Withdrawn);
        assert_eq!(
            consents[0].from,
            Some(EventTime::parse_rfc3339("2026-01-05T06:00:00Z").unwrap())
        );
        assert_eq!(consents[1].consent, Consent::Given);
        let err = parse("patient,consent\np1,maybe\n").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.reason.contains("given or withdrawn"), "{err}");
        assert!(super::consents("patient,scale\np1,1\n").unwrap().is_empty());
    }

    #[test]
    fn reads_a_schedule_beside_a_scale() {
        let text = "patient,scale,from,medication,schedule,grace,utc_offset\n\
                    h-7,1,2026-03-01T00:00:00Z,metformin,pm=20:00 am=08:00,90m,-07:00\n\
                    h-8,,2026-03-01T00:00:00Z,salbutamol,12:30,,\n";
        let rows = parse(text).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].prescribed, Prescribed::Scale(Scale::One));
        let Prescribed::Schedule(s) = &rows[1].prescribed else {
            panic!("{:?}", rows[1]);
        };
        assert_eq!(s.medication.as_str(), "metformin");
        assert_eq!(
            s.slots
                .iter()
                .map(|s| (s.name.as_str(), s.minute))
                .collect::<Vec<_>>(),
            [("am", 480), ("pm", 1200)]
        );
        assert_eq!((s.grace_s, s.utc_offset_s), (5400, -7 * 3600));
        let Prescribed::Schedule(s) = &rows[2].prescribed else {
            panic!("{:?}", rows[2]);
        };
        assert_eq!(
            (s.slots[0].name.as_str(), s.grace_s),
            ("12:30", DEFAULT_GRACE_S)
        );
    }

    #[test]
    fn refuses_schedules_it_cannot_follow() {
        let head = "patient,from,medication,schedule,grace,utc_offset\n";
        for (row, says) in [
            ("h,,m,08:00,,", "needs `from`"),
            ("h,2026-03-01T00:00:00Z,m,8am,,", "write name=HH:MM"),
            (
                "h,2026-03-01T00:00:00Z,m,a=08:00 b=08:00,,",
                "two slots at 08:00",
            ),
            ("h,2026-03-01T00:00:00Z,m,08:00,0s,", "longer than 0"),
            ("h,2026-03-01T00:00:00Z,m,08:00,2d,", "at most 1d"),
            ("h,2026-03-01T00:00:00Z,m,08:00,,7", "+HH:MM"),
            ("h,2026-03-01T00:00:00Z,,,,", "a row sets `scale`"),
        ] {
            let e = parse(&format!("{head}{row}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{row}");
            assert!(e.reason.contains(says), "{row}: {}", e.reason);
        }
    }
}
