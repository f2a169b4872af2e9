//! `vigil score`: the examples of ../shared/NEWS2.md through the real binary, and malformed input.

use serde_json::{Value, json};

use crate::{dataset, scratch, vigil};

/// The normal set (scores 0 everywhere), as flags.
const NORMAL: [&str; 14] = [
    "--rr", "16", "--spo2", "98", "--oxygen", "air", "--sbp", "120", "--hr", "70", "--acvpu", "A",
    "--temp", "37",
];

/// `vigil score --json` on the normal set with some flags replaced or removed (value "").
fn score_json(changes: &[(&str, &str)]) -> Value {
    let mut args: Vec<String> = vec!["score".into(), "--json".into()];
    for pair in NORMAL.chunks(2) {
        if !changes.iter().any(|(flag, _)| *flag == pair[0]) {
            args.extend([pair[0].to_owned(), pair[1].to_owned()]);
        }
    }
    for (flag, value) in changes {
        if !value.is_empty() {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = vigil(&refs);
    assert!(
        out.status.success(),
        "{refs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        stdout.lines().count(),
        1,
        "exactly one JSON object: {stdout}"
    );
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn json_has_every_documented_key() {
    let v = score_json(&[]);
    assert_eq!(v["status"], "complete");
    assert_eq!(
        v["subscores"],
        json!({"rr": 0, "spo2": 0, "air_oxygen": 0, "sbp": 0, "hr": 0, "acvpu": 0, "temp": 0})
    );
    assert_eq!(v["total"], 0);
    assert_eq!(v["total_upper_bound"], 0);
    assert_eq!(v["single_parameter_3"], false);
    assert_eq!(v["band"], "low");
    assert_eq!(v["monitoring"], "minimum 12-hourly");
    assert!(v["response"].as_str().unwrap().starts_with("routine"));
    assert_eq!(v["problems"], json!([]));
}

#[test]
fn rounds_half_up_after_converting_units() {
    // 8.5 → 9 scores 1; a mean of 8.4 → 8 scores 3.
    assert_eq!(score_json(&[("--rr", "8.5")])["subscores"]["rr"], 1);
    assert_eq!(score_json(&[("--rr", "8.4")])["subscores"]["rr"], 3);
    // 35.05 °C → 35.1 scores 1 (binary floating point would say 35.0 and 3).
    assert_eq!(score_json(&[("--temp", "35.05")])["subscores"]["temp"], 1);
    assert_eq!(score_json(&[("--temp", "35.04")])["subscores"]["temp"], 3);
    // 100.4 °F is 38.0 °C: 0. 100.5 °F is 38.06 → 38.1: 1.
    let f = |t| score_json(&[("--temp", t), ("--temp-unit", "F")])["subscores"]["temp"].clone();
    assert_eq!(f("100.4"), 0);
    assert_eq!(f("100.5"), 1);
    // 95.09 °F is exactly 35.05 °C → 35.1: 1.
    assert_eq!(f("95.09"), 1);
}

#[test]
fn bands_and_responses() {
    let v = score_json(&[("--rr", "8")]);
    assert_eq!(
        (v["total"].clone(), v["band"].clone()),
        (json!(3), json!("low-medium"))
    );
    assert_eq!(v["single_parameter_3"], true);
    assert_eq!(v["monitoring"], "minimum 1-hourly");

    let v = score_json(&[
        ("--rr", "22"),
        ("--spo2", "95"),
        ("--sbp", "105"),
        ("--temp", "38.5"),
    ]);
    assert_eq!(
        (v["total"].clone(), v["band"].clone()),
        (json!(5), json!("medium"))
    );
    assert!(
        v["response"]
            .as_str()
            .unwrap()
            .starts_with("urgent response")
    );

    let v = score_json(&[
        ("--rr", "24"),
        ("--spo2", "95"),
        ("--hr", "120"),
        ("--temp", "39.5"),
    ]);
    assert_eq!(
        (v["total"].clone(), v["band"].clone()),
        (json!(7), json!("high"))
    );
    assert_eq!(v["monitoring"], "continuous monitoring of vital signs");
    assert!(
        v["response"]
            .as_str()
            .unwrap()
            .starts_with("emergency response")
    );

    let v = score_json(&[("--acvpu", "C")]);
    assert_eq!(
        (v["subscores"]["acvpu"].clone(), v["band"].clone()),
        (json!(3), json!("low-medium"))
    );
}

#[test]
fn incomplete_sets_are_never_low() {
    // Everything left out.
    let out = vigil(&["score", "--json"]);
    assert!(out.status.success());
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        (v["total"].clone(), v["total_upper_bound"].clone()),
        (json!(0), json!(20))
    );
    assert_eq!(v["band"], Value::Null);
    assert_eq!(v["problems"].as_array().unwrap().len(), 7);

    // One missing, the rest normal: still no band.
    let v = score_json(&[("--temp", "")]);
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["subscores"]["temp"], Value::Null);
    assert_eq!(
        (v["total"].clone(), v["total_upper_bound"].clone()),
        (json!(0), json!(3))
    );
    assert_eq!(v["band"], Value::Null);
    assert_eq!(v["problems"], json!(["temp: missing"]));

    // 7 with BP missing escalates to high now.
    let v = score_json(&[
        ("--rr", "24"),
        ("--spo2", "95"),
        ("--hr", "120"),
        ("--temp", "39.5"),
        ("--sbp", ""),
    ]);
    assert_eq!(v["status"], "incomplete");
    assert_eq!(
        (v["total"].clone(), v["total_upper_bound"].clone()),
        (json!(7), json!(10))
    );
    assert_eq!(v["band"], "high");
}

#[test]
fn implausible_values_are_invalid_with_the_reason() {
    let v = score_json(&[("--temp", "98.6")]);
    assert_eq!(v["status"], "invalid");
    assert_eq!(v["subscores"]["temp"], Value::Null);
    assert_eq!(v["band"], Value::Null);
    assert_eq!(
        v["problems"],
        json!([
            "temp: invalid: `value` 98.6 Cel is not a possible body temperature (10 to 47 Cel)"
        ])
    );

    let v = score_json(&[("--spo2", "101")]);
    assert_eq!(
        (v["status"].clone(), v["subscores"]["spo2"].clone()),
        (json!("invalid"), Value::Null)
    );

    let v = score_json(&[("--hr", "900")]);
    assert_eq!(v["status"], "invalid");
    assert!(
        v["problems"][0]
            .as_str()
            .unwrap()
            .contains("not a possible heart rate")
    );

    let v = score_json(&[("--rr", "-3")]);
    assert_eq!(v["status"], "invalid");
}

#[test]
fn scale_2_only_by_prescription_and_needs_air_or_oxygen() {
    // 90 % on air: 3 on scale 1, 0 on scale 2.
    assert_eq!(score_json(&[("--spo2", "90")])["subscores"]["spo2"], 3);
    assert_eq!(
        score_json(&[("--spo2", "90"), ("--scale", "2")])["subscores"]["spo2"],
        0
    );
    // 97 % on oxygen: 0 on scale 1, 3 on scale 2.
    let v = score_json(&[("--spo2", "97"), ("--scale", "2"), ("--oxygen", "oxygen")]);
    assert_eq!(
        (v["subscores"]["spo2"].clone(), v["total"].clone()),
        (json!(3), json!(5))
    );
    // 95 % with air or oxygen unknown cannot be scored on scale 2.
    let v = score_json(&[("--spo2", "95"), ("--scale", "2"), ("--oxygen", "")]);
    assert_eq!(v["status"], "incomplete");
    assert_eq!(v["subscores"]["spo2"], Value::Null);
    assert_eq!(v["total_upper_bound"], 4);
}

#[test]
fn human_output_names_the_band_and_the_response() {
    let out = vigil(&[
        "score", "--rr", "24", "--spo2", "95", "--oxygen", "air", "--sbp", "105", "--hr", "112",
        "--acvpu", "A", "--temp", "38.5",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NEWS2 7: high risk"), "{text}");
    assert!(text.contains("Response:   emergency response"), "{text}");

    let out = vigil(&["score", "--rr", "16"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(
            "NEWS2 at least 0, up to 17: band unknown, incomplete set, not a low score"
        ),
        "{text}"
    );
}

/// A malformed command or file: non-zero exit, one line on stderr, no panic, nothing on stdout.
fn assert_one_line_error(args: &[&str], expected: &str) {
    let out = vigil(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(!out.status.success(), "{args:?} succeeded");
    assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.contains(expected), "{args:?}: {stderr}");
    assert!(
        out.stdout.is_empty(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn malformed_flags_get_a_one_line_error() {
    assert_one_line_error(&["score", "--rr", "abc"], "'abc' is not a number");
    assert_one_line_error(&["score", "--temp", "NaN"], "'NaN' is not a finite number");
    assert_one_line_error(&["score", "--hr", "inf"], "'inf' is not a finite number");
    assert_one_line_error(&["score", "--acvpu", "X"], "possible values: A, C, V, P, U");
    assert_one_line_error(&["score", "--scale", "3"], "invalid value '3' for '--scale");
    assert_one_line_error(
        &["score", "--oxygen", "maybe"],
        "invalid value 'maybe' for '--oxygen",
    );
    assert_one_line_error(&["score", "--pulse", "80"], "unexpected argument '--pulse'");
    assert_one_line_error(
        &["score", "--input", "x.csv", "--rr", "12"],
        "cannot be used with",
    );
}

#[test]
fn scores_a_csv_file_one_json_line_per_row() {
    let out = vigil(&[
        "score",
        "--input",
        dataset("news2/sets.csv").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // (status, total, upper bound, band) per row of datasets/news2/sets.csv
    let expected = [
        ("complete", 0, 0, json!("low")),
        ("complete", 1, 1, json!("low")),
        ("complete", 1, 1, json!("low")),
        ("complete", 0, 0, json!("low")),
        ("complete", 3, 3, json!("low-medium")),
        ("complete", 5, 5, json!("medium")),
        ("incomplete", 7, 10, json!("high")),
        ("complete", 5, 5, json!("medium")),
        ("incomplete", 0, 4, Value::Null),
        ("invalid", 0, 3, Value::Null),
        ("incomplete", 0, 20, Value::Null),
    ];
    assert_eq!(lines.len(), expected.len());
    for (i, (line, (status, total, upper, band))) in lines.iter().zip(expected).enumerate() {
        assert_eq!(line["status"], status, "row {}", i + 2);
        assert_eq!(line["total"], total, "row {}", i + 2);
        assert_eq!(line["total_upper_bound"], upper, "row {}", i + 2);
        assert_eq!(line["band"], band, "row {}", i + 2);
    }
}

#[test]
fn malformed_csv_gets_a_one_line_error() {
    let dir = scratch("malformed_csv");
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let missing = write(
        "missing.csv",
        "rr,spo2,oxygen,sbp,hr,acvpu\n16,98,air,120,70,A\n",
    );
    assert_one_line_error(&["score", "--input", &missing], "missing column `temp`");
    let bad = write(
        "bad.csv",
        "rr,spo2,oxygen,sbp,hr,acvpu,temp\n16,98,air,120,70,A,37\nx,98,air,120,70,A,37\n",
    );
    assert_one_line_error(
        &["score", "--input", &bad],
        "bad.csv: line 3, column `rr`: 'x' is not a number",
    );
    let short = write("short.csv", "rr,spo2,oxygen,sbp,hr,acvpu,temp\n16,98\n");
    assert_one_line_error(
        &["score", "--input", &short],
        "line 2: found 2 fields, expected 7",
    );
    let binary = dir.join("binary.csv");
    std::fs::write(
        &binary,
        b"rr,spo2,oxygen,sbp,hr,acvpu,temp\n\xff\xfe,1,2,3,4,5,6\n",
    )
    .unwrap();
    assert_one_line_error(
        &["score", "--input", binary.to_str().unwrap()],
        "binary.csv",
    );
    assert_one_line_error(
        &["score", "--input", "/nonexistent/sets.csv"],
        "cannot read /nonexistent/sets.csv",
    );
}
