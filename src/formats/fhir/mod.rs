//! FHIR R4 in: `Observation` resources and `Bundle`s (transaction, batch, collection) of them.
//!
//! What is read, field by field:
//!
//! | Vigil | FHIR |
//! | --- | --- |
//! | vital | the first coding of `code.coding` the mapping table reads ([`super::codes`]); a panel (`85354-9`) gives one observation per `component` |
//! | patient | the id part of `subject.reference` (`Patient/p-123`, `https://…/Patient/p-123/_history/2` → `p-123`), a Bundle's `urn:uuid:` Patient by its `id` or first identifier, else `subject.identifier.value` |
//! | device | likewise from `device`, a Device or DeviceMetric (optional: one Vigil cannot name is left out) |
//! | time | `effectiveDateTime`, `effectiveInstant` or `effectivePeriod.start`, to the second with an offset |
//! | value | `valueQuantity.value` with its unit `code` (UCUM, or MDC with the MDC system), else its `unit`; consciousness from `valueCodeableConcept` (SNOMED CT ACVPU answers, or a letter) |
//!
//! `status` must be `final`, `amended`, `corrected` or `preliminary`; `entered-in-error`,
//! `cancelled` and the others are not scored and are reported. Every part that is not an
//! observation is a [`Problem`] whose path names the JSON field (`entry[3].resource.valueQuantity.unit`).
//! A Bundle's other resources (Patient, Device, Encounter) are context, not problems.
//!
//! Ids are taken as their id part alone: `Patient/7` of two servers is one patient to Vigil.

use std::collections::HashMap;

use serde_json::Value as J;

use super::codes::{self, Read, System};
use super::{Decoded, MAX_FHIR_BYTES, Part, Problem};
use crate::observation::{
    Acvpu, Detail, EventTime, Identifier, Interner, Method, Observation, Subject, Unit, Value,
    Vital, unit_list,
};

pub mod encode;
mod fast;

/// Decodes one FHIR JSON document: an Observation or a Bundle.
pub fn decode(bytes: &[u8], ids: &mut Interner, out: &mut Vec<Decoded>) {
    if bytes.len() > MAX_FHIR_BYTES {
        out.push(Err(Problem::at(
            "",
            format!(
                "document is {} bytes, over the limit of {MAX_FHIR_BYTES} bytes",
                bytes.len()
            ),
        )));
        return;
    }
    if let Some(part) = fast::observation(bytes, ids) {
        return out.push(Ok(part));
    }
    match serde_json::from_slice::<J>(bytes) {
        Ok(doc) => decode_document(&doc, ids, out),
        Err(e) => out.push(Err(Problem::at("", format!("not JSON: {e}")))),
    }
}

/// Decodes a parsed document.
pub fn decode_document(doc: &J, ids: &mut Interner, out: &mut Vec<Decoded>) {
    let mut cx = Context { ids, refs: None };
    match doc.get("resourceType").and_then(J::as_str) {
        Some("Observation") => observation(doc, "", None, &mut cx, out),
        Some("Bundle") => bundle(doc, &mut cx, out),
        Some(other) => out.push(Err(Problem::at(
            "resourceType",
            format!("{other:?} is not read (Observation, or a Bundle of them)"),
        ))),
        None => out.push(Err(Problem::at(
            "resourceType",
            "missing: the document is not a FHIR resource",
        ))),
    }
}

/// What decoding a resource can look up: the interner, and a Bundle's `fullUrl`s.
struct Context<'a> {
    ids: &'a mut Interner,
    /// `fullUrl` → the id of that entry's Patient or Device.
    refs: Option<HashMap<&'a str, String>>,
}

fn bundle<'a>(doc: &'a J, cx: &mut Context<'a>, out: &mut Vec<Decoded>) {
    match doc.get("type").and_then(J::as_str) {
        Some("transaction" | "batch" | "collection") => {}
        Some(other) => {
            return out.push(Err(Problem::at(
                "type",
                format!("Bundle type {other:?} is not read (transaction, batch or collection)"),
            )));
        }
        None => return out.push(Err(Problem::at("type", "missing: a Bundle needs its type"))),
    }
    let Some(entries) = doc.get("entry") else {
        return;
    };
    let Some(entries) = entries.as_array() else {
        return out.push(Err(Problem::at("entry", "must be an array")));
    };
    cx.refs = Some(entries.iter().filter_map(reference_target).collect());
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("entry[{i}].resource");
        let Some(resource) = entry.get("resource") else {
            out.push(Err(Problem::at(format!("entry[{i}]"), "has no resource")));
            continue;
        };
        match resource.get("resourceType").and_then(J::as_str) {
            Some("Observation") => observation(resource, &path, Some(i as u32), cx, out),
            Some("Bundle") => out.push(Err(Problem::at(
                path,
                "a Bundle inside a Bundle is not read",
            ))),
            Some(_) => {}
            None => out.push(Err(Problem::at(path + ".resourceType", "missing"))),
        }
    }
}

/// A Bundle entry's `fullUrl` and the id of its Patient or Device, for `urn:uuid:` references.
fn reference_target(entry: &J) -> Option<(&str, String)> {
    let url = entry.get("fullUrl")?.as_str()?;
    let resource = entry.get("resource")?;
    match resource.get("resourceType")?.as_str()? {
        "Patient" | "Device" => {}
        _ => return None,
    }
    let id = resource
        .get("id")
        .and_then(J::as_str)
        .or_else(|| resource.get("identifier")?.get(0)?.get("value")?.as_str())?;
    Some((url, id.to_owned()))
}

/// `path.field`, or `field` at the top.
fn join(path: &str, field: &str) -> String {
    match path.is_empty() {
        true => field.to_owned(),
        false => format!("{path}.{field}"),
    }
}

/// The facts every observation of a resource shares.
struct Header {
    patient: Identifier,
    device: Option<Identifier>,
    time: EventTime,
}

fn observation(res: &J, path: &str, entry: Option<u32>, cx: &mut Context, out: &mut Vec<Decoded>) {
    let problem = |field: &str, reason: String| Problem {
        path: join(path, field),
        reason,
        subject: None,
        entry,
    };
    if let Err((field, reason)) = scored_status(res) {
        return out.push(Err(problem(field, reason)));
    }
    let concept = match concept_of(res.get("code")) {
        Ok(c) => c,
        Err(reason) => return out.push(Err(problem("code", reason))),
    };
    let header = match header(res, cx) {
        Ok(h) => h,
        Err((field, reason)) => return out.push(Err(problem(field, reason))),
    };
    match concept {
        Read::Vital(vital, method) => {
            out.push(measurement(res, path, entry, &header, vital, method));
        }
        Read::Panel => components(res, path, entry, &header, out),
    }
}

/// A panel's observations, one per component; a panel of members (`hasMember`) has none itself.
fn components(res: &J, path: &str, entry: Option<u32>, header: &Header, out: &mut Vec<Decoded>) {
    let Some(components) = res.get("component").and_then(J::as_array) else {
        if res.get("hasMember").is_none() {
            out.push(Err(Problem {
                path: join(path, "component"),
                reason: "missing: a panel's values are in its components".into(),
                subject: None,
                entry,
            }));
        }
        return;
    };
    for (j, c) in components.iter().enumerate() {
        let at = join(path, &format!("component[{j}]"));
        match concept_of(c.get("code")) {
            Ok(Read::Vital(vital, method)) => {
                out.push(measurement(c, &at, entry, header, vital, method));
            }
            Ok(Read::Panel) => out.push(Err(Problem {
                path: at + ".code",
                reason: "a panel inside a panel is not read".into(),
                subject: None,
                entry,
            })),
            Err(reason) => out.push(Err(Problem {
                path: at + ".code",
                reason,
                subject: None,
                entry,
            })),
        }
    }
}

/// One observation from a resource or a component (`node`) carrying a value.
fn measurement(
    node: &J,
    path: &str,
    entry: Option<u32>,
    header: &Header,
    vital: Vital,
    method: Option<Method>,
) -> Decoded {
    let (field, read) = value_of(node, vital);
    let problem = |reason: String, subject: Option<Subject>| Problem {
        path: join(path, field),
        reason,
        subject,
        entry,
    };
    let (value, unit) = read.map_err(|reason| problem(reason, None))?;
    let detail = (vital == Vital::Glucose).then(|| Detail::Glucose {
        method: method.unwrap_or(Method::Cgm),
    });
    let obs = Observation::with_detail(
        header.patient.clone(),
        header.device.clone(),
        header.time,
        vital,
        value,
        unit,
        detail,
    )
    .map_err(|e| {
        let subject = Subject {
            patient: header.patient.clone(),
            time: header.time,
            vital,
        };
        problem(e.to_string(), Some(subject))
    })?;
    Ok(Part { obs, entry })
}

/// Whether the result is one to score: `Err((field, why))` when not.
fn scored_status(res: &J) -> Result<(), (&'static str, String)> {
    match res.get("status").and_then(J::as_str) {
        Some("final" | "amended" | "corrected" | "preliminary") => Ok(()),
        Some(s @ ("entered-in-error" | "cancelled")) => Err(("status", format!("{s}: not scored"))),
        Some(other) => Err((
            "status",
            format!("{other:?}: no result to score (final, amended, corrected or preliminary are)"),
        )),
        None => Err(("status", "missing".into())),
    }
}

/// What `code` (a CodeableConcept) means: the first coding the table reads as a vital or panel;
/// else why not (a code Vigil knows and does not read, or the codes it does not know).
fn concept_of(code: Option<&J>) -> Result<Read, String> {
    let codings = code
        .and_then(|c| c.get("coding"))
        .and_then(J::as_array)
        .ok_or("missing `coding`")?;
    let table = codes::table();
    let mut unread = None;
    let mut seen = Vec::new();
    for coding in codings {
        let system = coding.get("system").and_then(J::as_str).unwrap_or("");
        let code = coding.get("code").and_then(J::as_str).unwrap_or("");
        let Some(sys) = System::from_fhir_uri(system) else {
            seen.push(format!("{code} of {system:?}"));
            continue;
        };
        match table.concept(sys, code) {
            Some(found) => match found.concept.read() {
                Ok(read) => return Ok(read),
                Err(why) => {
                    unread.get_or_insert(format!(
                        "{} {code} ({}): {why}",
                        sys.label(),
                        found.row.name
                    ));
                }
            },
            None => seen.push(format!("{} {code}", sys.label())),
        }
    }
    Err(unread.unwrap_or_else(|| match seen.is_empty() {
        true => "no coding".to_owned(),
        false => format!("no code Vigil reads ({})", seen.join(", ")),
    }))
}

fn header(res: &J, cx: &mut Context) -> Result<Header, (&'static str, String)> {
    let patient = reference(res.get("subject"), "Patient", cx)
        .map_err(|r| ("subject", r))?
        .ok_or((
            "subject",
            "missing: every observation needs its patient".to_owned(),
        ))?;
    // A device Vigil cannot name (a contained `#ref`, a display only) is no reason to lose the
    // observation: it is read without one.
    let device = reference(res.get("device"), "Device", cx).ok().flatten();
    let (field, time) = if let Some(t) = res.get("effectiveDateTime") {
        ("effectiveDateTime", t)
    } else if let Some(t) = res.get("effectiveInstant") {
        ("effectiveInstant", t)
    } else if let Some(t) = res.get("effectivePeriod").and_then(|p| p.get("start")) {
        ("effectivePeriod.start", t)
    } else {
        return Err((
            "effectiveDateTime",
            "missing (or effectiveInstant, effectivePeriod.start): an observation needs its time"
                .into(),
        ));
    };
    let time = time
        .as_str()
        .ok_or_else(|| "must be a string".to_owned())
        .and_then(|s| {
            EventTime::parse_rfc3339(s).map_err(|_| match s.contains('T') {
                true => format!("{s:?} is not a time to the second with an offset (2026-11-24T10:15:00+01:00)"),
                false => format!("{s:?} is a date without a time: an observation needs its time to the second with an offset"),
            })
        })
        .map_err(|r| (field, r))?;
    Ok(Header {
        patient,
        device,
        time,
    })
}

/// The id a Reference names: `Type/id` (absolute or with `_history`), a Bundle's `urn:` entry,
/// or `identifier.value`. `Ok(None)` when absent.
fn reference(node: Option<&J>, kind: &str, cx: &mut Context) -> Result<Option<Identifier>, String> {
    let Some(node) = node else { return Ok(None) };
    let id = if let Some(r) = node.get("reference") {
        let r = r.as_str().ok_or("`reference` must be a string")?;
        id_of_reference(r, kind, cx.refs.as_ref())?
    } else if let Some(v) = node.get("identifier").and_then(|i| i.get("value")) {
        v.as_str()
            .ok_or("`identifier.value` must be a string")?
            .to_owned()
    } else {
        return Err("has neither `reference` nor `identifier.value`".into());
    };
    cx.ids
        .get(&id)
        .map(Some)
        .map_err(|e| format!("id {:?} {e}", id.chars().take(40).collect::<String>()))
}

fn id_of_reference(
    r: &str,
    kind: &str,
    refs: Option<&HashMap<&str, String>>,
) -> Result<String, String> {
    if r.starts_with("urn:") {
        return refs
            .and_then(|m| m.get(r))
            .cloned()
            .ok_or_else(|| format!("{r:?} names no {kind} of this Bundle"));
    }
    let r = r.split("/_history/").next().unwrap_or(r);
    typed_id(r, kind)
        .map(str::to_owned)
        .ok_or_else(|| format!("{r:?} is not a reference to a {kind}"))
}

/// The id of a `Type/id` reference (relative or absolute) to a `kind` (`Patient`; `Device`,
/// which may be a Device or a DeviceMetric: R4 allows both for `Observation.device`).
fn typed_id<'a>(r: &'a str, kind: &str) -> Option<&'a str> {
    let kinds: &[&str] = match kind {
        "Device" => &["Device", "DeviceMetric"],
        _ => &["Patient"],
    };
    let mut parts = r.rsplit('/');
    match (parts.next(), parts.next()) {
        (Some(id), Some(k)) if kinds.contains(&k) && !id.is_empty() => Some(id),
        _ => None,
    }
}

/// The value and unit of `node`, and the field they were read from.
fn value_of(node: &J, vital: Vital) -> (&'static str, Result<(Value, Option<Unit>), String>) {
    if vital == Vital::Consciousness {
        return match node.get("valueCodeableConcept") {
            Some(c) => (
                "valueCodeableConcept",
                level_of(c).map(|l| (Value::Acvpu(l), None)),
            ),
            None => (
                "valueCodeableConcept",
                Err(absent(node, "valueCodeableConcept")),
            ),
        };
    }
    let Some(q) = node.get("valueQuantity") else {
        return ("valueQuantity", Err(absent(node, "valueQuantity")));
    };
    if let Some(c) = q.get("comparator") {
        return (
            "valueQuantity.comparator",
            Err(format!("{c} makes the value a bound, not a measurement")),
        );
    }
    let number = match q.get("value") {
        Some(J::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(other) => {
            return (
                "valueQuantity.value",
                Err(format!("must be a number, found {other}")),
            );
        }
        None => return ("valueQuantity.value", Err("missing".into())),
    };
    match unit_of(q, vital) {
        Ok(unit) => ("valueQuantity", Ok((Value::Number(number), Some(unit)))),
        Err((field, reason)) => (field, Err(reason)),
    }
}

/// Why a node has no value: its `dataAbsentReason`, or nothing.
fn absent(node: &J, field: &str) -> String {
    match node
        .get("dataAbsentReason")
        .and_then(|d| d.get("coding"))
        .and_then(|c| c.get(0))
        .and_then(|c| c.get("code"))
    {
        Some(code) => format!("no value: dataAbsentReason {code}"),
        None => format!("missing: no value to score ({field})"),
    }
}

/// A Quantity's unit: its `code` in UCUM (or MDC, with the MDC system), else its `unit` as UCUM.
fn unit_of(q: &J, vital: Vital) -> Result<Unit, (&'static str, String)> {
    let table = codes::table();
    let accepted = || unit_list(vital);
    let (field, system, code) = match (q.get("code").and_then(J::as_str), q.get("unit")) {
        (Some(code), _) => {
            let system = match q.get("system").and_then(J::as_str) {
                None => System::Ucum,
                Some(uri) => System::from_fhir_uri(uri)
                    .filter(|s| matches!(s, System::Ucum | System::Mdc))
                    .ok_or_else(|| {
                        (
                            "valueQuantity.system",
                            format!("{uri:?} is not UCUM or MDC"),
                        )
                    })?,
            };
            ("valueQuantity.code", system, code)
        }
        (None, Some(J::String(unit))) => ("valueQuantity.unit", System::Ucum, unit.as_str()),
        (None, _) => {
            return Err((
                "valueQuantity.unit",
                format!(
                    "missing: {} needs a unit ({})",
                    vital.human_name(),
                    accepted()
                ),
            ));
        }
    };
    table.unit(system, code).ok_or_else(|| {
        (
            field,
            format!(
                "{} {code:?} is not a unit Vigil reads for {} ({})",
                system.label(),
                vital.human_name(),
                accepted()
            ),
        )
    })
}

/// An ACVPU level from a CodeableConcept: a SNOMED CT answer, or a letter as code or text.
fn level_of(c: &J) -> Result<Acvpu, String> {
    let table = codes::table();
    let codings = c.get("coding").and_then(J::as_array);
    for coding in codings.into_iter().flatten() {
        let code = coding.get("code").and_then(J::as_str).unwrap_or("");
        let system = coding.get("system").and_then(J::as_str);
        if let Some(level) = system
            .and_then(System::from_fhir_uri)
            .and_then(|s| table.answer(s, code))
        {
            return Ok(level);
        }
        if let Some(level) = Acvpu::from_letter(code) {
            return Ok(level);
        }
    }
    if let Some(level) = c
        .get("text")
        .and_then(J::as_str)
        .and_then(Acvpu::from_letter)
    {
        return Ok(level);
    }
    Err("no ACVPU answer (a SNOMED CT answer such as 248234008, or A, C, V, P or U)".into())
}

#[cfg(test)]
pub(crate) mod tests;
