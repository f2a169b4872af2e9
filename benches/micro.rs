//! Micro benchmarks of the per-observation and per-patient costs: decode + validation, NEWS2,
//! a window update, feature extraction + model inference, Parquet encoding.
//!
//! ```sh
//! cargo bench --bench micro            # all
//! cargo bench --bench micro -- news2   # one group
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};

use vigil::archive::{self, Row};
use vigil::bench::workload::{Workload, WorkloadConfig};
use vigil::config::PipelineConfig;
use vigil::exact::Exact;
use vigil::monitor::{MonitorSettings, PatientMonitor};
use vigil::news2::{self, AirOrOxygen, Input, Parameters, Scale};
use vigil::observation::{Acvpu, EventTime, Observation};
use vigil::risk::RiskScorer;
use vigil::sources::SourceItem;
use vigil::windows::{VitalWindow, WindowSpec};

const START: i64 = 1_767_571_200_000_000;

fn demo() -> PipelineConfig {
    PipelineConfig::load(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/pipelines/demo.toml"
    )))
    .expect("pipelines/demo.toml loads")
}

/// One patient of the benchmark workload over `seconds`.
fn one_patient(seconds: u32) -> Vec<Observation> {
    Workload::all(WorkloadConfig {
        patients: 1,
        seconds,
        seed: 1,
        start_us: START,
    })
    .into_iter()
    .filter_map(|i| match i {
        SourceItem::Observation(o, _) => Some(o),
        SourceItem::Rejected(_) | SourceItem::Archived(_) => None,
    })
    .collect()
}

/// A patient's monitor after 13 h of the workload (every window full), and that history.
fn full_monitor(settings: &MonitorSettings) -> (PatientMonitor, Vec<Observation>) {
    let history = one_patient(13 * 3600);
    let mut monitor =
        PatientMonitor::new("bench-000000", EventTime::from_micros(START), Scale::One);
    let mut alerts = Vec::new();
    for set in history.chunk_by(|a, b| a.time() == b.time()) {
        monitor.observe_set(settings, set, &mut alerts);
    }
    (monitor, history)
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    let messages = [
        (
            "heart_rate",
            r#"{"patient":"p-000123","device":"mon-07","time":"2026-11-24T10:15:00.250Z","vital":"heart_rate","value":88,"unit":"/min"}"#,
        ),
        (
            "temperature_degF",
            r#"{"patient":"p-000123","device":"mon-07","time":"2026-11-24T10:15:00.250Z","vital":"temperature","value":100.4,"unit":"[degF]"}"#,
        ),
        (
            "rejected",
            r#"{"patient":"p-000123","time":"2026-11-24T10:15:00Z","vital":"heart_rate","value":900,"unit":"/min"}"#,
        ),
    ];
    for (name, message) in messages {
        group.bench_function(name, |b| {
            b.iter(|| Observation::decode(black_box(message.as_bytes())))
        });
    }
    group.finish();
}

/// The same heart rate as FHIR and as HL7 v2 (one message each), beside the wire format's.
fn decode_formats(c: &mut Criterion) {
    use vigil::formats::{self, InputFormat};
    let obs = Observation::from_json(
        br#"{"patient":"p-000123","device":"mon-07","time":"2026-11-24T10:15:00.250Z","vital":"heart_rate","value":88,"unit":"/min"}"#,
    )
    .unwrap();
    let fhir = formats::fhir::encode::observation(&obs)
        .unwrap()
        .to_string();
    let hl7 = formats::hl7v2::encode::message(1, &[&obs]).unwrap();
    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements(1));
    for (name, format, message) in [
        ("fhir_observation", InputFormat::Fhir, fhir.as_str()),
        ("hl7v2_oru_one_obx", InputFormat::Hl7v2, hl7.as_str()),
    ] {
        let mut ids = vigil::observation::Interner::default();
        let mut out = Vec::new();
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                formats::decode(format, black_box(message.as_bytes()), &mut ids, &mut out);
                assert!(matches!(out.first(), Some(Ok(_))));
            })
        });
    }
    group.finish();
}

fn news2_score(c: &mut Criterion) {
    let n = |v: f64| Input::Present(Exact::from_f64(v).expect("a finite value"));
    let parameters = Parameters {
        respiration_rate: n(22.0),
        spo2: n(94.0),
        air_or_oxygen: Input::Present(AirOrOxygen::Air),
        systolic_bp: n(105.0),
        pulse: n(112.0),
        consciousness: Input::Present(Acvpu::A),
        temperature: n(38.4),
    };
    let mut group = c.benchmark_group("news2");
    group.throughput(Throughput::Elements(1));
    group.bench_function("complete_set", |b| {
        b.iter(|| news2::score(black_box(&parameters), Scale::One))
    });
    group.finish();
}

fn window_update(c: &mut Criterion) {
    let spec = WindowSpec::new(
        vec![15 * 60_000, 3_600_000, 4 * 3_600_000, 12 * 3_600_000],
        5 * 60_000,
    );
    let mut group = c.benchmark_group("window");
    group.throughput(Throughput::Elements(1));
    group.bench_function("push_1hz", |b| {
        let mut window = VitalWindow::default();
        let mut t = 0i64;
        b.iter(|| {
            t += 1000;
            window.push(&spec, black_box(t), 80.0);
        })
    });
    group.finish();
}

fn monitor_and_risk(c: &mut Criterion) {
    let config = demo();
    let mut settings = MonitorSettings::from_config(&config);
    let risk = config.risk.as_ref().expect("the demo names a risk model");
    let scorer = RiskScorer::load(risk, &settings.picture).expect("the shipped model loads");
    let (monitor, history) = full_monitor(&settings);
    let mut alerts = Vec::new();
    let now = history
        .last()
        .map_or(EventTime::from_micros(START), |o| o.time());
    let mut group = c.benchmark_group("risk");
    group.throughput(Throughput::Elements(1));
    group.bench_function("features", |b| {
        b.iter(|| scorer.features_of(black_box(monitor.picture()), &settings.picture, now))
    });
    let x = scorer.features_of(monitor.picture(), &settings.picture, now);
    group.bench_function("inference", |b| {
        b.iter(|| scorer.model.probability(black_box(&x)))
    });
    group.finish();

    // One observation set through a monitor with full windows: NEWS2 on the settled values,
    // the alert policy, and (every minute) the risk model.
    // The next second's heart rate (each iteration on a fresh copy of the monitor).
    let next = |i: i64| {
        Observation::new(
            vigil::observation::Identifier::new("bench-000000").expect("a valid id"),
            None,
            EventTime::from_micros(now.micros() + i * 1_000_000),
            vigil::observation::Vital::HeartRate,
            vigil::observation::Value::Number(80.0 + (i % 7) as f64),
            Some(vigil::observation::Unit::PerMinute),
        )
        .expect("a valid observation")
    };
    let mut group = c.benchmark_group("monitor");
    group.throughput(Throughput::Elements(1));
    for (name, with_risk) in [("observe_news2_only", false), ("observe_with_risk", true)] {
        settings.risk = with_risk.then(|| std::sync::Arc::new(scorer.clone()));
        group.bench_function(name, |b| {
            b.iter_batched(
                || (monitor.clone(), next(1)),
                |(mut m, obs)| {
                    m.observe(&settings, &obs, &mut alerts);
                    alerts.clear();
                    m
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

/// A snapshot of 1,000 patients with full windows (13 h each), written as a worker writes it:
/// encoded, checksummed, fsynced and renamed. The worker's dataflow waits meanwhile.
fn snapshot_write(c: &mut Criterion) {
    use vigil::observation::Identifier;
    use vigil::pipeline::snapshot::SnapshotWriter;
    let settings = MonitorSettings::from_config(&demo());
    let (monitor, _) = full_monitor(&settings);
    let patients: std::collections::HashMap<_, _, foldhash::fast::FixedState> = (0..1000)
        .map(|i| {
            let id = Identifier::new(&format!("bench-{i:06}")).expect("a valid id");
            (id, Box::new(monitor.clone()))
        })
        .collect();
    let dir = std::env::temp_dir().join(format!("vigil-bench-snapshot-{}", std::process::id()));
    let writer = SnapshotWriter {
        dir: dir.clone(),
        key: None,
        worker: 0,
        workers: 1,
        settings: "bench".into(),
    };
    let waiting = Default::default();
    let mut group = c.benchmark_group("snapshot");
    group.throughput(Throughput::Elements(patients.len() as u64));
    group.sample_size(10);
    let mut tick = 0;
    group.bench_function("write_1000_patients", |b| {
        b.iter(|| {
            tick += 1;
            writer
                .write(tick, &patients, &waiting, 1_000_000)
                .expect("the snapshot is written")
        })
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

fn parquet_encode(c: &mut Criterion) {
    let rows: Vec<Row> = one_patient(10_000)
        .iter()
        .enumerate()
        .map(|(i, o)| {
            Row::observation(
                o,
                START,
                Some(vigil::sources::Position {
                    partition: Some(0),
                    offset: i as i64,
                    entry: None,
                }),
                true,
                o.time().micros(),
            )
        })
        .collect();
    let mut group = c.benchmark_group("archive");
    group.throughput(Throughput::Elements(rows.len() as u64));
    group.sample_size(20);
    group.bench_function("encode_parquet", |b| {
        b.iter(|| {
            archive::encode(
                black_box(&rows),
                "kafka:vitals",
                None,
                None,
                Vec::with_capacity(1 << 20),
            )
        })
    });
    // The cost of encryption at rest (`--archive-key`): the same rows, AES-256-GCM, uniform.
    let key = archive::ArchiveKey::from_bytes([7; archive::key::KEY_BYTES]);
    group.bench_function("encode_parquet_encrypted", |b| {
        b.iter(|| {
            archive::encode(
                black_box(&rows),
                "kafka:vitals",
                None,
                Some(&key),
                Vec::with_capacity(1 << 20),
            )
        })
    });
    let dir = std::env::temp_dir().join(format!("vigil-bench-archive-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    for (name, key) in [
        ("read_parquet", None),
        ("read_parquet_encrypted", Some(&key)),
    ] {
        let path = dir.join(format!("{name}.parquet"));
        let file = std::fs::File::create(&path).expect("a temporary file");
        archive::encode(&rows, "kafka:vitals", None, key, file).expect("encoded");
        group.bench_function(name, |b| {
            b.iter(|| archive::read_file_of(black_box(&path), None, key).expect("read back"))
        });
    }
    let _ = std::fs::remove_dir_all(&dir);
    group.finish();
}

criterion_group!(
    benches,
    decode,
    decode_formats,
    news2_score,
    window_update,
    monitor_and_risk,
    snapshot_write,
    parquet_encode
);
criterion_main!(benches);
