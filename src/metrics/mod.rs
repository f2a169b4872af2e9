//! What a running pipeline tells its operators: Prometheus metrics, updated by the workers as
//! they go and served at `/metrics` ([`serve`]) in the OpenMetrics text format.
//!
//! The workers keep counting in their own [`RunSummary`] (no atomics on the hot path); each
//! worker's [`Publisher`] adds what changed to the shared counters a few times a second and once
//! more at the end, so the last scrape of a finished run equals its summary.
//!
//! Invariant: no label carries a patient or device id. Labels are the source's name, a
//! partition, a worker, an alert's kind and event, and a sink's description, so the number of
//! series is bounded by the deployment, never by the patients.

mod server;

pub use server::{Running, serve};

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::pipeline::RunSummary;

/// A metric's labels: few, fixed names, values from the deployment (see the module's invariant).
type Labels = Vec<(&'static str, String)>;

/// How often a worker publishes what it counted.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// A process's metrics.
pub struct Metrics {
    registry: Registry,
    source: String,
    observations: Family<Labels, Counter>,
    rejected: Family<Labels, Counter>,
    late: Family<Labels, Counter>,
    duplicates: Family<Labels, Counter>,
    held: Family<Labels, Counter>,
    alerts: Family<Labels, Counter>,
    patients: Family<Labels, Gauge>,
    state_bytes: Family<Labels, Gauge>,
    lag: Family<Labels, Gauge>,
    watermark_delay: Family<Labels, Gauge<f64, AtomicU64>>,
    archive_flush: Histogram,
    offset_commit: Histogram,
    backlog: Family<Labels, Gauge>,
    snapshot_age: Family<Labels, Gauge<f64, AtomicU64>>,
    /// When each worker last wrote a snapshot: its age is taken at each scrape.
    snapshots: std::sync::Mutex<BTreeMap<usize, Instant>>,
}

impl Metrics {
    /// The metrics of a run reading `source` (its kind's name: `kafka`, `jsonl`, ...).
    pub fn new(source: &str) -> Metrics {
        let mut metrics = Metrics {
            registry: Registry::with_prefix("vigil"),
            source: source.to_owned(),
            observations: Family::default(),
            rejected: Family::default(),
            late: Family::default(),
            duplicates: Family::default(),
            held: Family::default(),
            alerts: Family::default(),
            patients: Family::default(),
            state_bytes: Family::default(),
            lag: Family::default(),
            watermark_delay: Family::default(),
            // 1 ms to about 65 s.
            archive_flush: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            offset_commit: Histogram::new(exponential_buckets(0.001, 2.0, 17)),
            backlog: Family::default(),
            snapshot_age: Family::default(),
            snapshots: std::sync::Mutex::default(),
        };
        let mut registry = std::mem::take(&mut metrics.registry);
        metrics.register(&mut registry);
        metrics.registry = registry;
        // The source's counters are there from the start, at 0.
        for family in metrics.counters() {
            family.get_or_create(&metrics.by_source()).inc_by(0);
        }
        metrics
    }

    /// The counters labelled by source.
    fn counters(&self) -> [&Family<Labels, Counter>; 5] {
        [
            &self.observations,
            &self.rejected,
            &self.late,
            &self.duplicates,
            &self.held,
        ]
    }

    fn register(&self, r: &mut Registry) {
        let counters = [
            (
                "observations",
                "Observations scored, by source",
                &self.observations,
            ),
            (
                "rejected",
                "Records rejected (dead-lettered with a reason), by source",
                &self.rejected,
            ),
            (
                "late",
                "Observations behind their partition's watermark, by source",
                &self.late,
            ),
            (
                "duplicates",
                "Exact duplicates removed, by source",
                &self.duplicates,
            ),
            (
                "held",
                "Records held aside for a device clock that cannot be believed, by source",
                &self.held,
            ),
            (
                "alerts",
                "Alerts to people, by kind and event",
                &self.alerts,
            ),
        ];
        for (name, help, family) in counters {
            r.register(name, help, family.clone());
        }
        r.register(
            "patients",
            "Patients monitored, by worker",
            self.patients.clone(),
        );
        r.register_with_unit(
            "state",
            "Bytes of patient state, by worker",
            Unit::Bytes,
            self.state_bytes.clone(),
        );
        r.register(
            "consumer_lag_messages",
            "Messages between the consumer's position and the end of its partition",
            self.lag.clone(),
        );
        r.register_with_unit(
            "watermark_delay",
            "How far the source's watermark is behind the wall clock, by worker",
            Unit::Seconds,
            self.watermark_delay.clone(),
        );
        r.register_with_unit(
            "archive_flush",
            "Time to flush the archive (close its Parquet files)",
            Unit::Seconds,
            self.archive_flush.clone(),
        );
        r.register_with_unit(
            "offset_commit",
            "Time to commit the source's positions once their alerts are delivered",
            Unit::Seconds,
            self.offset_commit.clone(),
        );
        r.register(
            "delivery_backlog_alerts",
            "Alerts a sink holds that it has not delivered yet, by sink",
            self.backlog.clone(),
        );
        r.register_with_unit(
            "snapshot_age",
            "Time since the worker last wrote a snapshot of its patients, by worker",
            Unit::Seconds,
            self.snapshot_age.clone(),
        );
    }

    /// The metrics in the OpenMetrics text format.
    pub fn encode(&self) -> String {
        if let Ok(snapshots) = self.snapshots.lock() {
            for (worker, at) in snapshots.iter() {
                self.snapshot_age
                    .get_or_create(&vec![("worker", worker.to_string())])
                    .set(at.elapsed().as_secs_f64());
            }
        }
        let mut text = String::new();
        // (Writing to a String cannot fail.)
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }

    /// The metrics in Prometheus's classic text format (0.0.4), for a scraper that does not
    /// ask for OpenMetrics (`promtool check metrics`, older agents).
    pub fn encode_classic(&self) -> String {
        classic(&self.encode())
    }

    fn by_source(&self) -> Labels {
        vec![("source", self.source.clone())]
    }

    /// Partition `partition`'s consumer is `messages` behind its end.
    pub fn consumer_lag(&self, partition: i32, messages: i64) {
        self.lag
            .get_or_create(&vec![("partition", partition.to_string())])
            .set(messages);
    }

    /// Worker `worker`'s watermark is `seconds` behind the wall clock.
    pub fn watermark_delay(&self, worker: usize, seconds: f64) {
        self.watermark_delay
            .get_or_create(&vec![("worker", worker.to_string())])
            .set(seconds);
    }

    pub fn archive_flushed(&self, took: Duration) {
        self.archive_flush.observe(took.as_secs_f64());
    }

    pub fn offsets_committed(&self, took: Duration) {
        self.offset_commit.observe(took.as_secs_f64());
    }

    /// Worker `worker` wrote a snapshot of its patients.
    pub fn snapshot_written(&self, worker: usize) {
        if let Ok(mut snapshots) = self.snapshots.lock() {
            snapshots.insert(worker, Instant::now());
        }
    }

    /// Sink `sink` holds `alerts` not yet delivered.
    pub fn backlog(&self, sink: &str, alerts: u64) {
        self.backlog
            .get_or_create(&vec![("sink", sink.to_owned())])
            .set(alerts as i64);
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

/// What a worker has published of its summary, to publish only what changed.
#[derive(Default)]
struct Published {
    observations: u64,
    rejected: u64,
    late: u64,
    duplicates: u64,
    held: u64,
    alerts: BTreeMap<String, u64>,
}

/// One worker's way to the shared metrics.
pub struct Publisher {
    metrics: std::sync::Arc<Metrics>,
    worker: usize,
    published: Published,
    last: Option<Instant>,
}

impl Publisher {
    pub fn new(metrics: std::sync::Arc<Metrics>, worker: usize) -> Publisher {
        Publisher {
            metrics,
            worker,
            published: Published::default(),
            last: None,
        }
    }

    /// The shared metrics, for what a worker measures itself (flush times, lag).
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Whether it is time to publish again (always true at first).
    pub fn due(&self) -> bool {
        self.last.is_none_or(|t| t.elapsed() >= PUBLISH_EVERY)
    }

    /// Adds to the counters what `summary` counted since the last time, and sets the worker's
    /// gauges.
    pub fn publish(&mut self, summary: &RunSummary) {
        self.last = Some(Instant::now());
        let m = &*self.metrics;
        let p = &mut self.published;
        let source = m.by_source();
        for (family, now, before) in [
            (&m.observations, summary.observations, &mut p.observations),
            (&m.rejected, summary.rejected, &mut p.rejected),
            (&m.late, summary.late, &mut p.late),
            (&m.duplicates, summary.duplicates, &mut p.duplicates),
            (&m.held, summary.held, &mut p.held),
        ] {
            if now > *before {
                family.get_or_create(&source).inc_by(now - *before);
                *before = now;
            }
        }
        for (kind, &now) in &summary.alerts_by_kind {
            let before = p.alerts.entry(kind.clone()).or_default();
            if now > *before {
                let (kind, event) = kind.split_once('/').unwrap_or((kind, ""));
                let labels = vec![("kind", kind.to_owned()), ("event", event.to_owned())];
                m.alerts.get_or_create(&labels).inc_by(now - *before);
                *before = now;
            }
        }
        let worker = vec![("worker", self.worker.to_string())];
        m.patients
            .get_or_create(&worker)
            .set(summary.patients as i64);
        m.state_bytes
            .get_or_create(&worker)
            .set(summary.state_bytes as i64);
    }
}

/// OpenMetrics text as Prometheus's classic text format: a counter's family is named with its
/// `_total` (as its samples are), and `# UNIT` and `# EOF` lines, which it does not have, go.
fn classic(openmetrics: &str) -> String {
    let counters: std::collections::HashSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::with_capacity(openmetrics.len() + 16 * counters.len());
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let comment = ["# HELP ", "# TYPE "]
            .into_iter()
            .find(|prefix| line.starts_with(prefix));
        match comment.and_then(|prefix| Some((prefix, line[prefix.len()..].split_once(' ')?))) {
            Some((prefix, (name, rest))) if counters.contains(name) => {
                text.push_str(&format!("{prefix}{name}_total {rest}"));
            }
            _ => text.push_str(line),
        }
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests;
