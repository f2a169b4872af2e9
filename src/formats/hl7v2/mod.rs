//! HL7 v2 in: ORU^R01 messages (versions 2.3 to 2.6) as IHE PCD-01 "Communicate PCD Data" sends
//! them from device gateways.
//!
//! What is read:
//!
//! | Vigil | HL7 v2 |
//! | --- | --- |
//! | patient | PID-3, the first component of its first repetition; each OBX belongs to the PID before it |
//! | vital | OBX-3 (MDC or LOINC, by its coding-system component; the alternate code in components 4–6 too), through the mapping table |
//! | value | OBX-5 by OBX-2: `NM`, `SN` (`=` or no comparator), or a coded ACVPU answer (`CWE`, `CE`, `ST`) |
//! | unit | OBX-6 (MDC or UCUM) |
//! | time | OBX-14, else OBR-7, with its UTC offset; without one, MSH-7's offset (HL7: the sender's zone) |
//! | device | OBX-18, the first component; else the OBX-18 of the containing MDS/VMD/channel row (OBX-4 `1.2.0.0` contains `1.2.1.1`) |
//!
//! OBX-11 `F`, `C`, `R`, `P`, `S`, `U`, `A` (or empty) are scored; `D` and `W` (deleted, wrong)
//! and `X` (the result cannot be obtained) are reported and not scored, as FHIR's
//! `entered-in-error` and `cancelled` are. An OBX with neither value nor a code Vigil reads is a
//! device-containment row (PCD-01's MDS, VMD and channel rows), context and not a problem; every
//! other OBX is an observation or a [`Problem`] at `segment N (OBX-F)`.
//!
//! A message may come in MLLP framing (`0x0B … 0x1C 0x0D`), which is removed first.

use std::borrow::Cow;
use std::collections::HashMap;

use chrono::NaiveDate;

use super::codes::{self, Read, System};
use super::{Decoded, MAX_HL7_BYTES, Part, Problem};
use crate::observation::{
    Acvpu, Detail, EventTime, Identifier, Interner, Method, Observation, Subject, Unit, Value,
    Vital, unit_list,
};

pub mod encode;
pub mod parse;

use parse::{Delimiters, Segment, SyntaxError, place};

/// MLLP's start block, end block and the carriage return after it.
pub const MLLP_START: u8 = 0x0B;
pub const MLLP_END: u8 = 0x1C;

/// `bytes` without MLLP framing (when it has it).
pub fn unframe(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(&[MLLP_START]).unwrap_or(bytes);
    match bytes.iter().rposition(|&b| b == MLLP_END) {
        Some(end) => &bytes[..end],
        None => bytes,
    }
}

/// Decodes one message into `out`.
pub fn decode(bytes: &[u8], ids: &mut Interner, out: &mut Vec<Decoded>) {
    let bytes = unframe(bytes);
    if bytes.len() > MAX_HL7_BYTES {
        return out.push(Err(Problem::at(
            "",
            format!(
                "message is {} bytes, over the limit of {MAX_HL7_BYTES} bytes",
                bytes.len()
            ),
        )));
    }
    let text = match text_of(bytes) {
        Ok(t) => t,
        Err(reason) => return out.push(Err(Problem::at("", reason))),
    };
    match parse::parse(&text) {
        Ok(message) => oru(&message, ids, out),
        Err(e) => out.push(Err(syntax(e))),
    }
}

fn syntax(e: SyntaxError) -> Problem {
    Problem::at(e.at, e.reason)
}

/// The message as text: UTF-8, or ISO 8859-1 when MSH-18 says so.
fn text_of(bytes: &[u8]) -> Result<Cow<'_, str>, String> {
    match std::str::from_utf8(bytes) {
        Ok(t) => Ok(Cow::Borrowed(t)),
        Err(e) => {
            let header = bytes
                .split(|&b| b == b'\r' || b == b'\n')
                .next()
                .unwrap_or(&[]);
            let latin1 = header.windows(6).any(|w| w == b"8859/1");
            match latin1 {
                true => Ok(Cow::Owned(bytes.iter().map(|&b| b as char).collect())),
                false => Err(format!(
                    "message is not UTF-8 (invalid byte at offset {}) and MSH-18 declares no 8859/1",
                    e.valid_up_to()
                )),
            }
        }
    }
}

/// What the segments before an OBX set for it.
#[derive(Default)]
struct Scope {
    patient: Option<Result<Identifier, Problem>>,
    /// OBR-7.
    time: Option<Result<EventTime, Problem>>,
    /// OBX-4 of containment rows → their OBX-18.
    equipment: HashMap<String, String>,
}

fn oru(m: &parse::Message, ids: &mut Interner, out: &mut Vec<Decoded>) {
    let d = &m.delimiters;
    let Some(msh) = m.segments.first() else {
        return out.push(Err(Problem::at("", "empty message")));
    };
    if let Err(e) = check_header(msh, d) {
        return out.push(Err(syntax(e)));
    }
    let zone = msh
        .component(d, 7, 0, 1)
        .ok()
        .and_then(|t| split_offset(&t).and_then(|(_, offset)| offset));
    let mut scope = Scope::default();
    for seg in &m.segments[1..] {
        match seg.name {
            "PID" => scope.patient = Some(patient_of(seg, d, ids)),
            "OBR" => {
                scope.time = match seg.raw(7) {
                    "" => None,
                    _ => Some(time_of(seg, d, 7, zone)),
                };
                scope.equipment.clear();
            }
            "OBX" => {
                if let Some(decoded) = obx(seg, d, &mut scope, zone, ids) {
                    out.push(decoded);
                }
            }
            _ => {}
        }
    }
}

/// MSH-9 must be ORU^R01 and MSH-12 a version from 2.3 to 2.6.
fn check_header(msh: &Segment, d: &Delimiters) -> Result<(), SyntaxError> {
    let kind = msh.component(d, 9, 0, 1)?;
    let trigger = msh.component(d, 9, 0, 2)?;
    if (kind.as_ref(), trigger.as_ref()) != ("ORU", "R01") {
        return Err(SyntaxError::new(
            place(msh, 9),
            format!("message type {kind}^{trigger} is not read (ORU^R01 is)"),
        ));
    }
    let version = msh.component(d, 12, 0, 1)?;
    if !["2.3", "2.4", "2.5", "2.6"]
        .iter()
        .any(|v| version.starts_with(v))
    {
        return Err(SyntaxError::new(
            place(msh, 12),
            format!("version {version:?} is not read (2.3 to 2.6)"),
        ));
    }
    Ok(())
}

fn patient_of(pid: &Segment, d: &Delimiters, ids: &mut Interner) -> Result<Identifier, Problem> {
    let at = || place(pid, 3);
    let id = pid.component(d, 3, 0, 1).map_err(syntax)?;
    if id.is_empty() {
        return Err(Problem::at(at(), "missing: the patient's identifier"));
    }
    ids.get(&id)
        .map_err(|e| Problem::at(at(), format!("patient id {e}")))
}

/// The observation of an OBX, a problem, or nothing for a containment row.
fn obx(
    seg: &Segment,
    d: &Delimiters,
    scope: &mut Scope,
    zone: Option<i32>,
    ids: &mut Interner,
) -> Option<Decoded> {
    let entry = Some(seg.number as u32);
    let problem = |field: usize, reason: String| Problem {
        path: place(seg, field),
        reason,
        subject: None,
        entry,
    };
    let sub_id = seg.component(d, 4, 0, 1).unwrap_or_default().into_owned();
    let equipment = seg.component(d, 18, 0, 1).unwrap_or_default().into_owned();
    let has_value = !seg.raw(5).is_empty();
    let read = concept_of(seg, d);
    if !has_value && !equipment.is_empty() {
        scope
            .equipment
            .insert(containment_key(&sub_id), equipment.clone());
    }
    let (vital, method) = match read {
        Ok(Read::Vital(vital, method)) => (vital, method),
        // A row with no value and no vital is a device's containment row (or a panel's head).
        _ if !has_value => return None,
        Ok(Read::Panel) => {
            return Some(Err(problem(
                5,
                "a panel's values are in its own OBX rows".into(),
            )));
        }
        Err(reason) => return Some(Err(problem(3, reason))),
    };
    let decoded = measurement(seg, d, scope, zone, ids, vital, method, equipment, &sub_id);
    Some(match decoded {
        Ok(part) => Ok(Part { entry, ..part }),
        Err(p) => Err(Problem { entry, ..p }),
    })
}

/// The observation of an OBX whose code is a vital.
#[allow(clippy::too_many_arguments)]
fn measurement(
    seg: &Segment,
    d: &Delimiters,
    scope: &Scope,
    zone: Option<i32>,
    ids: &mut Interner,
    vital: Vital,
    method: Option<Method>,
    equipment: String,
    sub_id: &str,
) -> Decoded {
    let at = |field: usize| place(seg, field);
    status(seg, d)?;
    let patient = match &scope.patient {
        Some(p) => p.clone()?,
        None => {
            return Err(Problem::at(
                at(3),
                "no PID segment before it names the patient",
            ));
        }
    };
    let time = match seg.raw(14) {
        "" => match &scope.time {
            Some(t) => t.clone()?,
            None => {
                return Err(Problem::at(
                    at(14),
                    "missing, and no OBR-7 before it: an observation needs its time",
                ));
            }
        },
        _ => time_of(seg, d, 14, zone)?,
    };
    let device = match equipment.is_empty() {
        false => Some(equipment),
        true => contained_in(sub_id, &scope.equipment),
    };
    let device = device
        .map(|id| {
            ids.get(&id)
                .map_err(|e| Problem::at(at(18), format!("device id {e}")))
        })
        .transpose()?;
    let (value, unit) = value_of(seg, d, vital)?;
    let detail = (vital == Vital::Glucose).then(|| Detail::Glucose {
        method: method.unwrap_or(Method::Cgm),
    });
    let subject = Subject {
        patient: patient.clone(),
        time,
        vital,
    };
    let obs = Observation::with_detail(patient, device, time, vital, value, unit, detail).map_err(
        |e| Problem {
            path: at(5),
            reason: e.to_string(),
            subject: Some(subject),
            entry: None,
        },
    )?;
    Ok(Part { obs, entry: None })
}

/// The equipment of the nearest containing row: `1.2.1.1` is in `1.2.1`, `1.2` and `1`
/// (written `1.2.1.0`, `1.2.0.0`, `1.0.0.0` or shorter: trailing zeros name the same row).
fn contained_in(sub_id: &str, equipment: &HashMap<String, String>) -> Option<String> {
    let parts: Vec<&str> = sub_id.split('.').collect();
    (1..parts.len())
        .rev()
        .find_map(|keep| equipment.get(&containment_key(&parts[..keep].join("."))))
        .cloned()
}

/// A containment sub-id without its trailing zeros.
fn containment_key(sub_id: &str) -> String {
    let mut s = sub_id;
    while let Some(rest) = s.strip_suffix(".0") {
        s = rest;
    }
    s.to_owned()
}

/// OBX-11: whether the result is one to score.
fn status(seg: &Segment, d: &Delimiters) -> Result<(), Problem> {
    let s = seg.component(d, 11, 0, 1).map_err(syntax)?;
    let why = match s.as_ref() {
        "" | "F" | "C" | "R" | "P" | "S" | "U" | "A" => return Ok(()),
        "D" => "deleted",
        "W" => "wrong (entered in error)",
        "X" => "the result cannot be obtained",
        "I" | "O" => "no result yet",
        "N" => "not asked",
        _ => "not a result status of HL7 table 0085",
    };
    Err(Problem::at(
        place(seg, 11),
        format!("status {s}: {why}, not scored"),
    ))
}

/// OBX-3's code (or its alternate, components 4 to 6) through the table.
fn concept_of(seg: &Segment, d: &Delimiters) -> Result<Read, String> {
    let table = codes::table();
    let mut seen = Vec::new();
    let mut unread = None;
    for first in [1, 4] {
        let code = seg.component(d, 3, 0, first).map_err(|e| e.reason)?;
        let name = seg.component(d, 3, 0, first + 1).map_err(|e| e.reason)?;
        let system = seg.component(d, 3, 0, first + 2).map_err(|e| e.reason)?;
        if code.is_empty() {
            continue;
        }
        let system = match System::from_hl7(&system) {
            Some(s) => s,
            None if system.is_empty() && code.bytes().all(|b| b.is_ascii_digit()) => System::Mdc,
            None => System::Loinc,
        };
        match table.concept(system, &code).map(|f| f.concept.read()) {
            Some(Ok(read)) => return Ok(read),
            Some(Err(why)) => {
                unread.get_or_insert(format!("{} {code} ({name}): {why}", system.label()));
            }
            None => seen.push(
                format!("{} {code} {name}", system.label())
                    .trim_end()
                    .to_owned(),
            ),
        }
    }
    Err(unread.unwrap_or_else(|| match seen.is_empty() {
        true => "missing: the observation's code".to_owned(),
        false => format!("no code Vigil reads ({})", seen.join(", ")),
    }))
}

/// OBX-5 by OBX-2, with OBX-6.
fn value_of(seg: &Segment, d: &Delimiters, vital: Vital) -> Result<(Value, Option<Unit>), Problem> {
    let at = |f: usize| place(seg, f);
    let kind = seg.component(d, 2, 0, 1).map_err(syntax)?;
    if seg.raw(5).is_empty() {
        return Err(Problem::at(at(5), "missing: no value to score"));
    }
    if seg.repetitions(d, 5) > 1 {
        return Err(Problem::at(
            at(5),
            "repeats: one value is scored, not a list",
        ));
    }
    if vital == Vital::Consciousness {
        return level_of(seg, d).map(|l| (Value::Acvpu(l), None));
    }
    let text = match kind.as_ref() {
        "NM" => seg.component(d, 5, 0, 1).map_err(syntax)?,
        "SN" => {
            let comparator = seg.component(d, 5, 0, 1).map_err(syntax)?;
            let separator = seg.component(d, 5, 0, 3).map_err(syntax)?;
            if !matches!(comparator.as_ref(), "" | "=") || !separator.is_empty() {
                return Err(Problem::at(
                    at(5),
                    format!("{:?} is a bound or a range, not a measurement", seg.raw(5)),
                ));
            }
            seg.component(d, 5, 0, 2).map_err(syntax)?
        }
        other => {
            return Err(Problem::at(
                at(2),
                format!(
                    "value type {other:?}: {} needs NM or SN",
                    vital.human_name()
                ),
            ));
        }
    };
    let number = number(&text)
        .ok_or_else(|| Problem::at(at(5), format!("{:?} is not a number", short(&text))))?;
    Ok((Value::Number(number), Some(unit_of(seg, d, vital)?)))
}

/// An HL7 NM: an optional sign, digits and at most one decimal point (no exponent, no `inf`).
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    let ok = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.bytes().any(|b| b.is_ascii_digit());
    ok.then(|| s.parse().ok()).flatten()
}

fn unit_of(seg: &Segment, d: &Delimiters, vital: Vital) -> Result<Unit, Problem> {
    let at = place(seg, 6);
    let code = seg.component(d, 6, 0, 1).map_err(syntax)?;
    let system = seg.component(d, 6, 0, 3).map_err(syntax)?;
    let accepted = || unit_list(vital);
    if code.is_empty() {
        return Err(Problem::at(
            at,
            format!(
                "missing: {} needs a unit ({})",
                vital.human_name(),
                accepted()
            ),
        ));
    }
    let system = match System::from_hl7(&system) {
        Some(s @ (System::Mdc | System::Ucum)) => s,
        _ if code.bytes().all(|b| b.is_ascii_digit()) && code.len() > 3 => System::Mdc,
        _ => System::Ucum,
    };
    codes::table().unit(system, &code).ok_or_else(|| {
        let name = seg.component(d, 6, 0, 2).unwrap_or_default();
        let code = format!("{code} {name}");
        let code = code.trim_end();
        Problem::at(
            at,
            format!(
                "{} {code} is not a unit Vigil reads for {} ({})",
                system.label(),
                vital.human_name(),
                accepted()
            ),
        )
    })
}

/// A coded ACVPU answer: a SNOMED CT answer code, or the letter.
fn level_of(seg: &Segment, d: &Delimiters) -> Result<Acvpu, Problem> {
    let code = seg.component(d, 5, 0, 1).map_err(syntax)?;
    let system = seg.component(d, 5, 0, 3).map_err(syntax)?;
    let table = codes::table();
    System::from_hl7(&system)
        .and_then(|s| table.answer(s, &code))
        .or_else(|| Acvpu::from_letter(&code))
        .ok_or_else(|| Problem::at(place(seg, 5), format!("{:?} is not an ACVPU answer (a SNOMED CT answer such as 248234008^Mentally alert^SCT, or A, C, V, P or U)", short(&code))))
}

fn short(s: &str) -> String {
    s.chars().take(40).collect()
}

/// A DTM field as UTC: its own offset, else `zone` (MSH-7's offset, minutes east).
fn time_of(
    seg: &Segment,
    d: &Delimiters,
    field: usize,
    zone: Option<i32>,
) -> Result<EventTime, Problem> {
    let text = seg.component(d, field, 0, 1).map_err(syntax)?;
    let bad = |why: &str| Problem::at(place(seg, field), format!("{:?} {why}", short(&text)));
    let (local, offset) = split_offset(&text).ok_or_else(|| bad("has a malformed UTC offset"))?;
    let offset = offset
        .or(zone)
        .ok_or_else(|| bad("has no UTC offset, nor has MSH-7"))?;
    let micros = local_micros(local)
        .ok_or_else(|| bad("is not a time to the minute (YYYYMMDDHHMM[SS[.S…]][+/-ZZZZ])"))?;
    Ok(EventTime::from_micros(
        micros - i64::from(offset) * 60_000_000,
    ))
}

/// A DTM's local part and its UTC offset (minutes east), `None` when it has none; `None` for
/// the whole when the offset is malformed.
fn split_offset(text: &str) -> Option<(&str, Option<i32>)> {
    let Some(at) = text.find(['+', '-']) else {
        return Some((text, None));
    };
    let (local, zone) = text.split_at(at);
    let digits = &zone[1..];
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i32 = digits[..2].parse().ok()?;
    let minutes: i32 = digits[2..].parse().ok()?;
    if hours > 23 || minutes > 59 {
        return None;
    }
    let sign = if zone.starts_with('-') { -1 } else { 1 };
    Some((local, Some(sign * (hours * 60 + minutes))))
}

/// `YYYYMMDDHHMM[SS[.S{1,6}]]` as microseconds since the epoch, read as if UTC.
fn local_micros(s: &str) -> Option<i64> {
    let (whole, fraction) = match s.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (s, None),
    };
    if !(whole.len() == 12 || whole.len() == 14) || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| whole.get(r)?.parse::<u32>().ok();
    let seconds = if whole.len() == 14 { n(12..14)? } else { 0 };
    let micros = match fraction {
        None => 0,
        Some(f)
            if (1..=6).contains(&f.len())
                && f.bytes().all(|b| b.is_ascii_digit())
                && whole.len() == 14 =>
        {
            f.parse::<u32>().ok()? * 10u32.pow(6 - f.len() as u32)
        }
        Some(_) => return None,
    };
    let date = NaiveDate::from_ymd_opt(n(0..4)? as i32, n(4..6)?, n(6..8)?)?;
    let time = date.and_hms_micro_opt(n(8..10)?, n(10..12)?, seconds, micros)?;
    Some(time.and_utc().timestamp_micros())
}

#[cfg(test)]
mod tests;
