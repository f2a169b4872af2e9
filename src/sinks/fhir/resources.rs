//! Alerts as FHIR R4 resources: the NEWS2 score as an `Observation` (SNOMED CT
//! 1104051000000101, the UK's NEWS2 total score code: NEWS2 has no LOINC code), a risk alert as
//! a `RiskAssessment`, and every alert as a `Communication` for clinicians, `about` the
//! Observation or RiskAssessment it rests on.
//!
//! Every resource has an id derived from its alert's id (`alert-<id>`, `news2-<id>`,
//! `risk-<id>`), so that writing it twice (a retry, a resumed run) updates it in place rather
//! than adding a copy. Codes Vigil owns (the NEWS2 parameters, its models) are in `urn:vigil:`
//! systems; the observations a score was made of are referenced by their natural key
//! (`patient/vital/time`, system `urn:vigil:observation`), as Vigil keeps no resource ids of
//! its inputs.

use serde_json::{Value as J, json};

use crate::alerting::{Alert, AlertKind, Evidence, RiskEvidence, Severity};
use crate::news2::Status;
use crate::observation::EventTime;

/// NEWS2's total score in SNOMED CT (UK edition).
pub const NEWS2_CODE: &str = "1104051000000101";
const NEWS2_DISPLAY: &str =
    "Royal College of Physicians NEWS2 (National Early Warning Score 2) total score";

/// The FHIR request priority of an alert's severity.
pub fn priority(severity: Severity) -> &'static str {
    match severity {
        Severity::Info => "routine",
        Severity::Warning | Severity::LowMedium => "urgent",
        Severity::Medium => "asap",
        Severity::High => "stat",
    }
}

fn patient(alert: &Alert) -> J {
    json!({"reference": format!("Patient/{}", alert.patient)})
}

fn identifier(system: &str, id: &str) -> J {
    json!([{"system": system, "value": id}])
}

/// The vital and wire name of a NEWS2 parameter, for references to what was scored.
fn vital_of(parameter: &str) -> Option<&'static str> {
    Some(match parameter {
        "rr" => "respiratory_rate",
        "spo2" => "spo2",
        "air_oxygen" => "supplemental_oxygen",
        "sbp" => "systolic_bp",
        "hr" => "heart_rate",
        "acvpu" => "consciousness",
        "temp" => "temperature",
        _ => return None,
    })
}

/// The NEWS2 score an alert's evidence holds, as an Observation: the total, a component per
/// parameter's sub-score, `derivedFrom` the observations scored. An incomplete score is
/// `preliminary`, its total a lower bound (said in `note`).
pub fn news2_observation(alert: &Alert, e: &Evidence) -> J {
    let components: Vec<J> = e
        .values
        .iter()
        .map(|v| {
            let code = json!({
                "coding": [{"system": "urn:vigil:news2-parameter", "code": v.parameter}],
                "text": format!("NEWS2 {} sub-score", v.parameter),
            });
            match v.subscore {
                Some(s) => json!({"code": code, "valueInteger": s}),
                None => json!({"code": code, "dataAbsentReason": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
                    "code": "unknown",
                }]}}),
            }
        })
        .collect();
    let derived: Vec<J> = e
        .values
        .iter()
        .filter_map(|v| {
            let (value, age) = (v.value.as_ref()?, v.age_s?);
            let time = EventTime::from_micros(alert.time_us - age * 1_000_000);
            let vital = vital_of(&v.parameter)?;
            Some(json!({
                "type": "Observation",
                "identifier": {
                    "system": "urn:vigil:observation",
                    "value": format!("{}/{vital}/{}", alert.patient, time.to_rfc3339()),
                },
                "display": format!("{} {value}", v.parameter),
            }))
        })
        .collect();
    let mut r = json!({
        "resourceType": "Observation",
        "id": format!("news2-{}", alert.id),
        "identifier": identifier("urn:vigil:news2", &alert.id),
        "status": if e.status == Status::Complete { "final" } else { "preliminary" },
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": "survey",
        }]}],
        "code": {
            "coding": [{"system": "http://snomed.info/sct", "code": NEWS2_CODE, "display": NEWS2_DISPLAY}],
            "text": "NEWS2",
        },
        "subject": patient(alert),
        "effectiveDateTime": alert.time,
        "valueInteger": e.total,
        "component": components,
    });
    if let Some(band) = e.band {
        r["interpretation"] = json!([{"text": format!("band {}", band_name(band))}]);
    }
    if e.status != Status::Complete {
        r["note"] = json!([{"text": format!(
            "incomplete: NEWS2 at least {} and up to {} ({})",
            e.total,
            e.total_upper_bound,
            e.problems.join("; ")
        )}]);
    }
    if !derived.is_empty() {
        r["derivedFrom"] = J::Array(derived);
    }
    r
}

fn band_name(band: crate::news2::Band) -> String {
    serde_json::to_value(band)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// A risk alert as a RiskAssessment: the probability, the model (name and version) as its
/// method, `basis` the NEWS2 score and the features that drive it.
pub fn risk_assessment(alert: &Alert, risk: &RiskEvidence, news2: Option<&str>) -> J {
    let mut basis: Vec<J> = news2
        .map(|id| json!({"reference": format!("Observation/{id}")}))
        .into_iter()
        .collect();
    basis.extend(risk.top_features.iter().map(|f| {
        let value = f.value.map_or("missing".to_owned(), |v| format!("{v:.4}"));
        json!({"display": format!("{} = {value} (moves the risk {:+.2} %)", f.feature, f.contribution * 100.0)})
    }));
    json!({
        "resourceType": "RiskAssessment",
        "id": format!("risk-{}", alert.id),
        "identifier": identifier("urn:vigil:risk", &alert.id),
        "status": "final",
        "method": {
            "coding": [{"system": "urn:vigil:model", "code": risk.model, "version": risk.version}],
            "text": format!("{} v{}", risk.model, risk.version),
        },
        "code": {"text": format!("{} risk", risk.outcome)},
        "subject": patient(alert),
        "occurrenceDateTime": alert.time,
        "basis": basis,
        "prediction": [{
            "outcome": {"text": risk.outcome},
            "probabilityDecimal": risk.probability,
        }],
        "note": [{"text": format!(
            "alert threshold {:.4}, clear below {:.4}",
            risk.threshold, risk.clear_below
        )}],
    })
}

/// An alert for clinicians as a Communication, `about` the resources it rests on.
pub fn communication(alert: &Alert, about: &[String]) -> J {
    let mut r = json!({
        "resourceType": "Communication",
        "id": format!("alert-{}", alert.id),
        "identifier": identifier("urn:vigil:alert", &alert.id),
        "status": "completed",
        "category": [{"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/communication-category",
            "code": "alert",
        }]}],
        "priority": priority(alert.severity),
        "subject": patient(alert),
        "sent": alert.time,
        "reasonCode": [{"text": format!("{} {}", alert.kind.name(), alert.event.name())}],
        "payload": [{"contentString": alert.summary}, {"contentString": alert.response}],
    });
    if !about.is_empty() {
        r["about"] = about.iter().map(|a| json!({"reference": a})).collect();
    }
    r
}

/// The resources of one alert, in the order they reference each other. A score update is its
/// Observation alone; an alert for people is about `score`, the id of the patient's score
/// Observation in force (written from the alert's own evidence when there is none).
pub fn of_alert(alert: &Alert, score: Option<&str>) -> Vec<J> {
    let news2 = alert.evidence.as_ref().and_then(|e| e.news2());
    if !alert.pages() {
        if !alert.is_score_update() {
            return Vec::new();
        }
        return news2
            .map(|e| news2_observation(alert, e))
            .into_iter()
            .collect();
    }
    let mut out = Vec::new();
    let mut about = Vec::new();
    let news2_id = match (score, news2) {
        (Some(id), Some(_)) => Some(id.to_owned()),
        (None, Some(e)) => {
            out.push(news2_observation(alert, e));
            Some(format!("news2-{}", alert.id))
        }
        (_, None) => None,
    };
    if let Some(id) = &news2_id {
        about.push(format!("Observation/{id}"));
    }
    if let (AlertKind::Risk, Some(risk)) = (alert.kind, &alert.risk) {
        out.push(risk_assessment(alert, risk, news2_id.as_deref()));
        about = vec![format!("RiskAssessment/risk-{}", alert.id)];
    }
    out.push(communication(alert, &about));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn golden(kind: &str) -> Alert {
        let text = include_str!("../../../tests/golden/demo.jsonl");
        let line = text
            .lines()
            .find(|l| l.contains(&format!("\"kind\":\"{kind}\"")))
            .unwrap();
        serde_json::from_str(line).unwrap()
    }

    #[test]
    fn a_risk_alert_is_a_score_an_assessment_and_a_communication_that_reference_each_other() {
        let alert = golden("risk");
        let r = of_alert(&alert, None);
        let kinds: Vec<&str> = r
            .iter()
            .map(|r| r["resourceType"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Observation", "RiskAssessment", "Communication"]);
        let (score, risk, comm) = (&r[0], &r[1], &r[2]);
        assert_eq!(score["code"]["coding"][0]["code"], NEWS2_CODE);
        assert_eq!(score["valueInteger"], 7);
        assert_eq!(score["status"], "final");
        assert_eq!(score["component"].as_array().unwrap().len(), 7);
        assert_eq!(
            score["derivedFrom"][0]["identifier"]["value"],
            "sim-00037/respiratory_rate/2026-01-05T03:30:00Z"
        );
        assert_eq!(
            risk["basis"][0]["reference"],
            format!("Observation/news2-{}", alert.id)
        );
        assert_eq!(risk["method"]["coding"][0]["version"], "2e53f3c8");
        assert_eq!(
            risk["prediction"][0]["probabilityDecimal"],
            0.035122914214162845
        );
        assert_eq!(
            comm["about"][0]["reference"],
            format!("RiskAssessment/risk-{}", alert.id)
        );
        assert_eq!(comm["priority"], "asap");
    }

    #[test]
    fn an_incomplete_score_is_preliminary_and_says_its_bounds() {
        let alert = golden("news2");
        let r = of_alert(&alert, None);
        assert_eq!(r[0]["status"], "preliminary");
        assert_eq!(
            r[0]["note"][0]["text"],
            "incomplete: NEWS2 at least 3 and up to 11 (air_oxygen: missing; acvpu: missing; temp: missing)"
        );
        assert_eq!(r[1]["priority"], "urgent");
        // A data-quality alert has no score: a Communication alone.
        let dq = golden("data_quality");
        let r = of_alert(&dq, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["resourceType"], "Communication");
        assert_eq!(r[0]["priority"], "urgent");
        // With the score in force written already (a score update), an alert is about it.
        let r = of_alert(&alert, Some("news2-0123"));
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["about"][0]["reference"], "Observation/news2-0123");
        let mut update = alert.clone();
        update.event = crate::alerting::AlertEvent::Scored;
        let r = of_alert(&update, None);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["resourceType"], "Observation");
    }
}
