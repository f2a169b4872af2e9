//! `--log-format json`: every diagnostic of a run is one JSON object a line, with its level and
//! fields, and none names a patient; an error that ends a command is one too.

use std::collections::HashSet;
use std::process::Command;

use serde_json::Value;

use crate::kafka::{broker, pipeline, produce_cohort, unique};
use crate::scratch;

/// A run of the Kafka pipeline to the end of the topic, diagnostics as JSON: its standard
/// error's lines.
fn json_run(pipeline: &std::path::Path, archive: &std::path::Path) -> Vec<String> {
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["--log-format", "json", "run", pipeline.to_str().unwrap()])
        .args(["--archive", archive.to_str().unwrap()])
        .args(["--metrics", "127.0.0.1:0", "--exit-when-idle", "3s"])
        .args(["--quiet", "--progress", "never", "--summary-json"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    stderr.lines().map(str::to_owned).collect()
}

#[test]
fn a_runs_diagnostics_are_json_lines_with_fields_and_no_patient_ids() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("logs_json");
    let topic = unique("vitals-logs");
    let (lines, _) = produce_cohort(&dir, &brokers, &topic, 6, 2);
    let patients: HashSet<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["patient"].as_str().map(str::to_owned))
        .collect();
    assert!(patients.len() >= 6, "{patients:?}");
    let pipeline = pipeline(&dir, &brokers, &topic, &unique("logs"));
    let archive = dir.join("archive");
    json_run(&pipeline, &archive);
    // Again over the same archive: it resumes, and says so.
    let stderr = json_run(&pipeline, &archive);

    let (summary, diagnostics) = stderr.split_last().expect("a summary");
    assert!(summary.starts_with("{\"observations\""), "{summary}");
    let events: Vec<Value> = diagnostics
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    for (event, line) in events.iter().zip(diagnostics) {
        for key in ["timestamp", "level", "message", "target"] {
            assert!(event[key].is_string(), "no {key}: {line}");
        }
        for patient in &patients {
            assert!(!line.contains(patient.as_str()), "a patient id in {line}");
        }
    }
    let find = |needle: &str| {
        events
            .iter()
            .find(|e| e["message"].as_str().unwrap().contains(needle))
            .unwrap_or_else(|| panic!("no diagnostic with {needle:?}: {diagnostics:?}"))
    };
    let resumed = find("resuming over the archive");
    assert_eq!(resumed["level"], "INFO");
    assert_eq!(resumed["archive"], archive.display().to_string());
    assert_eq!(find("metrics at http://127.0.0.1:")["level"], "INFO");
}

#[test]
fn an_error_that_ends_a_command_is_a_json_line_with_its_exit_code() {
    let dir = scratch("logs_error");
    let missing = dir.join("missing.toml");
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", missing.to_str().unwrap(), "--log-format", "json"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(3));
    let stderr = String::from_utf8(output.stderr).unwrap();
    let event: Value = serde_json::from_str(stderr.trim()).expect("one JSON line");
    assert_eq!(event["level"], "ERROR");
    assert_eq!(event["exit_code"], 3);
    let message = event["message"].as_str().unwrap();
    assert!(
        message.contains("missing.toml") && message.contains("No such file"),
        "{message}"
    );
}
