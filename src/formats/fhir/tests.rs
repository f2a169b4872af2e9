use super::*;
use crate::exact::Exact;
use crate::formats::codes::{Concept, table};
use crate::observation::Reading;

fn fixture(path: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/interop/fhir/");
    std::fs::read(format!("{dir}{path}")).unwrap()
}

fn decode_all(bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    decode(bytes, &mut Interner::default(), &mut out);
    out
}

fn one(bytes: &[u8]) -> Observation {
    let out = decode_all(bytes);
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap().unwrap().obs
}

fn problem(bytes: &[u8]) -> Problem {
    let out = decode_all(bytes);
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap().unwrap_err()
}

/// The R4 examples with a time of day: as published.
#[test]
fn the_r4_examples_are_read_as_published() {
    let sat = one(&fixture("examples/Observation-satO2.json"));
    assert_eq!(sat.vital(), Vital::Spo2);
    assert_eq!(sat.patient().as_str(), "example");
    assert_eq!(sat.device().map(Identifier::as_str), Some("example"));
    assert_eq!(sat.time().to_rfc3339(), "2014-12-05T08:30:10Z");
    assert_eq!(sat.reading(), Reading::Quantity(Exact::integer(95)));

    let glucose = one(&fixture("examples/Observation-f001.json"));
    assert_eq!(glucose.vital(), Vital::Glucose);
    assert_eq!(glucose.unit(), Some(Unit::MillimolesPerLitre));
    assert_eq!(
        glucose.detail(),
        Some(&Detail::Glucose {
            method: Method::Meter
        })
    );
    assert_eq!(glucose.time().to_rfc3339(), "2013-04-02T08:30:10Z");
}

#[test]
fn what_is_not_scored_is_reported_with_its_field() {
    let p = problem(&fixture("examples/Observation-f202.json"));
    assert_eq!(
        (p.path.as_str(), p.reason.as_str()),
        ("status", "entered-in-error: not scored")
    );
    let p = problem(&fixture("examples/Observation-blood-pressure-cancel.json"));
    assert_eq!(p.to_string(), "status: cancelled: not scored");
    // A date alone is no time to score at.
    let p = problem(&fixture("examples/Observation-heart-rate.json"));
    assert_eq!(p.path, "effectiveDateTime");
    assert!(p.reason.contains("a date without a time"), "{p}");
    let p = problem(&fixture("examples/Observation-glasgow.json"));
    assert_eq!(p.path, "code");
    assert!(
        p.reason.contains("LOINC 9269-2") && p.reason.contains("ACVPU"),
        "{p}"
    );
    let p = problem(&fixture("examples/Observation-bmi.json"));
    assert_eq!(p.reason, "no code Vigil reads (LOINC 39156-5)");
    let p = problem(&fixture(
        "phd-ig-examples/numeric-observation-not-a-number.json",
    ));
    assert!(
        p.reason.starts_with("no code Vigil reads (MDC 150320"),
        "{p}"
    );
}

#[test]
fn a_panel_gives_one_observation_per_component_and_names_a_missing_one() {
    let text = String::from_utf8(fixture("examples/Observation-blood-pressure-dar.json")).unwrap();
    let text = text.replace("\"2012-09-17\"", "\"2012-09-17T10:00:00+02:00\"");
    let out = decode_all(text.as_bytes());
    assert_eq!(out.len(), 2, "{out:?}");
    let sys = out[0].as_ref().unwrap();
    assert_eq!(sys.obs.vital(), Vital::SystolicBp);
    assert_eq!(sys.obs.value(), Value::Number(107.0));
    let dia = out[1].as_ref().unwrap_err();
    assert_eq!(dia.path, "component[1].valueQuantity");
    assert_eq!(dia.reason, "no value: dataAbsentReason \"not-performed\"");

    let out = decode_all(&fixture(
        "phd-ig-examples/compound-numeric-blood-pressure.json",
    ));
    let vitals: Vec<_> = out
        .iter()
        .map(|d| {
            d.as_ref()
                .map(|p| p.obs.vital())
                .map_err(|p| p.path.clone())
        })
        .collect();
    assert_eq!(
        vitals,
        vec![
            Ok(Vital::SystolicBp),
            Ok(Vital::DiastolicBp),
            Err("component[2].code".into())
        ]
    );
    let sys = out[0].as_ref().unwrap();
    assert_eq!(
        sys.obs.device().map(Identifier::as_str),
        Some("phd-711000FEFF5F49B0.B0495F001071")
    );
}

#[test]
fn a_device_bundle_gives_its_vitals_and_names_each_entry_it_does_not_read() {
    let out = decode_all(&fixture("phd-ig-examples/bundle-continuousnonin.json"));
    assert_eq!(out.len(), 47);
    let obs: Vec<&Part> = out.iter().filter_map(|d| d.as_ref().ok()).collect();
    let count = |v| obs.iter().filter(|p| p.obs.vital() == v).count();
    assert_eq!((count(Vital::Spo2), count(Vital::HeartRate)), (12, 12));
    assert_eq!(obs[0].entry, Some(1));
    assert_eq!(obs[0].obs.patient().as_str(), "patientExample-1");
    assert_eq!(obs[0].obs.time().to_rfc3339(), "2018-11-12T00:07:37Z");
    let first = out[0].as_ref().unwrap_err();
    assert_eq!(first.path, "entry[0].resource.code");
    assert_eq!(first.entry, Some(0));
    assert!(first.reason.contains("MDC 67996"), "{first}");
}

fn bundle(entries: &[serde_json::Value]) -> Vec<u8> {
    let entries: Vec<_> = entries
        .iter()
        .map(|r| serde_json::json!({"resource": r}))
        .collect();
    serde_json::to_vec(
        &serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}),
    )
    .unwrap()
}

fn hr(subject: serde_json::Value, quantity: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "resourceType": "Observation", "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": subject, "effectiveDateTime": "2026-01-05T10:00:00Z",
        "valueQuantity": quantity,
    })
}

#[test]
fn each_problem_names_its_json_path() {
    let good = hr(
        serde_json::json!({"reference": "Patient/p-1"}),
        serde_json::json!({"value": 80, "code": "/min", "system": "http://unitsofmeasure.org"}),
    );
    let no_unit = hr(
        serde_json::json!({"reference": "Patient/p-1"}),
        serde_json::json!({"value": 80}),
    );
    let bad_unit = hr(
        serde_json::json!({"reference": "Patient/p-1"}),
        serde_json::json!({"value": 80, "code": "Hz", "system": "http://unitsofmeasure.org"}),
    );
    let impossible = hr(
        serde_json::json!({"reference": "Patient/p-1"}),
        serde_json::json!({"value": 900, "code": "/min"}),
    );
    let text_value = hr(
        serde_json::json!({"reference": "Patient/p-1"}),
        serde_json::json!({"value": "80", "code": "/min"}),
    );
    let group = hr(
        serde_json::json!({"reference": "Group/g"}),
        serde_json::json!({"value": 80, "code": "/min"}),
    );
    let out = decode_all(&bundle(&[
        good.clone(),
        good,
        serde_json::json!({"resourceType": "Patient"}),
        no_unit,
        bad_unit,
        impossible,
        text_value,
        group,
    ]));
    let problems: Vec<String> = out
        .iter()
        .filter_map(|d| d.as_ref().err())
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        vec![
            "entry[3].resource.valueQuantity.unit: missing: heart rate needs a unit (/min)",
            "entry[4].resource.valueQuantity.code: UCUM \"Hz\" is not a unit Vigil reads for heart rate (/min)",
            "entry[5].resource.valueQuantity: `value` 900 /min is not a possible heart rate (0 to 300 /min)",
            "entry[6].resource.valueQuantity.value: must be a number, found \"80\"",
            "entry[7].resource.subject: \"Group/g\" is not a reference to a Patient",
        ]
    );
    // The impossible value's patient is known: their clinicians are told.
    let impossible = out[4].as_ref().unwrap_err();
    assert_eq!(
        impossible.subject.as_ref().map(|s| s.patient.as_str()),
        Some("p-1")
    );
    assert_eq!(out.len(), 7);
}

#[test]
fn references_give_the_id_part_wherever_it_is() {
    for (reference, id) in [
        ("Patient/p-123", "p-123"),
        ("https://ehr.example/fhir/Patient/p-123", "p-123"),
        ("Patient/45/_history/2", "45"),
    ] {
        let r = hr(
            serde_json::json!({"reference": reference}),
            serde_json::json!({"value": 80, "code": "/min"}),
        );
        assert_eq!(
            one(&serde_json::to_vec(&r).unwrap()).patient().as_str(),
            id,
            "{reference}"
        );
    }
    let by_identifier = hr(
        serde_json::json!({"identifier": {"system": "urn:x", "value": "MRN-9"}}),
        serde_json::json!({"value": 80, "code": "/min"}),
    );
    assert_eq!(
        one(&serde_json::to_vec(&by_identifier).unwrap())
            .patient()
            .as_str(),
        "MRN-9"
    );
    // A transaction's Patient by its urn:uuid fullUrl.
    let obs = hr(
        serde_json::json!({"reference": "urn:uuid:abc"}),
        serde_json::json!({"value": 80, "code": "/min"}),
    );
    let doc = serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": [
        {"fullUrl": "urn:uuid:abc", "resource": {"resourceType": "Patient", "identifier": [{"value": "H-77"}]}},
        {"resource": obs},
    ]});
    let out = decode_all(&serde_json::to_vec(&doc).unwrap());
    assert_eq!(out[0].as_ref().unwrap().obs.patient().as_str(), "H-77");
    assert_eq!(out[0].as_ref().unwrap().entry, Some(1));
}

#[test]
fn documents_that_are_not_observations_are_refused_in_words() {
    assert_eq!(
        problem(b"{\"resourceType\": \"Patient\"}").to_string(),
        "resourceType: \"Patient\" is not read (Observation, or a Bundle of them)"
    );
    assert_eq!(
        problem(b"[1, 2]").to_string(),
        "resourceType: missing: the document is not a FHIR resource"
    );
    assert!(
        problem(b"{\"resourceType\": ")
            .reason
            .starts_with("not JSON: EOF")
    );
    let searchset = br#"{"resourceType": "Bundle", "type": "searchset", "entry": []}"#;
    assert_eq!(
        problem(searchset).to_string(),
        "type: Bundle type \"searchset\" is not read (transaction, batch or collection)"
    );
}

/// Every row of the mapping table, through FHIR: an observation code gives its vital, a unit
/// its unit, an answer its ACVPU level.
#[test]
fn every_row_of_the_mapping_table_decodes_through_fhir() {
    let t = table();
    for row in &t.rows {
        let system = row.system.fhir_uri();
        let base = |code: serde_json::Value| {
            serde_json::json!({
                "resourceType": "Observation", "status": "final", "code": {"coding": [code]},
                "subject": {"reference": "Patient/p"}, "effectiveDateTime": "2026-01-05T10:00:00Z",
            })
        };
        match (row.kind, t.concept(row.system, row.code).map(|f| f.concept)) {
            ("vital", Some(Concept::Vital { vital, method })) => {
                let mut r = base(serde_json::json!({"system": system, "code": row.code}));
                let (value, unit) = match vital {
                    Vital::SupplementalOxygen if row.code == "3151-8" => {
                        (serde_json::json!(2), "L/min")
                    }
                    Vital::SupplementalOxygen => (serde_json::json!(28), "%"),
                    Vital::Consciousness => (serde_json::json!(null), ""),
                    v => (serde_json::json!(typical(v)), v.accepted_units()[0].ucum()),
                };
                if vital == Vital::Consciousness {
                    r["valueCodeableConcept"] = serde_json::json!({"coding": [{"system": "http://snomed.info/sct", "code": "450847001"}]});
                } else {
                    r["valueQuantity"] = serde_json::json!({"value": value, "system": "http://unitsofmeasure.org", "code": unit});
                }
                let obs = one(&serde_json::to_vec(&r).unwrap());
                assert_eq!(obs.vital(), vital, "line {}", row.line);
                if let Some(m) = method {
                    assert_eq!(
                        obs.detail(),
                        Some(&Detail::Glucose { method: m }),
                        "line {}",
                        row.line
                    );
                }
                if vital == Vital::Consciousness {
                    assert_eq!(obs.value(), Value::Acvpu(Acvpu::P), "line {}", row.line);
                }
            }
            ("panel", Some(Concept::Panel)) => {
                let mut r = base(serde_json::json!({"system": system, "code": row.code}));
                r["component"] = serde_json::json!([{"code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}, "valueQuantity": {"value": 120, "code": "mm[Hg]"}}]);
                assert_eq!(
                    one(&serde_json::to_vec(&r).unwrap()).vital(),
                    Vital::SystolicBp,
                    "line {}",
                    row.line
                );
            }
            ("unread", Some(Concept::Unread { why })) => {
                let mut r = base(serde_json::json!({"system": system, "code": row.code}));
                r["valueQuantity"] = serde_json::json!({"value": 80, "code": "mm[Hg]"});
                let p = problem(&serde_json::to_vec(&r).unwrap());
                assert!(p.reason.ends_with(why), "line {}: {p}", row.line);
            }
            ("unit", None) => {
                let unit = t.unit(row.system, row.code).unwrap();
                let vital = Vital::ALL
                    .into_iter()
                    .find(|v| v.accepted_units().contains(&unit))
                    .unwrap();
                let coding = t
                    .code_of(crate::formats::codes::System::Loinc, vital, None)
                    .unwrap();
                let value = match unit {
                    Unit::Fraction => 0.5,
                    Unit::Fahrenheit => 98.6,
                    Unit::Kilopascal => 16.0,
                    Unit::MillimolesPerLitre => 6.0,
                    Unit::LitresPerMinute => 2.0,
                    _ => typical(vital),
                };
                let mut r =
                    base(serde_json::json!({"system": "http://loinc.org", "code": coding.code}));
                r["valueQuantity"] =
                    serde_json::json!({"value": value, "system": system, "code": row.code});
                let obs = one(&serde_json::to_vec(&r).unwrap());
                assert_eq!(obs.unit(), Some(unit), "line {}", row.line);
            }
            ("answer", None) => {
                let level = t.answer(row.system, row.code).unwrap();
                let mut r = base(
                    serde_json::json!({"system": "http://snomed.info/sct", "code": "1104441000000107"}),
                );
                r["valueCodeableConcept"] =
                    serde_json::json!({"coding": [{"system": system, "code": row.code}]});
                assert_eq!(
                    one(&serde_json::to_vec(&r).unwrap()).value(),
                    Value::Acvpu(level),
                    "line {}",
                    row.line
                );
            }
            (kind, concept) => panic!("line {}: {kind} read as {concept:?}", row.line),
        }
    }
}

/// A value in the first accepted unit of each vital.
pub(crate) fn typical(vital: Vital) -> f64 {
    match vital {
        Vital::RespiratoryRate => 18.0,
        Vital::HeartRate => 80.0,
        Vital::Spo2 => 96.0,
        Vital::Temperature => 37.0,
        Vital::SystolicBp => 120.0,
        Vital::DiastolicBp => 70.0,
        Vital::Glucose => 110.0,
        Vital::SupplementalOxygen => 2.0,
        _ => 1.0,
    }
}

#[test]
fn the_encoder_writes_what_the_decoder_reads_back() {
    let mut ids = Interner::default();
    let cases = [
        (Vital::HeartRate, Value::Number(72.5), Some(Unit::PerMinute)),
        (Vital::Spo2, Value::Number(0.97), Some(Unit::Fraction)),
        (
            Vital::Temperature,
            Value::Number(100.4),
            Some(Unit::Fahrenheit),
        ),
        (
            Vital::SystolicBp,
            Value::Number(16.1),
            Some(Unit::Kilopascal),
        ),
        (
            Vital::DiastolicBp,
            Value::Number(61.0),
            Some(Unit::MillimetresOfMercury),
        ),
        (
            Vital::SupplementalOxygen,
            Value::Number(2.0),
            Some(Unit::LitresPerMinute),
        ),
        (
            Vital::SupplementalOxygen,
            Value::Number(35.0),
            Some(Unit::Percent),
        ),
        (Vital::Consciousness, Value::Acvpu(Acvpu::C), None),
        (
            Vital::RespiratoryRate,
            Value::Number(1e-7),
            Some(Unit::PerMinute),
        ),
    ];
    for (vital, value, unit) in cases {
        let obs = Observation::new(
            ids.get("sim-00001").unwrap(),
            ids.get("mon|07").ok(),
            EventTime::from_micros(1_767_571_200_123_456),
            vital,
            value,
            unit,
        )
        .unwrap();
        let json = encode::observation(&obs).unwrap().to_string();
        assert_eq!(one(json.as_bytes()), obs, "{json}");
    }
    for method in [Method::Cgm, Method::Meter] {
        let obs = Observation::with_detail(
            ids.get("h-1").unwrap(),
            None,
            EventTime::from_micros(0),
            Vital::Glucose,
            Value::Number(5.5),
            Some(Unit::MillimolesPerLitre),
            Some(Detail::Glucose { method }),
        )
        .unwrap();
        let json = encode::observation(&obs).unwrap().to_string();
        assert_eq!(one(json.as_bytes()), obs, "{json}");
    }
}

/// The one-pass path gives what the general decoder gives, whenever it gives anything: on every
/// fixture, and on the encoder's output for a simulated cohort (with devices, fractions,
/// Fahrenheit, kPa, flows).
#[test]
fn the_one_pass_path_agrees_with_the_general_decoder() {
    let mut docs: Vec<Vec<u8>> = ["examples", "phd-ig-examples", "bundles"]
        .iter()
        .flat_map(|dir| crate::formats::tests::fixtures(&format!("fhir/{dir}")))
        .collect();
    let mut sim =
        crate::sources::simulator::Simulator::new(&crate::sources::simulator::SimulatorConfig {
            patients: 4,
            hours: 1,
            seed: 3,
            ..Default::default()
        });
    let mut items = Vec::new();
    use crate::sources::Source;
    while sim.fill(4096, &mut items).unwrap() {}
    for item in &items {
        if let crate::sources::SourceItem::Observation(o, _) = item {
            docs.push(encode::observation(o).unwrap().to_string().into_bytes());
        }
    }
    let mut fast_count = 0;
    for doc in &docs {
        let mut ids = Interner::default();
        let Some(fast) = fast::observation(doc, &mut ids) else {
            continue;
        };
        fast_count += 1;
        let mut general = Vec::new();
        let value: serde_json::Value = serde_json::from_slice(doc).unwrap();
        decode_document(&value, &mut Interner::default(), &mut general);
        assert_eq!(general, vec![Ok(fast)], "{}", String::from_utf8_lossy(doc));
    }
    assert!(fast_count > 1000, "{fast_count} of {}", docs.len());
}
