//! Kafka in and out against the real broker that scripts/test starts (VIGIL_KAFKA): nothing lost,
//! dead letters with their reasons, offsets committed, a crash archived exactly once, and the
//! live alerts equal to a replay of the archive.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use serde_json::Value;

use crate::{archive_rows_and_keys, run_ok, scratch, vigil};

/// The broker scripts/test starts, or `None`, said loudly (a failure under scripts/test or CI).
pub(crate) fn broker() -> Option<String> {
    match std::env::var("VIGIL_KAFKA") {
        Ok(b) => Some(b),
        Err(_) => {
            assert!(
                !crate::required(),
                "no VIGIL_KAFKA broker: scripts/test starts one, and the tests need it"
            );
            eprintln!("SKIPPED: no VIGIL_KAFKA broker (scripts/test starts one)");
            None
        }
    }
}

/// A name no other test run uses.
pub(crate) fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{prefix}-{}-{nanos}", std::process::id())
}

/// The pipeline file for a topic, written into `dir`.
pub(crate) fn pipeline(dir: &Path, brokers: &str, topic: &str, group: &str) -> PathBuf {
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(
        &path,
        format!(
            "workers = 2\n\n[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\n\
             dead_letter_topic = \"{topic}-dead\"\n\n[[sinks]]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}-alerts\"\n"
        ),
    )
    .unwrap();
    path
}

/// Produces a simulated cohort to `topic` (4 partitions) and returns the cohort's lines and the
/// number of distinct observations (patient, device, vital, time).
pub(crate) fn produce_cohort(
    dir: &Path,
    brokers: &str,
    topic: &str,
    patients: u32,
    hours: u32,
) -> (Vec<String>, usize) {
    let args = [
        "--patients",
        &patients.to_string(),
        "--hours",
        &hours.to_string(),
        "--seed",
        "17",
    ];
    let file = dir.join("cohort.jsonl");
    let mut to_file = vec!["simulate", "--out", file.to_str().unwrap()];
    to_file.extend_from_slice(&args);
    run_ok(&to_file);
    let mut to_kafka = vec![
        "simulate",
        "--kafka",
        brokers,
        "--topic",
        topic,
        "--partitions",
        "4",
    ];
    to_kafka.extend_from_slice(&args);
    run_ok(&to_kafka);
    let lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let keys: HashSet<(String, String, String, String)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            (s("patient"), s("device"), s("vital"), s("time"))
        })
        .collect();
    (lines, keys.len())
}

pub(crate) fn producer(brokers: &str) -> BaseProducer {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .unwrap()
}

/// Every message of a topic, read from the start until `expected` arrive or 30 s pass.
fn consume_all(brokers: &str, topic: &str, expected: usize) -> Vec<rdkafka::message::OwnedMessage> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < expected && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            out.push(m.detach());
        }
    }
    // A little longer, to see any message beyond the expected ones.
    let settle = Instant::now() + Duration::from_secs(1);
    while Instant::now() < settle {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
            out.push(m.detach());
        }
    }
    out
}

/// `vigil run PIPELINE` archiving to `archive`, alerts to `alerts`, the summary as JSON.
pub(crate) fn run_command(pipeline: &Path, archive: &Path, alerts: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigil"));
    command.args([
        "run",
        pipeline.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
        "--summary-json",
    ]);
    command
}

fn spawn_run(pipeline: &Path, archive: &Path, alerts: &Path) -> Child {
    run_command(pipeline, archive, alerts)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Archived rows so far (0 before the first file).
pub(crate) fn archived_rows(archive: &Path) -> u64 {
    if !archive.join(vigil::archive::PIPELINE_FILE).exists() {
        return 0;
    }
    let o = vigil(&["inspect", archive.to_str().unwrap(), "--json"]);
    if !o.status.success() {
        return 0;
    }
    serde_json::from_slice::<Value>(&o.stdout).map_or(0, |v| v["rows"].as_u64().unwrap_or(0))
}

fn wait_for_rows(archive: &Path, rows: u64, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(180);
    while archived_rows(archive) < rows {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the pipeline exited early"
        );
        if Instant::now() > deadline {
            // Never leave a pipeline running behind a failed test.
            let _ = child.kill();
            panic!(
                "only {} of {rows} rows archived in time",
                archived_rows(archive)
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// SIGTERM, then the exit status and the summary.
fn stop(child: Child) -> Value {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = crate::exit_within(
        child,
        Duration::from_secs(120),
        "the pipeline did not stop after SIGTERM",
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    serde_json::from_str(stderr.lines().last().unwrap()).unwrap()
}

#[test]
fn nothing_is_lost_between_the_topic_the_archive_and_the_dead_letters() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("kafka_end_to_end");
    let topic = unique("vitals");
    let (lines, distinct) = produce_cohort(&dir, &brokers, &topic, 8, 6);
    // Bad messages: not JSON, an impossible value (archived for its patient, at the end of the
    // six hours, where its partition's clock is), an unknown vital.
    let bad = [
        "not json".to_owned(),
        r#"{"patient":"sim-00001","time":"2026-01-05T05:59:40Z","vital":"heart_rate","value":900,"unit":"/min"}"#.to_owned(),
        r#"{"patient":"sim-00002","time":"2026-01-05T02:00:00Z","vital":"ketones","value":0.4,"unit":"mmol/L"}"#.to_owned(),
    ];
    let p = producer(&brokers);
    for b in &bad {
        p.send(
            BaseRecord::<str, str>::to(&topic)
                .key("bad")
                .payload(b.as_str()),
        )
        .unwrap();
    }
    p.flush(Duration::from_secs(30)).unwrap();

    let pipeline = pipeline(&dir, &brokers, &topic, &unique("group"));
    let archive = dir.join("archive");
    let live = dir.join("live.jsonl");
    let mut child = spawn_run(&pipeline, &archive, &live);
    wait_for_rows(&archive, distinct as u64 + 1, &mut child);
    let summary = stop(child);
    let live_summary = summary.clone();

    // Every message produced is accounted for.
    let produced = (lines.len() + bad.len()) as u64;
    let accounted: u64 = ["observations", "late", "duplicates", "rejected"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(accounted, produced, "{summary}");
    assert_eq!(
        summary["archived"].as_u64(),
        Some(distinct as u64 + 1),
        "{summary}"
    );

    // Each bad message is in the dead-letter topic, unchanged, with why and where.
    let dead = consume_all(&brokers, &format!("{topic}-dead"), bad.len());
    assert_eq!(dead.len(), bad.len());
    for m in &dead {
        let payload = String::from_utf8(m.payload().unwrap().to_vec()).unwrap();
        assert!(bad.contains(&payload), "{payload}");
        let headers = m.headers().unwrap();
        let header = |name: &str| {
            headers
                .iter()
                .find(|h| h.key == name)
                .and_then(|h| h.value)
                .map(|v| String::from_utf8_lossy(v).into_owned())
        };
        assert_eq!(header("vigil-topic").as_deref(), Some(topic.as_str()));
        assert!(header("vigil-reason").is_some_and(|r| !r.is_empty()));
        assert!(header("vigil-partition").is_some() && header("vigil-offset").is_some());
    }

    // The alerts topic holds what the file holds.
    let live_lines = std::fs::read_to_string(&live).unwrap().lines().count();
    assert!(live_lines > 0);
    assert_eq!(
        consume_all(&brokers, &format!("{topic}-alerts"), live_lines).len(),
        live_lines
    );

    // A replay of the archive gives the live alerts, byte for byte.
    let replayed = dir.join("replay.jsonl");
    replay(&archive, &replayed);
    assert!(
        std::fs::read(&replayed).unwrap() == std::fs::read(&live).unwrap(),
        "replay differs from live"
    );

    // Offsets were committed: a restart reads nothing again from the topic; it takes the
    // patients from the snapshot the run's end took, replays only the archive's last minutes,
    // and sends none of the alerts again. Then once more with the snapshots removed: the whole
    // archive is replayed.
    // Each drains (the archive's replay, then nothing from the topic) and exits by itself: a
    // stop at a fixed time could cut the replay short on a loaded machine.
    let restart = |alerts: &Path| -> Value {
        let output = run_command(&pipeline, &archive, alerts)
            .args(["--exit-when-idle", "3s"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{stderr}");
        let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        assert_eq!(summary["already_archived"], 0, "{summary}");
        assert_eq!(summary["archived"], 0, "{summary}");
        // What it made again was delivered before: nothing sent.
        assert_eq!(
            summary["alerts_already_delivered"], summary["alerts"],
            "{summary}"
        );
        assert_eq!(std::fs::read_to_string(alerts).unwrap(), "");
        summary
    };
    let summary = restart(&dir.join("again.jsonl"));
    assert_eq!(
        summary["snapshot_patients"], live_summary["patients"],
        "{summary}"
    );
    let tail = summary["restored"].as_u64().unwrap();
    assert!(tail > 0 && tail < distinct as u64 / 4, "{summary}");
    std::fs::remove_dir_all(archive.join("_vigil/snapshots")).unwrap();
    let summary = restart(&dir.join("again-whole.jsonl"));
    assert_eq!(summary["snapshot_patients"], 0, "{summary}");
    // Every archived record is replayed, with its verdict: the processed ones rebuild the
    // patients, the late ones are late again (and remembered, so a re-delivery is a duplicate).
    assert_eq!(
        summary["restored"].as_u64(),
        Some(distinct as u64 + 1),
        "{summary}"
    );
    assert_eq!(summary["late"], live_summary["late"], "{summary}");
    assert_eq!(
        summary["alerts_already_delivered"].as_u64(),
        Some(live_lines as u64),
        "{summary}"
    );
    assert_eq!(archived_rows(&archive), distinct as u64 + 1);
}

/// `vigil replay` of an archive, its alerts to `alerts`.
pub(crate) fn replay(archive: &Path, alerts: &Path) {
    run_ok(&[
        "replay",
        archive.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--quiet",
    ]);
}

/// The complete alert lines of a file (a killed run may have left half a line).
pub(crate) fn alert_lines(path: &Path) -> Vec<(i64, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            Some((v["time_us"].as_i64()?, l.to_owned()))
        })
        .collect()
}

/// Messages of `topic` whose offsets `group` has committed.
pub(crate) fn committed(brokers: &str, topic: &str, group: &str) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .create()
        .unwrap();
    let mut list = rdkafka::TopicPartitionList::new();
    for p in 0..4 {
        list.add_partition(topic, p);
    }
    consumer
        .committed_offsets(list, Duration::from_secs(10))
        .map_or(0, |l| {
            l.elements()
                .iter()
                .filter_map(|e| match e.offset() {
                    rdkafka::Offset::Offset(o) => Some(o),
                    _ => None,
                })
                .sum()
        })
}

#[test]
fn after_kill_9_and_a_restart_each_observation_is_archived_once_and_no_alert_is_lost() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("kafka_kill_9");
    let topic = unique("vitals");
    let group = unique("group");
    let (_, distinct) = produce_cohort(&dir, &brokers, &topic, 24, 12);
    let pipeline = pipeline(&dir, &brokers, &topic, &group);
    let archive = dir.join("archive");
    let delivered_file = archive.join(vigil::archive::DELIVERED_FILE);
    let read_delivered = || -> Option<vigil::archive::Delivered> {
        serde_json::from_slice(&std::fs::read(&delivered_file).ok()?).ok()
    };

    // Kill the first run once it has committed offsets and recorded alerts as delivered, before
    // it can finish: a restart then starts mid-stream, with patients' history behind it.
    // Paced (12 h in about 18 s) and flushed each second, so that it commits mid-stream and is
    // still reading when killed, however fast the build. Both runs write the same alerts file.
    let alerts = dir.join("alerts.jsonl");
    let mut first = run_command(&pipeline, &archive, &alerts)
        .args([
            "--speed",
            "2400",
            "--flush-every",
            "1s",
            "--snapshot-every",
            "1s",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let line = read_delivered().map_or(i64::MIN, |d| d.before_us);
        if alert_lines(&alerts).iter().any(|(t, _)| *t < line)
            && committed(&brokers, &topic, &group) > 0
            && crate::snapshots::usable_snapshot(&archive)
        {
            break;
        }
        if Instant::now() > deadline || first.try_wait().unwrap().is_some() {
            let _ = first.kill();
            panic!(
                "the first run committed nothing, delivered no alert or took no snapshot in time"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    first.kill().unwrap(); // SIGKILL
    first.wait().unwrap();
    let after_crash = archived_rows(&archive);
    assert!(
        after_crash < distinct as u64,
        "the first run finished before the kill; make the cohort bigger"
    );
    let before_restart = alert_lines(&alerts);

    let mut second = spawn_run(&pipeline, &archive, &alerts);
    wait_for_rows(&archive, distinct as u64, &mut second);
    let summary = stop(second);
    assert!(summary["restored"].as_u64().unwrap() > 0, "{summary}");
    // The restart started from a snapshot the first run took mid-stream.
    assert_eq!(summary["snapshot_patients"], 24, "{summary}");

    // Exactly once: every distinct observation, no key twice.
    let (rows, keys) = archive_rows_and_keys(&archive);
    assert_eq!(rows, distinct, "rows archived");
    assert_eq!(keys, distinct, "distinct keys archived");

    // The alerts file went on from what the first run wrote: whole lines only, the first run's
    // alerts kept.
    let text = std::fs::read_to_string(&alerts).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for line in &lines {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("a torn line {line:?}: {e}"));
    }
    assert!(
        before_restart
            .iter()
            .all(|(_, l)| lines.contains(&l.as_str())),
        "the restart lost alerts the first run had written"
    );

    // No alert lost, none made up: what was delivered across the crash (each alert once, one
    // sent just before the kill may come twice with its id) is exactly what a replay of the
    // archive gives.
    let lines: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    assert_delivered_equals_replay(&dir, &archive, &lines);
}

/// Asserts that the alerts delivered across a crash (`lines`: each id once, the first time it
/// came; one sent just before the crash may come twice) are exactly what a replay of `archive`
/// gives: none lost, none made up.
pub(crate) fn assert_delivered_equals_replay(dir: &Path, archive: &Path, lines: &[String]) {
    let reference = dir.join("reference.jsonl");
    replay(archive, &reference);
    let reference: Vec<String> = alert_lines(&reference)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert!(
        reference.iter().any(|l| l.contains("raised")),
        "the cohort raised no alert"
    );
    let mut ids = HashSet::new();
    let delivered: Vec<&String> = lines
        .iter()
        .filter(|l| ids.insert(serde_json::from_str::<Value>(l).unwrap()["id"].to_string()))
        .collect();
    if delivered.iter().copied().ne(reference.iter()) {
        let missing = reference.iter().filter(|l| !delivered.contains(l)).count();
        let extra = delivered.iter().filter(|l| !reference.contains(l)).count();
        panic!(
            "alerts delivered across the crash differ from the replay: {missing} missing, \
             {extra} extra, {} vs {} alerts",
            delivered.len(),
            reference.len()
        );
    }
}

/// A broker of the test's own (it will be paused), from the binary scripts/test installed.
struct PrivateBroker {
    child: Child,
    brokers: String,
}

impl PrivateBroker {
    fn start() -> Option<PrivateBroker> {
        let Ok(tansu) = std::env::var("VIGIL_TANSU") else {
            assert!(!crate::required(), "no VIGIL_TANSU: scripts/test sets it");
            eprintln!("SKIPPED: no VIGIL_TANSU (scripts/test sets it)");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(tansu)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                "memory://tansu/",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "the private broker did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(PrivateBroker {
            child,
            brokers: format!("127.0.0.1:{port}"),
        })
    }

    fn signal(&self, signal: &str) {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        self.signal("-CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private broker holding a 24-patient, 12 h cohort on 4 partitions, and a pipeline over it
/// with these librdkafka `properties` (TOML lines): the broker, the scratch directory, the
/// pipeline and how many distinct observations the topic holds.
fn private_cohort(
    name: &str,
    properties: &str,
) -> Option<(PrivateBroker, PathBuf, PathBuf, usize)> {
    let broker = PrivateBroker::start()?;
    let dir = scratch(name);
    let topic = unique("vitals");
    let (_, distinct) = produce_cohort(&dir, &broker.brokers, &topic, 24, 12);
    let pipeline = pipeline(&dir, &broker.brokers, &topic, &unique("group"));
    let mut text = std::fs::read_to_string(&pipeline).unwrap();
    text.push_str(&format!("\n[source.properties]\n{properties}"));
    std::fs::write(&pipeline, text).unwrap();
    Some((broker, dir, pipeline, distinct))
}

#[test]
fn a_paused_broker_loses_and_duplicates_nothing_and_the_pipeline_resumes() {
    // Client timeouts shorter than the pause.
    let properties = "\"socket.timeout.ms\" = \"3000\"\n\"reconnect.backoff.max.ms\" = \"1000\"\n";
    let Some((broker, dir, pipeline, distinct)) = private_cohort("kafka_sigstop", properties)
    else {
        return;
    };
    let archive = dir.join("archive");
    let mut child = spawn_run(&pipeline, &archive, &dir.join("alerts.jsonl"));
    wait_for_rows(&archive, 1, &mut child);
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(10));
    broker.signal("-CONT");
    wait_for_rows(&archive, distinct as u64, &mut child);

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("brokers are down") || stderr.contains("retrying"),
        "the outage was not reported: {stderr}"
    );
    let (rows, keys) = archive_rows_and_keys(&archive);
    assert_eq!((rows, keys), (distinct, distinct));
}

/// A drain (`--exit-when-idle`) whose broker falls silent mid-topic, with no error reported,
/// reads on once it answers: silence behind the topic's end is a slow broker, not the end (CI's
/// loaded broker stopped two drains a third of the way through).
#[test]
fn a_drain_whose_broker_falls_silent_mid_topic_reads_on_to_the_end() {
    // Paced (12 h in 12 s) with little fetched ahead, the drain needs the broker to its end.
    let properties = "\"queued.min.messages\" = \"1000\"\n";
    let Some((broker, dir, pipeline, distinct)) = private_cohort("kafka_silent_drain", properties)
    else {
        return;
    };
    let archive = dir.join("archive");
    let mut child = run_command(&pipeline, &archive, &dir.join("alerts.jsonl"))
        .args([
            "--exit-when-idle",
            "2s",
            "--flush-every",
            "1s",
            "--speed",
            "3600",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for_rows(&archive, 1, &mut child);
    assert!(
        archived_rows(&archive) < distinct as u64,
        "the drain ended before the broker could be silenced"
    );
    // Silent for longer than the idle time, shorter than librdkafka's socket timeout (60 s):
    // no error is reported.
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(6));
    broker.signal("-CONT");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("reading on"),
        "the wait was not said: {stderr}"
    );
    let (rows, keys) = archive_rows_and_keys(&archive);
    assert_eq!((rows, keys), (distinct, distinct));
}

/// From a live source, a time far ahead of the wall clock is held when it arrives, and the
/// archive records it, so that a replay of the archive gives the alerts the live run gave.
#[test]
fn a_time_ahead_of_the_wall_clock_is_held_and_a_replay_reproduces_it() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("kafka_wall_clock");
    let topic = unique("vitals-wall");
    // A ward of the last two hours, and one device whose clock runs a day ahead of now.
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let start = vigil::observation::EventTime::from_micros(now_us - 2 * 3_600_000_000);
    let file = dir.join("ward.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "6",
        "--hours",
        "2",
        "--seed",
        "3",
        "--start",
        &start.to_rfc3339(),
        "--out",
        file.to_str().unwrap(),
    ]);
    let mut lines: Vec<String> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let ahead = 5;
    for k in 0..ahead {
        let time =
            vigil::observation::EventTime::from_micros(now_us + 86_400_000_000 + k * 60_000_000);
        lines.insert(
            lines.len() / 2 + k as usize * 100,
            format!(
                r#"{{"patient":"sim-00002","device":"pump-2","time":"{}","vital":"heart_rate","value":80,"unit":"/min"}}"#,
                time.to_rfc3339()
            ),
        );
    }
    vigil::kafka::ensure_topic(&brokers, &topic, 2, &Default::default()).unwrap();
    let p = producer(&brokers);
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap();
        let key = v["patient"].as_str().unwrap().to_owned();
        crate::kafka::send(&p, &topic, &key, line);
    }
    p.flush(Duration::from_secs(60)).unwrap();

    let pipeline = pipeline(&dir, &brokers, &topic, &unique("group"));
    let archive = dir.join("archive");
    let live = dir.join("live.jsonl");
    let output = run_command(&pipeline, &archive, &live)
        .args(["--exit-when-idle", "5s"])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    assert_eq!(summary["held"], ahead, "{summary}");

    let held: Vec<vigil::archive::Row> = vigil::archive::files(&archive)
        .unwrap()
        .iter()
        .flat_map(|f| vigil::archive::read_file(f).unwrap())
        .filter(|r| r.held.is_some())
        .collect();
    assert_eq!(held.len(), ahead as usize);
    for row in &held {
        assert_eq!(
            row.held,
            Some(vigil::pipeline::clock::HoldKind::WallClock),
            "{row:?}"
        );
        assert!(
            row.invalid_reason
                .as_deref()
                .is_some_and(|r| r.contains("ahead of the wall clock") && r.contains("pump-2")),
            "{row:?}"
        );
    }
    let live_text = std::fs::read_to_string(&live).unwrap();
    assert!(
        live_text.contains("device pump-2 reports times 24 h ahead of the wall clock"),
        "{live_text}"
    );
    // And in the dead-letter topic, with the reason.
    let dead = consume_all(&brokers, &format!("{topic}-dead"), ahead as usize);
    assert_eq!(dead.len(), ahead as usize);

    let replayed = dir.join("replay.jsonl");
    replay(&archive, &replayed);
    assert!(
        std::fs::read_to_string(&replayed).unwrap() == live_text,
        "replay differs from live"
    );
}

/// Sends one keyed message, waiting for room in the producer's queue.
pub fn send(producer: &BaseProducer, topic: &str, key: &str, payload: &str) {
    vigil::kafka::send_waiting(
        producer,
        BaseRecord::<str, str>::to(topic).key(key).payload(payload),
    )
    .unwrap();
}

/// The Python with confluent-kafka that scripts/test installs (another client than Vigil's), or
/// `None`, said loudly (a failure under scripts/test).
pub(crate) fn python_with_confluent_kafka() -> Option<PathBuf> {
    crate::python_with("confluent_kafka", "confluent-kafka")
}

/// A topic written by another client (confluent-kafka, its own librdkafka) in every codec Kafka
/// defines, one after another, with a tombstone: every observation is read, the tombstone is
/// dead-lettered as an empty message, and the drain ends with the topic read to its end.
#[test]
fn a_topic_written_in_every_codec_by_another_client_is_read_whole() {
    let Some(brokers) = broker() else { return };
    let Some(python) = python_with_confluent_kafka() else {
        return;
    };
    let dir = scratch("kafka_codecs");
    let topic = unique("vitals-codecs");
    let cohort = dir.join("cohort.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "4",
        "--hours",
        "1",
        "--seed",
        "3",
        "--out",
        cohort.to_str().unwrap(),
    ]);
    let program = r#"
import sys, json
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
brokers, topic, path = sys.argv[1:4]
admin = AdminClient({"bootstrap.servers": brokers})
for f in admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)]).values():
    f.result()
lines = open(path).read().splitlines()
codecs = ["none", "gzip", "snappy", "lz4", "zstd"]
chunk = (len(lines) + len(codecs) - 1) // len(codecs)
for i, codec in enumerate(codecs):
    p = Producer({"bootstrap.servers": brokers, "compression.type": codec, "linger.ms": 20})
    for line in lines[i * chunk:(i + 1) * chunk]:
        p.produce(topic, value=line.encode(), key=json.loads(line)["patient"].encode())
        p.poll(0)
    if codec == "gzip":
        p.produce(topic, value=None, key=b"sim-00001")
    assert p.flush(30) == 0, codec
print(len(lines) + 1)
"#;
    let o = Command::new(&python)
        .args(["-c", program, &brokers, &topic, cohort.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let produced: u64 = String::from_utf8(o.stdout).unwrap().trim().parse().unwrap();
    let pipeline = pipeline(&dir, &brokers, &topic, &unique("group"));
    let dead = dir.join("dead.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "run",
            pipeline.to_str().unwrap(),
            "--quiet",
            "--progress",
            "never",
            "--exit-when-idle",
            "5s",
            "--dead-letter",
            dead.to_str().unwrap(),
            "--summary-json",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    assert!(!stderr.contains("Decompression"), "{stderr}");
    let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    let accounted: u64 = ["observations", "late", "duplicates", "rejected"]
        .iter()
        .map(|k| summary[k].as_u64().unwrap())
        .sum();
    assert_eq!(accounted, produced, "{summary}");
    assert_eq!(summary["rejected"], 1, "{summary}");
    let dead = std::fs::read_to_string(&dead).unwrap();
    assert!(dead.contains("empty message (a tombstone"), "{dead}");
}

/// Which records are late depends only on each partition's records, never on how the
/// partitions' reads interleave: repeated runs over one topic, with 2 workers or 1, agree on
/// every count and every alert, byte for byte.
#[test]
fn lateness_and_alerts_over_a_topic_do_not_depend_on_timing_or_workers() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("kafka_lateness");
    let topic = unique("vitals-late");
    let (lines, _) = produce_cohort(&dir, &brokers, &topic, 16, 12);
    let mut runs = Vec::new();
    for (i, workers) in ["2", "2", "1"].into_iter().enumerate() {
        let group = unique(&format!("late-{i}"));
        let pipeline = pipeline(&dir, &brokers, &topic, &group);
        let archive = dir.join(format!("archive-{i}"));
        let alerts = dir.join(format!("alerts-{i}.jsonl"));
        let output = run_command(&pipeline, &archive, &alerts)
            .args(["--workers", workers, "--exit-when-idle", "4s"])
            .output()
            .unwrap();
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert!(output.status.success(), "{stderr}");
        let summary: Value = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
        let accounted: u64 = ["observations", "late", "duplicates", "rejected"]
            .iter()
            .map(|k| summary[k].as_u64().unwrap())
            .sum();
        assert_eq!(accounted, lines.len() as u64, "{summary}");
        runs.push((summary, std::fs::read(&alerts).unwrap()));
    }
    let (first, first_alerts) = &runs[0];
    assert!(
        first["late"].as_u64().unwrap() > 0,
        "the cohort has no late record: {first}"
    );
    for (summary, alerts) in &runs[1..] {
        for key in ["observations", "late", "duplicates", "held", "alerts"] {
            assert_eq!(summary[key], first[key], "{key}: {summary} vs {first}");
        }
        assert!(alerts == first_alerts, "the alerts differ between runs");
    }
}
