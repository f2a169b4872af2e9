use super::*;
use crate::exact::Exact;
use crate::formats::codes::{Concept, table};
use crate::observation::Reading;

fn fixture(path: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/interop/hl7v2/");
    std::fs::read(format!("{dir}{path}")).unwrap()
}

fn decode_all(bytes: &[u8]) -> Vec<Decoded> {
    let mut out = Vec::new();
    decode(bytes, &mut Interner::default(), &mut out);
    out
}

fn summary(out: &[Decoded]) -> Vec<String> {
    out.iter()
        .map(|d| match d {
            Ok(p) => format!(
                "{} {} {} {} {}",
                p.obs.patient(),
                p.obs.device().map_or("-", Identifier::as_str),
                p.obs.time(),
                p.obs.vital(),
                p.obs.value()
            ),
            Err(p) => p.to_string(),
        })
        .collect()
}

#[test]
fn an_ihe_gateway_message_gives_its_vitals_with_device_and_time() {
    let out = decode_all(&fixture(
        "pcd01/ihe-pcd-tf2-E.1.2-acme-gateway-episodic-nibp.hl7",
    ));
    assert_eq!(
        summary(&out),
        vec![
            "12345 080019FFFE3ED02D172.16.172.135 2011-06-02T04:58:42Z systolic_bp 111",
            "12345 080019FFFE3ED02D172.16.172.135 2011-06-02T04:58:42Z diastolic_bp 60",
            "segment 10 (OBX-3): MDC 150023 (MDC_PRESS_BLD_NONINV_MEAN): NEWS2 scores systolic pressure; the mean is not read",
            "12345 080019FFFE3ED02D172.16.172.135 2011-06-02T04:58:42Z heart_rate 63",
        ]
    );
    assert_eq!(out[0].as_ref().unwrap().entry, Some(8));
}

#[test]
fn continua_messages_give_fahrenheit_and_a_meter_glucose_with_the_containing_device() {
    let out = decode_all(&fixture("pcd01/ipf-continua-wan-thermometer.hl7"));
    let temp = &out[0].as_ref().unwrap().obs;
    assert_eq!(temp.reading(), Reading::Quantity(Exact::integer(37)));
    assert_eq!(temp.unit(), Some(Unit::Fahrenheit));
    assert_eq!(
        temp.device().map(Identifier::as_str),
        Some("0123456789ABCDEF")
    );
    assert_eq!(out.len(), 1);

    let out = decode_all(&fixture("pcd01/ipf-continua-wan-glucose.hl7"));
    let glucose = &out[0].as_ref().unwrap().obs;
    assert_eq!(glucose.vital(), Vital::Glucose);
    assert_eq!(
        glucose.detail(),
        Some(&Detail::Glucose {
            method: Method::Meter
        })
    );
    assert_eq!(
        glucose.device().map(Identifier::as_str),
        Some("0123456789ABCDEF")
    );
    assert_eq!(glucose.time().to_rfc3339(), "2009-07-15T07:07:07Z");
    // The context rows (exercise, medication, carbohydrates, meter status) are named.
    assert_eq!(out.len(), 6);
    let lines = summary(&out);
    assert!(
        lines[1].starts_with(
            "segment 6 (OBX-3): no code Vigil reads (MDC 8417760 MDC_CTXT_GLU_EXERCISE"
        ),
        "{lines:#?}"
    );
}

#[test]
fn status_x_is_not_scored_and_each_row_says_so() {
    let out = decode_all(&fixture(
        "pcd01/ihe-pcd-tf2-E.1.1-philips-physio-monitor.hl7",
    ));
    let lines = summary(&out);
    assert!(
        lines.contains(
            &"segment 8 (OBX-11): status X: the result cannot be obtained, not scored".to_owned()
        ),
        "{lines:#?}"
    );
    assert!(out.iter().all(Result::is_err));
}

#[test]
fn a_time_without_offset_takes_the_header_s_and_none_at_all_is_named() {
    let msg = "MSH|^~\\&|A||||20260105100000+0100||ORU^R01|1|P|2.5\rPID|||p-1\rOBR|1|||x|||202601051000\rOBX|1|NM|8867-4^Heart rate^LN||71|/min^^UCUM|||||F";
    let out = decode_all(msg.as_bytes());
    assert_eq!(
        summary(&out),
        vec!["p-1 - 2026-01-05T09:00:00Z heart_rate 71"]
    );
    let msg = "MSH|^~\\&|A||||20260105100000||ORU^R01|1|P|2.5\rPID|||p-1\rOBX|1|NM|8867-4^Heart rate^LN||71|/min^^UCUM|||||F|||20260105100000";
    assert_eq!(
        summary(&decode_all(msg.as_bytes())),
        vec!["segment 3 (OBX-14): \"20260105100000\" has no UTC offset, nor has MSH-7"]
    );
    let msg = "MSH|^~\\&|A||||20260105100000+0000||ORU^R01|1|P|2.5\rPID|||p-1\rOBX|1|NM|8867-4^Heart rate^LN||71|/min^^UCUM|||||F|||20260105";
    assert!(summary(&decode_all(msg.as_bytes()))[0].contains("not a time to the minute"));
}

#[test]
fn values_units_and_escapes_are_checked_with_segment_and_field() {
    let head = "MSH|^~\\&|A||||20260105100000+0000||ORU^R01|1|P|2.6\rPID|||p\\T\\1^^^H\rOBR|1|||x|||20260105100000+0000\r";
    let cases = [
        (
            "OBX|1|NM|8867-4^^LN||71|/min^^UCUM",
            "p&1 - 2026-01-05T10:00:00Z heart_rate 71",
        ),
        (
            "OBX|1|SN|8867-4^^LN||=^72|/min",
            "p&1 - 2026-01-05T10:00:00Z heart_rate 72",
        ),
        (
            "OBX|1|SN|8867-4^^LN||>^72|/min",
            "segment 4 (OBX-5): \">^72\" is a bound or a range, not a measurement",
        ),
        (
            "OBX|1|NM|8867-4^^LN||7e1|/min",
            "segment 4 (OBX-5): \"7e1\" is not a number",
        ),
        (
            "OBX|1|NM|8867-4^^LN||71~72|/min",
            "segment 4 (OBX-5): repeats: one value is scored, not a list",
        ),
        (
            "OBX|1|ST|8867-4^^LN||71|/min",
            "segment 4 (OBX-2): value type \"ST\": heart rate needs NM or SN",
        ),
        (
            "OBX|1|NM|8867-4^^LN||71|",
            "segment 4 (OBX-6): missing: heart rate needs a unit (/min)",
        ),
        (
            "OBX|1|NM|8867-4^^LN||71|Hz^^UCUM",
            "segment 4 (OBX-6): UCUM Hz is not a unit Vigil reads for heart rate (/min)",
        ),
        (
            "OBX|1|NM|8867-4^^LN||900|/min",
            "segment 4 (OBX-5): `value` 900 /min is not a possible heart rate (0 to 300 /min)",
        ),
        (
            "OBX|1|NM|8867-4^^LN||71|/min|||||D",
            "segment 4 (OBX-11): status D: deleted, not scored",
        ),
        (
            "OBX|1|NM|8867-4\\Q\\^^LN||71|/min",
            "segment 4 (OBX-3): unknown escape sequence \"\\\\Q\\\\\"",
        ),
        (
            "OBX|1|CWE|1104441000000107^ACVPU^SCT||300202002^Responds to voice^SCT",
            "p&1 - 2026-01-05T10:00:00Z consciousness V",
        ),
        (
            "OBX|1|CWE|1104441000000107^ACVPU^SCT||Z",
            "segment 4 (OBX-5): \"Z\" is not an ACVPU answer (a SNOMED CT answer such as 248234008^Mentally alert^SCT, or A, C, V, P or U)",
        ),
    ];
    for (obx, expected) in cases {
        let out = decode_all(format!("{head}{obx}").as_bytes());
        assert_eq!(summary(&out), vec![expected.to_owned()], "{obx}");
    }
    // The impossible value's patient is known: their clinicians are told.
    let out = decode_all(format!("{head}OBX|1|NM|8867-4^^LN||900|/min").as_bytes());
    assert!(out[0].as_ref().unwrap_err().subject.is_some());
}

#[test]
fn messages_vigil_does_not_read_are_refused_at_their_header() {
    for (file, expected) in [
        (
            "other-oru/ihe-pcd-tf2-E.3.1-mindray-spo2-low-alarm-ORU_R40.hl7",
            "segment 1 (MSH-9): message type ORU^R40 is not read (ORU^R01 is)",
        ),
        (
            "pcd01/ipf-pcd01-response-ack.hl7",
            "segment 1 (MSH-9): message type ACK^R01 is not read (ORU^R01 is)",
        ),
        (
            "malformed/hl7apy-first-segment-not-MSH.hl7",
            "segment 1: the first segment is \"PID\", not MSH",
        ),
        (
            "malformed/hl7apy-missing-encoding-chars.hl7",
            "segment 1 (MSH-2): 0 encoding characters (2 to 5: component, repetition, escape, subcomponent)",
        ),
        (
            "malformed/hl7apy-duplicate-encoding-chars.hl7",
            "segment 1 (MSH-2): encoding character '&' is repeated or cannot be a delimiter",
        ),
    ] {
        assert_eq!(
            summary(&decode_all(&fixture(file))),
            vec![expected.to_owned()],
            "{file}"
        );
    }
    let out = summary(&decode_all(&fixture(
        "malformed/python-hl7-non-utf8-byte.hl7",
    )));
    assert!(out[0].starts_with("message is not UTF-8"), "{out:?}");
}

/// Every fixture, valid or not, and every fuzz input: parts or problems, never a panic.
#[test]
fn no_fixture_or_fuzz_input_crashes_the_decoder() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/interop/hl7v2/");
    let mut files = 0;
    for sub in ["pcd01", "other-oru", "malformed", "malformed/nhapi-fuzz"] {
        for entry in std::fs::read_dir(format!("{dir}{sub}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = std::fs::read(&path).unwrap();
                let out = decode_all(&bytes);
                assert!(
                    !out.is_empty() || bytes.windows(3).any(|w| w == b"OBX"),
                    "{}",
                    path.display()
                );
                files += 1;
            }
        }
    }
    assert!(files > 60, "{files}");
}

/// Every observation and unit row of the mapping table, through HL7 v2.
#[test]
fn every_row_of_the_mapping_table_decodes_through_hl7() {
    let t = table();
    let head = "MSH|^~\\&|A||||20260105100000+0000||ORU^R01|1|P|2.6\rPID|||p\rOBR|1|||x|||20260105100000+0000\r";
    for row in &t.rows {
        let sys = row.system.hl7_name();
        let obx = match (row.kind, t.concept(row.system, row.code).map(|f| f.concept)) {
            (
                "vital",
                Some(Concept::Vital {
                    vital: Vital::Consciousness,
                    ..
                }),
            ) => {
                format!("OBX|1|CWE|{}^^{sys}||U", row.code)
            }
            ("vital", Some(Concept::Vital { vital, .. })) => {
                let unit = match (vital, row.code) {
                    (_, "3151-8") => Unit::LitresPerMinute,
                    (Vital::SupplementalOxygen, _) => Unit::Percent,
                    (v, _) => v.accepted_units()[0],
                };
                let value = if unit == Unit::Percent && vital == Vital::SupplementalOxygen {
                    30.0
                } else {
                    crate::formats::fhir::tests::typical(vital)
                };
                format!(
                    "OBX|1|NM|{}^^{sys}||{value}|{}^^UCUM",
                    row.code,
                    unit.ucum()
                )
            }
            ("unit", _) => {
                let unit = t.unit(row.system, row.code).unwrap();
                let vital = Vital::ALL
                    .into_iter()
                    .find(|v| v.accepted_units().contains(&unit))
                    .unwrap();
                let code = t.code_of(System::Loinc, vital, None).unwrap().code;
                let value = match unit {
                    Unit::Fraction => 0.5,
                    Unit::Fahrenheit => 98.6,
                    Unit::Kilopascal => 16.0,
                    Unit::MillimolesPerLitre => 6.0,
                    Unit::LitresPerMinute => 2.0,
                    _ => crate::formats::fhir::tests::typical(vital),
                };
                format!("OBX|1|NM|{code}^^LN||{value}|{}^^{sys}", row.code)
            }
            ("answer", _) => format!("OBX|1|CWE|1104441000000107^^SCT||{}^^{sys}", row.code),
            _ => continue,
        };
        let out = decode_all(format!("{head}{obx}").as_bytes());
        let part = out[0]
            .as_ref()
            .unwrap_or_else(|p| panic!("line {}: {p}", row.line));
        match row.kind {
            "vital" => assert_eq!(
                part.obs.vital().wire_name(),
                row.maps_to,
                "line {}",
                row.line
            ),
            "unit" => assert_eq!(
                part.obs.unit(),
                t.unit(row.system, row.code),
                "line {}",
                row.line
            ),
            _ => assert_eq!(
                part.obs.value(),
                Value::Acvpu(t.answer(row.system, row.code).unwrap()),
                "line {}",
                row.line
            ),
        }
    }
}

#[test]
fn the_encoder_writes_what_the_decoder_reads_back() {
    let mut ids = Interner::default();
    let patient = ids.get("sim|00001").unwrap();
    let device = ids.get("mon^7").ok();
    let t = EventTime::from_micros(1_767_571_200_123_456);
    let all = [
        Observation::new(
            patient.clone(),
            device.clone(),
            t,
            Vital::HeartRate,
            Value::Number(72.5),
            Some(Unit::PerMinute),
        ),
        Observation::new(
            patient.clone(),
            device.clone(),
            t,
            Vital::Spo2,
            Value::Number(0.97),
            Some(Unit::Fraction),
        ),
        Observation::new(
            patient.clone(),
            None,
            t,
            Vital::SupplementalOxygen,
            Value::Number(2.0),
            Some(Unit::LitresPerMinute),
        ),
        Observation::new(
            patient.clone(),
            device.clone(),
            EventTime::from_micros(0),
            Vital::Consciousness,
            Value::Acvpu(Acvpu::U),
            None,
        ),
    ]
    .map(Result::unwrap);
    let refs: Vec<&Observation> = all.iter().collect();
    let text = encode::message(7, &refs).unwrap();
    let out = decode_all(text.as_bytes());
    let back: Vec<Observation> = out.into_iter().map(|d| d.unwrap().obs).collect();
    assert_eq!(back, all.to_vec(), "{text}");
}
