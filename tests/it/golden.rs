//! Golden alert files: the alerts of the demo, of 200 PhysioNet 2019 stays, of three AZT1D
//! subjects and of the benchmark workload, checked byte for byte against `tests/golden/`.
//!
//! Determinism tests compare one run with another; a change that shifts every run alike passes
//! them. These files pin what the alerts *are*. A change that moves them fails here with the
//! first lines that differ; if the change is meant, regenerate with `scripts/golden` and explain
//! in the commit which alerts changed and why that is right for a clinician
//! (`tests/golden/README.md`).

use std::path::{Path, PathBuf};

use crate::{demo, run_ok, scratch, shared_dataset};

fn golden(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Compares `produced` with the golden file `name`, or replaces the golden file when
/// `VIGIL_REGENERATE_GOLDEN=1` (what `scripts/golden` sets).
fn check(name: &str, produced: &Path) {
    let expected_path = golden(name);
    let got = std::fs::read(produced).expect("the run wrote its alerts");
    assert!(!got.is_empty(), "{name}: the run gave no alerts at all");
    if std::env::var_os("VIGIL_REGENERATE_GOLDEN").is_some_and(|v| v == "1") {
        std::fs::write(&expected_path, &got).expect("write the golden file");
        eprintln!("golden: wrote {}", expected_path.display());
        return;
    }
    let expected = std::fs::read(&expected_path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (scripts/golden writes it)",
            expected_path.display()
        )
    });
    if got == expected {
        return;
    }
    let got = String::from_utf8_lossy(&got);
    let expected = String::from_utf8_lossy(&expected);
    let (got, expected): (Vec<&str>, Vec<&str>) =
        (got.lines().collect(), expected.lines().collect());
    let first = got
        .iter()
        .zip(&expected)
        .position(|(a, b)| a != b)
        .unwrap_or(got.len().min(expected.len()));
    let show = |lines: &[&str]| {
        lines.get(first).map_or("(end of file)".to_owned(), |l| {
            l.chars().take(400).collect()
        })
    };
    panic!(
        "{name}: the alerts differ from the golden file ({} alerts, golden {}); first difference at \
         line {}:\n  got:    {}\n  golden: {}\nIf the change is meant, run scripts/golden and explain the \
         diff of tests/golden/ in the commit.",
        got.len(),
        expected.len(),
        first + 1,
        show(&got),
        show(&expected),
    );
}

#[test]
fn the_demo_gives_its_golden_alerts() {
    let dir = scratch("golden_demo");
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "run",
        demo().to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    check("demo.jsonl", &alerts);
}

#[test]
fn the_bench_workload_gives_its_golden_alerts() {
    let dir = scratch("golden_workload");
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "bench",
        "replay",
        "--patients",
        "40",
        "--minutes",
        "240",
        "--workers",
        "1",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    check("bench-workload.jsonl", &alerts);
}

/// Runs a shipped pipeline (`pipelines/NAME.toml`) without its sinks, each line of it given to
/// `rewrite` with its section (`None`: kept as written), and checks its alerts against `golden`.
fn shipped_gives_its_golden(
    name: &str,
    golden: &str,
    rewrite: impl Fn(&str, &str) -> Option<String>,
) {
    let dir = scratch(&format!("golden_{name}"));
    let pipeline = shipped_without_sinks(&dir, name, rewrite);
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "run",
        pipeline.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    check(golden, &alerts);
}

/// A shipped pipeline (`pipelines/NAME.toml`) without its sinks, written into `dir`, each line
/// given to `rewrite` with its section (`None`: kept as written).
pub(crate) fn shipped_without_sinks(
    dir: &Path,
    name: &str,
    rewrite: impl Fn(&str, &str) -> Option<String>,
) -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shipped = std::fs::read_to_string(root.join(format!("pipelines/{name}.toml"))).unwrap();
    let mut text = String::from("sinks = []\n");
    let mut section = String::new();
    for line in shipped.lines() {
        if line.starts_with('[') {
            section = line.to_owned();
        }
        if section == "[[sinks]]" {
            continue;
        }
        match rewrite(&section, line) {
            Some(new) => text.push_str(&new),
            None => text.push_str(line),
        }
        text.push('\n');
    }
    let pipeline = dir.join(format!("{name}.toml"));
    std::fs::write(&pipeline, text).unwrap();
    pipeline
}

/// The home pipeline's registry line, made absolute.
pub(crate) fn home_registry(section: &str, line: &str) -> Option<String> {
    (section == "[registry]" && line.starts_with("path")).then(|| {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        format!("path = {:?}", root.join("pipelines/home-registry.csv"))
    })
}

/// The shipped PhysioNet 2019 pipeline, on its first 200 stays.
#[test]
fn two_hundred_physionet_2019_stays_give_their_golden_alerts() {
    let Some(data) = shared_dataset("physionet2019-setB-dev") else {
        return;
    };
    let model = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/vigil-sepsis.json");
    shipped_gives_its_golden(
        "physionet2019",
        "physionet2019-200.jsonl",
        |section, line| {
            match section {
                // The same stays, read from here, the first 200 of them.
                "[source]" if line.starts_with("path") => {
                    Some(format!("path = {:?}\nlimit = 200", data.to_str().unwrap()))
                }
                "[risk]" if line.starts_with("model") => {
                    Some(format!("model = {:?}", model.to_str().unwrap()))
                }
                _ => None,
            }
        },
    );
}

/// The shipped AZT1D pipeline on three subjects: Subject 8 (its low collapsed onto one
/// timestamp), 15 (the most lows) and 22 (the most crossings foreseen).
#[test]
fn three_azt1d_subjects_give_their_golden_glucose_alerts() {
    let Some(data) = shared_dataset("azt1d-dev") else {
        return;
    };
    shipped_gives_its_golden("azt1d", "azt1d-3.jsonl", |section, line| {
        (section == "[source]" && line.starts_with("path")).then(|| {
            format!(
                "path = {:?}\nsubjects = [8, 15, 22]",
                data.to_str().unwrap()
            )
        })
    });
}

/// The shipped home pipeline: its simulated cohort of 20 over 14 days, every rule family.
#[test]
fn the_home_cohort_gives_its_golden_alerts() {
    shipped_gives_its_golden("home", "home.jsonl", home_registry);
}
