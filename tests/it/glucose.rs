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
