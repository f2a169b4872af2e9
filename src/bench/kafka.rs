//! The Kafka bench: topic → alerts + archive against a real broker, beside raw rdkafka
//! consumption and raw decoding of the same messages, and event-to-alert latency at a fixed
//! share of the measured maximum.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

use super::workload::{Workload, WorkloadConfig};
use super::{BenchError, Common, Figure, Report, config, workload};
use crate::config::{Dur, KafkaSourceConfig, SinkConfig, SourceConfig};
use crate::kafka::{client_config, ensure_topic, send_waiting};
use crate::observation::{EventTime, Observation};
use crate::pipeline::{self, RunOptions};
use crate::sources::SourceItem;

const PARTITIONS: i32 = 4;

/// What the Kafka bench runs: throughput from a topic to alerts and archive beside raw
/// consumption and raw decoding of the same messages, then event-to-alert latency at a share of
/// that maximum.
#[derive(Clone, Debug)]
pub struct KafkaOptions {
    /// The broker, `host:port`.
    pub brokers: String,
    pub patients: u32,
    /// Minutes of event time in the throughput topic.
    pub minutes: u32,
    /// Timely workers (each consumes half of the 4 partitions with 2).
    pub workers: usize,
    /// Offered load of the latency run, as a share of the measured throughput.
    pub load: f64,
    /// Seconds of the latency run.
    pub latency_seconds: u64,
    /// Only the latency run, at this many observations/s.
    pub rate: Option<f64>,
    pub common: Common,
}

/// Probes of the first seconds of a latency run are the warm-up, reported apart.
const WARM_UP_US: i64 = 3_000_000;

fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn now_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The load generator sleeps once it is this far ahead of its rate.
const PACE: Duration = Duration::from_millis(1);

fn producer(brokers: &str) -> Result<BaseProducer, BenchError> {
    client_config(brokers, &BTreeMap::new())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .create()
        .map_err(|e| BenchError::kafka(format!("cannot create a producer for {brokers}"), e))
}

fn send(producer: &BaseProducer, topic: &str, obs: &Observation) -> Result<(), BenchError> {
    let payload = obs.to_json();
    send_waiting(
        producer,
        BaseRecord::to(topic)
            .key(obs.patient().as_str())
            .payload(&payload),
    )
    .map_err(|e| BenchError::kafka("cannot produce", e))
}

/// Reads every message of `topic` from the beginning with `threads` consumers (partitions split
/// as Vigil's workers split them); returns the payloads and the seconds it took.
fn consume_raw(
    brokers: &str,
    topic: &str,
    threads: usize,
    expected: u64,
) -> Result<(Vec<Vec<u8>>, f64), BenchError> {
    let started = Instant::now();
    let total = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let brokers = brokers.to_owned();
            let topic = topic.to_owned();
            let total = Arc::clone(&total);
            std::thread::spawn(move || -> Result<Vec<Vec<u8>>, BenchError> {
                let consumer: BaseConsumer = client_config(&brokers, &BTreeMap::new())
                    .set("group.id", unique("bench-raw"))
                    .set("enable.auto.commit", "false")
                    .create()?;
                let mut assignment = TopicPartitionList::new();
                for p in (0..PARTITIONS).filter(|p| *p as usize % threads == t) {
                    assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
                }
                consumer.assign(&assignment)?;
                let mut payloads = Vec::new();
                let mut last = Instant::now();
                // Until every message is read (by all threads), or nothing came for 10 s.
                while total.load(Ordering::Relaxed) < expected
                    && last.elapsed() < Duration::from_secs(10)
                {
                    if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                        payloads.push(m.payload().unwrap_or_default().to_vec());
                        total.fetch_add(1, Ordering::Relaxed);
                        last = Instant::now();
                    }
                }
                Ok(payloads)
            })
        })
        .collect();
    let mut all = Vec::new();
    for h in handles {
        match h.join() {
            Ok(r) => all.extend(r?),
            Err(_) => return Err(BenchError::Failed("a raw consumer panicked".into())),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if all.len() as u64 != expected {
        return Err(BenchError::Failed(format!(
            "raw consumption read {} of {expected} messages",
            all.len()
        )));
    }
    Ok((all, seconds))
}

pub fn run(args: &KafkaOptions, out: &mut dyn Report) -> Result<(), BenchError> {
    if let Some(rate) = args.rate {
        return latency(args, rate, out);
    }
    let topic = unique("bench-vitals");
    ensure_topic(&args.brokers, &topic, PARTITIONS, &BTreeMap::new())?;
    ensure_topic(
        &args.brokers,
        &format!("{topic}-alerts"),
        1,
        &BTreeMap::new(),
    )?;

    // The topic: the workload, keyed by patient.
    let producer = producer(&args.brokers)?;
    let cohort = workload(args.patients, args.minutes, args.common.seed);
    let mut source = Workload::new(cohort);
    let mut items = Vec::new();
    let mut produced = 0u64;
    let started = Instant::now();
    loop {
        items.clear();
        let more = crate::sources::Source::fill(&mut source, 1 << 14, &mut items)?;
        for item in &items {
            if let SourceItem::Observation(o, _) = item {
                send(&producer, &topic, o)?;
                produced += 1;
            }
        }
        if !more {
            break;
        }
    }
    producer
        .flush(Duration::from_secs(120))
        .map_err(|e| BenchError::kafka("the workload was not confirmed by the broker", e))?;
    let seconds = started.elapsed().as_secs_f64();
    let figure = |what: String, observations: u64, seconds: f64| Figure {
        bench: "kafka",
        what,
        patients: args.patients,
        observations,
        seconds,
        per_second: observations as f64 / seconds,
        workers: None,
        alerts: None,
        state_bytes_per_patient: None,
        peak_rss_bytes: None,
    };
    out.figure(&figure(
        "produce the topic (idempotent, 4 partitions)".into(),
        produced,
        seconds,
    ))?;

    // Limits: raw consumption by as many consumers as workers, and raw decoding.
    let (payloads, seconds) = consume_raw(&args.brokers, &topic, args.workers, produced)?;
    let raw = produced as f64 / seconds;
    out.figure(&figure(
        format!("limit: raw rdkafka consumption, {} consumers", args.workers),
        produced,
        seconds,
    ))?;
    let started = Instant::now();
    let decoded = std::thread::scope(|s| {
        let chunk = payloads.len().div_ceil(args.workers.max(1)).max(1);
        let handles: Vec<_> = payloads
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    // Decoded as a source does: ids interned.
                    let mut ids = crate::observation::Interner::default();
                    c.iter()
                        .filter(|p| Observation::decode_with(p, &mut ids).is_ok())
                        .count()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or(0))
            .sum::<usize>()
    });
    out.figure(&figure(
        format!("limit: raw decode + validate, {} threads", args.workers),
        decoded as u64,
        started.elapsed().as_secs_f64(),
    ))?;
    drop(payloads);

    // Vigil: topic → monitors → alerts topic + Parquet archive, offsets committed behind both.
    let mut cfg = config(&args.common)?;
    cfg.source = SourceConfig::Kafka(KafkaSourceConfig {
        brokers: args.brokers.clone(),
        topic: topic.clone(),
        group: unique("bench-vigil"),
        dead_letter_topic: None,
        start: "earliest".into(),
        properties: BTreeMap::new(),
        format: Default::default(),
        security: Default::default(),
    });
    cfg.sinks = vec![SinkConfig::Kafka(crate::sinks::kafka::KafkaSinkConfig {
        brokers: args.brokers.clone(),
        topic: format!("{topic}-alerts"),
        properties: BTreeMap::new(),
        security: Default::default(),
    })];
    let archive = std::env::temp_dir().join(unique("vigil-bench-archive"));
    let idle = Duration::from_secs(2);
    let summary = pipeline::run(
        &cfg,
        &RunOptions {
            workers: Some(args.workers),
            archive: Some(archive.clone()),
            exit_when_idle: Some(idle),
            quiet: true,
            ..RunOptions::default()
        },
    )?;
    let _ = std::fs::remove_dir_all(&archive);
    let seconds = (summary.elapsed.saturating_sub(idle)).as_secs_f64();
    let vigil = summary.observations as f64 / seconds;
    let mut f = figure(
        format!(
            "topic -> alerts + archive, {} workers ({:.0} % of raw consumption)",
            args.workers,
            100.0 * vigil / raw
        ),
        summary.observations,
        seconds,
    );
    f.alerts = Some(summary.alerts);
    f.workers = Some(args.workers);
    out.figure(&f)?;
    if summary.observations != produced {
        return Err(BenchError::Failed(format!(
            "the pipeline processed {} of {produced} observations",
            summary.observations
        )));
    }

    latency(args, vigil * args.load, out)
}

/// The latency limit: a message produced and consumed straight through the broker, with the
/// same client settings (5 ms fetch wait), 500 times at 10 ms intervals. (p50, p99, max) in ms.
fn broker_round_trip(brokers: &str) -> Result<(f64, f64, f64), BenchError> {
    let topic = unique("bench-rtt");
    ensure_topic(brokers, &topic, 1, &BTreeMap::new())?;
    let consumer: BaseConsumer = client_config(brokers, &BTreeMap::new())
        .set("group.id", unique("bench-rtt"))
        .set("fetch.wait.max.ms", "5")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(&topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let producer: BaseProducer = client_config(brokers, &BTreeMap::new())
        .set("enable.idempotence", "true")
        .set("linger.ms", "0")
        .create()?;
    let mut latencies = Vec::new();
    for _ in 0..500 {
        let sent = now_us().to_string();
        send_waiting(&producer, BaseRecord::<str, str>::to(&topic).payload(&sent))?;
        producer.poll(Duration::ZERO);
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(10)) {
                if let Some(t) = m
                    .payload()
                    .and_then(|p| std::str::from_utf8(p).ok())
                    .and_then(|p| p.parse::<i64>().ok())
                {
                    latencies.push((now_us() - t) as f64 / 1000.0);
                }
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    if latencies.is_empty() {
        return Err(BenchError::Failed(format!(
            "no message came back from {brokers}"
        )));
    }
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| quantile(&latencies, p);
    Ok((q(0.5), q(0.99), q(1.0)))
}

/// The `p` quantile (nearest rank) of sorted, non-empty figures.
fn quantile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

/// Reads `topic` (its first `partitions`, from the beginning) until `done`, timing each message
/// `time_of` finds a probe's event time (µs) in: (event time, ms from it to arrival).
fn time_probes(
    brokers: &str,
    topic: &str,
    partitions: i32,
    done: &Arc<AtomicBool>,
    time_of: fn(&BorrowedMessage<'_>) -> Option<i64>,
) -> std::thread::JoinHandle<Result<Vec<(i64, f64)>, BenchError>> {
    let (brokers, topic, done) = (brokers.to_owned(), topic.to_owned(), Arc::clone(done));
    std::thread::spawn(move || {
        let consumer: BaseConsumer = client_config(&brokers, &BTreeMap::new())
            .set("group.id", unique("bench-probes"))
            .set("auto.offset.reset", "earliest")
            .set("fetch.wait.max.ms", "5")
            .create()?;
        // Assigned, not subscribed: a group's first rebalance takes seconds.
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(&topic, p, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut latencies = Vec::new();
        while !done.load(Ordering::Relaxed) {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) {
                let received = now_us();
                if let Some(t) = time_of(&m) {
                    latencies.push((t, (received - t) as f64 / 1000.0));
                }
            }
        }
        Ok(latencies)
    })
}

/// Event-to-alert latency at `rate` observations/s: a live workload (event time = wall clock)
/// plus probes — impossible heart rates of fresh patients, each raising a data-quality alert at
/// once — timed from the probe's event time to the alert's arrival in the alerts topic.
fn latency(args: &KafkaOptions, rate: f64, out: &mut dyn Report) -> Result<(), BenchError> {
    let (p50, p99, max) = broker_round_trip(&args.brokers)?;
    out.note(
        &format!(
            "kafka    limit: broker round trip (produce -> consume), 500 messages: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms"
        ),
        serde_json::json!({
            "bench": "kafka", "what": "broker round trip", "p50_ms": p50, "p99_ms": p99, "max_ms": max
        }),
    )?;
    let topic = unique("bench-live");
    let alerts_topic = format!("{topic}-alerts");
    ensure_topic(&args.brokers, &topic, PARTITIONS, &BTreeMap::new())?;
    ensure_topic(&args.brokers, &alerts_topic, 1, &BTreeMap::new())?;
    let mut cfg = config(&args.common)?;
    // An alert cannot come before the watermark passes its event: millisecond ticks and
    // lateness, so that what is measured is the engine.
    cfg.time.tick = Dur(Duration::from_millis(5));
    cfg.time.allowed_lateness = Dur(Duration::from_millis(20));
    cfg.source = SourceConfig::Kafka(KafkaSourceConfig {
        brokers: args.brokers.clone(),
        topic: topic.clone(),
        group: unique("bench-live"),
        dead_letter_topic: None,
        start: "earliest".into(),
        // librdkafka lets a fetch wait up to 500 ms for data by default.
        properties: [("fetch.wait.max.ms".to_owned(), "5".to_owned())].into(),
        format: Default::default(),
        security: Default::default(),
    });
    cfg.sinks = vec![SinkConfig::Kafka(crate::sinks::kafka::KafkaSinkConfig {
        brokers: args.brokers.clone(),
        topic: alerts_topic.clone(),
        properties: [("linger.ms".to_owned(), "0".to_owned())].into(),
        security: Default::default(),
    })];
    let stop = Arc::new(AtomicBool::new(false));
    let pipeline = {
        let stop = Arc::clone(&stop);
        let workers = args.workers;
        std::thread::spawn(move || {
            pipeline::run(
                &cfg,
                &RunOptions {
                    workers: Some(workers),
                    stop: Some(stop),
                    quiet: true,
                    ..RunOptions::default()
                },
            )
        })
    };
    // The alert reader: a probe's alert, from the probe's event time to the alert's arrival.
    let done = Arc::new(AtomicBool::new(false));
    let reader = time_probes(&args.brokers, &alerts_topic, 1, &done, |m| {
        let alert = serde_json::from_slice::<serde_json::Value>(m.payload()?).ok()?;
        (alert["event"] == "invalid").then(|| alert["time_us"].as_i64())?
    });
    // The broker's share: a plain consumer of the same topic timing the same probes from their
    // event time to their arrival, with no processing. The engine cannot beat it.
    let plain = time_probes(&args.brokers, &topic, PARTITIONS, &done, |m| {
        if !m.key()?.starts_with(b"probe-") {
            return None;
        }
        // A probe's value is impossible on purpose: read its time, not the whole.
        let probe = serde_json::from_slice::<serde_json::Value>(m.payload()?).ok()?;
        let time = EventTime::parse_rfc3339(probe["time"].as_str()?).ok()?;
        Some(time.micros())
    });
    // Give the pipeline and the readers time to connect and take their partitions.
    std::thread::sleep(Duration::from_secs(6));

    let producer = producer(&args.brokers)?;
    // The workload's mix at `rate`: at most 10,000 patients, their clock sped up to reach it.
    let per_patient = super::workload::PER_PATIENT_HOUR / 3600.0;
    let patients = ((rate / per_patient) as u32).clamp(1, 10_000);
    let speed = (rate / (f64::from(patients) * per_patient)).max(1.0);
    let mut source = Workload::new(WorkloadConfig {
        patients,
        seconds: (args.latency_seconds as f64 * speed).ceil() as u32,
        seed: args.common.seed,
        start_us: 0,
    });
    let start = Instant::now();
    let start_us = now_us();
    let probes_until_us = (args.latency_seconds.saturating_sub(1) * 1_000_000) as i64;
    let mut items = Vec::new();
    let mut sent = 0u64;
    let mut probes = 0u64;
    let mut more = true;
    while more {
        items.clear();
        more = crate::sources::Source::fill(&mut source, 512, &mut items)?;
        for item in &items {
            let SourceItem::Observation(o, _) = item else {
                continue;
            };
            // Paced at `rate`, stamped with the wall clock as each goes. Sleeping only once a
            // millisecond ahead: a sleep per message (10 µs apart at 100,000/s) cost the
            // generator a system call and a wake-up each, on the cores the engine and the
            // broker share.
            let due = Duration::from_secs_f64(sent as f64 / rate.max(1.0));
            if let Some(wait) = due.checked_sub(start.elapsed())
                && wait >= PACE
            {
                std::thread::sleep(wait);
            }
            let live = Observation::new(
                o.patient().clone(),
                o.device().cloned(),
                EventTime::from_micros(now_us()),
                o.vital(),
                o.value(),
                o.unit(),
            )?;
            send(&producer, &topic, &live)?;
            sent += 1;
            // A probe every 10 ms, but not in the last second: an alert comes once the
            // watermark passes its probe, which takes later observations.
            let elapsed_us = now_us() - start_us;
            if elapsed_us / 10_000 >= probes as i64 && elapsed_us < probes_until_us {
                probes += 1;
                let payload = format!(
                    r#"{{"patient":"probe-{probes:07}","time":"{}","vital":"heart_rate","value":900,"unit":"/min"}}"#,
                    EventTime::from_micros(now_us()).to_rfc3339()
                );
                send_waiting(
                    &producer,
                    BaseRecord::to(&topic)
                        .key(&format!("probe-{probes:07}"))
                        .payload(&payload),
                )?;
            }
        }
    }
    let _ = producer.flush(Duration::from_secs(30));
    let offered = sent as f64 / start.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(3));
    stop.store(true, Ordering::Relaxed);
    let summary = match pipeline.join() {
        Ok(r) => r?,
        Err(_) => return Err(BenchError::Failed("the pipeline panicked".into())),
    };
    std::thread::sleep(Duration::from_secs(1));
    done.store(true, Ordering::Relaxed);
    let timed = match reader.join() {
        Ok(r) => r?,
        Err(_) => return Err(BenchError::Failed("the alert reader panicked".into())),
    };
    let plain = match plain.join() {
        Ok(r) => r?,
        Err(_) => return Err(BenchError::Failed("the plain reader panicked".into())),
    };
    if timed.is_empty() {
        return Err(BenchError::Failed(format!(
            "no probe alert arrived ({probes} probes sent)"
        )));
    }
    // The first seconds are the warm-up (consumers' first fetches, caches, allocations), shown
    // apart: the figures are of the steady state.
    let warm_until = start_us + WARM_UP_US;
    let (warm_up, steady): (Vec<_>, Vec<_>) = timed.into_iter().partition(|(t, _)| *t < warm_until);
    let mut latencies: Vec<f64> = steady.into_iter().map(|(_, l)| l).collect();
    if latencies.is_empty() {
        return Err(BenchError::Failed(format!(
            "no probe alert arrived after the warm-up ({probes} probes sent)"
        )));
    }
    let warm_up_max = warm_up.iter().map(|(_, l)| *l).fold(0.0, f64::max);
    latencies.sort_by(f64::total_cmp);
    let q = |p: f64| quantile(&latencies, p);
    let mut broker: Vec<f64> = plain
        .into_iter()
        .filter(|(t, _)| *t >= warm_until)
        .map(|(_, l)| l)
        .collect();
    broker.sort_by(f64::total_cmp);
    let b = |p: f64| {
        if broker.is_empty() {
            f64::NAN
        } else {
            quantile(&broker, p)
        }
    };
    let plain_line = format!(
        "kafka    limit: the same probes read by a plain consumer (event time -> arrival), {} after the warm-up: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        broker.len(),
        b(0.5),
        b(0.99),
        b(1.0)
    );
    out.note(&plain_line, serde_json::Value::Null)?;
    let line = format!(
        "kafka    event-to-alert latency at {offered:.0} obs/s offered ({}), {} of {probes} probes after a {} s warm-up: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (warm-up: {} probes, max {warm_up_max:.1} ms; {} observations processed)",
        match args.rate {
            Some(_) => "--rate".to_owned(),
            None => format!("{:.0} % of the maximum", 100.0 * args.load),
        },
        latencies.len(),
        WARM_UP_US / 1_000_000,
        q(0.5),
        q(0.99),
        q(1.0),
        warm_up.len(),
        summary.observations
    );
    out.note(
        &line,
        serde_json::json!({
            "bench": "kafka", "what": "event-to-alert latency", "offered_per_second": offered,
            "load": args.load, "probes": probes, "alerts": latencies.len(),
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": q(1.0), "workers": args.workers,
            "warm_up_s": WARM_UP_US / 1_000_000, "warm_up_probes": warm_up.len(),
            "warm_up_max_ms": warm_up_max,
            "plain_consumer_p50_ms": b(0.5), "plain_consumer_p99_ms": b(0.99),
            "plain_consumer_max_ms": b(1.0)
        }),
    )?;
    Ok(())
}
