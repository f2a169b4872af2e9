//! Observations as FHIR R4 `Observation` resources (for `vigil simulate --format fhir` and the
//! FHIR sink), coded from the mapping table so that [`super::decode`] reads them back to the same
//! observation.
//!
//! Each observation is one resource: systolic and diastolic pressure are written as the
//! Observations their LOINC codes name (8480-6, 8462-4), which a reader may also meet as a
//! panel's components. Device kinds other than glucose have no code in the table and are not
//! written ([`Unwritable`]).

use serde_json::{Value as J, json};

use crate::formats::codes::{self, Row, System};
use crate::observation::{Detail, Method, Observation, Unit, Value, Vital};

/// An observation FHIR output cannot code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{vital} has no code in the mapping table: it cannot be written as FHIR")]
pub struct Unwritable {
    pub vital: Vital,
}

/// The table's rows coding `obs`: its LOINC (or SNOMED CT) code first, then its MDC code.
pub fn codings_of(obs: &Observation) -> Result<Vec<&'static Row>, Unwritable> {
    let t = codes::table();
    let vital = obs.vital();
    let method = match obs.detail() {
        Some(Detail::Glucose { method }) => Some(*method),
        _ => None,
    };
    let primary = match (vital, obs.unit()) {
        // The table's first oxygen row is FiO2; a flow has its own code.
        (Vital::SupplementalOxygen, Some(Unit::LitresPerMinute)) => t
            .rows
            .iter()
            .find(|r| r.system == System::Loinc && r.code == "3151-8"),
        (Vital::Glucose, Some(Unit::MillimolesPerLitre)) if method == Some(Method::Cgm) => {
            t.rows.iter().find(|r| r.code == "105272-9")
        }
        _ => t
            .code_of(System::Loinc, vital, method)
            .or_else(|| t.code_of(System::Snomed, vital, method)),
    }
    .ok_or(Unwritable { vital })?;
    let mut rows = vec![primary];
    let flow = vital == Vital::SupplementalOxygen && obs.unit() == Some(Unit::LitresPerMinute);
    if let Some(mdc) = t.code_of(System::Mdc, vital, method).filter(|_| !flow) {
        rows.push(mdc);
    }
    Ok(rows)
}

/// A FHIR `Coding` of a table row.
pub fn coding(row: &Row) -> J {
    json!({"system": row.system.fhir_uri(), "code": row.code, "display": row.name})
}

/// `obs` as an Observation resource (no `id`: a server assigns one, a file needs none).
pub fn observation(obs: &Observation) -> Result<J, Unwritable> {
    let rows = codings_of(obs)?;
    let category = match obs.vital() {
        Vital::Glucose => "laboratory",
        _ => "vital-signs",
    };
    let mut r = json!({
        "resourceType": "Observation",
        "status": "final",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": category,
        }]}],
        "code": {"coding": rows.iter().map(|r| coding(r)).collect::<Vec<_>>()},
        "subject": {"reference": format!("Patient/{}", obs.patient())},
        "effectiveDateTime": obs.time().to_rfc3339(),
    });
    if let Some(device) = obs.device() {
        r["device"] = json!({"reference": format!("Device/{device}")});
    }
    match (obs.value(), obs.unit()) {
        (Value::Acvpu(level), _) => {
            let answer = codes::table().answer_of(System::Snomed, level);
            r["valueCodeableConcept"] = match answer {
                Some(row) => json!({"coding": [coding(row)], "text": level.letter()}),
                None => json!({"text": level.letter()}),
            };
        }
        (Value::Number(n), Some(unit)) => {
            r["valueQuantity"] = json!({
                "value": n,
                "unit": unit.ucum(),
                "system": System::Ucum.fhir_uri(),
                "code": unit.ucum(),
            });
        }
        _ => return Err(Unwritable { vital: obs.vital() }),
    }
    Ok(r)
}
