//! Alerts to a Kafka topic: one JSON message per alert, keyed by patient (so a patient's alerts
//! stay in order on one partition), with an idempotent producer. [`AlertSink::flush`] returns
//! only once the broker has confirmed every alert written so far.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, ProducerContext};

use serde::Deserialize;

use super::{AlertSink, SinkContext, SinkError, SinkKind};
use crate::alerting::Alert;
use crate::component::{Problem, Section};

/// The `[[sinks]]` of a Kafka topic.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSinkConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    pub topic: String,
    /// librdkafka settings passed as they are (`linger.ms`, …).
    #[serde(default)]
    pub properties: BTreeMap<String, String>,
    /// TLS and SASL (`[sinks.security]`, see [`crate::kafka::security`]).
    #[serde(default)]
    pub security: crate::kafka::KafkaSecurity,
}

impl SinkKind for KafkaSinkConfig {
    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = crate::kafka::check(
            section,
            &self.brokers,
            &[("topic", self.topic.as_str())],
            &self.properties,
        );
        problems.extend(self.security.check(section, &self.properties));
        problems
    }

    fn resolve_paths(&mut self, base: &std::path::Path) {
        self.security.resolve_paths(base);
    }

    fn build(&self, _cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError> {
        KafkaAlerts::connect(&self.brokers, &self.topic, &self.properties, &self.security)
            .map(|sink| Box::new(sink) as Box<dyn AlertSink>)
            .map_err(|source| SinkError {
                sink: format!("kafka topic {}", self.topic),
                source,
            })
    }
}

/// Remembers the first delivery failure.
#[derive(Clone, Default)]
struct Deliveries {
    failure: Arc<Mutex<Option<String>>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result
            && let Ok(mut failure) = self.failure.lock()
        {
            failure.get_or_insert_with(|| e.to_string());
        }
    }
}

/// The Kafka alert sink.
pub struct KafkaAlerts {
    producer: BaseProducer<Deliveries>,
    topic: String,
    deliveries: Deliveries,
}

impl KafkaAlerts {
    pub fn connect(
        brokers: &str,
        topic: &str,
        properties: &BTreeMap<String, String>,
        security: &crate::kafka::KafkaSecurity,
    ) -> io::Result<KafkaAlerts> {
        let deliveries = Deliveries::default();
        let producer = crate::kafka::secure_client_config(brokers, properties, security)
            .map_err(io::Error::other)?
            .set("enable.idempotence", "true")
            .set("compression.type", "lz4")
            .create_with_context(deliveries.clone())
            .map_err(|e| {
                io::Error::other(format!(
                    "kafka: cannot create the alert producer for {brokers}: {e}"
                ))
            })?;
        Ok(KafkaAlerts {
            producer,
            topic: topic.to_owned(),
            deliveries,
        })
    }
}

impl AlertSink for KafkaAlerts {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for alert in alerts {
            let payload = alert.to_json();
            let record = BaseRecord::to(&self.topic)
                .key(alert.patient.as_str())
                .payload(payload.as_str());
            crate::kafka::send_waiting(&self.producer, record).map_err(|e| {
                io::Error::other(format!(
                    "kafka: cannot send an alert to {}: {e}",
                    self.topic
                ))
            })?;
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("kafka topic {}", self.topic)
    }

    fn flush(&mut self) -> io::Result<()> {
        crate::kafka::flush_promptly(&self.producer, Duration::from_secs(120)).map_err(|e| {
            io::Error::other(format!("kafka: alerts not confirmed by the broker: {e}"))
        })?;
        match self.deliveries.failure.lock().ok().and_then(|f| f.clone()) {
            Some(failure) => Err(io::Error::other(format!(
                "kafka: an alert was not delivered: {failure}"
            ))),
            None => Ok(()),
        }
    }
}
