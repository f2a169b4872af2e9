use super::*;
use proptest::prelude::*;

fn decode(json: &str) -> Result<Observation, DecodeError> {
    Observation::from_json(json.as_bytes())
}

fn message(vital: &str, value: &str, unit: Option<&str>) -> String {
    let unit = unit
        .map(|u| format!(r#", "unit": "{u}""#))
        .unwrap_or_default();
    format!(
        r#"{{"patient": "p-000123", "device": "mon-07", "time": "2026-11-24T10:15:00.250Z", "vital": "{vital}", "value": {value}{unit}}}"#
    )
}

fn reading(vital: &str, value: &str, unit: Option<&str>) -> Result<Reading, DecodeError> {
    decode(&message(vital, value, unit)).map(|o| o.reading())
}

fn quantity(v: f64) -> Reading {
    Reading::Quantity(Exact::from_f64(v).unwrap())
}

#[test]
fn decodes_the_design_example() {
    let obs = decode(&message("heart_rate", "88", Some("/min"))).unwrap();
    assert_eq!(obs.patient().as_str(), "p-000123");
    assert_eq!(obs.device().map(Identifier::as_str), Some("mon-07"));
    assert_eq!(obs.time().to_rfc3339(), "2026-11-24T10:15:00.250Z");
    assert_eq!(obs.time().millis(), 1_795_515_300_250);
    assert_eq!(obs.vital(), Vital::HeartRate);
    assert_eq!(obs.value(), Value::Number(88.0));
    assert_eq!(obs.unit(), Some(Unit::PerMinute));
    assert_eq!(obs.reading(), quantity(88.0));
}

#[test]
fn converts_units_exactly() {
    assert_eq!(
        reading("temperature", "100.4", Some("[degF]")),
        Ok(quantity(38.0))
    );
    assert_eq!(
        reading("temperature", "37.2", Some("Cel")),
        Ok(quantity(37.2))
    );
    assert_eq!(reading("spo2", "0.97", Some("1")), Ok(quantity(97.0)));
    assert_eq!(reading("spo2", "0.965", Some("1")), Ok(quantity(96.5)));
    assert_eq!(reading("spo2", "97", Some("%")), Ok(quantity(97.0)));
    assert_eq!(
        reading("systolic_bp", "16", Some("kPa")),
        Ok(Reading::Quantity(
            Exact::ratio(16 * 760_000, 101_325).unwrap()
        ))
    );
    assert_eq!(
        reading("diastolic_bp", "80", Some("mm[Hg]")),
        Ok(quantity(80.0))
    );
    assert_eq!(
        reading("respiratory_rate", "18", Some("/min")),
        Ok(quantity(18.0))
    );
}

#[test]
fn reads_supplemental_oxygen_as_flow_or_fio2() {
    let flow = |v: f64| Reading::Oxygen(OxygenDelivery::Flow(Exact::from_f64(v).unwrap()));
    let fio2 = |v: f64| Reading::Oxygen(OxygenDelivery::Fio2(Exact::from_f64(v).unwrap()));
    assert_eq!(
        reading("supplemental_oxygen", "0", Some("L/min")),
        Ok(flow(0.0))
    );
    assert_eq!(
        reading("supplemental_oxygen", "2", Some("L/min")),
        Ok(flow(2.0))
    );
    assert_eq!(
        reading("supplemental_oxygen", "21", Some("%")),
        Ok(fio2(21.0))
    );
    assert_eq!(
        reading("supplemental_oxygen", "0.4", Some("1")),
        Ok(fio2(40.0))
    );
    assert!(!OxygenDelivery::Flow(Exact::integer(0)).on_oxygen());
    assert!(OxygenDelivery::Flow(Exact::ratio(1, 2).unwrap()).on_oxygen());
    assert!(!OxygenDelivery::Fio2(Exact::integer(21)).on_oxygen());
    assert!(OxygenDelivery::Fio2(Exact::integer(22)).on_oxygen());
    assert!(reading("supplemental_oxygen", "20", Some("%")).is_err());
}

#[test]
fn reads_every_acvpu_level() {
    for level in Acvpu::ALL {
        let value = format!("\"{level}\"");
        assert_eq!(
            reading("consciousness", &value, None),
            Ok(Reading::Consciousness(level))
        );
    }
    assert_eq!(
        reading("consciousness", "\"X\"", None)
            .unwrap_err()
            .to_string(),
        "`value` must be an ACVPU letter (A, C, V, P or U) for consciousness, found \"X\""
    );
    assert_eq!(
        reading("consciousness", "\"a\"", None).unwrap_err().field(),
        Some("value")
    );
    assert_eq!(
        reading("consciousness", "1", None).unwrap_err().to_string(),
        "`value` must be an ACVPU letter (A, C, V, P or U) for consciousness, found 1"
    );
    assert_eq!(
        reading("consciousness", "\"A\"", Some("/min"))
            .unwrap_err()
            .to_string(),
        "`unit` must be absent for consciousness (ACVPU has no unit), found \"/min\""
    );
}

#[test]
fn rejects_impossible_values_with_the_reason() {
    let cases = [
        (
            "heart_rate",
            "900",
            "/min",
            "`value` 900 /min is not a possible heart rate (0 to 300 /min)",
        ),
        (
            "heart_rate",
            "-1",
            "/min",
            "`value` -1 /min is not a possible heart rate (0 to 300 /min)",
        ),
        (
            "spo2",
            "101",
            "%",
            "`value` 101 % is not a possible SpO2 (0 to 100 %)",
        ),
        (
            "spo2",
            "1.02",
            "1",
            "`value` 1.02 1 (= 102 %) is not a possible SpO2 (0 to 100 %)",
        ),
        (
            "temperature",
            "98.6",
            "Cel",
            "`value` 98.6 Cel is not a possible body temperature (10 to 47 Cel)",
        ),
        (
            "temperature",
            "212",
            "[degF]",
            "`value` 212 [degF] (= 100 Cel) is not a possible body temperature (10 to 47 Cel)",
        ),
        (
            "respiratory_rate",
            "150",
            "/min",
            "`value` 150 /min is not a possible respiratory rate (0 to 100 /min)",
        ),
        (
            "systolic_bp",
            "400",
            "mm[Hg]",
            "`value` 400 mm[Hg] is not a possible systolic blood pressure (10 to 300 mm[Hg])",
        ),
        (
            "diastolic_bp",
            "1",
            "mm[Hg]",
            "`value` 1 mm[Hg] is not a possible diastolic blood pressure (5 to 250 mm[Hg])",
        ),
        (
            "supplemental_oxygen",
            "100",
            "L/min",
            "`value` 100 L/min is not a possible supplemental oxygen (0 to 80 L/min)",
        ),
        (
            "heart_rate",
            "1e300",
            "/min",
            "`value` 1e300 /min is not a possible heart rate (0 to 300 /min)",
        ),
    ];
    for (vital, value, unit, expected) in cases {
        let err = reading(vital, value, Some(unit)).unwrap_err();
        assert_eq!(err.to_string(), expected);
        assert_eq!(err.field(), Some("value"));
    }
}

#[test]
fn accepts_both_edges_of_every_possible_range() {
    let edges = [
        ("respiratory_rate", "0", "/min"),
        ("respiratory_rate", "100", "/min"),
        ("heart_rate", "300", "/min"),
        ("spo2", "0", "%"),
        ("spo2", "100", "%"),
        ("spo2", "1", "1"),
        ("temperature", "10", "Cel"),
        ("temperature", "47", "Cel"),
        ("temperature", "50", "[degF]"),
        ("systolic_bp", "10", "mm[Hg]"),
        ("systolic_bp", "300", "mm[Hg]"),
        ("diastolic_bp", "5", "mm[Hg]"),
        ("diastolic_bp", "250", "mm[Hg]"),
        ("supplemental_oxygen", "80", "L/min"),
        ("supplemental_oxygen", "100", "%"),
    ];
    for (vital, value, unit) in edges {
        assert!(
            reading(vital, value, Some(unit)).is_ok(),
            "{vital} {value} {unit}"
        );
    }
    assert!(reading("spo2", "100.0001", Some("%")).is_err());
    assert!(reading("temperature", "47.01", Some("Cel")).is_err());
    assert!(reading("temperature", "9.99", Some("Cel")).is_err());
}

#[test]
fn rejects_wrong_and_missing_units() {
    let err = reading("heart_rate", "88", Some("bpm")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`unit` \"bpm\" is not a unit of heart rate (accepted: /min)"
    );
    assert_eq!(err.field(), Some("unit"));
    let err = reading("temperature", "37", Some("/min")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`unit` \"/min\" is not a unit of body temperature (accepted: Cel, [degF])"
    );
    let err = reading("spo2", "97", None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`unit` is required for spo2 (accepted: %, 1)"
    );
    assert_eq!(err.field(), Some("unit"));
}

#[test]
fn names_the_field_of_every_structural_problem() {
    let cases: [(&str, Option<&str>, &str); 14] = [
        ("not json", None, "message is not a JSON object"),
        ("[1, 2]", None, "message is not a JSON object"),
        ("42", None, "message is not a JSON object"),
        (
            r#"{"time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("patient"),
            "missing required field `patient`",
        ),
        (
            r#"{"patient": null, "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("patient"),
            "missing required field `patient`",
        ),
        (
            r#"{"patient": 7, "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("patient"),
            "`patient` must be a string, found a number",
        ),
        (
            r#"{"patient": "", "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("patient"),
            "`patient` \"\" is empty",
        ),
        (
            r#"{"patient": "p\u0007", "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("patient"),
            "`patient` \"p\\u{7}\" contains the control character U+0007",
        ),
        (
            r#"{"patient": "p", "device": ["x"], "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("device"),
            "`device` must be a string, found an array",
        ),
        (
            r#"{"patient": "p", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("time"),
            "missing required field `time`",
        ),
        (
            r#"{"patient": "p", "time": "2026-11-24 10:15", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("time"),
            "`time` \"2026-11-24 10:15\" is not RFC 3339",
        ),
        (
            r#"{"patient": "p", "time": "2026-11-24T10:15:00", "vital": "spo2", "value": 97, "unit": "%"}"#,
            Some("time"),
            "`time` \"2026-11-24T10:15:00\" is not RFC 3339",
        ),
        (
            r#"{"patient": "p", "time": "2026-11-24T10:15:00Z", "vital": "ketones", "value": 5, "unit": "mmol/L"}"#,
            Some("vital"),
            "`vital` \"ketones\" is not a known vital",
        ),
        (
            r#"{"patient": "p", "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": "97", "unit": "%"}"#,
            Some("value"),
            "`value` must be a number for spo2, found a string",
        ),
    ];
    for (json, field, prefix) in cases {
        let err = decode(json).unwrap_err();
        assert!(err.to_string().starts_with(prefix), "{json}: {err}");
        assert_eq!(err.field(), field, "{json}");
    }
}

#[test]
fn rejects_oversize_and_non_utf8_messages() {
    let padding = "x".repeat(MAX_MESSAGE_BYTES);
    let big = format!(r#"{{"patient": "p", "pad": "{padding}"}}"#);
    assert_eq!(
        decode(&big).unwrap_err(),
        DecodeError::Oversize { bytes: big.len() }
    );
    assert_eq!(
        Observation::from_json(b"{\"patient\": \"\xff\"}").unwrap_err(),
        DecodeError::NotUtf8 { offset: 13 }
    );
    // Exactly at the limit is fine as far as size goes.
    let fits = message("spo2", "97", Some("%"));
    let pad = "y".repeat(MAX_MESSAGE_BYTES - fits.len() - r#", "pad": """#.len());
    let at_limit = fits.replacen('}', &format!(r#", "pad": "{pad}"}}"#), 1);
    assert_eq!(at_limit.len(), MAX_MESSAGE_BYTES);
    assert!(decode(&at_limit).is_ok());
}

#[test]
fn ignores_unknown_fields_and_accepts_null_optionals() {
    let json = r#"{"patient": "p", "device": null, "time": "2026-11-24T11:15:00+01:00", "vital": "heart_rate", "value": 60, "unit": "/min", "source": "fhir", "loinc": "8867-4"}"#;
    let obs = decode(json).unwrap();
    assert_eq!(obs.device(), None);
    assert_eq!(obs.time().to_rfc3339(), "2026-11-24T10:15:00Z");
}

#[test]
fn rejects_repeated_fields() {
    let json = r#"{"patient": "p", "patient": "q", "time": "2026-11-24T10:15:00Z", "vital": "spo2", "value": 97, "unit": "%"}"#;
    assert!(matches!(decode(json), Err(DecodeError::NotJson { .. })));
}

#[test]
fn identifiers_follow_the_wire_rules() {
    assert!(Identifier::new(&"é".repeat(64)).is_ok());
    assert_eq!(
        Identifier::new(&"é".repeat(65)),
        Err(IdentifierError::TooLong { chars: 65 })
    );
    assert_eq!(Identifier::new(""), Err(IdentifierError::Empty));
    assert_eq!(
        Identifier::new("a\nb"),
        Err(IdentifierError::ControlCharacter { code: 10 })
    );
}

#[test]
fn truncates_sub_microsecond_digits_and_keeps_offsets() {
    let t = EventTime::parse_rfc3339("2026-11-24T10:15:00.123456789Z").unwrap();
    assert_eq!(t.micros() % 1_000_000, 123_456);
    assert_eq!(t.to_rfc3339(), "2026-11-24T10:15:00.123456Z");
    let before_epoch = EventTime::parse_rfc3339("1969-12-31T23:59:59.5Z").unwrap();
    assert_eq!(before_epoch.millis(), -500);
}

fn arb_observation() -> impl Strategy<Value = Observation> {
    let id = "[a-zA-Z0-9_.-]{1,64}";
    let vital = prop::sample::select(Vital::ALL.to_vec());
    (
        id,
        proptest::option::of(id),
        -2_000_000_000_000_000i64..4_000_000_000_000_000,
        vital,
        0.0f64..1.0,
        0usize..3,
        0usize..5,
    )
        .prop_filter_map("value in range", |(p, d, t, vital, x, u, a)| {
            let patient = Identifier::new(&p).ok()?;
            let device = d.and_then(|d| Identifier::new(&d).ok());
            if vital == Vital::Consciousness {
                return Observation::new(
                    patient,
                    device,
                    EventTime::from_micros(t),
                    vital,
                    Value::Acvpu(Acvpu::ALL[a]),
                    None,
                )
                .ok();
            }
            if !vital.is_bedside() {
                return device_kind(patient, device, EventTime::from_micros(t), vital, x, a);
            }
            let units = vital.accepted_units();
            let unit = units[u % units.len()];
            let (lo, hi) = match unit {
                Unit::Fraction => (0.21, 1.0),
                Unit::Fahrenheit => (50.0, 116.0),
                Unit::Kilopascal => (1.5, 33.0),
                Unit::Percent if vital == Vital::SupplementalOxygen => (21.0, 100.0),
                _ => (10.0, 80.0),
            };
            let value = ((lo + x * (hi - lo)) * 100.0).round() / 100.0;
            Observation::new(
                patient,
                device,
                EventTime::from_micros(t),
                vital,
                Value::Number(value),
                Some(unit),
            )
            .ok()
        })
}

/// An observation of a v1.1 device kind, its value and detail picked by `x` and `a`.
fn device_kind(
    patient: Identifier,
    device: Option<Identifier>,
    time: EventTime,
    vital: Vital,
    x: f64,
    a: usize,
) -> Option<Observation> {
    let id = |s: &str| Identifier::new(s).ok();
    let (value, unit, detail) = match vital {
        Vital::Glucose => (
            Value::Number((40.0 + x * 360.0).round()),
            Some(if a.is_multiple_of(2) {
                Unit::MilligramsPerDecilitre
            } else {
                Unit::MillimolesPerLitre
            }),
            Some(Detail::Glucose {
                method: if a < 3 { Method::Cgm } else { Method::Meter },
            }),
        ),
        Vital::Insulin => {
            let delivery = if a.is_multiple_of(2) {
                Delivery::Bolus
            } else {
                Delivery::Basal
            };
            (
                Value::Number((x * 1000.0).round() / 100.0),
                Some(delivery.unit()),
                Some(Detail::Insulin { delivery }),
            )
        }
        Vital::DeviceStatus => (
            Value::None,
            None,
            Some(Detail::Status(DeviceStatus {
                battery: Some((x * 100.0) as u8),
                signal: (a > 2).then_some(70),
                sensor_start: (a > 1).then_some(time),
                sensor_expires: (a > 3).then(|| EventTime::from_micros(time.micros() + 1)),
                error: if a == 4 { id("E12") } else { None },
            })),
        ),
        coded => {
            let codes: Vec<Code> = Code::ALL
                .into_iter()
                .filter(|c| c.vital() == coded)
                .collect();
            let code = codes[a % codes.len()];
            let detail = match coded {
                Vital::Medication => Some(Detail::Medication {
                    medication: id("metformin")?,
                    schedule: if a > 1 { id("am") } else { None },
                }),
                Vital::Inhaler => Some(Detail::Inhaler { puffs: 1 + a as u8 }),
                _ => None,
            };
            (Value::Code(code), None, detail)
        }
    };
    Observation::with_detail(patient, device, time, vital, value, unit, detail).ok()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// Arbitrary bytes: an observation or a typed error, never a panic.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Observation::from_json(&bytes);
    }

    /// Arbitrary JSON objects over the wire's field names, with values of any JSON type: an
    /// observation or a typed error, never a panic.
    #[test]
    fn arbitrary_json_objects_never_panic(fields in proptest::collection::vec((
        prop::sample::select(vec!["patient", "device", "time", "vital", "value", "unit", "extra"]),
        prop_oneof![
            Just(serde_json::Value::Null),
            any::<bool>().prop_map(serde_json::Value::Bool),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(|f| serde_json::json!(f)),
            any::<i64>().prop_map(|i| serde_json::json!(i)),
            ".{0,80}".prop_map(serde_json::Value::String),
            prop::sample::select(vec!["spo2", "heart_rate", "consciousness", "A", "%", "/min", "[degF]", "kPa", "1", "2026-11-24T10:15:00Z", "2026-13-45T99:99:99Z"]).prop_map(|s| serde_json::json!(s)),
            Just(serde_json::json!([1, "x"])),
            Just(serde_json::json!({"nested": true})),
        ],
    ), 0..9)) {
        let object: serde_json::Map<String, serde_json::Value> = fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let text = serde_json::Value::Object(object).to_string();
        match Observation::from_json(text.as_bytes()) {
            Ok(obs) => prop_assert!(obs.patient().as_str().chars().count() <= MAX_ID_CHARS),
            Err(e) => prop_assert!(!e.to_string().is_empty()),
        }
    }

    /// Encoding then decoding gives the same observation.
    #[test]
    fn wire_round_trip(obs in arb_observation()) {
        let decoded = Observation::from_json(obs.to_json().as_bytes());
        prop_assert_eq!(decoded, Ok(obs));
    }
}

#[test]
fn a_source_decodes_each_id_once_and_shares_it() {
    let mut ids = Interner::default();
    let a = br#"{"patient": "p1", "device": "m1", "time": "2026-11-24T10:15:00Z", "vital": "heart_rate", "value": 80, "unit": "/min"}"#;
    let b = br#"{"patient": "p1", "device": "m1", "time": "2026-11-24T10:15:01Z", "vital": "heart_rate", "value": 81, "unit": "/min"}"#;
    let (x, y) = (
        Observation::decode_with(a, &mut ids).unwrap(),
        Observation::decode_with(b, &mut ids).unwrap(),
    );
    // The same decoding as without the interner, and one allocation per id.
    assert_eq!(x, Observation::decode(a).unwrap());
    assert!(std::ptr::eq(x.patient().as_str(), y.patient().as_str()));
    assert!(std::ptr::eq(
        x.device().unwrap().as_str(),
        y.device().unwrap().as_str()
    ));
    // A bad id is still refused, with its reason, and not remembered.
    let bad = br#"{"patient": "", "time": "2026-11-24T10:15:00Z", "vital": "heart_rate", "value": 80, "unit": "/min"}"#;
    let err = Observation::decode_with(bad, &mut ids).unwrap_err();
    assert!(
        matches!(
            err.error,
            DecodeError::BadIdentifier {
                field: "patient",
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(ids.get("p1").unwrap().as_str(), "p1");
}

#[test]
fn deserializing_an_observation_checks_it_again() {
    // Between workers an observation is serialized; an impossible one must not come back.
    let obs = Observation::new(
        Identifier::new("p1").unwrap(),
        None,
        EventTime::from_micros(0),
        Vital::HeartRate,
        Value::Number(80.0),
        Some(Unit::PerMinute),
    )
    .unwrap();
    let json = serde_json::to_value(&obs).unwrap();
    assert_eq!(
        serde_json::from_value::<Observation>(json.clone()).unwrap(),
        obs
    );
    let bad = serde_json::to_string(&json)
        .unwrap()
        .replace("80.0", "900.0");
    assert!(bad.contains("900.0"), "{bad}");
    let err = serde_json::from_str::<Observation>(&bad).unwrap_err();
    assert!(
        err.to_string().contains("impossible") || err.to_string().contains("900"),
        "{err}"
    );
}

/// The general decoder alone.
fn general(text: &str) -> Result<Observation, DecodeError> {
    Observation::decode_general(text, &mut None, None)
}

/// A field's value as written on the wire, in many shapes, some of which the fast path must
/// leave to the general decoder.
fn wire_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"p-1\"",
            "\"mon-07\"",
            "\"2026-11-24T10:15:00.250Z\"",
            "\"2026-11-24T10:15:00+01:00\"",
            "\"2026-13-45T99:99:99Z\"",
            "\"heart_rate\"",
            "\"spo2\"",
            "\"consciousness\"",
            "\"temperature\"",
            "\"supplemental_oxygen\"",
            "\"A\"",
            "\"V\"",
            "\"x\"",
            "\"/min\"",
            "\"%\"",
            "\"[degF]\"",
            "\"Cel\"",
            "\"kPa\"",
            "\"mm[Hg]\"",
            "\"L/min\"",
            "\"1\"",
            "\"p\\u002d1\"",
            "\"a\\\"b\"",
            "\"\"",
            "null",
            "true",
            "[1]",
            "{\"a\":1}",
            "0",
            "-0",
            "80",
            "80.5",
            "-3",
            "1e2",
            "1E+2",
            "2.5e-1",
            "01",
            "1.",
            ".5",
            "-",
            "1e",
            "+1",
            "98.60000000000001",
            "1e400",
            "37.0",
            "0.94",
            "nul",
            "nullx",
            "\"é\"",
        ])
        .prop_map(str::to_owned),
        (1u32..400, 0u32..100).prop_map(|(i, f)| format!("{i}.{f:02}")),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whenever the fast path decodes a message, the general decoder gives the same
    /// observation: on messages of any field order, with values valid or not, repeated and
    /// unknown fields, and any spacing.
    #[test]
    fn the_fast_path_agrees_with_the_general_decoder(
        order in Just((0..6usize).collect::<Vec<_>>()).prop_shuffle(),
        values in proptest::collection::vec(proptest::option::weighted(0.3, wire_value()), 6),
        extra in proptest::option::weighted(0.3, (
            prop::sample::select(vec!["patient", "value", "extra", "pat\\u0069ent"]),
            wire_value(),
        )),
        space in prop::sample::select(vec!["", " ", "\n", "\t ", "\r\n"]),
        trailing in prop::sample::select(vec!["", "", " ", "x", ",", "}"]),
    ) {
        let names = ["patient", "device", "time", "vital", "value", "unit"];
        let valid = ["\"p-1\"", "\"mon-07\"", "\"2026-11-24T10:15:00.250Z\"", "\"temperature\"", "98.6", "\"[degF]\""];
        let mut body: Vec<String> = order
            .iter()
            .map(|&f| format!("\"{}\"{space}:{space}{}", names[f], values[f].as_deref().unwrap_or(valid[f])))
            .collect();
        if let Some((k, v)) = extra {
            body.push(format!("\"{k}\":{v}"));
        }
        let text = format!("{space}{{{space}{}{space}}}{trailing}", body.join(&format!("{space},{space}")));
        if let Some(fast) = super::fast::decode(&text, None) {
            prop_assert_eq!(Ok(fast), general(&text), "{}", text);
        }
    }

    /// Valid messages as devices send them take the fast path.
    #[test]
    fn valid_messages_take_the_fast_path(
        (vital, value, unit) in prop::sample::select(vec![
            ("heart_rate", "72", "/min"), ("spo2", "96", "%"), ("spo2", "0.96", "1"),
            ("temperature", "98.6", "[degF]"), ("temperature", "37.2", "Cel"),
            ("systolic_bp", "16.5", "kPa"), ("respiratory_rate", "18", "/min"),
        ]),
        device in prop::sample::select(vec!["", r#""device":"mon-07","#, r#""device":null,"#]),
    ) {
        let text = format!(
            r#"{{"patient":"p-000123",{device}"time":"2026-11-24T10:15:00.250Z","vital":"{vital}","value":{value},"unit":"{unit}"}}"#
        );
        let fast = super::fast::decode(&text, None);
        prop_assert!(fast.is_some(), "{}", text);
        prop_assert_eq!(Ok(fast.unwrap()), general(&text));
    }
}

#[test]
fn the_fast_path_leaves_every_malformed_message_to_the_general_decoder() {
    let valid = r#""patient":"p-1","time":"2026-11-24T10:15:00Z","vital":"heart_rate","value":72,"unit":"/min""#;
    assert!(super::fast::decode(&format!("{{{valid}}}"), None).is_some());
    for extra in [
        r#","extra":01"#,
        r#","extra":1."#,
        r#","extra":-"#,
        r#","extra":.5"#,
        r#","extra":1e"#,
        r#","extra":nul"#,
        r#","extra":true"#,
        r#","extra":[1]"#,
        r#","patient":"p-2""#,
        r#","value":72"#,
        r#","#,
        r#","extra":"a\"b""#,
    ] {
        let text = format!("{{{valid}{extra}}}");
        assert!(super::fast::decode(&text, None).is_none(), "{text}");
        if let Ok(obs) = general(&text) {
            // Only the escaped string is valid JSON; the general decoder reads it.
            assert_eq!(obs.patient().as_str(), "p-1", "{text}");
        }
    }
}

/// chrono's reading of an RFC 3339 time, in microseconds (the reference for `parse_utc`).
fn chrono_micros(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_micros())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(20_000))]

    /// Times near the form devices send, valid or not by one field: whatever the short path
    /// accepts, chrono accepts with the same microseconds; whatever chrono accepts in that form
    /// (without a leap second), the short path accepts too.
    #[test]
    fn the_short_time_parser_agrees_with_chrono(
        year in 0i64..=9999,
        month in 0i64..=13,
        day in 0i64..=32,
        hour in 0i64..=25,
        minute in 0i64..=61,
        second in 0i64..=61,
        fraction in proptest::option::of("[0-9]{0,14}"),
        sep in prop::sample::select(vec!['T', 't', ' ', 'T', 'T']),
        zone in prop::sample::select(vec!["Z", "z", "+00:00", "+01:30", "Z", "Z", "", "ZZ"]),
        year_width in prop::sample::select(vec![4usize, 4, 4, 3, 5]),
    ) {
        let fraction = fraction.map(|f| format!(".{f}")).unwrap_or_default();
        let s = format!(
            "{year:0year_width$}-{month:02}-{day:02}{sep}{hour:02}:{minute:02}:{second:02}{fraction}{zone}"
        );
        let short = parse_utc(&s);
        let reference = chrono_micros(&s);
        if let Some(micros) = short {
            prop_assert_eq!(Some(micros), reference, "{}", s);
        }
        let canonical = sep == 'T' && zone == "Z" && year_width == 4 && second < 60;
        if canonical && reference.is_some() {
            prop_assert_eq!(short, reference, "{}", s);
        }
        prop_assert_eq!(
            EventTime::parse_rfc3339(&s).ok().map(EventTime::micros),
            reference,
            "{}", s
        );
    }
}

#[test]
fn the_short_time_parser_reads_the_usual_forms() {
    for s in [
        "2026-11-24T10:15:00Z",
        "2026-11-24T10:15:00.250Z",
        "2026-11-24T10:15:00.123456789Z",
        "2024-02-29T23:59:59.999999Z",
        "1969-12-31T23:59:59.5Z",
        "0000-03-01T00:00:00Z",
    ] {
        assert_eq!(parse_utc(s), chrono_micros(s), "{s}");
        assert!(parse_utc(s).is_some(), "{s}");
    }
    for s in [
        "2025-02-29T00:00:00Z",
        "2026-11-24T10:15:60Z",
        "2026-11-24T10:15:00.Z",
    ] {
        assert_eq!(parse_utc(s), None, "{s}");
    }
}

/// A v1.1 message at 2026-03-01T07:05:00-07:00 with `rest` as its other fields.
fn v11(rest: &str) -> Result<Observation, DecodeError> {
    decode(&format!(
        r#"{{"patient":"h-7","device":"dev-1","time":"2026-03-01T07:05:00-07:00",{rest}}}"#
    ))
}

#[test]
fn decodes_every_v1_1_example_of_the_wire_format() {
    let g = v11(r#""vital":"glucose","value":52,"unit":"mg/dL","method":"cgm""#).unwrap();
    assert_eq!(g.vital(), Vital::Glucose);
    assert_eq!(g.reading(), quantity(52.0));
    assert_eq!(g.time().to_rfc3339(), "2026-03-01T14:05:00Z");
    assert_eq!(
        g.detail(),
        Some(&Detail::Glucose {
            method: Method::Cgm
        })
    );
    let i = v11(r#""vital":"insulin","value":1.5,"unit":"U","delivery":"bolus""#).unwrap();
    assert_eq!(
        i.detail(),
        Some(&Detail::Insulin {
            delivery: Delivery::Bolus
        })
    );
    assert_eq!(i.reading(), quantity(1.5));
    let p = v11(r#""vital":"pump_event","value":"occlusion""#).unwrap();
    assert_eq!(p.reading(), Reading::Code(Code::Occlusion));
    let m = v11(r#""vital":"medication","value":"taken","medication":"metformin","schedule":"am""#)
        .unwrap();
    assert_eq!(
        m.detail(),
        Some(&Detail::Medication {
            medication: Identifier::new("metformin").unwrap(),
            schedule: Identifier::new("am").ok(),
        })
    );
    let r = v11(r#""vital":"inhaler","value":"rescue""#).unwrap();
    assert_eq!(r.reading(), Reading::Code(Code::Rescue));
    assert_eq!(r.detail(), Some(&Detail::Inhaler { puffs: 1 }));
    let s =
        v11(r#""vital":"device_status","battery":12,"sensor_expires":"2026-03-02T07:00:00-07:00""#)
            .unwrap();
    let Some(Detail::Status(status)) = s.detail() else {
        panic!("{s:?}")
    };
    assert_eq!(status.battery, Some(12));
    assert_eq!(
        status.sensor_expires.map(EventTime::to_rfc3339).as_deref(),
        Some("2026-03-02T14:00:00Z")
    );
    assert_eq!(s.value(), Value::None);
    for obs in [g, i, p, m, r, s] {
        assert_eq!(decode(&obs.to_json()).unwrap(), obs, "{}", obs.to_json());
    }
}

#[test]
fn converts_glucose_from_mmol_per_litre_exactly() {
    let g = v11(r#""vital":"glucose","value":3,"unit":"mmol/L""#).unwrap();
    assert_eq!(
        g.reading(),
        Reading::Quantity(Exact::from_f64(54.048).unwrap())
    );
    // Without `method`, a glucose value is a CGM reading.
    assert_eq!(
        g.detail(),
        Some(&Detail::Glucose {
            method: Method::Cgm
        })
    );
    assert_eq!(
        v11(r#""vital":"glucose","value":90,"unit":"mmol/L""#)
            .unwrap_err()
            .to_string(),
        "`value` 90 mmol/L (= 1621.44 mg/dL) is not a possible glucose (10 to 1500 mg/dL)"
    );
}

#[test]
fn each_device_kind_refuses_what_it_cannot_be_with_the_field() {
    for (rest, field, message) in [
        (
            r#""vital":"glucose","value":52,"unit":"%""#,
            "unit",
            "`unit` \"%\" is not a unit of glucose (accepted: mg/dL, mmol/L)",
        ),
        (
            r#""vital":"glucose","value":52,"unit":"mg/dL","method":"guess""#,
            "method",
            "`method` must be one of cgm, meter, found \"guess\"",
        ),
        (
            r#""vital":"glucose","value":"low","unit":"mg/dL""#,
            "value",
            "`value` must be a number for glucose, found a string",
        ),
        (
            r#""vital":"insulin","value":1.5,"unit":"U""#,
            "delivery",
            "`delivery` is required for insulin (bolus or basal)",
        ),
        (
            r#""vital":"insulin","value":1.5,"unit":"U/h","delivery":"bolus""#,
            "unit",
            "`unit` U/h does not fit `delivery` bolus: a bolus is in U, a basal rate in U/h",
        ),
        (
            r#""vital":"insulin","value":250,"unit":"U","delivery":"bolus""#,
            "value",
            "`value` 250 U is not a possible insulin dose (0 to 100 U)",
        ),
        (
            r#""vital":"pump_event","value":"exploded""#,
            "value",
            "`value` must be one of suspend, resume, occlusion, no_delivery, low_reservoir, low_battery for pump_event, found \"exploded\"",
        ),
        (
            r#""vital":"pump_event","value":"rescue""#,
            "value",
            "`value` must be one of suspend, resume, occlusion, no_delivery, low_reservoir, low_battery for pump_event, found \"rescue\"",
        ),
        (
            r#""vital":"pump_event","value":"suspend","unit":"U""#,
            "unit",
            "`unit` must be absent for pump_event, found \"U\"",
        ),
        (
            r#""vital":"medication","value":"taken""#,
            "medication",
            "`medication` is required for medication (the medication's code, as its schedule names it)",
        ),
        (
            r#""vital":"medication","value":"taken","medication":5"#,
            "medication",
            "`medication` must be a string, found a number",
        ),
        (
            r#""vital":"inhaler","value":"rescue","puffs":0"#,
            "puffs",
            "`puffs` must be a whole number from 1 to 20, found 0",
        ),
        (
            r#""vital":"device_status""#,
            "vital",
            "device_status needs at least one of `battery`, `signal`, `sensor_start`, `sensor_expires`, `error`",
        ),
        (
            r#""vital":"device_status","battery":120"#,
            "battery",
            "`battery` must be a whole number from 0 to 100, found 120",
        ),
        (
            r#""vital":"device_status","battery":50,"value":3"#,
            "value",
            "`value` must be absent for device_status (its fields say it), found 3",
        ),
        (
            r#""vital":"device_status","sensor_start":"yesterday""#,
            "sensor_start",
            "`sensor_start` \"yesterday\" is not RFC 3339 with an offset (like 2026-11-24T10:15:00.250Z): premature end of input",
        ),
    ] {
        let err = v11(rest).unwrap_err();
        assert_eq!(err.to_string(), message, "{rest}");
        assert_eq!(err.field(), Some(field), "{rest}");
    }
}

#[test]
fn bedside_vitals_ignore_the_device_kinds_fields() {
    let obs = decode(r#"{"patient":"p","time":"2026-03-01T07:05:00Z","vital":"heart_rate","value":80,"unit":"/min","method":"meter"}"#).unwrap();
    assert_eq!(obs.detail(), None);
}

#[test]
fn two_events_of_one_device_at_one_instant_are_distinct_when_they_differ() {
    let a = v11(r#""vital":"pump_event","value":"occlusion""#).unwrap();
    let b = v11(r#""vital":"pump_event","value":"low_battery""#).unwrap();
    assert_ne!(a.distinct_key(), b.distinct_key());
    let g = v11(r#""vital":"glucose","value":52,"unit":"mg/dL""#).unwrap();
    assert_eq!(g.distinct_key(), None);
}
