//! The webhook sink against a real HTTP receiver (Python's, `tests/webhook-receiver.py`): signed
//! requests keyed by alert id, and nothing lost while the receiver is down, across a `kill -9`
//! of Vigil and its restart.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{free_port, python_with, read_lines, scratch, vigil, wait_for_port};

/// The demo's pipeline with its sinks replaced by `sinks` (TOML), written into `dir`.
fn pipeline(dir: &Path, name: &str, sinks: &str) -> PathBuf {
    let text = crate::demo_text();
    let head = &text[..text.find("[[sinks]]").unwrap()];
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, format!("{head}{sinks}")).unwrap();
    path
}

fn receiver(python: &Path, port: u16, secret: &Path, log: &Path, generation: &str) -> Child {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhook-receiver.py");
    let child = Command::new(python)
        .arg(script)
        .args([&port.to_string(), secret.to_str().unwrap()])
        .args([log.to_str().unwrap(), generation])
        .spawn()
        .unwrap();
    wait_for_port(port, "the webhook receiver", 20);
    child
}

/// Waits up to `seconds` for `done`, failing with `what`.
fn wait_until(seconds: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The ids of the alerts in the outbox not yet accepted by the receiver.
fn waiting_in(outbox: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(outbox.join("outbox.jsonl")).unwrap_or_default();
    let mark: usize = std::fs::read_to_string(outbox.join("delivered"))
        .ok()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(0);
    text.get(mark..)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_receiver_down_mid_run_and_a_kill_9_lose_no_alert_and_dedup_leaves_each_once() {
    let Some(python) = python_with("hmac", "its standard library") else {
        return;
    };
    let dir = scratch("webhook");
    let input = dir.join("ward.jsonl");
    let o = vigil(
        &[
            "simulate",
            "--patients",
            "30",
            "--hours",
            "8",
            "--seed",
            "7",
        ]
        .into_iter()
        .chain(["--out", input.to_str().unwrap()])
        .collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // What Vigil alerts on this ward: every id must reach the receiver.
    let reference = dir.join("reference.jsonl");
    let plain = pipeline(&dir, "plain", "");
    let o = vigil(&[
        "run",
        plain.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--alerts",
        reference.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let expected: BTreeSet<String> = read_lines(&reference)
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    assert!(expected.len() > 40, "{} alerts", expected.len());

    let port = free_port();
    let (secret, log, outbox) = (
        dir.join("secret"),
        dir.join("received.jsonl"),
        dir.join("outbox"),
    );
    std::fs::write(&secret, "a-shared-secret-of-32-bytes-long\n").unwrap();
    let sink = format!(
        "[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/alerts\"\n\
         secret_file = \"{}\"\noutbox = \"{}\"\nmax_backoff = \"1s\"\ndrain = \"20s\"\n",
        secret.display(),
        outbox.display()
    );
    let webhook = pipeline(&dir, "webhook", &sink);
    let archive = dir.join("archive");
    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args([
                "run",
                webhook.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
            ])
            .args([
                "--archive",
                archive.to_str().unwrap(),
                "--quiet",
                "--progress",
                "never",
            ])
            .args(extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };

    // 8 h at 1,800 × real time: 16 s. The receiver takes the first alerts, then goes down.
    let mut first = receiver(&python, port, &secret, &log, "1");
    let mut vigil_run = run(&["--speed", "1800"]);
    wait_until(60, "no alert reached the receiver", || {
        std::fs::read_to_string(&log).is_ok_and(|t| !t.is_empty())
    });
    first.kill().unwrap();
    first.wait().unwrap();
    // Alerts pile up in the outbox while it is away; then Vigil dies.
    wait_until(60, "no alert waited in the outbox", || {
        waiting_in(&outbox).len() >= 3
    });
    vigil_run.kill().unwrap();
    vigil_run.wait().unwrap();
    let waiting = waiting_in(&outbox);

    // The receiver returns, then Vigil: it resumes from its archive and delivers the rest.
    let mut second = receiver(&python, port, &secret, &log, "2");
    let o = run(&[]).wait_with_output().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");

    let received = read_lines(&log);
    for r in &received {
        assert_eq!(r["signed"], true, "a signature did not verify: {r}");
        assert_eq!(r["key"], r["id"], "Idempotency-Key is the alert id: {r}");
        assert_eq!(r["content_type"], "application/json");
    }
    let once: BTreeSet<String> = received
        .iter()
        .map(|r| r["key"].as_str().unwrap().to_owned())
        .collect();
    let missing: Vec<&String> = expected.difference(&once).collect();
    let extra: Vec<&String> = once.difference(&expected).collect();
    assert!(missing.is_empty(), "never delivered: {missing:?}");
    assert!(extra.is_empty(), "not alerts of this ward: {extra:?}");
    // What waited in the outbox when Vigil died reached the receiver once it was back.
    let after: BTreeSet<&str> = received
        .iter()
        .filter(|r| r["generation"] == "2")
        .map(|r| r["key"].as_str().unwrap())
        .collect();
    for id in &waiting {
        assert!(
            after.contains(id.as_str()),
            "{id} waited in the outbox and was lost"
        );
    }
    eprintln!(
        "webhook: {} alerts, {} requests ({} again, de-duplicated by key), {} waited in the \
         outbox across the kill -9",
        expected.len(),
        received.len(),
        received.len() - once.len(),
        waiting.len()
    );
}

#[test]
fn a_webhook_without_its_secret_or_with_it_in_the_open_is_refused_by_validate() {
    let dir = scratch("webhook_validate");
    let secret_inline = pipeline(
        &dir,
        "inline",
        "[[sinks]]\nkind = \"webhook\"\nurl = \"https://pager.example/alerts\"\noutbox = \"o\"\n",
    );
    let o = vigil(&["validate", secret_inline.to_str().unwrap()]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("secret_file") && stderr.contains("secret_env"),
        "{stderr}"
    );
    assert!(stderr.contains("must be http://"), "{stderr}");
    // A secret too short to sign with is refused when the run starts, naming the sink.
    let short = dir.join("short");
    std::fs::write(&short, "abc\n").unwrap();
    let weak = pipeline(
        &dir,
        "weak",
        &format!(
            "[[sinks]]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:9/a\"\noutbox = \"o\"\n\
             secret_file = \"{}\"\n",
            short.display()
        ),
    );
    let o = vigil(&["run", weak.to_str().unwrap(), "--quiet"]);
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("webhook http://127.0.0.1:9/a") && stderr.contains("shorter than 16"),
        "{stderr}"
    );
}
