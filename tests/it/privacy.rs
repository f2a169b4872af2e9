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
    // A nurse's acknowledgement of one of the demo's alerts (the README's), which the archive
    // records, sealed.
    let acks = dir.join("acks.jsonl");
    std::fs::write(
        &acks,
        r#"{"patient":"sim-00037","alert":"f93119fa08017d9d","kind":"news2","alert_time_us":1767583759000000,"by":"nurse.jones","note":"reviewed, doctor called","at_us":1767584059000000}"#,
    )
    .unwrap();
    run_ok(&[
        "run",
        demo.to_str().unwrap(),
        "--acks",
        acks.to_str().unwrap(),
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
    // The text files with patients in them are sealed line by line.
    for file in ["_vigil/registry.csv", "acks.jsonl"] {
        let text = std::fs::read_to_string(archive.join(file)).unwrap();
        assert!(!text.is_empty(), "{file}");
        assert!(
            text.lines().all(|l| l.starts_with("vigil-sealed-1 ")),
            "{file} is sealed"
        );
        for id in ["sim-000", "nurse.jones"] {
            assert!(!text.contains(id), "{file} holds {id}");
        }
    }
    // No file anywhere in the archive names a patient.
    let mut dirs = vec![archive.clone()];
    while let Some(d) = dirs.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                let bytes = std::fs::read(&path).unwrap();
                let text = String::from_utf8_lossy(&bytes);
                assert!(
                    !text.contains("sim-000"),
                    "{} names a patient",
                    path.display()
                );
            }
        }
    }
    // Vigil's own readers: refused without the key, the same alerts with it.
    let a = archive.to_str().unwrap();
    let o = vigil(&["replay", a, "--quiet"]);
    assert!(!o.status.success(), "a replay without the key");
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
    con.sql("SET enable_progress_bar = false")
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
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql("PRAGMA add_parquet_key('k', '" + open("{key}").read().strip() + "')")
# Every column, read back: each has a page DuckDB must authenticate.
print(con.sql("select count(*) filter (where processed), count(distinct patient), count(device), count(distinct vital), count(level), count(unit), count(distinct source), count(clock), max(ingest_time) > min(time) from read_parquet('{a}/observations/*/*.parquet', encryption_config = {{footer_key: 'k'}})").fetchall()[0])
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
    let processed = inspected["processed"].as_u64().unwrap();
    assert!(
        lines[4].starts_with(&format!("({processed}, 50, ")) && lines[4].ends_with(", True)"),
        "{out}"
    );

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

/// The demo registry with a consent column: sim-00003 withdraws at noon and consents again at
/// 18:00; sim-00007 never consented to research.
fn registry_with_consent(dir: &Path) -> PathBuf {
    let demo = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo-registry.csv"),
    )
    .unwrap();
    let mut text = String::new();
    for (i, line) in demo.lines().enumerate() {
        text.push_str(line);
        text.push_str(if i == 0 { ",consent\n" } else { ",\n" });
    }
    text.push_str("sim-00003,,,2026-01-05T12:00:00Z,withdrawn\n");
    text.push_str("sim-00003,,,2026-01-05T18:00:00Z,given\n");
    text.push_str("sim-00007,,,,withdrawn\n");
    let path = dir.join("registry.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_research_export_names_no_patient_device_or_true_date_and_honours_consent() {
    let dir = scratch("privacy_export");
    let key = new_key(&dir, "archive.key");
    let pseudonym_key = new_key(&dir, "pseudonym.key");
    let (archive, _) = encrypted_demo(&dir, &key);
    let registry = registry_with_consent(&dir);
    let out = dir.join("research");
    let trail = dir.join("audit.jsonl");
    let (a, o) = (archive.to_str().unwrap(), out.to_str().unwrap());
    let export = |out: &str, pseudonym_key: &Path| {
        vigil(&[
            "export",
            a,
            "--archive-key",
            key.to_str().unwrap(),
            "--research",
            out,
            "--pseudonym-key",
            pseudonym_key.to_str().unwrap(),
            "--registry",
            registry.to_str().unwrap(),
            "--audit",
            trail.to_str().unwrap(),
            "--by",
            "dr-research",
        ])
    };
    // The key that links pseudonyms back is refused inside the archive, and as the archive's.
    let inside = archive.join("pseudonym.key");
    std::fs::copy(&pseudonym_key, &inside).unwrap();
    let refused = export(o, &inside);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("inside the archive"));
    std::fs::remove_file(&inside).unwrap();
    assert!(
        !export(o, &key).status.success(),
        "the archive's key as pseudonym key"
    );
    let done = export(o, &pseudonym_key);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    assert!(
        !export(o, &pseudonym_key).status.success(),
        "an export over an export"
    );
    run_ok(&["audit", "verify", trail.to_str().unwrap()]);
    let trail_text = std::fs::read_to_string(&trail).unwrap();
    assert!(trail_text.contains("dr-research") && trail_text.contains("\"exported\""));

    // Nothing in the export's bytes names a patient or a device, or holds a true date.
    let mut exported = Vec::new();
    for f in std::fs::read_dir(&out).unwrap() {
        exported.extend(std::fs::read(f.unwrap().path()).unwrap());
    }
    let text = String::from_utf8_lossy(&exported);
    for needle in [
        "sim-0",
        "2026-01-05",
        "2026-01-06",
        "mon-",
        "kafka",
        "simulator",
    ] {
        assert!(!text.contains(needle), "the export holds {needle:?}");
    }

    let Some(python_path) = python_with_readers() else {
        return;
    };
    let program = format!(
        r#"
import base64, hashlib, hmac, duckdb
pkey = base64.b64decode(open("{pkey}").read().strip())
def pseudonym(p):
    return "r-" + hmac.new(pkey, b"vigil/pseudonym/v1\0" + p.encode(), hashlib.sha256).hexdigest()[:24]
def shift_days(p):
    d = hmac.new(pkey, b"vigil/date-shift/v1\0" + p.encode(), hashlib.sha256).digest()
    return 36525 + int.from_bytes(d[:8], "little") % 36525
con = duckdb.connect()
con.sql("SET enable_progress_bar = false")
con.sql("PRAGMA add_parquet_key('k', '" + open("{key}").read().strip() + "')")
# DuckDB 2.0 cannot push a filter into an encrypted scan (see the README).
con.sql("SET disabled_optimizers = 'filter_pushdown'")
con.sql("create table archived as select patient, time, vital, value, unit from read_parquet('{a}/observations/*/*.parquet', encryption_config = {{footer_key: 'k'}}) where processed and invalid_reason is null")
con.sql("create table research as select * from read_parquet('{o}/*.parquet')")
print([c[0] for c in con.sql("describe research").fetchall()])
patients = [r[0] for r in con.sql("select distinct patient from archived").fetchall()]
con.sql("create table ids (patient varchar, pseudonym varchar, days integer)")
con.executemany("insert into ids values (?, ?, ?)", [(p, pseudonym(p), shift_days(p)) for p in patients])
# What consent allows: everything but sim-00007, and sim-00003 outside 12:00-18:00.
con.sql("""create table expected as
  select i.pseudonym, a.time + to_days(i.days) as time, a.vital, a.value, a.unit
  from archived a join ids i using (patient)
  where a.patient <> 'sim-00007'
    and not (a.patient = 'sim-00003' and a.time >= '2026-01-05 12:00:00+00' and a.time < '2026-01-05 18:00:00+00')""")
got = "select pseudonym, time, vital, value, unit from research"
print(con.sql(f"select count(*) from (select * from expected except all {{got}})").fetchall()[0][0],
      con.sql(f"select count(*) from ({{got}} except all select * from expected)").fetchall()[0][0],
      con.sql("select count(*) from research").fetchall()[0][0] == con.sql("select count(*) from expected").fetchall()[0][0])
print(con.sql("select min(year(time)) >= 2126 from research").fetchall()[0][0])
print(con.sql("select count(*) from research r join ids i using (pseudonym) where i.patient = 'sim-00007'").fetchall()[0][0])
"#,
        pkey = pseudonym_key.display(),
        key = key.display(),
        a = a,
        o = o,
    );
    let printed = python(&python_path, &program);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(
        lines,
        [
            "['pseudonym', 'time', 'vital', 'value', 'level', 'unit']",
            "0 0 True",
            "True",
            "0"
        ],
        "{printed}"
    );
}

/// Every diagnostic line (standard error) of a whole session over a ward, through every command
/// that reads its data, names no patient and no device; the clinical outputs (dead letters,
/// alerts) keep the real ids, so the ids were there to leak.
#[test]
fn no_patient_or_device_id_in_any_diagnostic_line() {
    let dir = scratch("privacy_logs");
    let input = dir.join("ward.jsonl");
    run_ok(&[
        "simulate",
        "--patients",
        "12",
        "--hours",
        "3",
        "--out",
        input.to_str().unwrap(),
    ]);
    // What goes wrong on a ward: garbage naming a patient, an impossible value, a device whose
    // clock is a day ahead, a late arrival, an unknown vital.
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("{\"patient\":\"sim-00001\",\"device\":\"mon-00001\" this is not json\n");
    text.push_str("{\"patient\":\"sim-00002\",\"device\":\"mon-00002\",\"time\":\"2026-01-05T02:00:00Z\",\"vital\":\"heart_rate\",\"value\":-5,\"unit\":\"/min\"}\n");
    text.push_str("{\"patient\":\"sim-00003\",\"device\":\"mon-00003\",\"time\":\"2026-01-06T02:00:00Z\",\"vital\":\"spo2\",\"value\":97,\"unit\":\"%\"}\n");
    text.push_str("{\"patient\":\"sim-00004\",\"device\":\"mon-00004\",\"time\":\"2026-01-05T00:01:00Z\",\"vital\":\"spo2\",\"value\":97,\"unit\":\"%\"}\n");
    text.push_str("{\"patient\":\"sim-00005\",\"device\":\"mon-00005\",\"time\":\"2026-01-05T02:00:00Z\",\"vital\":\"aura\",\"value\":1}\n");
    std::fs::write(&input, text).unwrap();
    let key = new_key(&dir, "archive.key");
    let pseudonym_key = new_key(&dir, "pseudonym.key");
    let (archive, dead, alerts) = (
        dir.join("archive"),
        dir.join("dead.jsonl"),
        dir.join("alerts.jsonl"),
    );
    let demo = demo();
    let p = |p: &Path| p.to_str().unwrap().to_owned();
    let sessions: Vec<Vec<String>> = vec![
        vec!["validate".into(), p(&demo)],
        vec![
            "run".into(),
            p(&demo),
            "--input".into(),
            p(&input),
            "--archive".into(),
            p(&archive),
            "--archive-key".into(),
            p(&key),
            "--dead-letter".into(),
            p(&dead),
            "--alerts".into(),
            p(&alerts),
            "--late".into(),
            p(&dir.join("late.jsonl")),
            "--progress".into(),
            "always".into(),
            "--quiet".into(),
        ],
        vec![
            "inspect".into(),
            p(&archive),
            "--archive-key".into(),
            p(&key),
        ],
        vec!["inspect".into(), p(&archive)],
        vec![
            "replay".into(),
            p(&archive),
            "--archive-key".into(),
            p(&key),
            "--quiet".into(),
        ],
        vec![
            "export".into(),
            p(&archive),
            "--archive-key".into(),
            p(&key),
            "--research".into(),
            p(&dir.join("research")),
            "--pseudonym-key".into(),
            p(&pseudonym_key),
        ],
        vec![
            "run".into(),
            p(&demo),
            "--input".into(),
            p(&dir.join("missing.jsonl")),
        ],
    ];
    let mut diagnostics = String::new();
    for args in &sessions {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        diagnostics.push_str(&String::from_utf8_lossy(&vigil(&args).stderr));
    }
    assert!(diagnostics.lines().count() > 20, "{diagnostics}");
    let dead_letters = std::fs::read_to_string(&dead).unwrap();
    assert!(dead_letters.contains("sim-00001") && dead_letters.contains("mon-00003"));
    assert!(
        std::fs::read_to_string(&alerts)
            .unwrap()
            .contains("sim-00002")
    );
    for n in 0..12 {
        for id in [format!("sim-{n:05}"), format!("mon-{n:05}")] {
            for line in diagnostics.lines() {
                assert!(!line.contains(&id), "a diagnostic names {id}: {line}");
            }
        }
    }
}
