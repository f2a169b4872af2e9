//! What Vigil's Kafka source and sink share: a client's settings, prompt flushing and sending
//! under back-pressure, topic creation, and the checks of a `[source]`'s or `[[sinks]]`'s
//! Kafka settings made before anything connects.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::component::{Problem, Section};
use crate::sources::SourceError;

pub mod security;

pub use security::KafkaSecurity;

/// The librdkafka settings Vigil sets, merged under the user's `properties`.
pub fn client_config(brokers: &str, properties: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", brokers);
    for (k, v) in properties {
        config.set(k, v);
    }
    config
}

/// [`client_config`] with `security` applied: its password is read now.
pub fn secure_client_config(
    brokers: &str,
    properties: &BTreeMap<String, String>,
    security: &KafkaSecurity,
) -> Result<ClientConfig, security::SecretError> {
    let mut config = client_config(brokers, properties);
    security.apply(&mut config)?;
    Ok(config)
}

/// Waits until every message of `producer` is confirmed by the broker, or `timeout` passes.
///
/// `BaseProducer::flush` waits in steps of 100 ms between checks, so each flush of a few
/// messages took 100 ms whatever the broker's round trip; the alert sink flushes once a second
/// on the worker that also reads, which stalled the whole dataflow a tenth of the time. Polling
/// in 1 ms steps returns within a millisecond of the last confirmation.
pub fn flush_promptly<C>(
    producer: &BaseProducer<C>,
    timeout: Duration,
) -> Result<(), rdkafka::error::KafkaError>
where
    C: rdkafka::producer::ProducerContext,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        producer.poll(Duration::ZERO);
        if producer.in_flight_count() == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= deadline {
            return Err(rdkafka::error::KafkaError::Flush(
                rdkafka::types::RDKafkaErrorCode::RequestTimedOut,
            ));
        }
        producer.poll(Duration::from_millis(1));
    }
}

/// Sends a record, waiting for room while the producer's local queue is full (deliveries drain
/// it); any other error is returned.
pub fn send_waiting<C, K, P>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, K, P>,
) -> Result<(), rdkafka::error::KafkaError>
where
    C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>,
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match producer.send(record) {
            Ok(()) => {
                producer.poll(Duration::ZERO);
                return Ok(());
            }
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                record = r;
                producer.poll(Duration::from_millis(50));
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub fn ensure_topic(
    brokers: &str,
    topic: &str,
    partitions: i32,
    properties: &BTreeMap<String, String>,
) -> Result<(), SourceError> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    use rdkafka::client::DefaultClientContext;
    let err = |reason: String| SourceError::Kafka { reason };
    let admin: AdminClient<DefaultClientContext> = client_config(brokers, properties)
        .create()
        .map_err(|e| err(format!("cannot create an admin client: {e}")))?;
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_executor::block_on(
        admin.create_topics(
            [&new],
            // The request's own timeout too: without it an unreachable broker is waited for forever.
            &AdminOptions::new()
                .request_timeout(Some(Duration::from_secs(30)))
                .operation_timeout(Some(Duration::from_secs(30))),
        ),
    )
    .map_err(|e| err(format!("cannot create topic {topic} on {brokers}: {e}")))?;
    for result in results {
        match result {
            Ok(_) => {}
            Err((_, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(err(format!("cannot create topic {name}: {code}"))),
        }
    }
    Ok(())
}

/// Settings Vigil sets itself, with what to write instead.
const OWN_SETTINGS: &[(&str, &str)] = &[
    ("bootstrap.servers", "write `brokers`"),
    ("group.id", "write `group`"),
    (
        "enable.auto.commit",
        "Vigil commits offsets itself, once what they cover is durable",
    ),
    (
        "enable.auto.offset.store",
        "Vigil commits offsets itself, once what they cover is durable",
    ),
    ("auto.offset.reset", "write `start`"),
    (
        "enable.idempotence",
        "Vigil's producers are idempotent already",
    ),
];

/// The problems of a component's Kafka settings: its broker list, each topic it names, and each
/// librdkafka property, checked by librdkafka itself (an unknown name, a value out of range, a
/// feature this build lacks), each at its line.
pub fn check(
    section: &Section,
    brokers: &str,
    topics: &[(&str, &str)],
    properties: &BTreeMap<String, String>,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    if let Some(why) = check_brokers(brokers) {
        problems.push(section.problem("brokers", why));
    }
    for (key, topic) in topics {
        if let Some(why) = check_topic(topic) {
            problems.push(section.problem(key, format!("`{key}` {topic:?} {why}")));
        }
    }
    for (name, value) in properties {
        let key = format!("properties.{name}");
        if let Some((_, instead)) = OWN_SETTINGS.iter().find(|(own, _)| own == name) {
            problems.push(section.problem(&key, format!("`{name}` is Vigil's to set: {instead}")));
            continue;
        }
        let mut config = ClientConfig::new();
        config.set(name, value);
        if let Err(e) = config.create_native_config() {
            let why = match e {
                rdkafka::error::KafkaError::ClientConfig(_, description, _, _) => description,
                other => other.to_string(),
            };
            problems.push(section.problem(
                &key,
                format!("librdkafka refuses `{name}` = {value:?}: {why}"),
            ));
        }
    }
    problems
}

/// Why a broker list is not `host:port[,host:port…]`, if it is not.
fn check_brokers(brokers: &str) -> Option<String> {
    if brokers.trim().is_empty() {
        return Some("`brokers` is empty: write host:port[,host:port...]".into());
    }
    for broker in brokers.split(',').map(str::trim) {
        let Some((host, port)) = broker.rsplit_once(':') else {
            return Some(format!(
                "`brokers`: {broker:?} has no port (write host:port, e.g. 127.0.0.1:9092)"
            ));
        };
        if host.is_empty() || port.parse::<u16>().map_or(true, |p| p == 0) {
            return Some(format!(
                "`brokers`: {broker:?} is not host:port (e.g. 127.0.0.1:9092)"
            ));
        }
    }
    None
}

/// Why a topic name is not one Kafka accepts, if it is not.
fn check_topic(topic: &str) -> Option<String> {
    if topic.is_empty() || topic.len() > 249 {
        return Some("must be 1 to 249 characters".into());
    }
    if topic == "." || topic == ".." {
        return Some("cannot be . or ..".into());
    }
    topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        .map(|c| format!("has {c:?}: a topic name is letters, digits, '.', '_' and '-'"))
}
