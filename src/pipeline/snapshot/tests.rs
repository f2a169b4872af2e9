use super::*;
use crate::alerting::Alert;
use crate::config::PipelineConfig;
use crate::news2::Scale;
use crate::observation::{EventTime, Observation, Unit, Value, Vital};

const MIN: i64 = 60_000_000;
const TICK_US: i64 = 1_000_000;

fn settings() -> MonitorSettings {
    let config = PipelineConfig::parse("[source]\nkind = \"simulator\"\n", None).unwrap();
    MonitorSettings::from_config(&config)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vigil-snapshot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn id(s: &str) -> Identifier {
    Identifier::new(s).unwrap()
}

/// A complete set at `t` minutes: rr and hr as given, the rest normal.
fn set(patient: &str, t: i64, rr: f64, hr: f64) -> Vec<Observation> {
    let n = |v, x, u| (v, Value::Number(x), Some(u));
    [
        n(Vital::RespiratoryRate, rr, Unit::PerMinute),
        n(Vital::Spo2, 97.0, Unit::Percent),
        n(Vital::SupplementalOxygen, 0.0, Unit::LitresPerMinute),
        n(Vital::SystolicBp, 118.0, Unit::MillimetresOfMercury),
        n(Vital::HeartRate, hr, Unit::PerMinute),
        (
            Vital::Consciousness,
            Value::Acvpu(crate::observation::Acvpu::ALL[0]),
            None,
        ),
        n(Vital::Temperature, 37.1, Unit::Celsius),
    ]
    .into_iter()
    .map(|(vital, value, unit)| {
        let at = EventTime::from_micros(t * MIN);
        Observation::new(id(patient), None, at, vital, value, unit).unwrap()
    })
    .collect()
}

/// A patient deteriorating and recovering over `minutes`: rising, high, then normal again.
fn course(patient: &str, minutes: std::ops::Range<i64>) -> Vec<(i64, Vec<Observation>)> {
    minutes
        .step_by(5)
        .map(|t| {
            let (rr, hr) = match t % 240 {
                0..60 => (16.0, 72.0),
                60..150 => (26.0, 132.0),
                _ => (15.0, 70.0),
            };
            (t, set(patient, t, rr, hr))
        })
        .collect()
}

/// Drives a monitor over `sets`, then on to `until` minutes; its alerts.
fn drive(
    m: &mut PatientMonitor,
    s: &MonitorSettings,
    sets: &[(i64, Vec<Observation>)],
    until: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for (t, set) in sets {
        m.advance(s, t * MIN, &mut out);
        m.observe_set(s, set, &mut out);
    }
    m.advance(s, until * MIN, &mut out);
    out
}

fn writer(dir: &Path, worker: u64, workers: u64, key: Option<Arc<ArchiveKey>>) -> SnapshotWriter {
    SnapshotWriter {
        dir: dir.to_owned(),
        key,
        worker,
        workers,
        settings: "settings-1".into(),
    }
}

fn deliver_up_to(dir: &Path, tick: i64) {
    crate::archive::Delivered::new("kafka:vitals", tick * TICK_US)
        .write(dir)
        .unwrap();
}

fn one_patient(m: PatientMonitor) -> FastMap<Identifier, Box<PatientMonitor>> {
    let mut patients = FastMap::default();
    patients.insert(id(m.patient()), Box::new(m));
    patients
}

#[test]
fn a_restored_monitor_goes_on_to_give_the_alerts_of_the_one_it_was_taken_from() {
    let s = settings();
    let dir = scratch("restored");
    let sets = course("p1", 0..720);
    let (first, second) = sets.split_at(sets.len() / 2);
    let mut live = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::default());
    let mut alerts = drive(&mut live, &s, first, first.last().unwrap().0);
    assert!(!alerts.is_empty(), "the first half raises a band");
    let tick = 42;
    let mut waiting = FastMap::default();
    waiting.insert(id("p9"), vec![Prescribed::Scale(Scale::default())]);
    writer(&dir, 0, 1, None)
        .write(tick, &one_patient(live.clone()), &waiting, TICK_US)
        .unwrap();
    deliver_up_to(&dir, tick);
    let restored = latest(&dir, Some(tick * TICK_US), TICK_US, "settings-1", None)
        .unwrap()
        .unwrap();
    assert_eq!((restored.tick, restored.workers), (tick, 1));
    assert_eq!(
        restored.state.waiting,
        vec![(id("p9"), vec![Prescribed::Scale(Scale::default())])]
    );
    let [(patient, mut from_snapshot)] = <[_; 1]>::try_from(restored.state.patients).unwrap();
    assert_eq!(patient, id("p1"));
    assert_eq!(
        format!("{from_snapshot:?}"),
        format!("{live:?}"),
        "the state, every field"
    );
    let live_rest = drive(&mut live, &s, second, 800);
    let restored_rest = drive(&mut from_snapshot, &s, second, 800);
    assert!(
        live_rest.iter().any(|a| a.pages()),
        "the second half alerts too"
    );
    assert_eq!(restored_rest, live_rest);
    alerts.extend(live_rest);
    assert_eq!(format!("{from_snapshot:?}"), format!("{live:?}"));
}

#[test]
fn a_changed_byte_another_version_or_other_settings_are_refused_with_the_reason() {
    let s = settings();
    let dir = scratch("refused");
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::default());
    drive(&mut m, &s, &course("p1", 0..120), 120);
    writer(&dir, 0, 1, None)
        .write(7, &one_patient(m), &FastMap::default(), TICK_US)
        .unwrap();
    let path = dir.join(DIR).join("tick-7/worker-0-of-1.bin");
    let good = std::fs::read(&path).unwrap();
    let read = |settings: &str| latest(&dir, Some(7 * TICK_US), TICK_US, settings, None);
    assert!(read("settings-1").unwrap().is_some());
    let other = read("settings-2").unwrap_err().to_string();
    assert!(
        other.contains("other settings") && other.contains("worker-0-of-1.bin"),
        "{other}"
    );
    for at in [MAGIC.len() + 8, good.len() / 2, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x20;
        std::fs::write(&path, &bytes).unwrap();
        let e = read("settings-1").unwrap_err().to_string();
        assert!(e.contains("checksum does not match"), "byte {at}: {e}");
    }
    let mut old = good.clone();
    old[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&0u32.to_le_bytes());
    std::fs::write(&path, &old).unwrap();
    let e = read("settings-1").unwrap_err().to_string();
    assert!(
        e.contains("format version 0, this Vigil reads version 1"),
        "{e}"
    );
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    assert!(read("settings-1").is_err(), "cut short");
    std::fs::write(&path, b"{}").unwrap();
    assert!(
        read("settings-1")
            .unwrap_err()
            .to_string()
            .contains("not a Vigil snapshot")
    );
}

#[test]
fn a_sealed_snapshot_holds_no_patient_id_opens_with_its_key_only_and_cannot_be_moved() {
    let s = settings();
    let dir = scratch("sealed");
    let key = Arc::new(ArchiveKey::from_bytes([3; 32]));
    let mut m = PatientMonitor::new("patient-0042", EventTime::from_micros(0), Scale::default());
    drive(&mut m, &s, &course("patient-0042", 0..120), 120);
    let patients = one_patient(m);
    writer(&dir, 0, 1, Some(Arc::clone(&key)))
        .write(9, &patients, &FastMap::default(), TICK_US)
        .unwrap();
    let path = dir.join(DIR).join("tick-9/worker-0-of-1.bin");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        !bytes.windows(12).any(|w| w == b"patient-0042"),
        "the id is sealed"
    );
    let read =
        |key: Option<&ArchiveKey>| latest(&dir, Some(9 * TICK_US), TICK_US, "settings-1", key);
    assert_eq!(read(Some(&key)).unwrap().unwrap().state.patients.len(), 1);
    assert!(
        read(None)
            .unwrap_err()
            .to_string()
            .contains("give --archive-key")
    );
    let wrong = ArchiveKey::from_bytes([4; 32]);
    assert!(
        read(Some(&wrong))
            .unwrap_err()
            .to_string()
            .contains("does not open")
    );
    // Moved to another tick's set: the place is bound in.
    let moved = dir.join(DIR).join("tick-10");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::copy(&path, moved.join("worker-0-of-1.bin")).unwrap();
    let e = latest(&dir, Some(10 * TICK_US), TICK_US, "settings-1", Some(&key)).unwrap_err();
    assert!(e.to_string().contains("tick-10"), "{e}");
}

#[test]
fn the_latest_complete_set_behind_the_delivered_line_is_used_and_older_ones_pruned() {
    let dir = scratch("latest");
    let patients = |name: &str| {
        one_patient(PatientMonitor::new(
            name,
            EventTime::from_micros(0),
            Scale::default(),
        ))
    };
    let none = FastMap::default();
    let line = |tick| latest(&dir, Some(tick * TICK_US), TICK_US, "settings-1", None).unwrap();
    // Tick 10: both workers; tick 20: worker 0 only (worker 1 died before writing).
    deliver_up_to(&dir, 5);
    writer(&dir, 0, 2, None)
        .write(10, &patients("a"), &none, TICK_US)
        .unwrap();
    writer(&dir, 1, 2, None)
        .write(10, &patients("b"), &none, TICK_US)
        .unwrap();
    assert!(line(5).is_none(), "nothing behind the line");
    assert!(
        latest(&dir, None, TICK_US, "settings-1", None)
            .unwrap()
            .is_none()
    );
    let both = line(10).unwrap();
    assert_eq!(
        (both.tick, both.workers, both.state.patients.len()),
        (10, 2, 2)
    );
    deliver_up_to(&dir, 10);
    writer(&dir, 0, 2, None)
        .write(20, &patients("a"), &none, TICK_US)
        .unwrap();
    assert_eq!(
        line(30).unwrap().tick,
        10,
        "an incomplete set is passed over"
    );
    writer(&dir, 1, 2, None)
        .write(20, &patients("b"), &none, TICK_US)
        .unwrap();
    assert_eq!(
        line(19).unwrap().tick,
        10,
        "a set ahead of the line is passed over"
    );
    assert_eq!(line(20).unwrap().tick, 20);
    // Once tick 20 is behind the line, the next write removes tick 10.
    deliver_up_to(&dir, 20);
    writer(&dir, 0, 2, None)
        .write(30, &patients("a"), &none, TICK_US)
        .unwrap();
    writer(&dir, 1, 2, None)
        .write(30, &patients("b"), &none, TICK_US)
        .unwrap();
    assert!(!dir.join(DIR).join("tick-10").exists());
    assert!(
        dir.join(DIR).join("tick-20").exists(),
        "the newest usable set stays"
    );
}

#[test]
fn a_snapshot_of_two_workers_is_shared_out_among_three() {
    let names = ["p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8"];
    let state = WardState {
        patients: names
            .iter()
            .map(|n| {
                (
                    id(n),
                    Box::new(PatientMonitor::new(
                        n,
                        EventTime::from_micros(0),
                        Scale::default(),
                    )),
                )
            })
            .collect(),
        waiting: vec![(id("p9"), Vec::new())],
    };
    let restored = Restored {
        tick: 1,
        workers: 2,
        state,
    };
    let placement = Placement::even(3);
    let shared = restored.share(&placement, 1..3);
    assert_eq!(shared.len(), 2, "the local workers 1 and 2");
    for (i, ward) in shared.iter().enumerate() {
        for (patient, _) in &ward.patients {
            assert_eq!(placement.worker(patient) as usize, i + 1);
        }
    }
    let local: usize = shared.iter().map(|w| w.patients.len()).sum();
    let on_0 = names
        .iter()
        .filter(|n| placement.worker(&id(n)) == 0)
        .count();
    assert_eq!(
        local + on_0,
        names.len(),
        "each patient on exactly its worker"
    );
}
