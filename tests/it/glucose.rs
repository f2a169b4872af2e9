//! The glucose rule on real CGM traces (AZT1D): every reading below 55 mg/dL is within an
//! urgent-low alert, as an independent DuckDB query over the dataset's own files finds them; the
//! wire format gives the same alerts as the dataset's source; a replay of the archive the same.

use std::path::Path;

use serde_json::Value;

use crate::{python, python_with_readers, scratch, shared_dataset};

/// Runs `pipelines/azt1d.toml` with `extra` arguments; its alert lines.
fn alerts(dir: &Path, name: &str, extra: &[&str]) -> Vec<String> {
    crate::shipped_alerts("azt1d", dir, name, extra)
}

#[test]
fn every_azt1d_reading_below_55_is_within_an_urgent_low_alert() {
    let (Some(data), Some(py)) = (shared_dataset("azt1d-dev"), python_with_readers()) else {
        return;
    };
    let dir = scratch("glucose_azt1d_urgent_low");
    let alerts_path = dir.join("live.jsonl");
    let lines = alerts(&dir, "live", &[]);
    assert!(lines.iter().any(|l| l.contains("\"event\":\"urgent_low\"")));
    // Independent of Vigil: the readings are the files' rows, every one (a repeated timestamp
    // with a lower value is a reading too), at Arizona time; an urgent-low alert covers the
    // five minutes from its time (it repeats every five minutes while readings stay below 55).
    let program = format!(
        r#"
import duckdb
con = duckdb.connect()
con.sql("""
create table readings as
select 'azt1d-' || regexp_extract(filename, 'Subject ([0-9]+)\.csv', 1) as patient,
       epoch_us(timestamp::timestamp + interval 7 hour) as t, glucose_value_mg_dl as v
from read_csv('{data}/Subject *.csv', filename = true, header = true,
              columns = {{'timestamp': 'VARCHAR', 'glucose_value_mg_dl': 'DOUBLE'}})
""")
con.sql("""
create table urgent as
select patient, time_us from read_json('{alerts}', format = 'newline_delimited')
where kind = 'glucose' and event = 'urgent_low'
""")
low = con.sql("select count(*) from readings where v < 55").fetchall()[0][0]
uncovered = con.sql("""
select patient, t, v from readings r where v < 55 and not exists (
  select 1 from urgent u where u.patient = r.patient and u.time_us <= r.t and u.time_us > r.t - 300000000)
order by patient, t
""").fetchall()
print(low, len(uncovered), uncovered[:5])
"#,
        data = data.display(),
        alerts = alerts_path.display()
    );
    let out = python(&py, &program);
    let mut fields = out.split_whitespace();
    let low: u64 = fields.next().unwrap().parse().unwrap();
    let uncovered: u64 = fields.next().unwrap().parse().unwrap();
    assert!(low > 100, "{out}");
    assert_eq!(
        uncovered, 0,
        "readings below 55 without an urgent-low alert: {out}"
    );
}

/// AZT1D's rows as wire-format glucose lines (Arizona's offset), for `--input`.
fn wire_lines(data: &Path, subject: u32) -> String {
    let text = std::fs::read_to_string(data.join(format!("Subject {subject}.csv"))).unwrap();
    let mut out = String::new();
    for row in text.lines().skip(1) {
        let (stamp, value) = row.split_once(',').unwrap();
        let time = stamp.replacen(' ', "T", 1) + "-07:00";
        out.push_str(&format!(
            r#"{{"patient":"azt1d-{subject}","device":"g6-{subject}","time":"{time}","vital":"glucose","value":{value},"unit":"mg/dL","method":"cgm"}}"#
        ));
        out.push('\n');
    }
    out
}

#[test]
fn wire_format_glucose_lines_and_a_replay_give_the_sources_alerts() {
    let Some(data) = shared_dataset("azt1d-dev") else {
        return;
    };
    let dir = scratch("glucose_azt1d_wire");
    let archive = dir.join("archive");
    let live = alerts(&dir, "live", &["--archive", archive.to_str().unwrap()]);
    let input = dir.join("subject-2.jsonl");
    std::fs::write(&input, wire_lines(&data, 2)).unwrap();
    let wire = alerts(&dir, "wire", &["--input", input.to_str().unwrap()]);
    // The same alerts, up to the subject's last reading: the dataset goes on (other subjects)
    // after the lines end, so its signal loss after that reading is the source's alone.
    let last = wire_lines(&data, 2)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter_map(|v| vigil::observation::EventTime::parse_rfc3339(v["time"].as_str()?).ok())
        .max()
        .unwrap()
        .micros();
    let of_2: Vec<&String> = live
        .iter()
        .filter(|l| l.contains("\"patient\":\"azt1d-2\""))
        .filter(|l| serde_json::from_str::<Value>(l).unwrap()["time_us"].as_i64() <= Some(last))
        .collect();
    assert!(of_2.len() > 50, "{}", of_2.len());
    let differing = wire.iter().zip(&of_2).position(|(w, l)| w != *l);
    assert!(
        wire.len() == of_2.len() && differing.is_none(),
        "{} alerts from the lines, {} from the source; first difference at {differing:?}",
        wire.len(),
        of_2.len()
    );
    let four = alerts(&dir, "four-workers", &["--workers", "4"]);
    assert!(four == live, "the alerts differ with 4 workers");
    crate::assert_replay_gives(&archive, &dir.join("replayed.jsonl"), &live);
    // Each alert rests on its readings.
    let first: Value = serde_json::from_str(&live[0]).unwrap();
    assert_eq!(first["kind"], "glucose");
    assert!(first["evidence"]["mg_dl"].is_number(), "{first}");
}

/// Three patients' CGM lines every 5 min from 10:00; `h-1`'s from 10:35 to 11:25 (lows of 44
/// to 54 mg/dL) missing live, and sent after 12:00 as a backfill when `backfill`, else in
/// place. The others go on to 12:30, so the clock passes the backfill.
fn backfill_lines(backfill: bool) -> (String, usize) {
    let line = |p: u32, minute: u32, v: u32| {
        format!(
            r#"{{"patient":"h-{p}","device":"g7-{p}","time":"2026-03-01T{:02}:{:02}:00Z","vital":"glucose","value":{v},"unit":"mg/dL"}}"#,
            10 + minute / 60,
            minute % 60
        )
    };
    let gap = |m: u32| (35..=85).contains(&m);
    let low = |m: u32| 44 + (m - 35) / 5;
    let (mut lines, mut late) = (Vec::new(), Vec::new());
    for minute in (0..=150).step_by(5) {
        for p in 1..=3 {
            if p == 1 && minute > 120 {
                continue;
            }
            if p == 1 && gap(minute) {
                let l = line(1, minute, low(minute));
                if backfill {
                    late.push(l)
                } else {
                    lines.push(l)
                }
                continue;
            }
            lines.push(line(p, minute, 120));
        }
        if minute == 120 {
            lines.append(&mut late);
        }
    }
    (lines.join("\n") + "\n", 11)
}

#[test]
fn backfilled_cgm_readings_are_archived_and_scored_and_never_page_for_the_past() {
    let dir = scratch("glucose_backfill");
    let run = |name: &str, backfill: bool| {
        let (text, _) = backfill_lines(backfill);
        let input = dir.join(format!("{name}.jsonl"));
        std::fs::write(&input, text).unwrap();
        let archive = dir.join(format!("{name}-archive"));
        let out = dir.join(format!("{name}-alerts.jsonl"));
        let summary = crate::vigil(&[
            "run",
            "pipelines/azt1d.toml",
            "--input",
            input.to_str().unwrap(),
            "--archive",
            archive.to_str().unwrap(),
            "--alerts",
            out.to_str().unwrap(),
            "--quiet",
            "--progress",
            "never",
            "--summary-json",
        ]);
        assert!(
            summary.status.success(),
            "{}",
            String::from_utf8_lossy(&summary.stderr)
        );
        let summary: Value = serde_json::from_slice(summary.stderr.trim_ascii()).unwrap();
        let lines: Vec<String> = std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
        (summary, lines, archive)
    };
    let of_1 = |lines: &[String], event: &str| -> Vec<Value> {
        lines
            .iter()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|a| a["patient"] == "h-1" && a["event"] == event)
            .collect()
    };
    // Sent live, the same lows page: the test can fail.
    let (_, in_place, _) = run("in-place", false);
    assert!(!of_1(&in_place, "urgent_low").is_empty());
    // Backfilled: no page, one note of the gap with its lows, every reading archived.
    let (summary, lines, archive) = run("backfill", true);
    assert_eq!(
        (summary["backfilled"].as_u64(), summary["late"].as_u64()),
        (Some(11), Some(0)),
        "{summary}"
    );
    assert!(of_1(&lines, "urgent_low").is_empty(), "a past low paged");
    // The gap is a signal loss as it happens (and h-1's end another, at 12:20).
    let lost: Vec<Value> = of_1(&lines, "signal_loss")
        .iter()
        .map(|a| a["time"].clone())
        .collect();
    assert_eq!(lost, ["2026-03-01T10:50:00Z", "2026-03-01T12:20:00Z"]);
    let notes = of_1(&lines, "backfilled");
    assert_eq!(notes.len(), 1, "{lines:#?}");
    let note = &notes[0];
    assert_eq!(note["severity"], "info");
    assert_eq!(
        note["time"], "2026-03-01T12:01:00Z",
        "a minute after the burst, at the clock"
    );
    assert_eq!(note["evidence"]["readings"], 11);
    assert_eq!(note["evidence"]["below_urgent_low"], 11);
    assert_eq!(note["evidence"]["lowest_mg_dl"], 44.0);
    let (rows, _) = crate::archive_rows_and_keys(&archive);
    assert_eq!(rows, backfill_lines(true).0.lines().count());
    crate::assert_replay_gives(&archive, &dir.join("replayed.jsonl"), &lines);
}
