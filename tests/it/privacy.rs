//! Privacy and protection at rest, tried from outside: an encrypted archive nobody reads without
//! its key, research exports with nothing that names a patient, consent, and logs without ids.

use std::path::{Path, PathBuf};

use crate::{demo, python, python_with_readers, run_ok, scratch, vigil};

/// A new key, as `vigil key new` writes it.
fn new_key(dir: &Path, name: &str) -> PathBuf {
    let path = dir.join(name);
    run_ok(&["key", "new", path.to_str().unwrap()]);
    path
}

/// The demo ward archived under `dir/archive`, encrypted with `key`; its alert lines.
fn encrypted_demo(dir: &Path, key: &Path) -> (PathBuf, Vec<String>) {
    let archive = dir.join("archive");
    let alerts = dir.join("live.jsonl");
    let demo = demo();
    run_ok(&[
        "run",
        demo.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--archive-key",
        key.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
    ]);
    let lines = std::fs::read_to_string(&alerts).unwrap();
    (archive, lines.lines().map(str::to_owned).collect())
}

fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dataset in ["observations", "alerts"] {
        for date in std::fs::read_dir(dir.join(dataset)).unwrap() {
            for f in std::fs::read_dir(date.unwrap().path()).unwrap() {
                out.push(f.unwrap().path());
            }
        }
    }
    out.sort();
    out
}

#[test]
fn an_encrypted_archive_is_read_with_its_key_and_by_nothing_without_it() {
    let dir = scratch("privacy_encrypted");
    let key = new_key(&dir, "archive.key");
    let (archive, live) = encrypted_demo(&dir, &key);
    let files = parquet_files(&archive);
    assert!(files.len() >= 2, "{files:?}");
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        assert_eq!(
            &bytes[bytes.len() - 4..],
            b"PARE",
            "{} is encrypted",
            f.display()
        );
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("sim-000"),
            "{} holds a patient id",
            f.display()
        );
    }
    // Vigil's own readers: refused without the key, the same alerts with it.
    let a = archive.to_str().unwrap();
    let o = vigil(&["inspect", a]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("the archive is encrypted: give its key with --archive-key"),
        "{err}"
    );
    let out = dir.join("replay.jsonl");
    run_ok(&[
        "replay",
        a,
        "--archive-key",
        key.to_str().unwrap(),
        "--alerts",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    let replayed = std::fs::read_to_string(&out).unwrap();
    assert_eq!(replayed.lines().collect::<Vec<_>>(), live, "replay == live");
    let wrong = new_key(&dir, "wrong.key");
    let o = vigil(&["inspect", a, "--archive-key", wrong.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("cannot be decrypted with this key"), "{err}");
    // Adding to it without the key is refused: an archive is encrypted throughout or not at all.
    let demo = demo();
    let o = vigil(&["run", demo.to_str().unwrap(), "--archive", a, "--quiet"]);
    assert!(
        !o.status.success(),
        "a plaintext run over an encrypted archive"
    );

    // DuckDB: nothing without the key, nothing with another, everything with it.
    let Some(python_path) = python_with_readers() else {
        return;
    };
    let inspected: serde_json::Value = serde_json::from_str(&run_ok(&[
        "inspect",
        a,
        "--archive-key",
        key.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    let program = format!(
        r#"
import duckdb
def count(key, dataset):
    con = duckdb.connect()
    config = ""
    if key:
        con.sql("PRAGMA add_parquet_key('k', '" + open(key).read().strip() + "')")
        config = ", encryption_config = {{footer_key: 'k'}}"
    try:
        return con.sql(f"select count(*) from read_parquet('{a}/{{dataset}}/*/*.parquet'{{config}})").fetchall()[0][0]
    except duckdb.Error as e:
        return "refused: " + str(e).split(":")[0]
print(count(None, "observations"))
print(count("{wrong}", "observations"))
print(count("{key}", "observations"))
print(count("{key}", "alerts"))
"#,
        wrong = wrong.display(),
        key = key.display(),
    );
    let out = python(&python_path, &program);
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("refused"), "{out}");
    assert!(lines[1].starts_with("refused"), "{out}");
    assert_eq!(lines[2], inspected["rows"].to_string(), "{out}");
    assert_eq!(lines[3], inspected["alerts"].to_string(), "{out}");

    // A changed byte is found, and named, not read as data.
    let victim = files
        .iter()
        .find(|f| f.to_string_lossy().contains("/observations/"))
        .unwrap();
    let mut bytes = std::fs::read(victim).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x20;
    std::fs::write(victim, &bytes).unwrap();
    let o = vigil(&[
        "replay",
        a,
        "--archive-key",
        key.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(!o.status.success(), "a replay of a changed file");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&*victim.to_string_lossy()) && err.contains("the file was changed"),
        "{err}"
    );
}
