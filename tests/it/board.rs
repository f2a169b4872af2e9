//! The ward board, served by the real binary over the demo ward: its JSON API and live stream
//! read over HTTP as a script would, and a clinician's session in Debian's headless Chromium
//! (`tests/browser/board.mjs`, driven by playwright-core) that sees a deterioration appear,
//! acknowledges it and keeps screenshots in `target/test-artefacts/board/`. The
//! acknowledgement goes through the engine: recorded in the archive at the watermark, and
//! applied at the same instant by a replay.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::{assert_replay_gives, demo, free_port, required, scratch, wait_for_port};

/// `node` and playwright-core (which `scripts/test` installs), or `None` to skip.
pub fn browser_tools() -> Option<PathBuf> {
    let modules = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules");
    let node = Command::new("node").arg("--version").output().is_ok();
    let chromium = Path::new("/usr/bin/chromium").exists();
    if node && chromium && modules.join("playwright-core").exists() {
        return Some(modules.parent()?.join("board.mjs"));
    }
    let missing = "the board's browser test needs node, /usr/bin/chromium (Debian's chromium) \
                   and tests/browser/node_modules (npm ci --prefix tests/browser); scripts/test \
                   installs them";
    assert!(!required(), "{missing}");
    eprintln!("skipped: {missing}");
    None
}

/// The demo's pipeline, its paths made absolute, its alerts to `dir/live.jsonl`.
pub fn pipeline(dir: &Path) -> PathBuf {
    let text = crate::demo_text();
    let head = &text[..text.find("[[sinks]]").unwrap()];
    let path = dir.join("board.toml");
    let sinks = format!(
        "[[sinks]]\nkind = \"jsonl\"\npath = \"{}\"\n",
        dir.join("live.jsonl").display()
    );
    std::fs::write(&path, format!("{head}{sinks}")).unwrap();
    path
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn get_json(url: &str) -> Value {
    let mut response = agent().get(url).call().unwrap();
    assert_eq!(response.status(), 200, "{url}");
    serde_json::from_reader(response.body_mut().as_reader()).unwrap()
}

/// The first `n` events of `/events` after `last` (sent as `Last-Event-ID`): (id, name, data).
fn events(base: &str, last: u64, n: usize) -> Vec<(u64, String, Value)> {
    let response = agent()
        .get(format!("{base}/events"))
        .header("Last-Event-ID", last.to_string())
        .call()
        .unwrap();
    let mut lines = BufReader::new(response.into_body().into_reader()).lines();
    let mut out = Vec::new();
    let (mut id, mut name) = (0, String::new());
    while out.len() < n {
        let line = lines.next().unwrap().unwrap();
        if let Some(v) = line.strip_prefix("id: ") {
            id = v.parse().unwrap();
        } else if let Some(v) = line.strip_prefix("event: ") {
            name = v.to_owned();
        } else if let Some(v) = line.strip_prefix("data: ") {
            out.push((id, name.clone(), serde_json::from_str(v).unwrap()));
        }
    }
    out
}

/// SIGTERM, and a clean exit.
pub fn stop(child: Child) {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = crate::exit_within(
        child,
        Duration::from_secs(120),
        "vigil did not stop after SIGTERM",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// What the browser session `script ARGS ARTEFACTS` reported.
pub fn browse(script: &Path, args: &[&str], artefacts: &Path, vigil: &mut Child) -> Value {
    let output = Command::new("node")
        .arg(script)
        .args(args)
        .arg(artefacts)
        .stderr(Stdio::inherit())
        .output()
        .unwrap();
    if !output.status.success() {
        let _ = vigil.kill();
        panic!(
            "the browser session failed (screenshots in {})",
            artefacts.display()
        );
    }
    let text = String::from_utf8(output.stdout).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn a_clinician_sees_a_deterioration_acknowledges_it_and_a_replay_applies_it_at_that_instant() {
    let Some(script) = browser_tools() else {
        return;
    };
    let dir = scratch("board_browser");
    let artefacts = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artefacts/board");
    std::fs::create_dir_all(&artefacts).unwrap();
    let archive = dir.join("archive");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let mut vigil = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            pipeline(&dir).to_str().unwrap(),
            "--quiet",
            "--progress",
            "never",
        ])
        .args(["--board", &format!("127.0.0.1:{port}"), "--speed", "300"])
        .args(["--archive", archive.to_str().unwrap()])
        .args(["--audit", dir.join("audit.jsonl").to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port, "the board", 30);

    let seen = browse(&script, &[&format!("{base}/")], &artefacts, &mut vigil);
    let band = seen["band"].as_str().unwrap();
    assert!(band.contains("Medium") || band.contains("High"), "{seen}");
    assert!(
        seen["applied"].as_u64().unwrap() > 0,
        "the page follows the live stream: {seen}"
    );
    assert_eq!(seen["charts"], 5, "a chart per charted vital: {seen}");
    assert_eq!(
        seen["evidenceRows"], 8,
        "the evidence: a row per parameter: {seen}"
    );
    assert_eq!(
        seen["overflow"], false,
        "the patient page fits a phone's width: {seen}"
    );
    let ack_text = seen["ackText"].as_str().unwrap();
    assert!(
        ack_text.contains("acknowledged by Dr Test") && ack_text.contains("seen at the bedside")
    );
    for shot in ["board-deterioration.png", "patient-acknowledged.png"] {
        assert!(
            std::fs::metadata(artefacts.join(shot)).unwrap().len() > 10_000,
            "{shot}"
        );
    }
    let (patient, alert) = (
        seen["patient"].as_str().unwrap(),
        seen["alertId"].as_str().unwrap(),
    );
    check_api(&base, patient, alert);
    check_stream_resumes(&base);
    stop(vigil);

    let acks = crate::read_lines(&archive.join("acks.jsonl"));
    assert_eq!(acks.len(), 1, "{acks:?}");
    assert_eq!(
        (acks[0]["alert"].as_str(), acks[0]["by"].as_str()),
        (Some(alert), Some("Dr Test"))
    );
    assert!(acks[0]["at_us"].as_i64() > acks[0]["alert_time_us"].as_i64());
    let live: Vec<String> = std::fs::read_to_string(dir.join("live.jsonl"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_replay_gives(&archive, &dir.join("replay.jsonl"), &live);
    check_audit(&dir.join("audit.jsonl"), alert);
}

/// The acknowledgement is in the audit trail, which verifies, and stops verifying when its
/// record is edited or cut off.
fn check_audit(trail: &Path, alert: &str) {
    let verify = || crate::vigil(&["audit", "verify", trail.to_str().unwrap()]);
    let intact = verify();
    assert!(
        intact.status.success(),
        "{}",
        String::from_utf8_lossy(&intact.stderr)
    );
    assert!(String::from_utf8_lossy(&intact.stdout).contains("intact: 1 records"));
    let records = crate::read_lines(trail);
    assert_eq!(records[0]["who"], "Dr Test");
    assert_eq!(records[0]["action"], "acknowledged");
    assert!(records[0]["what"].as_str().unwrap().contains(alert));
    let text = std::fs::read_to_string(trail).unwrap();
    std::fs::write(trail, text.replace("Dr Test", "Dr Evil")).unwrap();
    let edited = verify();
    assert_eq!(edited.status.code(), Some(1));
    let said = String::from_utf8_lossy(&edited.stderr).into_owned();
    assert!(said.contains("line 1: record 1 was edited"), "{said}");
    std::fs::write(trail, "").unwrap();
    let said = String::from_utf8_lossy(&verify().stderr).into_owned();
    assert!(said.contains("the last 1 were cut off"), "{said}");
}

/// The JSON API: the overview as documented, a patient with the acknowledged alert, ward
/// counts that agree with the rows, and refusals that say why.
fn check_api(base: &str, patient: &str, alert: &str) {
    let rows = get_json(&format!("{base}/api/patients"));
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 50);
    for row in rows {
        for key in [
            "patient", "ward", "band", "news2", "risk", "stale", "offline",
        ] {
            assert!(row.get(key).is_some(), "{key} missing from {row}");
        }
        assert!(matches!(row["ward"].as_str(), Some("4A" | "4B")), "{row}");
    }
    let detail = get_json(&format!("{base}/api/patients/{patient}"));
    assert_eq!(detail["patient"], patient);
    let acked = detail["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["alert"]["id"] == alert);
    assert_eq!(acked.unwrap()["acknowledged"]["by"], "Dr Test");
    assert!(!detail["history"].as_array().unwrap().is_empty());
    // The dataflow's counts agree with the rows (retried: the two reads are not one instant).
    let agree = (0..20).any(|_| {
        let rows = get_json(&format!("{base}/api/patients"));
        let wards = get_json(&format!("{base}/api/wards"));
        let count = |ward: &str, band: &str| {
            rows.as_array()
                .unwrap()
                .iter()
                .filter(|r| r["ward"] == ward && r["band"] == band)
                .count()
        };
        let ok = wards.as_array().unwrap().iter().all(|w| {
            let ward = w["ward"].as_str().unwrap();
            [
                ("high", "high"),
                ("medium", "medium"),
                ("low_medium", "low-medium"),
                ("low", "low"),
            ]
            .iter()
            .all(|(k, band)| w[k].as_u64() == Some(count(ward, band) as u64))
        });
        std::thread::sleep(Duration::from_millis(100));
        ok && !wards.as_array().unwrap().is_empty()
    });
    assert!(agree, "patients per band per ward disagree with the rows");
    let post = |id: &str, body: &str| {
        agent()
            .post(format!("{base}/api/alerts/{id}/ack"))
            .header("content-type", "application/json")
            .send(body)
            .unwrap()
            .status()
    };
    assert_eq!(
        post(alert, r#"{"by":"  ","note":"x"}"#),
        400,
        "nobody named"
    );
    assert_eq!(post(alert, "not json"), 400);
    assert_eq!(post("0000000000000000", r#"{"by":"Dr Test"}"#), 404);
    assert_eq!(
        agent()
            .get(format!("{base}/api/patients/nobody"))
            .call()
            .unwrap()
            .status(),
        404
    );
}

/// A client that reconnects with `Last-Event-ID` gets what came after it, the same events.
fn check_stream_resumes(base: &str) {
    let first = events(base, 0, 6);
    let ids: Vec<u64> = first.iter().map(|(id, _, _)| *id).collect();
    assert_eq!(ids, [1, 2, 3, 4, 5, 6]);
    assert!(
        first
            .iter()
            .all(|(_, name, _)| ["alert", "patient", "wards"].contains(&name.as_str()))
    );
    let resumed = events(base, 3, 3);
    assert_eq!(resumed, first[3..].to_vec());
}

/// Patients per band per ward come from the dataflow's join of bands with the registry's
/// wards, each ward from its row's time: a patient who moves is counted on the new ward only.
#[test]
fn a_patient_who_moves_ward_is_counted_on_the_new_ward_only() {
    use vigil::config::PipelineConfig;
    use vigil::pipeline::{self, RunOptions};
    let dir = scratch("board_wards");
    let registry = dir.join("registry.csv");
    std::fs::write(
        &registry,
        "patient,ward,scale,from\nsim-00000,4A,1,\nsim-00000,4B,1,2026-01-05T04:00:00Z\n\
         sim-00001,4A,1,\nsim-00002,4A,1,\nsim-00003,4A,1,\n",
    )
    .unwrap();
    let text = std::fs::read_to_string(demo())
        .unwrap()
        .replace("patients = 50", "patients = 4")
        .replace("hours = 24", "hours = 8")
        .replace(
            "\"demo-registry.csv\"",
            &format!("{:?}", registry.display().to_string()),
        );
    let config = PipelineConfig::parse(&text, demo().parent()).unwrap();
    let board = std::sync::Arc::new(vigil::sinks::board::Board::default());
    let options = RunOptions {
        quiet: true,
        board: Some(board.clone()),
        ..RunOptions::default()
    };
    pipeline::run(&config, &options).unwrap();
    let (rows, wards) = board.read(|s| (s.patients(), s.wards()));
    let moved = rows.iter().find(|r| r.patient == "sim-00000").unwrap();
    assert_eq!(moved.ward.as_deref(), Some("4B"));
    assert!(
        moved.band.is_some(),
        "the mover has a band to count: {moved:?}"
    );
    let total =
        |w: &vigil::sinks::board::state::WardCounts| w.high + w.medium + w.low_medium + w.low;
    let on = |ward: &str| wards.iter().find(|w| w.ward == ward).map_or(0, total);
    assert_eq!(on("4B"), 1, "{wards:?}");
    let banded_4a = rows
        .iter()
        .filter(|r| r.ward.as_deref() == Some("4A") && r.band.is_some());
    assert_eq!(on("4A"), banded_4a.count() as i64, "{wards:?}");
}
