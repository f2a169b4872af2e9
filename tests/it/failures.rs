//! When things go wrong: exit codes that say what went wrong (bad input, bad configuration, a
//! failure while running), and a full disk under the archive, which names the file and the OS
//! error, commits nothing past what is durable, and resumes once space is freed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::{demo, run_ok, scratch, vigil};

#[test]
fn exit_codes_tell_bad_input_from_bad_configuration_and_from_a_failure() {
    let dir = scratch("exit_codes");
    // 2: the command line.
    let o = vigil(&["run"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // 1: an input that cannot be read.
    let missing = dir.join("missing.jsonl");
    let o = vigil(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        missing.to_str().unwrap(),
        "--quiet",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("missing.jsonl"), "{stderr}");
    // 3: a pipeline file with a problem, for run and validate alike.
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[source]\nkind = \"simulator\"\n\n[time]\ntick = \"fast\"\n",
    )
    .unwrap();
    for command in ["run", "validate"] {
        let o = vigil(&[command, bad.to_str().unwrap()]);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(3), "{command}: {stderr}");
        assert!(stderr.contains("\"fast\" is not a duration"), "{stderr}");
    }
    // And the codes are in --help.
    let help = String::from_utf8(vigil(&["--help"]).stdout).unwrap();
    assert!(
        help.contains("Exit codes:") && help.contains("4  failed while running"),
        "{help}"
    );
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    /// A tmpfs of `size` (`3m`) at `dir`, or `None`, said loudly, where mounting is not allowed
    /// (a failure under scripts/test, which runs as root).
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).unwrap();
        let o = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .output()
            .unwrap();
        if !o.status.success() {
            let why = String::from_utf8_lossy(&o.stderr);
            assert!(
                !crate::required(),
                "cannot mount a tmpfs for the full-disk test: {why}"
            );
            eprintln!("SKIPPED: cannot mount a tmpfs (not root?): {why}");
            return None;
        }
        Some(Tmpfs {
            dir: dir.to_owned(),
        })
    }

    /// Frees space: the same tmpfs, bigger, with what it holds.
    fn grow(&self, size: &str) {
        let o = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).output();
    }
}

#[test]
fn an_archive_on_a_full_disk_names_the_file_and_the_os_error() {
    let dir = scratch("full_disk_file");
    let cohort = dir.join("cohort.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "20",
        "--hours",
        "12",
        "--out",
        cohort.to_str().unwrap(),
    ]);
    // The risk model's copy (0.35 MB) fits; the observations (0.5 MB) do not.
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "512k") else {
        return;
    };
    let archive = disk.dir.join("archive");
    let o = vigil(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        cohort.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert!(
        stderr.contains(archive.join("observations").to_str().unwrap()),
        "the error does not name the archive's file: {stderr}"
    );
    assert_eq!(
        stderr.matches("No space left on device").count(),
        1,
        "the cause is said more than once: {stderr}"
    );
}

/// With Kafka, a full archive stops the run before anything past the durable archive is
/// committed; run again once there is space, it resumes and every observation is archived once.
#[test]
fn a_kafka_run_on_a_full_disk_resumes_once_space_is_freed_and_loses_nothing() {
    let Some(brokers) = std::env::var("VIGIL_KAFKA").ok() else {
        assert!(
            !crate::required(),
            "no VIGIL_KAFKA broker: scripts/test starts one"
        );
        eprintln!("SKIPPED: no VIGIL_KAFKA broker (scripts/test starts one)");
        return;
    };
    let dir = scratch("full_disk_kafka");
    // About 0.2 MB of archive on 96 KB.
    let Some(disk) = Tmpfs::mount(&dir.join("disk"), "96k") else {
        return;
    };
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let topic = format!("vitals-full-{}-{nanos}", std::process::id());
    let args = ["--patients", "12", "--hours", "6", "--seed", "17"];
    let cohort = dir.join("cohort.jsonl");
    let mut to_file = vec!["simulate", "--out", cohort.to_str().unwrap()];
    to_file.extend_from_slice(&args);
    run_ok(&to_file);
    let mut to_kafka = vec!["simulate", "--kafka", &brokers, "--topic", &topic];
    to_kafka.extend_from_slice(&args);
    run_ok(&to_kafka);
    let distinct: std::collections::HashSet<(String, String, String, String)> =
        std::fs::read_to_string(&cohort)
            .unwrap()
            .lines()
            .map(|l| {
                let v: Value = serde_json::from_str(l).unwrap();
                let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
                (s("patient"), s("device"), s("vital"), s("time"))
            })
            .collect();
    let pipeline = dir.join("kafka.toml");
    std::fs::write(
        &pipeline,
        format!(
            "workers = 2\n\n[source]\nkind = \"kafka\"\nbrokers = \"{brokers}\"\ntopic = \"{topic}\"\ngroup = \"{topic}-g\"\n\n\
             [[sinks]]\nkind = \"jsonl\"\npath = \"alerts.jsonl\"\n"
        ),
    )
    .unwrap();
    let archive = disk.dir.join("archive");
    let run = |timeout: &str| {
        Command::new(env!("CARGO_BIN_EXE_vigil"))
            .args(["run", pipeline.to_str().unwrap(), "--archive"])
            .arg(&archive)
            .args(["--quiet", "--progress", "never", "--flush-every", "1s"])
            .args(["--exit-when-idle", timeout, "--summary-json"])
            .output()
            .unwrap()
    };
    let full = run("5s");
    let stderr = String::from_utf8_lossy(&full.stderr);
    assert_eq!(full.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    disk.grow("64m");
    std::thread::sleep(Duration::from_millis(200));
    let again = run("5s");
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success(), "{stderr}");
    let (rows, keys) = crate::archive_rows_and_keys(&archive);
    assert_eq!(rows, keys, "an observation archived twice");
    assert_eq!(keys, distinct.len(), "observations lost");
}
