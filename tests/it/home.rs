//! The shipped home pipeline (`pipelines/home.toml`) on its simulated cohort: every ground-truth
//! nocturnal hypoglycaemia and missed dose is alerted; the shipped registry is the cohort's;
//! the alerts are the same from the source and from its lines, with 1 and 4 workers, and after
//! a replay of the archive.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{run_ok, scratch};

fn pipeline() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/home.toml")
}

/// Runs `pipelines/home.toml` with `extra` arguments; its alert lines.
fn alerts(dir: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    crate::shipped_alerts("home", dir, name, extra)
}

fn parse(lines: &[String]) -> Vec<Value> {
    lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn us(v: &Value) -> i64 {
    vigil::observation::EventTime::parse_rfc3339(v.as_str().unwrap())
        .unwrap()
        .micros()
}

/// The cohort the shipped pipeline simulates, as lines, with its truth and registry.
fn simulate(dir: &Path) -> (PathBuf, Vec<Value>, String) {
    let (obs, truth, registry) = (
        dir.join("home.jsonl"),
        dir.join("truth.jsonl"),
        dir.join("registry.csv"),
    );
    run_ok(&[
        "simulate",
        "--home",
        "--patients",
        "20",
        "--days",
        "14",
        "--seed",
        "7",
        "--out",
        obs.to_str().unwrap(),
        "--truth",
        truth.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
    ]);
    let truth = std::fs::read_to_string(truth)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (obs, truth, std::fs::read_to_string(registry).unwrap())
}

#[test]
fn every_hypo_and_missed_dose_of_the_home_cohort_is_alerted() {
    let dir = scratch("home_truth");
    let (obs, truth, registry) = simulate(&dir);
    let shipped = std::fs::read_to_string(pipeline().with_file_name("home-registry.csv")).unwrap();
    assert_eq!(
        registry, shipped,
        "pipelines/home-registry.csv is not the cohort's: write it with `vigil simulate --home --patients 20 --days 14 --registry`"
    );
    let from_lines = parse(&alerts(&dir, "lines", &["--input", obs.to_str().unwrap()]));
    let mut of: HashMap<&str, Vec<&Value>> = HashMap::new();
    for a in &from_lines {
        of.entry(a["patient"].as_str().unwrap())
            .or_default()
            .push(a);
    }
    let count = |kind: &str| truth.iter().filter(|e| e["kind"] == kind).count();
    assert!(
        count("nocturnal_hypo") >= 10 && count("missed_dose") >= 30,
        "{truth:?}"
    );
    for e in &truth {
        let patient = e["patient"].as_str().unwrap();
        let (start, end) = (us(&e["start"]), us(&e["end"]));
        let theirs = of.get(patient).map_or(&[][..], |v| v.as_slice());
        let found = match e["kind"].as_str().unwrap() {
            // An urgent low from the crossing (a reading may dip first) to the recovery.
            "nocturnal_hypo" => theirs.iter().any(|a| {
                let t = a["time_us"].as_i64().unwrap();
                a["event"] == "urgent_low" && t >= start - 10 * 60_000_000 && t <= end
            }),
            // The missed dose of that medication's slot, when its grace closed.
            "missed_dose" => theirs.iter().any(|a| {
                let what = format!(
                    "{} {}",
                    a["evidence"]["medication"].as_str().unwrap_or(""),
                    a["evidence"]["slot"].as_str().unwrap_or("")
                );
                a["event"] == "missed_dose"
                    && a["time_us"].as_i64() == Some(end)
                    && what == e["what"]
            }),
            _ => continue,
        };
        assert!(found, "not alerted: {e}");
    }
    // The same cohort from the source itself.
    let from_source = parse(&alerts(&dir, "source", &[]));
    assert!(
        from_source == from_lines,
        "the source and its lines give different alerts"
    );
}

#[test]
fn the_home_pipeline_gives_the_same_alerts_with_4_workers_and_after_a_replay() {
    let dir = scratch("home_determinism");
    let archive = dir.join("archive");
    let live = alerts(&dir, "live", &["--archive", archive.to_str().unwrap()]);
    assert!(live.len() > 300, "{}", live.len());
    for kind in ["glucose", "pump", "medication", "device"] {
        assert!(
            live.iter()
                .any(|l| l.contains(&format!("\"kind\":\"{kind}\""))),
            "no {kind} alert"
        );
    }
    let four = alerts(&dir, "four-workers", &["--workers", "4"]);
    assert!(four == live, "the alerts differ with 4 workers");
    crate::assert_replay_gives(&archive, &dir.join("replayed.jsonl"), &live);
}
