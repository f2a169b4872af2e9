//! `--metrics`: a run over the real broker is scraped while it reads and once it is over; each
//! scrape passes `promtool check metrics` (Debian's `prometheus` package), and the last equals
//! the run's summary.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka::{broker, pipeline, produce_cohort, send, unique};
use crate::{free_port, scratch};

/// `promtool`, or a loud failure when the tests require it.
fn promtool() -> Option<&'static str> {
    let found = Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            !crate::required(),
            "promtool is missing: scripts/test installs Debian's prometheus package"
        );
        eprintln!("SKIPPED: no promtool (apt-get install prometheus)");
        return None;
    }
    Some("promtool")
}

/// `promtool check metrics` on `text`: its complaints, empty when it passes.
fn lint(promtool: &str, text: &str) -> String {
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    match out.status.success() {
        true => said,
        false => format!("exit {:?}: {said}", out.status.code()),
    }
}

/// A scrape: the content type and the body.
pub(crate) fn scrape(port: u16, accept: Option<&str>) -> Option<(String, String)> {
    let mut request = ureq::get(format!("http://127.0.0.1:{port}/metrics"));
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let mut response = request.call().ok()?;
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    Some((content_type, response.body_mut().read_to_string().ok()?))
}

/// Every sample of `text`, by its series (`name{labels}`).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of a metric's samples over all its labels.
fn total(samples: &BTreeMap<String, f64>, name: &str) -> f64 {
    samples
        .iter()
        .filter(|(series, _)| series.split('{').next() == Some(name))
        .map(|(_, v)| v)
        .sum()
}

fn spawn(pipeline: &Path, archive: &Path, metrics: u16) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(["run", pipeline.to_str().unwrap(), "--archive"])
        .arg(archive)
        .args(["--metrics", &format!("127.0.0.1:{metrics}")])
        // The board keeps the process (and its metrics) up once the input is drained.
        .args(["--board", "127.0.0.1:0", "--exit-when-idle", "4s"])
        .args(["--flush-every", "1s", "--quiet", "--progress", "never"])
        .arg("--summary-json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_scrape_passes_promtool_and_the_last_one_equals_the_summary() {
    let Some(brokers) = broker() else { return };
    let Some(promtool) = promtool() else { return };
    let dir = scratch("metrics-scrape");
    let topic = unique("metrics");
    let (lines, _) = produce_cohort(&dir, &brokers, &topic, 12, 6);
    let producer = crate::kafka::producer(&brokers);
    send(&producer, &topic, "garbage", "this is not an observation");
    let pipeline = pipeline(&dir, &brokers, &topic, &unique("metrics-group"));
    let port = free_port();
    let mut child = spawn(&pipeline, &dir.join("archive"), port);
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        stderr
            .lines()
            .map_while(Result::ok)
            .for_each(|l| drop(tx.send(l)))
    });

    // While it reads: the classic format passes promtool, OpenMetrics is served when asked.
    let deadline = Instant::now() + Duration::from_secs(120);
    let during = loop {
        assert!(Instant::now() < deadline, "no observation counted in 120 s");
        assert!(child.try_wait().unwrap().is_none(), "vigil exited early");
        if let Some((_, text)) = scrape(port, None)
            && total(&samples(&text), "vigil_observations_total") > 0.0
        {
            break text;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(lint(promtool, &during), "", "{during}");
    let (content_type, open) = scrape(port, Some("application/openmetrics-text")).unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    assert!(open.ends_with("# EOF\n") && open.contains("# UNIT vigil_state_bytes bytes"));

    // Once the topic is drained, the last scrape is the summary.
    let summary: Value = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(180))
            .expect("no summary");
        if line.starts_with('{') {
            break serde_json::from_str(&line).unwrap();
        }
    };
    let (content_type, text) = scrape(port, None).unwrap();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    assert_eq!(lint(promtool, &text), "", "{text}");
    let s = samples(&text);
    let n = |k: &str| summary[k].as_u64().unwrap() as f64;
    assert_eq!(total(&s, "vigil_observations_total"), n("observations"));
    // The source is labelled as the archive names it.
    let kafka = format!("vigil_observations_total{{source=\"kafka:{topic}\"}}");
    assert_eq!(s.get(&kafka), Some(&n("observations")), "{text}");
    assert_eq!(total(&s, "vigil_rejected_total"), n("rejected"));
    assert!(n("rejected") >= 1.0, "the garbage message is rejected");
    assert_eq!(total(&s, "vigil_duplicates_total"), n("duplicates"));
    assert_eq!(total(&s, "vigil_late_total"), n("late"));
    assert_eq!(total(&s, "vigil_alerts_total"), n("alerts"));
    assert!(n("alerts") > 0.0);
    assert_eq!(total(&s, "vigil_patients"), n("patients"));
    assert_eq!(total(&s, "vigil_state_bytes"), n("state_bytes"));
    // Two workers, four partitions, each read to its end.
    for p in 0..4 {
        let series = format!("vigil_consumer_lag_messages{{partition=\"{p}\"}}");
        assert_eq!(s.get(&series), Some(&0.0), "{series} in\n{text}");
    }
    assert!(s.contains_key("vigil_watermark_delay_seconds{worker=\"1\"}"));
    assert!(total(&s, "vigil_archive_flush_seconds_count") >= 1.0);
    assert!(total(&s, "vigil_offset_commit_seconds_count") >= 1.0);
    // The run's end took a snapshot on each worker, moments ago.
    assert_eq!(summary["snapshots"], 2, "{summary}");
    for worker in 0..2 {
        let series = format!("vigil_snapshot_age_seconds{{worker=\"{worker}\"}}");
        let age = s.get(&series).copied();
        assert!(
            age.is_some_and(|a| (0.0..60.0).contains(&a)),
            "{series} {age:?} in\n{text}"
        );
    }
    // No patient id in any label.
    let patients: std::collections::HashSet<String> = lines
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| v["patient"].as_str().map(str::to_owned))
        .collect();
    assert!(!patients.is_empty());
    for patient in &patients {
        assert!(!text.contains(patient.as_str()), "{patient} in the metrics");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn an_address_in_use_stops_the_run_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let o = crate::vigil(&[
        "run",
        crate::demo().to_str().unwrap(),
        "--metrics",
        &addr,
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains(&format!("the metrics endpoint cannot listen at {addr}")),
        "{stderr}"
    );
}
