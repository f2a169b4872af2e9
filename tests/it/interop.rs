//! FHIR R4 and HL7 v2 in: the same cohort written in every format gives the same alerts, byte
//! for byte, from a file and from Kafka; what is not an observation is dead-lettered with where
//! it was in its message.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::kafka::{broker, unique};
use crate::{dataset, demo, free_port, read_lines, run_ok, scratch, wait_for_port};

/// Writes the seeded cohort in `format` to `dir/cohort.<ext>`.
fn cohort(dir: &Path, format: &str, patients: &str, hours: &str) -> PathBuf {
    let path = dir.join(format!("cohort-{format}"));
    run_ok(&[
        "simulate",
        "--patients",
        patients,
        "--hours",
        hours,
        "--seed",
        "7",
        "--format",
        format,
        "--out",
        path.to_str().unwrap(),
    ]);
    path
}

/// Runs the demo pipeline on `input` read as `format`; its summary, alerts and dead letters.
fn run(
    dir: &Path,
    pipeline: &Path,
    name: &str,
    input: &Path,
    format: &str,
    extra: &[&str],
) -> (Value, String, Vec<Value>) {
    let alerts = dir.join(format!("{name}-alerts.jsonl"));
    let dead = dir.join(format!("{name}-dead.jsonl"));
    let mut args: Vec<String> = vec![
        "run".into(),
        pipeline.to_str().unwrap().to_owned(),
        "--input".into(),
        input.to_str().unwrap().into(),
        "--input-format".into(),
        format.into(),
        "--alerts".into(),
        alerts.to_str().unwrap().into(),
        "--dead-letter".into(),
        dead.to_str().unwrap().into(),
        "--quiet".into(),
        "--progress".into(),
        "never".into(),
        "--summary-json".into(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let o = crate::vigil(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{name}: {stderr}");
    let summary = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    let dead = match dead.exists() {
        true => read_lines(&dead),
        false => Vec::new(),
    };
    (summary, std::fs::read_to_string(&alerts).unwrap(), dead)
}

/// The NDJSON cohort as transaction Bundles of up to 40 entries, pretty-printed, with each
/// blood pressure pair folded into one panel with its two components (as devices send it).
fn as_bundles(ndjson: &Path, out: &Path) {
    let lines: Vec<Value> = read_lines(ndjson);
    let code = |r: &Value| {
        r["code"]["coding"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_owned()
    };
    let mut resources = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let r = &lines[i];
        let next = lines.get(i + 1);
        let pair = next.filter(|n| {
            code(r) == "8480-6"
                && code(n) == "8462-4"
                && n["subject"] == r["subject"]
                && n["effectiveDateTime"] == r["effectiveDateTime"]
                && n["device"] == r["device"]
        });
        if let Some(dia) = pair {
            let mut panel = r.clone();
            panel["code"] =
                serde_json::json!({"coding": [{"system": "http://loinc.org", "code": "85354-9"}]});
            panel.as_object_mut().unwrap().remove("valueQuantity");
            panel["component"] = serde_json::json!([
                {"code": r["code"], "valueQuantity": r["valueQuantity"]},
                {"code": dia["code"], "valueQuantity": dia["valueQuantity"]},
            ]);
            resources.push(panel);
            i += 2;
        } else {
            resources.push(r.clone());
            i += 1;
        }
    }
    let mut text = String::new();
    for chunk in resources.chunks(40) {
        let entries: Vec<Value> = chunk
            .iter()
            .map(|r| serde_json::json!({"resource": r, "request": {"method": "POST", "url": "Observation"}}))
            .collect();
        let bundle =
            serde_json::json!({"resourceType": "Bundle", "type": "transaction", "entry": entries});
        text.push_str(&serde_json::to_string_pretty(&bundle).unwrap());
        text.push('\n');
    }
    std::fs::write(out, text).unwrap();
}

/// The HL7 file's messages, each in an MLLP frame.
fn as_mllp(hl7: &Path, out: &Path) {
    let text = std::fs::read_to_string(hl7).unwrap();
    let mut framed = Vec::new();
    for message in text.split('\n').filter(|m| !m.is_empty()) {
        framed.push(0x0b);
        framed.extend_from_slice(message.as_bytes());
        framed.extend_from_slice(&[0x1c, 0x0d]);
    }
    std::fs::write(out, framed).unwrap();
}

#[test]
fn a_cohort_in_every_format_gives_byte_identical_alerts() {
    let dir = scratch("interop_formats");
    let wire = cohort(&dir, "wire", "16", "12");
    let (expected, alerts, dead) = run(&dir, &demo(), "wire", &wire, "wire", &[]);
    assert!(expected["alerts"].as_u64().unwrap() > 40, "{expected}");
    assert!(dead.is_empty());
    let fhir = cohort(&dir, "fhir", "16", "12");
    let hl7 = cohort(&dir, "hl7v2", "16", "12");
    let bundles = dir.join("cohort-bundles.json");
    as_bundles(&fhir, &bundles);
    let mllp = dir.join("cohort.mllp");
    as_mllp(&hl7, &mllp);
    for (name, path, format) in [
        ("fhir", &fhir, "fhir"),
        ("bundles", &bundles, "fhir"),
        ("hl7v2", &hl7, "hl7v2"),
        ("mllp", &mllp, "hl7v2"),
    ] {
        let (summary, got, dead) = run(&dir, &demo(), name, path, format, &[]);
        assert!(dead.is_empty(), "{name}: {:?}", dead.first());
        for key in ["observations", "late", "duplicates", "rejected", "alerts"] {
            assert_eq!(summary[key], expected[key], "{name} {key}");
        }
        assert!(
            got == alerts,
            "{name}: the alerts differ from the wire format's"
        );
    }
}

#[test]
fn the_archive_records_each_observation_s_format_and_place_and_replays_the_same() {
    let dir = scratch("interop_archive");
    let fhir = cohort(&dir, "fhir", "8", "6");
    let bundles = dir.join("bundles.json");
    as_bundles(&fhir, &bundles);
    let archive = dir.join("archive");
    let (_, alerts, _) = run(
        &dir,
        &demo(),
        "live",
        &bundles,
        "fhir",
        &["--archive", archive.to_str().unwrap()],
    );
    let live: Vec<String> = alerts.lines().map(str::to_owned).collect();
    assert!(live.len() > 10, "{} alerts", live.len());
    crate::assert_replay_gives(&archive, &dir.join("replayed.jsonl"), &live);
    let rows: Vec<_> = vigil::archive::files(&archive)
        .unwrap()
        .iter()
        .flat_map(|f| vigil::archive::read_file(f).unwrap())
        .collect();
    // Each row knows its document's first line and its entry in the Bundle.
    assert!(rows.iter().all(|r| r.offset.is_some() && r.entry.is_some()));
    assert_eq!(
        rows.iter()
            .filter(|r| r.entry == Some(0) && r.offset == Some(1))
            .count(),
        1
    );
    let Some(python) = crate::python_with_readers() else {
        return;
    };
    let program = format!(
        "import duckdb; print(duckdb.sql(\"select format, count(*), min(entry), max(entry) from read_parquet('{}/observations/*/*.parquet') group by format\").fetchall())",
        archive.display()
    );
    let out = crate::python(&python, &program);
    assert_eq!(out.trim(), format!("[('fhir', {}, 0, 39)]", rows.len()));
}

/// Every FHIR example and HL7 fixture, valid and malformed, in one file each: the run ends,
/// each observation is scored, and each thing that is not one is dead-lettered with its place.
#[test]
fn real_and_malformed_messages_are_dead_lettered_with_where_they_were() {
    let dir = scratch("interop_dead_letters");
    let mut fhir = Vec::new();
    for sub in ["fhir/examples", "fhir/phd-ig-examples", "fhir/bundles"] {
        let mut files: Vec<_> = std::fs::read_dir(dataset(&format!("interop/{sub}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for f in files {
            fhir.extend(std::fs::read(f).unwrap());
            fhir.push(b'\n');
        }
    }
    fhir.extend(b"{\"resourceType\": \"Observation\", \"status\": \"final\"\n");
    let fhir_file = dir.join("all.json");
    std::fs::write(&fhir_file, &fhir).unwrap();
    let (summary, _, dead) = run(&dir, &demo(), "fhir", &fhir_file, "fhir", &[]);
    // The examples span 2012 to 2025: most are held for their device's clock (archived,
    // dead-lettered, reported), the rest scored.
    let read = |s: &Value| s["observations"].as_u64().unwrap() + s["held"].as_u64().unwrap();
    assert!(read(&summary) >= 30, "{summary}");
    let position = |d: &Value| d["position"].as_str().unwrap().to_owned();
    let positions: Vec<String> = dead.iter().map(position).collect();
    assert!(
        positions.iter().any(|p| p.ends_with(" status")),
        "{positions:#?}"
    );
    assert!(
        positions
            .iter()
            .any(|p| p.contains(" entry[0].resource.code")),
        "{positions:#?}"
    );
    assert!(
        dead.iter()
            .any(|d| d["reason"].as_str().unwrap().starts_with("not JSON"))
    );
    let rejected = summary["rejected"].as_u64().unwrap() + summary["held"].as_u64().unwrap();
    assert_eq!(
        rejected,
        dead.len() as u64,
        "every rejection is dead-lettered"
    );

    let mut hl7 = Vec::new();
    for sub in [
        "hl7v2/pcd01",
        "hl7v2/other-oru",
        "hl7v2/malformed",
        "hl7v2/malformed/nhapi-fuzz",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(dataset(&format!("interop/{sub}")))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for f in files {
            hl7.extend(std::fs::read(f).unwrap());
            hl7.push(b'\r');
        }
    }
    let hl7_file = dir.join("all.hl7");
    std::fs::write(&hl7_file, &hl7).unwrap();
    let (summary, _, dead) = run(&dir, &demo(), "hl7", &hl7_file, "hl7v2", &[]);
    assert!(read(&summary) >= 10, "{summary}");
    let positions: Vec<String> = dead.iter().map(position).collect();
    assert!(
        positions
            .iter()
            .any(|p| p.starts_with("message ") && p.contains("(OBX-3)")),
        "{positions:#?}"
    );
    assert!(
        positions.iter().any(|p| p.contains("(MSH-9)")),
        "{positions:#?}"
    );
}

/// The same cohort produced to Kafka as wire, FHIR and HL7 v2 messages (keyed by patient over 4
/// partitions) gives the same alerts.
#[test]
fn kafka_topics_of_fhir_and_hl7_give_the_wire_format_s_alerts() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("interop_kafka");
    let mut runs = Vec::new();
    for format in ["wire", "fhir", "hl7v2"] {
        let topic = unique(&format!("interop-{format}"));
        run_ok(&[
            "simulate",
            "--patients",
            "8",
            "--hours",
            "6",
            "--seed",
            "7",
            "--format",
            format,
            "--kafka",
            &brokers,
            "--topic",
            &topic,
            "--partitions",
            "4",
        ]);
        let pipeline = dir.join(format!("{format}.toml"));
        std::fs::write(
            &pipeline,
            format!(
                "workers = 2\n[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup = \"{}\"\nformat = \"{format}\"\ndead_letter_topic = \"{topic}-dead\"\n",
                unique("g")
            ),
        )
        .unwrap();
        let alerts = dir.join(format!("{format}.jsonl"));
        let o = crate::vigil(&[
            "run",
            pipeline.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
            "--quiet",
            "--progress",
            "never",
            "--summary-json",
            "--exit-when-idle",
            "4s",
        ]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{format}: {stderr}");
        let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(summary["rejected"], 0, "{format}: {summary}");
        runs.push((format, summary, std::fs::read_to_string(&alerts).unwrap()));
    }
    let (_, first, alerts) = &runs[0];
    assert!(first["alerts"].as_u64().unwrap() > 10, "{first}");
    for (format, summary, got) in &runs[1..] {
        for key in ["observations", "late", "duplicates", "alerts"] {
            assert_eq!(summary[key], first[key], "{format} {key}");
        }
        assert!(
            got == alerts,
            "{format}: the alerts differ from the wire format's"
        );
    }
}

/// The Python with python-hl7's MLLP client that scripts/test installs (or VIGIL_PYTHON).
fn python_with_hl7() -> Option<PathBuf> {
    crate::python_with("hl7.client", "python-hl7 (its MLLP client)")
}

/// Sends messages `from..to` of an HL7 file over MLLP with python-hl7's client; the ACK codes
/// it got back, as JSON (`{"AA": 120}`). With `cut`, then sends half a frame and hangs up.
const SENDER: &str = r#"
import hl7.client, json, socket, sys
path, port, start, end, cut = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5] == "cut"
messages = [m for m in open(path, newline="").read().split("\n") if m][start:end]
codes = {}
with hl7.client.MLLPClient("127.0.0.1", port) as client:
    for m in messages:
        ack = client.send_message(m).decode()
        msa = [s for s in ack.split("\r") if s.startswith("MSA")][0].split("|")
        codes[msa[1]] = codes.get(msa[1], 0) + 1
if cut:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x0b" + messages[0].encode()[:40])
    s.close()
print(json.dumps(codes))
"#;

fn send_mllp(python: &Path, file: &Path, port: u16, range: (usize, usize), cut: bool) -> Value {
    let o = std::process::Command::new(python)
        .args(["-c", SENDER, file.to_str().unwrap(), &port.to_string()])
        .args([
            range.0.to_string(),
            range.1.to_string(),
            if cut { "cut".into() } else { "whole".into() },
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).unwrap()
}

/// An MLLP pipeline on `port` with the default settings (the listener and a file of the same
/// messages are compared under the same ones).
fn mllp_pipeline(dir: &Path, port: u16) -> PathBuf {
    let pipeline = dir.join("mllp.toml");
    let text = format!(
        "[source]\nkind = \"mllp\"\nlisten = \"127.0.0.1:{port}\"\nintake = \"intake/mllp.log\"\n"
    );
    std::fs::write(&pipeline, text).unwrap();
    pipeline
}

/// Starts `vigil run` on an MLLP pipeline and waits until it listens.
fn listen(
    dir: &Path,
    port: u16,
    archive: &Path,
    alerts: &Path,
    extra: &[&str],
) -> std::process::Child {
    let pipeline = mllp_pipeline(dir, port);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            pipeline.to_str().unwrap(),
            "--archive",
            archive.to_str().unwrap(),
            "--alerts",
            alerts.to_str().unwrap(),
        ])
        .args(["--quiet", "--progress", "never", "--summary-json"])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_port(port, "the listener", 20);
    child
}

fn summary_of(child: std::process::Child) -> Value {
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    serde_json::from_str(stderr.lines().last().unwrap()).unwrap()
}

#[test]
fn the_mllp_listener_acknowledges_each_message_and_gives_the_file_s_alerts() {
    let Some(python) = python_with_hl7() else {
        return;
    };
    let dir = scratch("interop_mllp");
    let hl7 = cohort(&dir, "hl7v2", "3", "6");
    let port = free_port();
    let pipeline = mllp_pipeline(&dir, port);
    let (expected, alerts, _) = run(&dir, &pipeline, "file", &hl7, "hl7v2", &[]);
    // (Two raises and an escalation, at least.)
    assert!(expected["alerts"].as_u64().unwrap() >= 3, "{expected}");
    let messages = std::fs::read_to_string(&hl7).unwrap().lines().count();
    let (archive, got) = (dir.join("archive"), dir.join("mllp-alerts.jsonl"));
    let child = listen(&dir, port, &archive, &got, &["--exit-when-idle", "3s"]);
    let codes = send_mllp(&python, &hl7, port, (0, messages), false);
    assert_eq!(codes, serde_json::json!({"AA": messages}));
    let summary = summary_of(child);
    for key in ["observations", "late", "duplicates", "rejected", "alerts"] {
        assert_eq!(summary[key], expected[key], "{key}");
    }
    assert!(
        std::fs::read_to_string(&got).unwrap() == alerts,
        "the listener's alerts differ from the file's"
    );
    // Everything read was committed: a restart has nothing to read again.
    let committed = std::fs::read_to_string(dir.join("intake/mllp.log.committed")).unwrap();
    assert_eq!(committed.trim(), messages.to_string());
}

#[test]
fn what_the_listener_acknowledged_survives_a_hang_up_mid_frame_and_a_kill_9() {
    let Some(python) = python_with_hl7() else {
        return;
    };
    let dir = scratch("interop_mllp_kill");
    let hl7 = cohort(&dir, "hl7v2", "3", "2");
    let messages = std::fs::read_to_string(&hl7).unwrap().lines().count();
    let file_archive = dir.join("file-archive");
    run(
        &dir,
        &demo(),
        "file",
        &hl7,
        "hl7v2",
        &["--archive", file_archive.to_str().unwrap()],
    );
    let port = free_port();
    let (archive, alerts) = (dir.join("archive"), dir.join("alerts.jsonl"));
    let mut child = listen(&dir, port, &archive, &alerts, &["--flush-every", "1s"]);
    let half = messages / 2;
    assert_eq!(
        send_mllp(&python, &hl7, port, (0, half), true),
        serde_json::json!({"AA": half})
    );
    // Long enough for some of it to be archived and committed, not for all of it.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    child.kill().unwrap();
    child.wait().unwrap();
    // A restart reads the log from its last commit, skips what the archive holds, and goes on.
    let child = listen(&dir, port, &archive, &alerts, &["--exit-when-idle", "3s"]);
    assert_eq!(
        send_mllp(&python, &hl7, port, (half, messages), false),
        serde_json::json!({"AA": messages - half})
    );
    let summary = summary_of(child);
    // The restart rebuilt the patients' state from the archive before reading on.
    assert!(summary["restored"].as_u64().unwrap() > 0, "{summary}");
    let (rows, keys) = crate::archive_rows_and_keys(&archive);
    assert_eq!(
        (rows, keys),
        crate::archive_rows_and_keys(&file_archive),
        "every acknowledged observation archived once"
    );
}

/// The demo pipeline with its model and alert file where they are, and `sinks` appended.
fn demo_with(dir: &Path, sinks: &str) -> PathBuf {
    let text = crate::demo_text().replace(
        "\"../target/demo-alerts.jsonl\"",
        &format!("{:?}", dir.join("demo-alerts.jsonl")),
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, format!("{text}\n{sinks}")).unwrap();
    path
}

/// `tests/fhir-validate.py` on an NDJSON file: resources by type, and schema errors.
fn validate_fhir(python: &Path, ndjson: &Path) -> Option<Value> {
    let schema = crate::shared_dataset("interop/fhir/schema")?.join("fhir.schema.4.0.1.json");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fhir-validate.py");
    let o = std::process::Command::new(python)
        .args([script.as_os_str(), schema.as_os_str(), ndjson.as_os_str()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    Some(serde_json::from_slice(&o.stdout).unwrap())
}

fn python_with_jsonschema() -> Option<PathBuf> {
    crate::python_with("jsonschema", "jsonschema")
}

#[test]
fn the_demo_s_fhir_output_validates_against_the_r4_schema() {
    let Some(python) = python_with_jsonschema() else {
        return;
    };
    let dir = scratch("interop_fhir_out");
    let out = dir.join("fhir.ndjson");
    let pipeline = demo_with(
        &dir,
        &format!("[[sinks]]\nkind = \"fhir\"\npath = {out:?}\n"),
    );
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--quiet",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    let Some(report) = validate_fhir(&python, &out) else {
        return;
    };
    assert_eq!(report["errors"], 0, "{report}");
    let alerts: Vec<Value> = read_lines(&alerts);
    let risk = alerts.iter().filter(|a| a["kind"] == "risk").count();
    assert_eq!(report["resources"]["Communication"], alerts.len());
    assert_eq!(report["resources"]["RiskAssessment"], risk);
    assert!(risk > 0);
    // A NEWS2 Observation each time a total, its bounds, band or completeness changed: more
    // than there are alerts, as most changes page nobody.
    let scores = report["resources"]["Observation"].as_u64().unwrap();
    assert!(scores > alerts.len() as u64, "{report}");
    // A high alert is paged at once (stat); a risk alert is about its assessment.
    let lines: Vec<Value> = read_lines(&out);
    // Every reference (`about`, `basis`) names a resource of the file.
    let ids: std::collections::HashSet<String> = lines
        .iter()
        .map(|r| {
            format!(
                "{}/{}",
                r["resourceType"].as_str().unwrap(),
                r["id"].as_str().unwrap()
            )
        })
        .collect();
    for r in &lines {
        for field in ["about", "basis"] {
            for reference in r[field].as_array().into_iter().flatten() {
                if let Some(to) = reference["reference"].as_str() {
                    assert!(ids.contains(to), "{to} of {}", r["id"]);
                }
            }
        }
    }
    let high = alerts.iter().find(|a| a["severity"] == "high").unwrap();
    let comm = lines
        .iter()
        .find(|r| r["id"] == format!("alert-{}", high["id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(comm["priority"], "stat");
    let r = alerts.iter().find(|a| a["kind"] == "risk").unwrap();
    let comm = lines
        .iter()
        .find(|c| c["id"] == format!("alert-{}", r["id"].as_str().unwrap()))
        .unwrap();
    assert_eq!(
        comm["about"][0]["reference"],
        format!("RiskAssessment/risk-{}", r["id"].as_str().unwrap())
    );
}

/// A FHIR server the test starts (no FHIR server installs here): it refuses the first two
/// Bundles with 503, then accepts, and keeps every Bundle it accepted.
const RECEIVER: &str = r#"
import http.server, json, sys
refusals = [2]
out = open(sys.argv[2], "a")
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if refusals[0] > 0:
            refusals[0] -= 1
            self.send_response(503); self.end_headers(); self.wfile.write(b"busy"); return
        bundle = json.loads(body)
        assert bundle["type"] == "transaction"
        out.write(json.dumps(bundle) + "\n"); out.flush()
        self.send_response(200)
        self.send_header("Content-Type", "application/fhir+json"); self.end_headers()
        self.wfile.write(json.dumps({"resourceType": "Bundle", "type": "transaction-response"}).encode())
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
"#;

#[test]
fn the_fhir_sink_posts_transaction_bundles_and_retries_a_busy_server() {
    let Some(python) = python_with_jsonschema() else {
        return;
    };
    let dir = scratch("interop_fhir_server");
    let port = free_port();
    let received = dir.join("received.jsonl");
    let mut server = std::process::Command::new(&python)
        .args([
            "-c",
            RECEIVER,
            &port.to_string(),
            received.to_str().unwrap(),
        ])
        .spawn()
        .unwrap();
    wait_for_port(port, "the receiver", 10);
    let out = dir.join("fhir.ndjson");
    let sinks = format!(
        "[[sinks]]\nkind = \"fhir\"\npath = {out:?}\nurl = \"http://127.0.0.1:{port}/fhir\"\n"
    );
    let pipeline = demo_with(&dir, &sinks);
    let input = cohort(&dir, "wire", "8", "6");
    let result = crate::vigil(&[
        "run",
        pipeline.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--quiet",
    ]);
    server.kill().unwrap();
    server.wait().unwrap();
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    // Every resource of the file reached the server, as a PUT to its own id.
    let ids = |lines: Vec<Value>| -> std::collections::BTreeSet<String> {
        lines
            .iter()
            .map(|r| {
                format!(
                    "{}/{}",
                    r["resourceType"].as_str().unwrap(),
                    r["id"].as_str().unwrap()
                )
            })
            .collect()
    };
    let written = ids(read_lines(&out));
    let mut sent = Vec::new();
    for bundle in read_lines(&received) {
        for e in bundle["entry"].as_array().unwrap() {
            assert_eq!(e["request"]["method"], "PUT");
            assert_eq!(
                e["request"]["url"],
                format!(
                    "{}/{}",
                    e["resource"]["resourceType"].as_str().unwrap(),
                    e["resource"]["id"].as_str().unwrap()
                )
            );
            sent.push(e["resource"].clone());
        }
    }
    assert!(!written.is_empty());
    assert_eq!(ids(sent), written);
}
