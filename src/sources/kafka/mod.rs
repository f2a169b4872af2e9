//! Observations from a Kafka topic: one wire-format message each, or with `format = "fhir"` a
//! FHIR R4 Observation or Bundle each, or with `format = "hl7v2"` an HL7 v2 ORU^R01 each (bare or
//! MLLP-framed), giving any number of observations.
//!
//! Every timely worker runs its own consumer and takes the partitions `p` with
//! `p % workers == worker` (assigned, not balanced by the group, so the split is deterministic
//! and there is no rebalance pause); positions start from the group's committed offsets.
//! Offsets are committed only through [`Source::commit`], which the pipeline calls once the
//! observations up to them are durable in the archive and their alerts delivered.
//!
//! A message that is not an observation is produced to the dead-letter topic, unchanged, with the
//! reason, the source topic, partition and offset in headers (`vigil-reason`, `vigil-topic`,
//! `vigil-partition`, `vigil-offset`), and comes out as a [`Rejected`] item.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord};
use rdkafka::{Offset, TopicPartitionList};

use serde::Deserialize;

use super::{
    BuildContext, Built, Checkpoint, Drained, Position, Progress, Rejected, Source, SourceError,
    SourceItem, SourceKind,
};
use crate::component::{Problem, Section};
use crate::formats::{self, Decoded, InputFormat};
use crate::kafka::{flush_promptly, send_waiting};
use crate::observation::{Interner, Observation};

mod stall;

pub use stall::Stall;
use stall::Stalls;

/// The `[source]` of a Kafka topic: any Kafka-protocol broker (Apache Kafka, Redpanda, Tansu, a
/// managed service).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSourceConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub topic: String,
    /// Consumer group: where offsets are committed.
    #[serde(default = "KafkaSourceConfig::default_group")]
    pub group: String,
    /// Where messages that are not observations go, with the reason in headers.
    pub dead_letter_topic: Option<String>,
    /// Where to start without a committed offset: `earliest` or `latest`.
    #[serde(default = "KafkaSourceConfig::default_start")]
    pub start: String,
    /// librdkafka settings passed as they are (`security.protocol`, `sasl.mechanisms`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// How messages are written: `wire` (the default), `fhir` or `hl7v2`.
    #[serde(default)]
    pub format: InputFormat,
    /// TLS and SASL (`[source.security]`, see [`crate::kafka::security`]).
    #[serde(default)]
    pub security: crate::kafka::KafkaSecurity,
}

impl KafkaSourceConfig {
    fn default_group() -> String {
        "vigil".to_owned()
    }

    fn default_start() -> String {
        "earliest".to_owned()
    }
}

impl SourceKind for KafkaSourceConfig {
    fn name(&self) -> String {
        format!("kafka:{}", self.topic)
    }

    fn format(&self) -> Option<InputFormat> {
        Some(self.format)
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.security.resolve_paths(base);
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut topics = vec![("topic", self.topic.as_str())];
        if let Some(dead) = &self.dead_letter_topic {
            topics.push(("dead_letter_topic", dead.as_str()));
        }
        let mut problems = crate::kafka::check(section, &self.brokers, &topics, &self.properties);
        problems.extend(self.security.check(section, &self.properties));
        if self.group.trim().is_empty() {
            problems.push(section.problem("group", "`group` is empty"));
        }
        if !matches!(self.start.as_str(), "earliest" | "latest") {
            problems.push(section.problem(
                "start",
                format!(
                    "`start` must be \"earliest\" or \"latest\", found {:?}",
                    self.start
                ),
            ));
        }
        if self.dead_letter_topic.as_deref() == Some(self.topic.as_str()) {
            problems.push(section.problem(
                "dead_letter_topic",
                "`dead_letter_topic` is the topic read: its dead letters would be read again",
            ));
        }
        problems
    }

    fn partitioned(&self) -> bool {
        true
    }

    /// Each worker connects on its own thread and reads its share of the partitions.
    fn build(&self, cx: &BuildContext) -> Result<Built, SourceError> {
        let config = self.clone();
        let stop = Arc::clone(&cx.stop);
        Ok(Built::PerWorker(Arc::new(move |worker, workers| {
            let source = KafkaSource::connect(&config, worker, workers, Arc::clone(&stop))?;
            Ok(Box::new(source) as Box<dyn Source>)
        })))
    }
}

const METADATA_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a read waits for the first message when none is queued. The worker that reads also
/// runs the monitors and the alert sink, and nothing else runs while it waits: 100 ms here was
/// most of the event-to-alert latency at low load. librdkafka fetches in the background, so a
/// short wait costs a wake-up per millisecond of idleness, not a request.
const POLL: Duration = Duration::from_millis(1);
/// A worker with no partition checks for the stop this often.
const UNASSIGNED_SLEEP: Duration = Duration::from_millis(100);

/// Tells the person at the terminal when the broker stops answering, and when it answers again;
/// remembers the last error, to say why a partition cannot be read.
#[derive(Clone, Default)]
pub struct Outages {
    since: Arc<std::sync::Mutex<Option<std::time::Instant>>>,
    last: Arc<std::sync::Mutex<Option<String>>>,
    label: Arc<str>,
    /// Each partition's end (high watermark), from librdkafka's statistics.
    ends: Arc<std::sync::Mutex<BTreeMap<i32, i64>>>,
}

impl Outages {
    fn new(label: &str) -> Outages {
        Outages {
            since: Arc::default(),
            last: Arc::default(),
            label: label.into(),
            ends: Arc::default(),
        }
    }

    /// A message arrived: report the end of an outage, if there was one.
    fn healthy(&self) {
        if let Ok(mut since) = self.since.lock()
            && let Some(start) = since.take()
        {
            tracing::info!(
                client = %self.label,
                "kafka ({}): receiving again after {:.0} s",
                self.label,
                start.elapsed().as_secs_f64()
            );
        }
    }
}

impl Outages {
    /// The last error librdkafka reported, if any, since it was last taken.
    fn take_last(&self) -> Option<String> {
        self.last.lock().ok().and_then(|mut l| l.take())
    }
}

impl rdkafka::ClientContext for Outages {
    fn stats(&self, statistics: rdkafka::Statistics) {
        if let Ok(mut ends) = self.ends.lock() {
            for topic in statistics.topics.values() {
                for (&p, partition) in &topic.partitions {
                    if p >= 0 && partition.hi_offset >= 0 {
                        ends.insert(p, partition.hi_offset);
                    }
                }
            }
        }
    }

    fn error(&self, error: rdkafka::error::KafkaError, reason: &str) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(format!("{error}: {reason}"));
        }
        if let Ok(mut since) = self.since.lock()
            && since.is_none()
        {
            *since = Some(std::time::Instant::now());
            tracing::warn!(
                client = %self.label,
                "kafka ({}): {error}: {reason} (retrying; offsets stay uncommitted)",
                self.label
            );
        }
    }
}

impl rdkafka::consumer::ConsumerContext for Outages {}

/// How long a failed connection waits for librdkafka to report why.
const REASON_WAIT: Duration = Duration::from_secs(2);

/// librdkafka's last reported error. Its reports reach [`Outages`] only when the consumer is
/// polled, and a broker that drops the connection (a refused login) fails the metadata
/// request before anything was polled: so poll, briefly, until the reason arrives.
fn last_reported(consumer: &BaseConsumer<Outages>, outages: &Outages) -> Option<String> {
    let deadline = std::time::Instant::now() + REASON_WAIT;
    loop {
        if let Some(last) = outages.take_last() {
            return Some(last);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        // Nothing is assigned yet, so no message can be taken here: only events are served.
        let _ = consumer.poll(Duration::from_millis(100));
    }
}

/// One worker's consumer.
pub struct KafkaSource {
    consumer: BaseConsumer<Outages>,
    outages: Outages,
    topic: String,
    dead_letter: Option<(BaseProducer, String)>,
    /// Next offset to commit per partition (the last consumed + 1).
    consumed: BTreeMap<i32, i64>,
    partitions: Vec<i32>,
    stop: Arc<AtomicBool>,
    polled: u64,
    ids: Interner,
    /// Where each partition starts without a committed offset (`earliest`, `latest`).
    start: String,
    stalls: Stalls,
    last_check: Instant,
    /// The last error librdkafka reported.
    last_error: Option<String>,
    format: InputFormat,
    decoded: Vec<Decoded>,
}

/// How often librdkafka reports its statistics (each partition's end).
const STATISTICS_EVERY_MS: &str = "2000";

/// How often partitions are checked for a stall while errors are reported.
const STALL_CHECK: Duration = Duration::from_secs(10);

/// How long a drain behind its end, with no error reported, waits for a message before it
/// calls the topic unreadable: a broker serving many clients on a loaded machine can be silent
/// for seconds (CI saw 5 s), and a drain that stopped then would lose the rest of the topic.
const DRAIN_PATIENCE: Duration = Duration::from_secs(60);

impl KafkaSource {
    /// Connects and assigns this worker's partitions.
    pub fn connect(
        config: &KafkaSourceConfig,
        worker: usize,
        workers: usize,
        stop: Arc<AtomicBool>,
    ) -> Result<KafkaSource, SourceError> {
        let err = |reason: String| SourceError::Kafka { reason };
        let mut client = crate::kafka::secure_client_config(
            &config.brokers,
            &config.properties,
            &config.security,
        )
        .map_err(|e| err(e.to_string()))?;
        client
            .set("group.id", &config.group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", &config.start)
            // Each partition's end, for the consumer-lag metric.
            .set("statistics.interval.ms", STATISTICS_EVERY_MS);
        let outages = Outages::new(&format!("{} worker {worker}", config.topic));
        let consumer: BaseConsumer<Outages> = client
            .create_with_context(outages.clone())
            .map_err(|e| err(format!("cannot create a consumer: {e}")))?;
        let metadata = consumer
            .fetch_metadata(Some(&config.topic), METADATA_TIMEOUT)
            .map_err(|e| {
                // librdkafka's own reason (a TLS handshake or a SASL login refused, say) says
                // more than the metadata request's failure.
                let why = last_reported(&consumer, &outages)
                    .map_or(String::new(), |last| format!(" (last: {last})"));
                err(format!(
                    "cannot reach {} for topic {}: {e}{why}",
                    config.brokers, config.topic
                ))
            })?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .find(|t| t.name() == config.topic)
            .map(|t| t.partitions().iter().map(|p| p.id()).collect())
            .unwrap_or_default();
        if partitions.is_empty() {
            return Err(err(format!(
                "topic {} has no partitions on {} (does it exist?)",
                config.topic, config.brokers
            )));
        }
        let mine: Vec<i32> = partitions
            .into_iter()
            .filter(|p| *p as usize % workers.max(1) == worker)
            .collect();
        let mut assignment = TopicPartitionList::new();
        for p in &mine {
            assignment
                .add_partition_offset(&config.topic, *p, Offset::Stored)
                .map_err(|e| err(e.to_string()))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| err(format!("cannot assign partitions: {e}")))?;
        let dead_letter = match &config.dead_letter_topic {
            Some(topic) => {
                let producer: BaseProducer = crate::kafka::secure_client_config(
                    &config.brokers,
                    &config.properties,
                    &config.security,
                )
                .map_err(|e| err(e.to_string()))?
                .set("enable.idempotence", "true")
                .create()
                .map_err(|e| err(format!("cannot create the dead-letter producer: {e}")))?;
                Some((producer, topic.clone()))
            }
            None => None,
        };
        Ok(KafkaSource {
            consumer,
            outages,
            topic: config.topic.clone(),
            dead_letter,
            consumed: BTreeMap::new(),
            partitions: mine,
            stop,
            polled: 0,
            ids: Interner::default(),
            start: config.start.clone(),
            stalls: Stalls::default(),
            last_check: Instant::now(),
            last_error: None,
            format: config.format,
            decoded: Vec::new(),
        })
    }

    /// Each partition's next offset to read and its end (high watermark), asked of the broker.
    fn positions(&self) -> Result<Vec<(i32, i64, i64)>, SourceError> {
        let mut out = Vec::with_capacity(self.partitions.len());
        // librdkafka's position steps over what is not a message (transaction markers).
        let position = self.consumer.position().unwrap_or_default();
        let committed = self
            .consumer
            .committed(Duration::from_secs(10))
            .unwrap_or_default();
        for &p in &self.partitions {
            let (low, high) = self
                .consumer
                .fetch_watermarks(&self.topic, p, Duration::from_secs(10))
                .map_err(|e| SourceError::Kafka {
                    reason: format!("cannot ask where partition {p} of {} ends: {e}", self.topic),
                })?;
            let offset_in = |list: &TopicPartitionList| match list
                .find_partition(&self.topic, p)
                .map(|e| e.offset())
            {
                Some(Offset::Offset(o)) => Some(o),
                _ => None,
            };
            let next = offset_in(&position)
                .or_else(|| self.consumed.get(&p).copied())
                .or_else(|| offset_in(&committed))
                .unwrap_or(if self.start == "latest" { high } else { low });
            out.push((p, next, high));
        }
        Ok(out)
    }

    /// The partitions this worker reads.
    pub fn partitions(&self) -> &[i32] {
        &self.partitions
    }

    /// Produces a message to the dead-letter topic, if there is one, with the reason and where it
    /// came from in headers.
    fn send_dead_letter(
        &self,
        payload: &[u8],
        key: Option<&[u8]>,
        reason: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), SourceError> {
        let Some((producer, topic)) = &self.dead_letter else {
            return Ok(());
        };
        let partition_text = partition.to_string();
        let offset_text = offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "vigil-reason",
                value: Some(reason),
            })
            .insert(Header {
                key: "vigil-topic",
                value: Some(self.topic.as_str()),
            })
            .insert(Header {
                key: "vigil-partition",
                value: Some(partition_text.as_str()),
            })
            .insert(Header {
                key: "vigil-offset",
                value: Some(offset_text.as_str()),
            });
        let mut record: BaseRecord<'_, [u8], [u8]> =
            BaseRecord::to(topic).payload(payload).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        send_waiting(producer, record).map_err(|e| SourceError::Kafka {
            reason: format!(
                "cannot dead-letter {}/{partition}@{offset}: {e}",
                self.topic
            ),
        })
    }
}

/// Every problem of a decoded message, in one dead-letter reason; `None` when it has none.
fn dead_letter_reason(decoded: &[Decoded]) -> Option<String> {
    let reasons: Vec<String> = decoded
        .iter()
        .filter_map(|d| d.as_ref().err().map(ToString::to_string))
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

impl Source for KafkaSource {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        if self.partitions.is_empty() {
            // Nothing assigned to this worker: idle until asked to stop.
            std::thread::sleep(UNASSIGNED_SLEEP);
            return Ok(!self.stop.load(Ordering::Relaxed));
        }
        let mut n = 0;
        while n < max {
            if self.stop.load(Ordering::Relaxed) {
                return Ok(false);
            }
            let timeout = if n == 0 { POLL } else { Duration::ZERO };
            let Some(result) = self.consumer.poll(timeout) else {
                break;
            };
            let message = match result {
                Ok(m) => m,
                // Transient errors (a broker that stops answering): librdkafka retries, and the
                // client context has told the person at the terminal. A partition that cannot
                // be read on is found by `stalled`.
                Err(e) => {
                    self.last_error = Some(e.to_string());
                    break;
                }
            };
            n += 1;
            self.polled += 1;
            self.outages.healthy();
            let (partition, offset) = (message.partition(), message.offset());
            self.consumed.insert(partition, offset + 1);
            let position = Position {
                partition: Some(partition),
                offset,
                entry: None,
            };
            let at = Some(position);
            let payload = message.payload().unwrap_or_default();
            if payload.is_empty() {
                let rejected = Rejected {
                    position: format!("{}/{partition}@{offset}", self.topic),
                    at,
                    reason: "empty message (a tombstone, or a message without a payload)".into(),
                    field: None,
                    subject: None,
                    raw: Some(String::new()),
                };
                self.send_dead_letter(payload, message.key(), &rejected.reason, partition, offset)?;
                out.push(SourceItem::Rejected(rejected));
                continue;
            }
            if self.format != InputFormat::Wire {
                // A FHIR or HL7 v2 message: its observations, and its problems as rejections;
                // with any problem, it goes to the dead-letter topic once, with every reason.
                self.decoded.clear();
                formats::decode(self.format, payload, &mut self.ids, &mut self.decoded);
                if let Some(reason) = dead_letter_reason(&self.decoded) {
                    self.send_dead_letter(payload, message.key(), &reason, partition, offset)?;
                }
                for part in self.decoded.iter().filter_map(|d| d.as_ref().ok()) {
                    self.stalls.seen(partition, part.obs.patient());
                }
                let label = format!("{}/{partition}@{offset}", self.topic);
                super::push_decoded(&label, position, payload, self.decoded.drain(..), out);
                continue;
            }
            match Observation::decode_with(payload, &mut self.ids) {
                Ok(obs) => {
                    self.stalls.seen(partition, obs.patient());
                    out.push(SourceItem::Observation(obs, at));
                }
                Err(rejection) => {
                    let rejected = Rejected::from_rejection(
                        format!("{}/{partition}@{offset}", self.topic),
                        at,
                        rejection,
                        Some(
                            String::from_utf8_lossy(&payload[..payload.len().min(4096)])
                                .into_owned(),
                        ),
                    );
                    self.send_dead_letter(
                        payload,
                        message.key(),
                        &rejected.reason,
                        partition,
                        offset,
                    )?;
                    out.push(SourceItem::Rejected(rejected));
                }
            }
        }
        Ok(true)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.polled,
            total: None,
        }
    }

    fn expected_partitions(&self) -> Option<usize> {
        Some(self.partitions.len())
    }

    fn checkpoint(&self) -> Option<Checkpoint> {
        Some(Checkpoint {
            offsets: self.consumed.iter().map(|(p, o)| (*p, *o)).collect(),
        })
    }

    fn live(&self) -> bool {
        true
    }

    fn lag(&self) -> Vec<(i32, i64)> {
        let Ok(ends) = self.outages.ends.lock() else {
            return Vec::new();
        };
        // (Before a partition's first message, its lag is unknown here, not its whole length.)
        self.partitions
            .iter()
            .filter_map(|p| Some((*p, (ends.get(p)? - self.consumed.get(p)?).max(0))))
            .collect()
    }

    fn stalled(&mut self) -> Vec<Stall> {
        if self.last_check.elapsed() < STALL_CHECK {
            return Vec::new();
        }
        self.last_check = Instant::now();
        let error = self.outages.take_last();
        if error.is_some() {
            self.last_error.clone_from(&error);
        }
        let Some(error) = error else {
            return Vec::new();
        };
        match self.positions() {
            Ok(positions) => self.stalls.check(&positions, Some(&error)),
            Err(_) => Vec::new(),
        }
    }

    /// Whether every partition was read to its end (a drain that stops when nothing more
    /// comes). Behind with no error reported, the broker is slow, not broken: read on, for up to
    /// [`DRAIN_PATIENCE`] without a message.
    fn drained(&mut self, silent: Duration) -> Result<Drained, SourceError> {
        let error = self.outages.take_last().or_else(|| self.last_error.clone());
        let stuck: Vec<String> = self
            .positions()?
            .into_iter()
            .filter(|(_, next, end)| next < end)
            .map(|(p, next, end)| format!("partition {p} at offset {next} of {end}"))
            .collect();
        if stuck.is_empty() {
            return Ok(Drained::Done);
        }
        let behind = format!(
            "topic {} was not read to its end ({})",
            self.topic,
            stuck.join(", ")
        );
        let why = match error {
            Some(error) => error,
            None if silent < DRAIN_PATIENCE => return Ok(Drained::Behind(behind)),
            None => format!(
                "no message for {} s and no error was reported",
                silent.as_secs()
            ),
        };
        Err(SourceError::Kafka {
            reason: format!("{behind}: {why}"),
        })
    }

    fn partitions(&self) -> Option<Vec<i32>> {
        Some(self.partitions.clone())
    }

    /// A record held aside by the pipeline: re-encoded in the wire format (the message itself is
    /// not kept past decoding), keyed by its patient as the devices' producers key them.
    fn dead_letter(
        &mut self,
        at: Option<Position>,
        patient: &str,
        wire: &str,
        reason: &str,
    ) -> Result<(), SourceError> {
        let Some(Position {
            partition: Some(partition),
            offset,
            ..
        }) = at
        else {
            return Ok(());
        };
        self.send_dead_letter(
            wire.as_bytes(),
            Some(patient.as_bytes()),
            reason,
            partition,
            offset,
        )
    }

    fn commit(&mut self, checkpoint: &Checkpoint) -> Result<(), SourceError> {
        // Dead letters first: a rejected message is durable in its topic before its offset moves.
        if let Some((producer, _)) = &self.dead_letter {
            flush_promptly(producer, Duration::from_secs(60)).map_err(|e| SourceError::Kafka {
                reason: format!("dead letters not confirmed: {e}"),
            })?;
        }
        if checkpoint.offsets.is_empty() {
            return Ok(());
        }
        let mut list = TopicPartitionList::new();
        for (p, o) in &checkpoint.offsets {
            list.add_partition_offset(&self.topic, *p, Offset::Offset(*o))
                .map_err(|e| SourceError::Kafka {
                    reason: e.to_string(),
                })?;
        }
        self.consumer
            .commit(&list, CommitMode::Sync)
            .map_err(|e| SourceError::Kafka {
                reason: format!("cannot commit offsets: {e}"),
            })
    }
}
