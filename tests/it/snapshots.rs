//! Snapshots: a restart starts from the latest snapshot of patients and replays only the
//! archive after it, and gives the alerts one uninterrupted run would; a snapshot that was
//! changed is refused with the reason, and the whole archive replayed instead.

use std::path::Path;
use std::process::Stdio;

use serde_json::Value;

use crate::kafka::{
    alert_lines, archived_rows, assert_delivered_equals_replay, broker, pipeline, run_command,
    unique,
};
use crate::{run_ok, scratch};

/// Simulates `hours` of 24 patients from `start` into `topic` (4 partitions).
pub(crate) fn produce(brokers: &str, topic: &str, start: &str, hours: u32) {
    run_ok(&[
        "simulate",
        "--kafka",
        brokers,
        "--topic",
        topic,
        "--partitions",
        "4",
        "--patients",
        "24",
        "--hours",
        &hours.to_string(),
        "--start",
        start,
        "--seed",
        "23",
    ]);
}

/// Runs the pipeline over its archive until the topic is read (idle 10 s: a loaded broker can
/// pause a fetch for seconds, and a drain that ends mid-topic fails); its summary and what it
/// logged.
fn run_to_end(pipeline: &Path, archive: &Path, alerts: &Path) -> (Value, String) {
    let child = run_command(pipeline, archive, alerts)
        .args(["--exit-when-idle", "10s", "--flush-every", "1s"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = crate::exit_within(
        child,
        std::time::Duration::from_secs(240),
        "the run did not end",
    );
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(output.status.success(), "{stderr}");
    let summary = serde_json::from_str(stderr.lines().last().unwrap()).unwrap();
    (summary, stderr)
}

/// The snapshot sets of an archive: `tick-*` directories and their files.
fn snapshot_files(archive: &Path) -> Vec<String> {
    let root = archive.join("_vigil/snapshots");
    let mut out = Vec::new();
    for set in std::fs::read_dir(&root).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(set.path()).unwrap().flatten() {
            out.push(format!(
                "{}/{}",
                set.file_name().to_string_lossy(),
                file.file_name().to_string_lossy()
            ));
        }
    }
    out.sort();
    out
}

#[test]
fn a_restart_from_a_snapshot_replays_only_what_came_after_it_and_a_changed_one_is_refused() {
    let Some(brokers) = broker() else { return };
    let dir = scratch("snapshots_restart");
    let topic = unique("vitals");
    let group = unique("group");
    let pipeline_file = pipeline(&dir, &brokers, &topic, &group);
    let archive = dir.join("archive");
    let alerts = dir.join("alerts.jsonl");

    // Twelve hours, read to the end: the run's end takes a snapshot of both workers' patients.
    produce(&brokers, &topic, "2026-01-05T00:00:00Z", 12);
    let (first, _) = run_to_end(&pipeline_file, &archive, &alerts);
    let files = snapshot_files(&archive);
    assert_eq!(first["snapshots"], 2, "{first}");
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| f.ends_with("-of-2.bin")), "{files:?}");
    let first_rows = archived_rows(&archive);
    // A copy of the archive as it is now, for the refused snapshot below.
    let copy = dir.join("archive-copy");
    copy_dir(&archive, &copy);
    let alerts_copy = dir.join("alerts-copy.jsonl");
    std::fs::copy(&alerts, &alerts_copy).unwrap();

    // Two hours more: the restart takes its 24 patients from the snapshot and replays only the
    // archive's last minutes (of 12 h archived), then reads on.
    produce(&brokers, &topic, "2026-01-05T12:00:00Z", 2);
    let (second, stderr) = run_to_end(&pipeline_file, &archive, &alerts);
    assert_eq!(second["snapshot_patients"], 24, "{second}");
    assert!(stderr.contains("starting from the snapshot at"), "{stderr}");
    let restored = second["restored"].as_u64().unwrap();
    assert!(
        restored > 0 && restored * 10 < first_rows,
        "{restored} rows replayed of {first_rows}: {second}"
    );
    // The alerts of both runs are those of one run over all of it (a replay of the archive).
    let all = alert_lines(&alerts);
    let noon_us = 1_767_614_400_000_000; // 2026-01-05T12:00:00Z
    assert!(
        all.iter().any(|(t, _)| *t >= noon_us),
        "the restart raised no alert"
    );
    let lines: Vec<String> = all.into_iter().map(|(_, l)| l).collect();
    assert_delivered_equals_replay(&dir, &archive, &lines);

    // The same restart over the copy, its snapshot changed by one byte: refused with the
    // reason, the whole archive replayed, and the same alerts.
    let file = copy.join("_vigil/snapshots").join(&files[1]);
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let other_group = unique("group");
    let pipeline_copy = pipeline(&dir, &brokers, &topic, &other_group);
    let (third, stderr) = run_to_end(&pipeline_copy, &copy, &alerts_copy);
    assert!(
        stderr.contains("refused (its checksum does not match")
            && stderr.contains("replaying the whole archive instead"),
        "{stderr}"
    );
    assert_eq!(third["snapshot_patients"], 0, "{third}");
    assert_eq!(third["restored"].as_u64().unwrap(), first_rows, "{third}");
    let copy_dir_alerts = dir.join("copy");
    std::fs::create_dir_all(&copy_dir_alerts).unwrap();
    let lines: Vec<String> = alert_lines(&alerts_copy)
        .into_iter()
        .map(|(_, l)| l)
        .collect();
    assert_delivered_equals_replay(&copy_dir_alerts, &copy, &lines);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Whether the archive holds a snapshot a restart can start from: every file of its set, and
/// behind the delivered line (ticks of 1 s, the default).
pub(crate) fn usable_snapshot(archive: &Path) -> bool {
    let Some(line_us) = std::fs::read(archive.join(vigil::archive::DELIVERED_FILE))
        .ok()
        .and_then(|b| serde_json::from_slice::<vigil::archive::Delivered>(&b).ok())
        .map(|d| d.before_us)
    else {
        return false;
    };
    let files = snapshot_files(archive);
    files.iter().any(|f| {
        let Some((set, file)) = f.split_once('/') else {
            return false;
        };
        let tick: i64 = set.trim_start_matches("tick-").parse().unwrap_or(i64::MAX);
        let workers = file
            .rsplit("-of-")
            .next()
            .and_then(|w| w.strip_suffix(".bin"));
        let workers: usize = workers.and_then(|w| w.parse().ok()).unwrap_or(usize::MAX);
        let in_set = files
            .iter()
            .filter(|g| g.starts_with(&format!("{set}/")))
            .count();
        tick.saturating_mul(1_000_000) <= line_us && in_set == workers
    })
}
