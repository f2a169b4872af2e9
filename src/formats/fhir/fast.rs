//! The common FHIR document in one pass: a single Observation of a numeric vital with a
//! `valueQuantity`, read into borrowed fields instead of a tree of values (the tree was 90 % of
//! a FHIR decode). Anything else (a Bundle, a panel, consciousness, an escaped string, any
//! problem at all) returns `None` and goes to the general decoder, which names every problem:
//! this path only ever gives what the general one gives (a test checks it on every fixture and
//! every encoder output).

use serde::Deserialize;

use super::super::Part;
use super::super::codes::{self, Read, System};
use crate::observation::{Detail, EventTime, Interner, Method, Observation, Value, Vital};

#[derive(Deserialize)]
struct Doc<'a> {
    #[serde(rename = "resourceType", borrow)]
    resource_type: &'a str,
    #[serde(borrow)]
    status: &'a str,
    #[serde(borrow)]
    code: Code<'a>,
    #[serde(borrow)]
    subject: Reference<'a>,
    #[serde(borrow, default)]
    device: Option<Reference<'a>>,
    #[serde(rename = "effectiveDateTime", borrow)]
    effective: &'a str,
    #[serde(rename = "effectiveInstant", borrow, default)]
    instant: Option<&'a str>,
    #[serde(rename = "valueQuantity", borrow)]
    quantity: Quantity<'a>,
}

#[derive(Deserialize)]
struct Code<'a> {
    #[serde(borrow)]
    coding: Vec<Coding<'a>>,
}

#[derive(Deserialize)]
struct Coding<'a> {
    #[serde(borrow, default)]
    system: Option<&'a str>,
    #[serde(borrow, default)]
    code: Option<&'a str>,
}

#[derive(Deserialize)]
struct Reference<'a> {
    #[serde(borrow)]
    reference: &'a str,
}

#[derive(Deserialize)]
struct Quantity<'a> {
    value: f64,
    #[serde(borrow)]
    code: &'a str,
    #[serde(borrow, default)]
    system: Option<&'a str>,
    #[serde(default)]
    comparator: Option<serde::de::IgnoredAny>,
}

/// The observation of a plain Observation document, or `None` for the general decoder.
pub fn observation(bytes: &[u8], ids: &mut Interner) -> Option<Part> {
    let doc: Doc = serde_json::from_slice(bytes).ok()?;
    let scored = matches!(
        doc.status,
        "final" | "amended" | "corrected" | "preliminary"
    );
    if doc.resource_type != "Observation" || !scored || doc.quantity.comparator.is_some() {
        return None;
    }
    // `effectiveInstant` beside `effectiveDateTime`: the general decoder says which it reads.
    if doc.instant.is_some() {
        return None;
    }
    let (vital, method) = vital_of(&doc.code)?;
    if vital == Vital::Consciousness {
        return None;
    }
    let patient = ids.get(id_part(doc.subject.reference, "Patient")?).ok()?;
    let device = match &doc.device {
        Some(d) => Some(ids.get(id_part(d.reference, "Device")?).ok()?),
        None => None,
    };
    let time = EventTime::parse_rfc3339(doc.effective).ok()?;
    let system = match doc.quantity.system {
        None => System::Ucum,
        Some(uri) => {
            System::from_fhir_uri(uri).filter(|s| matches!(s, System::Ucum | System::Mdc))?
        }
    };
    let unit = codes::table().unit(system, doc.quantity.code)?;
    let detail = (vital == Vital::Glucose).then(|| Detail::Glucose {
        method: method.unwrap_or(Method::Cgm),
    });
    let value = Value::Number(doc.quantity.value);
    let obs =
        Observation::with_detail(patient, device, time, vital, value, Some(unit), detail).ok()?;
    Some(Part { obs, entry: None })
}

/// The first coding the table reads; `None` when it is not a vital (the general decoder says
/// why, or reads the panel).
fn vital_of(code: &Code) -> Option<(Vital, Option<Method>)> {
    let table = codes::table();
    for coding in &code.coding {
        let Some(system) = coding.system.and_then(System::from_fhir_uri) else {
            continue;
        };
        match table
            .concept(system, coding.code.unwrap_or(""))?
            .concept
            .read()
        {
            Ok(Read::Vital(vital, method)) => return Some((vital, method)),
            _ => return None,
        }
    }
    None
}

/// The id of a plain `Type/id` reference; a Bundle's `urn:` or a `_history` one is the general
/// decoder's.
fn id_part<'a>(reference: &'a str, kind: &str) -> Option<&'a str> {
    if reference.starts_with("urn:") || reference.contains("/_history/") {
        return None;
    }
    super::typed_id(reference, kind)
}
