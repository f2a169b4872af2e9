//! Cluster mode (`--processes N --process I --hosts FILE`) against the real broker: two
//! processes give the alerts and the archive of one; so do two hosts in network namespaces;
//! a process killed with SIGKILL stops the other, and a restart of both loses nothing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::kafka::{
    alert_lines, archived_rows, assert_delivered_equals_replay, broker, committed, produce_cohort,
    unique,
};
use crate::{archive_rows_and_keys, free_port, python, python_with_readers, scratch};

/// A pipeline reading `topic` with `workers` per process, no sinks of its own (`--alerts`).
fn pipeline(dir: &Path, brokers: &str, topic: &str, group: &str) -> PathBuf {
    let path = dir.join(format!("{group}.toml"));
    std::fs::write(
        &path,
        format!(
            "workers = 1\n\n[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup = \"{group}\"\n"
        ),
    )
    .unwrap();
    path
}

/// A hosts file of `ips`, each with a port free on this host now.
fn hosts(dir: &Path, ips: &[&str]) -> PathBuf {
    let path = dir.join(unique("hosts"));
    let text: String = ips
        .iter()
        .map(|ip| format!("{ip}:{}\n", free_port()))
        .collect();
    std::fs::write(&path, format!("# one process a line\n{text}")).unwrap();
    path
}

/// One process's `vigil run`: in network namespace `ns` if given, process `process` of the
/// cluster in `hosts` if given, to the end of the topic.
struct Run<'a> {
    pipeline: &'a Path,
    archive: &'a Path,
    alerts: &'a Path,
    workers: u16,
    ns: Option<&'a str>,
    cluster: Option<(&'a Path, usize, usize)>,
}

impl<'a> Run<'a> {
    /// Process `process` of a cluster of two on this host, one worker each.
    fn local_pair(
        pipeline: &'a Path,
        archive: &'a Path,
        alerts: &'a Path,
        hosts: &'a Path,
        process: usize,
    ) -> Run<'a> {
        Run {
            pipeline,
            archive,
            alerts,
            workers: 1,
            ns: None,
            cluster: Some((hosts, 2, process)),
        }
    }

    fn command(&self) -> Command {
        let vigil = env!("CARGO_BIN_EXE_vigil");
        let mut command = match self.ns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns, vigil]);
                c
            }
            None => Command::new(vigil),
        };
        command.args(["run", self.pipeline.to_str().unwrap()]);
        command.args(["--archive", self.archive.to_str().unwrap()]);
        command.args(["--alerts", self.alerts.to_str().unwrap()]);
        command.args(["--workers", &self.workers.to_string()]);
        command.args(["--quiet", "--progress", "never", "--summary-json"]);
        if let Some((hosts, processes, process)) = self.cluster {
            command.args(["--hosts", hosts.to_str().unwrap()]);
            command.args(["--processes", &processes.to_string()]);
            command.args(["--process", &process.to_string()]);
        }
        // Standard out shows timely's connection progress: not read here.
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        command
    }

    fn spawn(&self, extra: &[&str]) -> Child {
        self.command().args(extra).spawn().unwrap()
    }
}

/// Waits for every process, each within 3 minutes; asserts each succeeded and returns their
/// summaries.
fn finish(children: Vec<Child>) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut summaries = Vec::new();
    let mut children: Vec<Option<Child>> = children.into_iter().map(Some).collect();
    for i in 0..children.len() {
        let output = loop {
            let child = children[i].as_mut().unwrap();
            if child.try_wait().unwrap().is_some() {
                break children[i].take().unwrap().wait_with_output().unwrap();
            }
            if Instant::now() > deadline {
                for c in children.iter_mut().flatten() {
                    let _ = c.kill();
                }
                panic!("process {i} of the cluster did not finish in 3 minutes");
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "process {i}: {stderr}");
        summaries.push(serde_json::from_str(stderr.lines().last().unwrap()).unwrap());
    }
    summaries
}

/// Every archived observation, all columns but `ingest_time` (and the file it is in), as
/// DuckDB reads them: their number and a digest of them in order.
fn archive_digest(python_path: &Path, archive: &Path) -> String {
    let program = format!(
        "import duckdb, hashlib\n\
         rel = duckdb.sql(\"select * exclude (ingest_time) from read_parquet('{}/observations/date=*/*.parquet', hive_partitioning=true) order by all\")\n\
         rows = rel.fetchall()\n\
         print(len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())",
        archive.display()
    );
    python(python_path, &program).trim().to_owned()
}

/// Sums a count over the processes' summaries.
fn total(summaries: &[Value], key: &str) -> u64 {
    summaries.iter().map(|s| s[key].as_u64().unwrap()).sum()
}

/// What a run gave: its alerts file's bytes, its archive's digest, and its summaries.
struct Outcome {
    alerts: Vec<u8>,
    archive: String,
    summaries: Vec<Value>,
}

/// Runs `processes` processes of `workers` each over the topic (in namespaces `ns`, at `ips`),
/// in a group of its own, to the end of the topic.
fn outcome(
    dir: &Path,
    brokers: &str,
    topic: &str,
    name: &str,
    (processes, workers): (usize, u16),
    placed: &[(Option<&str>, &str)],
) -> Outcome {
    let python_path = python_with_readers().expect("scripts/test installs DuckDB");
    let pipeline = pipeline(dir, brokers, topic, &unique(name));
    let archive = dir.join(format!("{name}-archive"));
    let alerts = dir.join(format!("{name}-alerts.jsonl"));
    let ips: Vec<&str> = placed.iter().map(|(_, ip)| *ip).collect();
    let hosts = hosts(dir, &ips[..processes]);
    let children = (0..processes)
        .map(|i| {
            Run {
                pipeline: &pipeline,
                archive: &archive,
                alerts: &alerts,
                workers,
                ns: placed[i].0,
                cluster: (processes > 1).then_some((hosts.as_path(), processes, i)),
            }
            .spawn(&["--exit-when-idle", "4s"])
        })
        .collect();
    let summaries = finish(children);
    Outcome {
        alerts: std::fs::read(&alerts).unwrap(),
        archive: archive_digest(&python_path, &archive),
        summaries,
    }
}

/// Asserts that `cluster` gave what `single` did: the same alerts byte for byte, the same
/// archived rows, and between its processes the same counts.
fn assert_same(single: &Outcome, cluster: &Outcome, what: &str) {
    let lines = String::from_utf8_lossy(&single.alerts).lines().count();
    assert!(lines > 5, "the cohort raised only {lines} alerts");
    assert!(
        cluster.alerts == single.alerts,
        "{what}: the alerts differ from one process's"
    );
    assert_eq!(
        cluster.archive, single.archive,
        "{what}: the archives differ"
    );
    for key in ["observations", "late", "duplicates", "archived"] {
        assert_eq!(
            total(&cluster.summaries, key),
            total(&single.summaries, key),
            "{what}: {key}"
        );
    }
    // Process 0 alone delivers (and archives) the alerts.
    assert_eq!(
        cluster.summaries[0]["alerts_archived"],
        single.summaries[0]["alerts_archived"]
    );
    for s in &cluster.summaries[1..] {
        assert_eq!(s["alerts_archived"], 0, "{what}: {s}");
    }
}

#[test]
fn two_processes_give_the_alerts_and_the_archive_of_one() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("cluster_two");
    let topic = unique("vitals-cluster");
    produce_cohort(&dir, &brokers, &topic, 16, 6);
    let local = [(None, "127.0.0.1"), (None, "127.0.0.1")];
    let single = outcome(&dir, &brokers, &topic, "one", (1, 2), &local);
    let two = outcome(&dir, &brokers, &topic, "two", (2, 1), &local);
    assert_same(&single, &two, "2 processes of 1 worker");
    let four = outcome(&dir, &brokers, &topic, "four", (2, 2), &local);
    assert_same(&single, &four, "2 processes of 2 workers");
}

/// Two network namespaces joined by a veth pair: two hosts, each its own network stack.
struct Namespaces {
    names: [String; 2],
    ips: [String; 2],
}

impl Namespaces {
    /// Made with iproute2 (needs root), or `None`, said loudly.
    fn create() -> Option<Namespaces> {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout == b"0\n");
        let ip = Command::new("ip").arg("-V").output().is_ok();
        if !(root && ip) {
            assert!(
                !crate::required(),
                "the network-namespace test needs root and iproute2 (`ip`)"
            );
            eprintln!("SKIPPED: network namespaces need root and iproute2");
            return None;
        }
        let id = std::process::id() % 100_000;
        let net = 1 + std::process::id() % 250;
        let ns = Namespaces {
            names: [format!("vigil{id}a"), format!("vigil{id}b")],
            ips: [format!("10.231.{net}.1"), format!("10.231.{net}.2")],
        };
        ns.delete();
        let (a, b) = (&ns.names[0], &ns.names[1]);
        let (va, vb) = (format!("vg{id}a"), format!("vg{id}b"));
        let steps: Vec<Vec<&str>> = vec![
            vec!["netns", "add", a],
            vec!["netns", "add", b],
            vec!["link", "add", &va, "type", "veth", "peer", "name", &vb],
            vec!["link", "set", &va, "netns", a],
            vec!["link", "set", &vb, "netns", b],
        ];
        let addr_a = format!("{}/24", ns.ips[0]);
        let addr_b = format!("{}/24", ns.ips[1]);
        let more: Vec<Vec<&str>> = vec![
            vec!["-n", a, "addr", "add", &addr_a, "dev", &va],
            vec!["-n", b, "addr", "add", &addr_b, "dev", &vb],
            vec!["-n", a, "link", "set", &va, "up"],
            vec!["-n", b, "link", "set", &vb, "up"],
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", b, "link", "set", "lo", "up"],
        ];
        for step in steps.iter().chain(&more) {
            let o = Command::new("ip").args(step).output().unwrap();
            assert!(
                o.status.success(),
                "ip {}: {}",
                step.join(" "),
                String::from_utf8_lossy(&o.stderr)
            );
        }
        Some(ns)
    }

    fn delete(&self) {
        for name in &self.names {
            let _ = Command::new("ip").args(["netns", "del", name]).output();
        }
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        self.delete();
    }
}

/// A broker of the test's own in namespace `ns`, listening at `ip`: the machine's broker is
/// on the root namespace's loopback, which the namespaces cannot reach.
struct NamespacedBroker(Child);

impl NamespacedBroker {
    fn start(ns: &str, ip: &str) -> (NamespacedBroker, String) {
        let tansu = std::env::var("VIGIL_TANSU").expect("scripts/test sets VIGIL_TANSU");
        let brokers = format!("{ip}:9092");
        let url = format!("tcp://{brokers}");
        let child = Command::new("ip")
            .args([
                "netns",
                "exec",
                ns,
                &tansu,
                "broker",
                "--listener-url",
                &url,
            ])
            .args(["--advertised-listener-url", &url])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let probe = format!("echo > /dev/tcp/{ip}/9092");
        while !Command::new("ip")
            .args(["netns", "exec", ns, "bash", "-c", &probe])
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
        {
            assert!(
                Instant::now() < deadline,
                "the namespaced broker did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        (NamespacedBroker(child), brokers)
    }
}

impl Drop for NamespacedBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_hosts_in_network_namespaces_give_the_alerts_and_the_archive_of_one() {
    if broker().is_none() {
        return;
    }
    let Some(ns) = Namespaces::create() else {
        return;
    };
    let (_broker, brokers) = NamespacedBroker::start(&ns.names[0], &ns.ips[0]);
    let dir = scratch("cluster_netns");
    let topic = unique("vitals-netns");
    let vigil = env!("CARGO_BIN_EXE_vigil");
    let produced = Command::new("ip")
        .args([
            "netns",
            "exec",
            &ns.names[0],
            vigil,
            "simulate",
            "--kafka",
            &brokers,
        ])
        .args(["--topic", &topic, "--partitions", "4"])
        .args(["--patients", "16", "--hours", "6", "--seed", "17"])
        .output()
        .unwrap();
    assert!(
        produced.status.success(),
        "{}",
        String::from_utf8_lossy(&produced.stderr)
    );
    let placed = [
        (Some(ns.names[0].as_str()), ns.ips[0].as_str()),
        (Some(ns.names[1].as_str()), ns.ips[1].as_str()),
    ];
    let single = outcome(&dir, &brokers, &topic, "one", (1, 2), &placed);
    let two = outcome(&dir, &brokers, &topic, "two", (2, 1), &placed);
    assert_same(&single, &two, "2 hosts");
}

#[test]
fn a_killed_process_stops_the_cluster_and_a_restart_of_both_loses_nothing() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("cluster_kill_9");
    let topic = unique("vitals-cluster-kill");
    let group = unique("cluster-kill");
    let (_, distinct) = produce_cohort(&dir, &brokers, &topic, 24, 12);
    let pipeline = pipeline(&dir, &brokers, &topic, &group);
    let archive = dir.join("archive");
    let alerts = dir.join("alerts.jsonl");
    let hosts = hosts(&dir, &["127.0.0.1", "127.0.0.1"]);
    let process = |i| Run::local_pair(&pipeline, &archive, &alerts, &hosts, i);
    let delivered_line = || -> i64 {
        std::fs::read(archive.join(vigil::archive::DELIVERED_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice::<vigil::archive::Delivered>(&b).ok())
            .map_or(i64::MIN, |d| d.before_us)
    };

    // Paced (12 h in about 18 s) and flushed each second, so that both commit mid-stream and
    // are still reading when process 1 is killed.
    // Each process serves its metrics at the port plus its index.
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let paced = [
        "--speed",
        "2400",
        "--flush-every",
        "1s",
        "--metrics",
        &metrics,
    ];
    let mut first = process(0).spawn(&paced);
    let mut second = process(1).spawn(&paced);
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut scraped = [false, false];
    loop {
        for (i, done) in scraped.iter_mut().enumerate() {
            let page = crate::metrics::scrape(port + i as u16, None).map(|(_, text)| text);
            // A page with this process's own worker (1 worker a process: worker i).
            let own = format!("vigil_patients{{worker=\"{i}\"}}");
            *done |=
                page.is_some_and(|p| p.contains(&own) && p.contains("vigil_observations_total"));
        }
        let line = delivered_line();
        if alert_lines(&alerts).iter().any(|(t, _)| *t < line)
            && committed(&brokers, &topic, &group) > 0
            && scraped == [true, true]
        {
            break;
        }
        if Instant::now() > deadline || first.try_wait().unwrap().is_some() {
            let _ = first.kill();
            let _ = second.kill();
            panic!(
                "in time, the cluster committed nothing, delivered no alert or did not serve \
                 each process's metrics at port {port} + its index ({scraped:?})"
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    second.kill().unwrap(); // SIGKILL
    second.wait().unwrap();

    // Fail-stop: process 0 stops, with an error that says why, and does not hang.
    let output = crate::exit_within(
        first,
        Duration::from_secs(60),
        "process 0 ran on for a minute after process 1 was killed",
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "process 0 exited 0: {stderr}");
    assert!(
        stderr.contains("another process of the cluster"),
        "process 0 did not say why it stopped: {stderr}"
    );
    assert!(
        archived_rows(&archive) < distinct as u64,
        "the cluster finished before the kill; make the cohort bigger"
    );
    let line_at_crash = delivered_line();
    let before_restart = alert_lines(&alerts);

    // A restart of both reads on to the end.
    let idle = ["--exit-when-idle", "5s"];
    let summaries = finish(vec![process(0).spawn(&idle), process(1).spawn(&idle)]);
    assert!(total(&summaries, "restored") > 0, "{summaries:?}");

    // Exactly once: every distinct observation, no key twice.
    let (rows, keys) = archive_rows_and_keys(&archive);
    assert_eq!(rows, distinct, "rows archived");
    assert_eq!(keys, distinct, "distinct keys archived");

    // No alert lost or made up, and none twice but those after the delivered line the crash
    // left (the documented at-least-once window, each with its id).
    let lines = alert_lines(&alerts);
    assert!(
        before_restart.iter().all(|l| lines.contains(l)),
        "the restart lost alerts written before the crash"
    );
    let mut seen = HashSet::new();
    for (time_us, line) in &lines {
        let id = serde_json::from_str::<Value>(line).unwrap()["id"].to_string();
        assert!(
            seen.insert(id.clone()) || *time_us >= line_at_crash,
            "alert {id} at {time_us} came twice, before the delivered line {line_at_crash}"
        );
    }
    let lines: Vec<String> = lines.into_iter().map(|(_, l)| l).collect();
    assert_delivered_equals_replay(&dir, &archive, &lines);
}

#[test]
fn a_file_source_read_by_process_0_gives_its_golden_alerts_from_two_processes() {
    // The home cohort: every kind of event (glucose, pumps, doses, inhalers, prescriptions from
    // the registry) crosses from process 0, which reads the simulator, to process 1's patients.
    let dir = scratch("cluster_home");
    let pipeline = crate::golden::shipped_without_sinks(&dir, "home", crate::golden::home_registry);
    let hosts = hosts(&dir, &["127.0.0.1", "127.0.0.1"]);
    let alerts = dir.join("alerts.jsonl");
    let children = (0..2)
        .map(|i| {
            Command::new(env!("CARGO_BIN_EXE_vigil"))
                .args([
                    "run",
                    pipeline.to_str().unwrap(),
                    "--quiet",
                    "--progress",
                    "never",
                ])
                .args(["--alerts", alerts.to_str().unwrap(), "--summary-json"])
                .args(["--processes", "2", "--process", &i.to_string()])
                .args(["--hosts", hosts.to_str().unwrap()])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let summaries = finish(children);
    let golden = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden/home.jsonl");
    assert!(
        std::fs::read(&alerts).unwrap() == std::fs::read(golden).unwrap(),
        "the alerts of 2 processes differ from tests/golden/home.jsonl"
    );
    // Process 1 read nothing itself but monitored its share of the patients.
    assert!(
        summaries[1]["patients"].as_u64().unwrap() > 0,
        "{}",
        summaries[1]
    );
    assert!(
        summaries[0]["patients"].as_u64().unwrap() > 0,
        "{}",
        summaries[0]
    );
}

#[test]
fn two_processes_restart_from_the_snapshot_they_took_and_give_the_alerts_of_one_run() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("cluster_snapshot");
    let topic = unique("vitals-cluster-snapshot");
    let group = unique("cluster-snapshot");
    let pipeline = pipeline(&dir, &brokers, &topic, &group);
    let archive = dir.join("archive");
    let alerts = dir.join("alerts.jsonl");
    let hosts = hosts(&dir, &["127.0.0.1", "127.0.0.1"]);
    let process = |i| Run::local_pair(&pipeline, &archive, &alerts, &hosts, i);
    let both = || {
        let idle = ["--exit-when-idle", "10s", "--flush-every", "1s"];
        finish(vec![process(0).spawn(&idle), process(1).spawn(&idle)])
    };

    // Twelve hours read to the end: each process's worker writes its share of the end's
    // snapshot into the one archive.
    crate::snapshots::produce(&brokers, &topic, "2026-01-05T00:00:00Z", 12);
    let first = both();
    assert_eq!(total(&first, "snapshots"), 2, "{first:?}");
    let archived = total(&first, "archived");

    // Two hours more: both processes start from it, each taking the patients of its worker,
    // and replay only the archive's last minutes.
    crate::snapshots::produce(&brokers, &topic, "2026-01-05T12:00:00Z", 2);
    let second = both();
    assert_eq!(total(&second, "snapshot_patients"), 24, "{second:?}");
    for s in &second {
        assert!(s["snapshot_patients"].as_u64().unwrap() > 0, "{s}");
    }
    let restored = total(&second, "restored");
    assert!(
        restored > 0 && restored * 10 < archived,
        "{restored} of {archived}"
    );
    let lines: Vec<String> = alert_lines(&alerts).into_iter().map(|(_, l)| l).collect();
    assert_delivered_equals_replay(&dir, &archive, &lines);
}
