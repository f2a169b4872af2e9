//! The Parquet archive: every observation archived once, replay equal to live, and readable by
//! DuckDB.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::{demo, python, python_with_readers, run_ok, scratch, vigil};

/// A simulated cohort with a few bad lines mixed in; returns (file, good lines, bad lines).
fn cohort_with_bad_lines(dir: &Path) -> (PathBuf, Vec<String>, usize) {
    let clean = dir.join("clean.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "6",
        "--hours",
        "6",
        "--seed",
        "4",
        "--out",
        clean.to_str().unwrap(),
    ]);
    let mut lines: Vec<String> = std::fs::read_to_string(&clean)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let bad = [
        "not json",
        r#"{"patient":"sim-00001","time":"2026-01-05T01:00:00Z","vital":"heart_rate","value":900,"unit":"/min"}"#,
        r#"{"patient":"sim-00002","time":"yesterday","vital":"heart_rate","value":80,"unit":"/min"}"#,
        r#"{"patient":"sim-00003","time":"2026-01-05T02:00:00Z","vital":"ketones","value":0.4,"unit":"mmol/L"}"#,
    ];
    for (i, b) in bad.iter().enumerate() {
        // At the ward's time where it goes: a time an hour off would be held as a wrong clock.
        let at = 1000 * (i + 1);
        let v: Value = serde_json::from_str(&lines[at]).unwrap();
        let b = b.replace("2026-01-05T01:00:00Z", v["time"].as_str().unwrap());
        lines.insert(at, b);
    }
    let path = dir.join("cohort.jsonl");
    std::fs::write(&path, lines.join("\n")).unwrap();
    (path, lines, bad.len())
}

fn inspect(dir: &Path) -> Value {
    serde_json::from_str(&run_ok(&["inspect", dir.to_str().unwrap(), "--json"])).unwrap()
}

#[test]
fn every_line_ends_archived_or_dead_lettered_and_replay_equals_live() {
    let dir = scratch("archive_roundtrip");
    let (input, lines, bad) = cohort_with_bad_lines(&dir);
    let archive = dir.join("archive");
    let live = dir.join("live.jsonl");
    let dead = dir.join("dead.jsonl");
    let o = vigil(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--alerts",
        live.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--workers",
        "2",
        "--quiet",
        "--progress",
        "never",
        "--summary-json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let summary: Value =
        serde_json::from_str(String::from_utf8(o.stderr).unwrap().lines().last().unwrap()).unwrap();

    // Each bad line is in the dead-letter file with its line number.
    let dead: Vec<Value> = std::fs::read_to_string(&dead)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dead.len(), bad);
    for d in &dead {
        let line: usize = d["position"]
            .as_str()
            .unwrap()
            .trim_start_matches("line ")
            .parse()
            .unwrap();
        assert_eq!(d["raw"].as_str(), Some(lines[line - 1].as_str()));
    }

    // Every line is accounted for: archived once (late ones included), a duplicate, or dead.
    let info = inspect(&archive);
    let rows = info["rows"].as_u64().unwrap();
    let duplicates = summary["duplicates"].as_u64().unwrap();
    let unarchived_dead = bad as u64 - 1; // the impossible heart rate is archived (for its patient)
    assert_eq!(
        rows + duplicates + unarchived_dead,
        lines.len() as u64,
        "{info} {summary}"
    );
    assert_eq!(info["invalid"], 1);
    assert_eq!(info["late"], summary["late"]);
    assert_eq!(info["patients"], 6);
    assert_eq!(summary["archived"].as_u64(), Some(rows));

    // The alerts are archived beside the observations, as a dataset of their own.
    let live_bytes = std::fs::read(&live).unwrap();
    let live_alerts = std::fs::read_to_string(&live).unwrap().lines().count() as u64;
    assert!(
        !vigil::archive::dataset_files(&archive.join("alerts"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(summary["alerts_archived"].as_u64(), Some(live_alerts));
    assert_eq!(info["alerts"].as_u64(), Some(live_alerts));

    // The replay gives the same alerts, byte for byte, with 1 worker or 2.
    assert!(!live_bytes.is_empty());
    for workers in ["1", "2"] {
        let replayed = dir.join(format!("replay-{workers}.jsonl"));
        run_ok(&[
            "replay",
            archive.to_str().unwrap(),
            "--alerts",
            replayed.to_str().unwrap(),
            "--quiet",
            "--workers",
            workers,
        ]);
        assert!(
            std::fs::read(&replayed).unwrap() == live_bytes,
            "replay with {workers} workers differs from live"
        );
    }

    // Paced at 100,000× real time, the 6 hours take about 0.2 s and give the same alerts.
    let paced = dir.join("paced.jsonl");
    run_ok(&[
        "replay",
        archive.to_str().unwrap(),
        "--alerts",
        paced.to_str().unwrap(),
        "--quiet",
        "--speed",
        "100000",
    ]);
    assert!(
        std::fs::read(&paced).unwrap() == live_bytes,
        "a paced replay differs from live"
    );

    // A patient filter replays that patient's alerts only.
    let one = dir.join("one.jsonl");
    run_ok(&[
        "replay",
        archive.to_str().unwrap(),
        "--alerts",
        one.to_str().unwrap(),
        "--quiet",
        "--patient",
        "sim-00001",
    ]);
    let text = std::fs::read_to_string(&one).unwrap();
    assert!(
        text.lines()
            .all(|l| l.contains("\"patient\":\"sim-00001\""))
    );
}

/// A small simulated ward (with alerts) archived, with its live alerts: (archive, alerts file).
fn archived_ward(dir: &Path) -> (PathBuf, PathBuf) {
    let input = dir.join("cohort.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "4",
        "--hours",
        "4",
        "--seed",
        "5",
        "--out",
        input.to_str().unwrap(),
    ]);
    let archive = dir.join("archive");
    let alerts = dir.join("alerts.jsonl");
    run_ok(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
    ]);
    (archive, alerts)
}

#[test]
fn duckdb_reads_the_archive_as_it_is() {
    let Some(python_path) = python_with_readers() else {
        return;
    };
    let dir = scratch("archive_duckdb");
    let (archive, _) = archived_ward(&dir);
    let rows = inspect(&archive)["rows"].as_u64().unwrap();
    let query = format!(
        "import duckdb; print(duckdb.sql(\"select count(*), count(distinct patient), min(time)::varchar, \
         sum(case when vital = 'heart_rate' then 1 else 0 end) from read_parquet('{}/observations/date=*/*.parquet', hive_partitioning=true)\").fetchall()[0])",
        archive.display()
    );
    let out = python(&python_path, &query);
    assert!(
        out.starts_with(&format!("({rows}, 4, '2026-01-05 00:00:00")),
        "{out}"
    );
}

/// A researcher opens each dataset of an archive the way pyarrow and pandas open a folder of
/// Parquet files: the observations, and the alerts, which are those the run delivered.
#[test]
fn pyarrow_and_pandas_open_the_observations_and_the_alerts_as_datasets() {
    let Some(python_path) = python_with_readers() else {
        return;
    };
    let dir = scratch("archive_datasets");
    let (archive, alerts) = archived_ward(&dir);
    let rows = inspect(&archive)["rows"].as_u64().unwrap();
    let program = format!(
        r#"
import pyarrow.dataset as ds, pandas as pd
obs = ds.dataset("{a}/observations", format="parquet", partitioning="hive")
print(obs.count_rows())
print(len(pd.read_parquet("{a}/observations")))
alerts = ds.dataset("{a}/alerts", format="parquet", partitioning="hive").to_table().to_pandas()
frame = pd.read_parquet("{a}/alerts")
print(len(frame))
print(" ".join(alerts.sort_values(["time", "patient", "kind", "event", "id"])["id"]))
print(sorted(set(frame["kind"].astype(str))))
"#,
        a = archive.display()
    );
    let out = python(&python_path, &program);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], rows.to_string(), "{out}");
    assert_eq!(lines[1], rows.to_string(), "{out}");
    let delivered: Vec<serde_json::Value> = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!delivered.is_empty());
    assert_eq!(lines[2], delivered.len().to_string(), "{out}");
    let mut ids: Vec<(i64, String, String, String, String)> = delivered
        .iter()
        .map(|a| {
            let s = |k: &str| a[k].as_str().unwrap().to_owned();
            (
                a["time_us"].as_i64().unwrap(),
                s("patient"),
                s("kind"),
                s("event"),
                s("id"),
            )
        })
        .collect();
    ids.sort();
    let ids: Vec<String> = ids.into_iter().map(|k| k.4).collect();
    assert_eq!(lines[3], ids.join(" "));
    assert!(lines[4].contains("'news2'"), "{out}");
}
