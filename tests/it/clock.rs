//! A device with a wrong clock blinds nobody else: the stream with its records gives every other
//! patient the alerts of the stream without them, byte for byte, and its own patient a
//! data-quality alert; a whole stream that jumps forward still moves on.

use std::path::{Path, PathBuf};

use proptest::prelude::*;
use serde_json::Value;

use crate::{demo, scratch, vigil};

/// A simulated ward as JSON lines.
fn ward(dir: &Path, patients: u32, hours: u32, seed: u64) -> Vec<String> {
    let out = dir.join("ward.jsonl");
    let o = vigil(&[
        "simulate",
        "--patients",
        &patients.to_string(),
        "--hours",
        &hours.to_string(),
        "--seed",
        &seed.to_string(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// What one run gave: its alerts (JSON lines) and its summary.
struct Run {
    alerts: Vec<String>,
    summary: Value,
    dead_letters: Vec<Value>,
}

impl Run {
    /// The alert lines of every patient but `patient`.
    fn others(&self, patient: &str) -> Vec<&str> {
        let tag = format!("\"patient\":\"{patient}\"");
        self.alerts
            .iter()
            .filter(|a| !a.contains(&tag))
            .map(String::as_str)
            .collect()
    }

    fn of(&self, patient: &str) -> Vec<Value> {
        self.alerts
            .iter()
            .map(|a| serde_json::from_str::<Value>(a).unwrap())
            .filter(|a| a["patient"] == patient)
            .collect()
    }
}

fn run(dir: &Path, name: &str, lines: &[String], workers: u16) -> Run {
    let input = dir.join(format!("{name}.jsonl"));
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let alerts = dir.join(format!("{name}-alerts.jsonl"));
    let dead = dir.join(format!("{name}-dead.jsonl"));
    let o = vigil(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--alerts",
        alerts.to_str().unwrap(),
        "--dead-letter",
        dead.to_str().unwrap(),
        "--workers",
        &workers.to_string(),
        "--quiet",
        "--progress",
        "never",
        "--summary-json",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{name}: {stderr}");
    let read = |p: &PathBuf| -> Vec<String> {
        std::fs::read_to_string(p)
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    };
    Run {
        alerts: read(&alerts),
        summary: serde_json::from_str(stderr.lines().last().unwrap()).unwrap(),
        dead_letters: read(&dead)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect(),
    }
}

/// A heart rate of `patient` from `device` at `time`.
fn heart_rate(patient: &str, device: &str, time: &str) -> String {
    format!(
        r#"{{"patient":"{patient}","device":"{device}","time":"{time}","vital":"heart_rate","value":84,"unit":"/min"}}"#
    )
}

/// RFC 3339 of `us` µs.
fn rfc3339(us: i64) -> String {
    vigil::observation::EventTime::from_micros(us).to_rfc3339()
}

/// The event time of a wire line, µs.
fn time_of(line: &str) -> i64 {
    let v: Value = serde_json::from_str(line).unwrap();
    vigil::observation::EventTime::parse_rfc3339(v["time"].as_str().unwrap())
        .unwrap()
        .micros()
}

const PATIENT: &str = "sim-00004";
const DEVICE: &str = "watch-4";

/// The issue's ward: 30 patients over 6 hours (seed 31), and one patient's second device whose
/// clock runs `offset_us` off, sending a heart rate every 12 minutes from the second hour on.
fn with_second_device(lines: &[String], offset_us: i64, count: usize) -> Vec<String> {
    let mut out = lines.to_vec();
    let n = lines.len();
    for k in 0..count {
        // Inserted where the ward is, in arrival order.
        let at = n / 6 + k * (n / 2) / count.max(1);
        let time = time_of(&lines[at]) + offset_us;
        out.insert(at + k, heart_rate(PATIENT, DEVICE, &rfc3339(time)));
    }
    out
}

/// The clock alerts of [`PATIENT`], checked to be at least an hour apart.
fn clock_alerts(run: &Run) -> Vec<Value> {
    let alerts: Vec<Value> = run
        .of(PATIENT)
        .into_iter()
        .filter(|a| a["event"] == "clock")
        .collect();
    for pair in alerts.windows(2) {
        let gap = pair[1]["time_us"].as_i64().unwrap() - pair[0]["time_us"].as_i64().unwrap();
        assert!(gap >= 3_600_000_000, "clock alerts {gap} µs apart");
    }
    alerts
}

const MONTH_US: i64 = 30 * 86_400_000_000 + 10 * 3_600_000_000 + 1_800_000_000;

#[test]
fn a_device_clock_20_months_ahead_changes_no_other_patients_alerts() {
    let dir = scratch("clock_ahead");
    let clean = ward(&dir, 30, 6, 31);
    let plain = run(&dir, "clean", &clean, 1);
    for count in [1, 20] {
        let skewed = with_second_device(&clean, 20 * MONTH_US, count);
        let got = run(&dir, &format!("skewed-{count}"), &skewed, 2);
        assert_eq!(
            got.others(PATIENT),
            plain.others(PATIENT),
            "{count} records of a wrong clock changed other patients' alerts"
        );
        assert_eq!(
            got.summary["late"], plain.summary["late"],
            "{}",
            got.summary
        );
        assert_eq!(got.summary["held"], count, "{}", got.summary);
        // Its patient is told, with the device and how far off it is: once, then hourly
        // while the device's clock stays wrong (the 20 records span about 3 hours).
        let clock = clock_alerts(&got);
        assert_eq!(clock.len(), if count == 1 { 1 } else { 3 }, "{clock:?}");
        for alert in &clock {
            let summary = alert["summary"].as_str().unwrap();
            assert!(
                summary.contains(DEVICE) && summary.contains("20 months ahead of the ward"),
                "{summary}"
            );
            assert_eq!(alert["kind"], "data_quality");
        }
        // Every one of its records is dead-lettered with the reason.
        let held: Vec<&Value> = got
            .dead_letters
            .iter()
            .filter(|d| d["raw"].as_str().is_some_and(|r| r.contains(DEVICE)))
            .collect();
        assert_eq!(held.len(), count);
        for d in held {
            let reason = d["reason"].as_str().unwrap();
            assert!(
                reason.contains(DEVICE) && reason.contains("ahead of the ward"),
                "{reason}"
            );
            assert_eq!(d["field"], "time");
        }
    }
}

#[test]
fn a_device_reset_to_2000_is_reported_not_silently_late() {
    let dir = scratch("clock_behind");
    let clean = ward(&dir, 30, 6, 31);
    let plain = run(&dir, "clean", &clean, 1);
    let y2000 = 946_684_800_000_000;
    let offset = y2000 - time_of(&clean[0]);
    let skewed = with_second_device(&clean, offset, 5);
    let got = run(&dir, "skewed", &skewed, 1);
    assert_eq!(got.others(PATIENT), plain.others(PATIENT));
    assert_eq!(
        got.summary["late"], plain.summary["late"],
        "{}",
        got.summary
    );
    assert_eq!(got.summary["held"], 5, "{}", got.summary);
    let clock = clock_alerts(&got);
    assert_eq!(clock.len(), 3, "{clock:?}");
    let summary = clock[0]["summary"].as_str().unwrap();
    assert!(summary.contains("26 years behind the ward"), "{summary}");
}

#[test]
fn a_whole_stream_that_jumps_a_day_moves_on() {
    let dir = scratch("clock_jump");
    let day = ward(&dir, 12, 3, 5);
    let plain = run(&dir, "one-day", &day, 1);
    // The same ward replayed again a day later, every device moving together.
    let mut two = day.clone();
    two.extend(day.iter().map(|l| {
        let time = time_of(l);
        let v: Value = serde_json::from_str(l).unwrap();
        let old = format!("\"time\":\"{}\"", v["time"].as_str().unwrap());
        l.replace(
            &old,
            &format!("\"time\":\"{}\"", rfc3339(time + 86_400_000_000)),
        )
    }));
    let got = run(&dir, "two-days", &two, 1);
    assert_eq!(got.summary["held"], 0, "{}", got.summary);
    assert_eq!(
        got.summary["observations"].as_u64().unwrap(),
        2 * plain.summary["observations"].as_u64().unwrap(),
        "{}",
        got.summary
    );
    assert_eq!(
        got.summary["late"].as_u64().unwrap(),
        2 * plain.summary["late"].as_u64().unwrap()
    );
    // The monitors scored the second day through to its end (its alerts are not the first
    // day's again: a band still raised from the first day pages no more).
    let last = two.iter().map(|l| time_of(l)).max().unwrap();
    assert_eq!(
        got.summary["last_event_us"].as_i64(),
        Some(last),
        "{}",
        got.summary
    );
}

/// The devices of a cohort: each patient's monitor, and the patient's charted observations
/// (no device: the patient is its own clock).
fn devices_of(lines: &[String]) -> Vec<(String, Option<String>)> {
    let mut devices: Vec<(String, Option<String>)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (
                v["patient"].as_str().unwrap().to_owned(),
                v["device"].as_str().map(str::to_owned),
            )
        })
        .collect();
    devices.sort();
    devices.dedup();
    devices
}

fn shift(lines: &[String], device: &(String, Option<String>), offset_us: i64) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let mine = v["patient"] == device.0.as_str()
                && v["device"].as_str().map(str::to_owned) == device.1;
            if !mine {
                return l.clone();
            }
            let old = format!("\"time\":\"{}\"", v["time"].as_str().unwrap());
            l.replace(
                &old,
                &format!("\"time\":\"{}\"", rfc3339(time_of(l) + offset_us)),
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10, ..ProptestConfig::default() })]

    /// Any single device's clock offset, ahead or behind by any amount from a second to years,
    /// changes no other patient's alerts.
    #[test]
    fn no_single_device_clock_changes_another_patients_alerts(
        pick in 0usize..1000,
        ahead in any::<bool>(),
        exponent in 0u32..9,
        mantissa in 1i64..10,
    ) {
        let dir = scratch(&format!("clock_any_offset_{pick}_{ahead}_{exponent}_{mantissa}"));
        let clean = ward(&dir, 8, 3, 13);
        let devices = devices_of(&clean);
        let device = &devices[pick % devices.len()];
        // 1 s to about 30 years.
        let offset = mantissa * 1_000_000 * 10i64.pow(exponent) * if ahead { 1 } else { -1 };
        let plain = run(&dir, "clean", &clean, 1);
        let got = run(&dir, "shifted", &shift(&clean, device, offset), 1);
        prop_assert_eq!(
            got.others(&device.0),
            plain.others(&device.0),
            "device {:?} shifted by {} s",
            device,
            offset / 1_000_000
        );
    }
}

#[test]
fn held_records_are_archived_with_their_verdict_and_a_replay_gives_the_same_alerts() {
    let dir = scratch("clock_replay");
    let clean = ward(&dir, 12, 3, 31);
    let mut lines = with_second_device(&clean, 20 * MONTH_US, 6);
    // And one far behind, from another patient.
    let at = lines.len() / 2;
    let time = time_of(&lines[at]) - 30 * MONTH_US;
    lines.insert(at, heart_rate("sim-00007", "cuff-7", &rfc3339(time)));
    // And an impossible value an hour behind: rejected, and held for its clock, live and
    // replayed alike (its row's reason is the hold's; the value says it was impossible).
    let time = time_of(&lines[at + 1]) - 3_600_000_000;
    let impossible = heart_rate("sim-00009", "mon-9", &rfc3339(time)).replace("84", "-5");
    lines.insert(at + 1, impossible);
    let input = dir.join("skewed.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let archive = dir.join("archive");
    let live = dir.join("live.jsonl");
    crate::run_ok(&[
        "run",
        demo().to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--archive",
        archive.to_str().unwrap(),
        "--alerts",
        live.to_str().unwrap(),
        "--quiet",
        "--progress",
        "never",
    ]);
    let rows: Vec<vigil::archive::Row> = vigil::archive::files(&archive)
        .unwrap()
        .iter()
        .flat_map(|f| vigil::archive::read_file(f).unwrap())
        .collect();
    assert_eq!(rows.len(), lines.len() - count_duplicates(&lines));
    let held: Vec<&vigil::archive::Row> = rows.iter().filter(|r| r.held.is_some()).collect();
    assert_eq!(held.len(), 8);
    for row in &held {
        assert!(!row.processed);
        let reason = row.invalid_reason.as_deref().unwrap();
        assert!(reason.contains("held aside"), "{reason}");
        // Its clock is the ward's time when it was held, within the ward's span.
        assert!((time_of(&clean[0])..=time_of(clean.last().unwrap())).contains(&row.clock_us));
    }
    let replayed = dir.join("replayed.jsonl");
    crate::run_ok(&[
        "replay",
        archive.to_str().unwrap(),
        "--alerts",
        replayed.to_str().unwrap(),
        "--quiet",
    ]);
    let live = std::fs::read_to_string(&live).unwrap();
    assert!(live.contains("\"event\":\"clock\""));
    let impossible_held = live
        .lines()
        .any(|a| a.contains("\"patient\":\"sim-00009\"") && a.contains("\"event\":\"clock\""));
    assert!(
        impossible_held,
        "the impossible value's patient hears of its clock"
    );
    assert!(
        live == std::fs::read_to_string(&replayed).unwrap(),
        "the replay's alerts differ from the live run's"
    );
}

/// Lines that repeat an earlier (patient, device, vital, time).
fn count_duplicates(lines: &[String]) -> usize {
    let mut seen = std::collections::HashSet::new();
    lines
        .iter()
        .filter(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            !seen.insert((
                v["patient"].to_string(),
                v["device"].to_string(),
                v["vital"].to_string(),
                v["time"].to_string(),
            ))
        })
        .count()
}
