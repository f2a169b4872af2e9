//! Integration tests: the real `vigil` binary on real inputs. One test binary, many modules, so
//! that it links once.

mod access;
mod archive;
mod bench;
mod board;
mod clock;
mod cluster;
mod failures;
mod glucose;
mod golden;
mod home;
mod interop;
mod kafka;
mod logs;
mod metrics;
mod pipeline;
mod privacy;
mod risk;
mod score;
mod snapshots;
mod tls;
mod webhook;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Waits for `child` to exit, for at most `limit`; then kills it and fails with `what` (never
/// leaving a process behind a failed test). Returns its output.
pub fn exit_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
    what: &str,
) -> Output {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}");
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    child.wait_with_output().unwrap()
}

/// Runs `vigil` with `args` and returns its output.
pub fn vigil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("the vigil binary runs")
}

/// Runs `vigil` with `args`, asserts success, and returns its standard output.
pub fn run_ok(args: &[&str]) -> String {
    let o = vigil(args);
    assert!(
        o.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// Runs the shipped `pipelines/{name}.toml` with `extra` arguments, its alerts to
/// `dir/{out}.jsonl`; their lines.
pub fn shipped_alerts(name: &str, dir: &Path, out: &str, extra: &[&str]) -> Vec<String> {
    let path = dir.join(format!("{out}.jsonl"));
    let pipeline = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("pipelines/{name}.toml"));
    let mut args = vec![
        "run",
        pipeline.to_str().unwrap(),
        "--alerts",
        path.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
    std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Asserts that `vigil replay` of `archive` (its alerts to `out`) gives the `live` alert lines
/// byte for byte.
pub fn assert_replay_gives(archive: &Path, out: &Path, live: &[String]) {
    run_ok(&[
        "replay",
        archive.to_str().unwrap(),
        "--alerts",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let replayed = std::fs::read_to_string(out).unwrap();
    assert!(
        replayed == live.join("\n") + "\n",
        "the replay's alerts differ"
    );
}

/// Each line of a JSON lines file, parsed.
pub fn read_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// The demo pipeline.
pub fn demo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml")
}

/// The demo pipeline's text with the paths it reads (its model, its registry) made absolute,
/// for a test to write a variant of it elsewhere.
pub fn demo_text() -> String {
    let root = env!("CARGO_MANIFEST_DIR");
    std::fs::read_to_string(demo())
        .unwrap()
        .replace("\"../models/", &format!("\"{root}/models/"))
        .replace(
            "\"demo-registry.csv\"",
            &format!("\"{root}/pipelines/demo-registry.csv\""),
        )
}

/// (rows, distinct (patient, device, vital, time) keys) in an archive.
pub fn archive_rows_and_keys(archive: &std::path::Path) -> (usize, usize) {
    let mut keys = std::collections::HashSet::new();
    let mut rows = 0;
    for file in vigil::archive::files(archive).unwrap() {
        for row in vigil::archive::read_file(&file).unwrap() {
            rows += 1;
            keys.insert((row.patient, row.device, row.vital, row.time));
        }
    }
    (rows, keys.len())
}

/// A path under the project's `datasets/`.
pub fn dataset(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("datasets")
        .join(path)
}

/// A fresh directory for one test's files.
pub fn scratch(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    dir
}

/// Whether a test that needs something missing must fail rather than skip: `scripts/test` (the
/// CI command) sets `VIGIL_TEST_REQUIRE=1`, as does a `CI` environment.
pub fn required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var_os("VIGIL_TEST_REQUIRE").is_some_and(|v| v != "0")
}

/// A dataset under `../shared/datasets/`, or `None` (said loudly on standard error) when this
/// clone stands alone; under `scripts/test` a missing dataset fails the test.
pub fn shared_dataset(name: &str) -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/datasets")
        .join(name);
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        !required(),
        "{} is missing: the test suite needs ../shared/datasets beside the project",
        path.display()
    );
    eprintln!(
        "SKIPPED: {} is missing (a standalone clone); the tests that replay it did not run",
        path.display()
    );
    None
}

/// The Python with DuckDB, pyarrow and pandas that scripts/test installs (or VIGIL_PYTHON); a
/// test without one says so loudly, and fails under scripts/test.
pub fn python_with_readers() -> Option<PathBuf> {
    python_with("duckdb, pyarrow, pandas", "duckdb, pyarrow and pandas")
}

/// The Python (VIGIL_PYTHON, or the `.venv` scripts/test makes) that can `import modules`;
/// `None`, said loudly, when there is none (a failure under scripts/test).
pub fn python_with(modules: &str, what: &str) -> Option<PathBuf> {
    let candidates = [
        std::env::var_os("VIGIL_PYTHON").map(PathBuf::from),
        Some(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")),
    ];
    let found = candidates.into_iter().flatten().find(|p| {
        Command::new(p)
            .args(["-c", &format!("import {modules}")])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if found.is_none() {
        assert!(
            !required(),
            "no Python with {what}: scripts/test installs it into .venv"
        );
        eprintln!("SKIPPED: no Python with {what} (scripts/test installs it)");
    }
    found
}

/// Runs a Python program and returns what it printed.
pub fn python(python: &Path, program: &str) -> String {
    let o = Command::new(python).args(["-c", program]).output().unwrap();
    assert!(
        o.status.success(),
        "{program}\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout).unwrap()
}

/// A TCP port free on loopback now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits up to `seconds` for something (`what`) to listen on loopback `port`.
pub fn wait_for_port(port: u16, what: &str, seconds: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} did not open port {port}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}
