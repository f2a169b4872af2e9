//! Alerts: what Vigil tells clinicians, and what it shows them.
//!
//! An [`Alert`] is what a rule raised for a patient at an event time: its kind and event, a
//! severity, one sentence, the recommended response and the evidence it rests on. Each has an id
//! derived from its content (patient, time, kind, event, summary), so a replay produces the same
//! ids. Some are for people ([`Alert::pages`]); the rest are board state (score updates, the
//! reminders of a band that stays raised), shown on the board and never paged.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::news2::{Band, Parameter, Score, Status};
use crate::observation::EventTime;

/// What an alert is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// The NEWS2 band.
    News2,
    /// Missing, stale or invalid data.
    DataQuality,
    /// The risk model's probability.
    Risk,
    /// Glucose: lows, highs, fast changes, a predicted low, a CGM's signal loss.
    Glucose,
    /// An insulin pump's alarms, and boluses that risk a low.
    Pump,
    /// Doses missed or late against their schedule; a rescue inhaler used too often.
    Medication,
    /// A device's own health: silent, back, its battery, its sensor's session.
    Device,
}

impl AlertKind {
    pub fn name(self) -> &'static str {
        match self {
            AlertKind::News2 => "news2",
            AlertKind::DataQuality => "data_quality",
            AlertKind::Risk => "risk",
            AlertKind::Glucose => "glucose",
            AlertKind::Pump => "pump",
            AlertKind::Medication => "medication",
            AlertKind::Device => "device",
        }
    }
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertEvent {
    /// The band rose.
    Raised,
    /// The band is still raised.
    Reminder,
    /// The band came down after K consecutive lower scores.
    Lowered,
    /// A parameter was never received within its staleness limit.
    Missing,
    /// A parameter's last value is older than its staleness limit.
    Stale,
    /// A physiologically impossible value arrived.
    Invalid,
    /// A device reports times that cannot be believed: its observations are held aside.
    Clock,
    /// The patient's observations cannot be read from their source: unmonitored.
    Unreadable,
    /// Glucose below the urgent-low threshold (55 mg/dL): repeated while it stays there.
    UrgentLow,
    /// Glucose below the low threshold.
    Low,
    /// Glucose above the high threshold.
    High,
    /// Glucose rising at the fast rate or more.
    RisingFast,
    /// Glucose falling at the fast rate or more.
    FallingFast,
    /// The trend predicts an urgent low within the horizon.
    UrgentLowSoon,
    /// No CGM reading for the configured silence.
    SignalLoss,
    /// A new sensor's readings while it warms up: not used.
    Warmup,
    /// A pump's infusion is blocked.
    Occlusion,
    /// A pump is not delivering insulin.
    NoDelivery,
    /// A pump's delivery is suspended.
    Suspended,
    /// A pump's reservoir is low.
    LowReservoir,
    /// A device's battery is low.
    LowBattery,
    /// A bolus while glucose is falling fast and low.
    RiskyBolus,
    /// A scheduled dose's grace closed with no dose.
    MissedDose,
    /// A dose came after its grace closed.
    LateDose,
    /// A rescue inhaler is used more than it should be.
    RescueOveruse,
    /// A device went silent for longer than its kind reports: its patient is not monitored.
    Offline,
    /// A silent device reports again.
    Recovered,
    /// A sensor's session ends soon.
    SensorExpiring,
    /// A CGM's backfilled readings, scored, reported once: past, never an alarm.
    Backfilled,
    /// The NEWS2 total, bounds, band or completeness changed: board state (a FHIR
    /// Observation, the ward board), never paged ([`Alert::pages`]).
    Scored,
    /// A high band's (or a single parameter 3's) alert nobody acknowledged in time: paged to
    /// the second recipient.
    Escalated,
    /// A medium band's alert nobody acknowledged in time: paged to the ward again.
    Unacknowledged,
    /// A clinician acknowledged an alert: board state, the record of who and when.
    Acknowledged,
}

impl AlertEvent {
    /// Its name, as it is serialised.
    pub fn name(self) -> &'static str {
        match self {
            AlertEvent::Raised => "raised",
            AlertEvent::Reminder => "reminder",
            AlertEvent::Lowered => "lowered",
            AlertEvent::Missing => "missing",
            AlertEvent::Stale => "stale",
            AlertEvent::Invalid => "invalid",
            AlertEvent::Clock => "clock",
            AlertEvent::Unreadable => "unreadable",
            AlertEvent::UrgentLow => "urgent_low",
            AlertEvent::Low => "low",
            AlertEvent::High => "high",
            AlertEvent::RisingFast => "rising_fast",
            AlertEvent::FallingFast => "falling_fast",
            AlertEvent::UrgentLowSoon => "urgent_low_soon",
            AlertEvent::SignalLoss => "signal_loss",
            AlertEvent::Warmup => "warmup",
            AlertEvent::Occlusion => "occlusion",
            AlertEvent::NoDelivery => "no_delivery",
            AlertEvent::Suspended => "suspended",
            AlertEvent::LowReservoir => "low_reservoir",
            AlertEvent::LowBattery => "low_battery",
            AlertEvent::RiskyBolus => "risky_bolus",
            AlertEvent::MissedDose => "missed_dose",
            AlertEvent::LateDose => "late_dose",
            AlertEvent::RescueOveruse => "rescue_overuse",
            AlertEvent::Offline => "offline",
            AlertEvent::Recovered => "recovered",
            AlertEvent::SensorExpiring => "sensor_expiring",
            AlertEvent::Backfilled => "backfilled",
            AlertEvent::Scored => "scored",
            AlertEvent::Escalated => "escalated",
            AlertEvent::Unacknowledged => "unacknowledged",
            AlertEvent::Acknowledged => "acknowledged",
        }
    }
}

/// How urgent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    #[serde(rename = "low-medium")]
    LowMedium,
    Medium,
    High,
}

impl Severity {
    /// The severity of an alert about `band`.
    pub fn of(band: Band) -> Severity {
        match band {
            Band::Low => Severity::Info,
            Band::LowMedium => Severity::LowMedium,
            Band::Medium => Severity::Medium,
            Band::High => Severity::High,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::LowMedium => "low-medium",
            Severity::Medium => "medium",
            Severity::High => "high",
        }
    }
}

/// One parameter's value as used by a score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedValue {
    pub parameter: String,
    /// The charted (quantised) value, or `null` when not scored.
    pub value: Option<String>,
    pub subscore: Option<u8>,
    /// Seconds since the value was observed, when there is one.
    pub age_s: Option<i64>,
}

/// The NEWS2 evidence of an alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    pub status: Status,
    pub total: u8,
    pub total_upper_bound: u8,
    pub band: Option<Band>,
    pub single_parameter_3: bool,
    pub values: Vec<UsedValue>,
    pub problems: Vec<String>,
}

impl Evidence {
    /// The evidence of `score`; `ages` gives each parameter's age in seconds, in chart order.
    pub fn of(score: &Score, ages: [Option<i64>; 7]) -> Evidence {
        Evidence {
            status: score.status,
            total: score.total,
            total_upper_bound: score.upper_bound,
            band: score.band,
            single_parameter_3: score.single_parameter_3,
            values: score
                .assessments
                .iter()
                .zip(ages)
                .map(|(a, age_s)| UsedValue {
                    parameter: a.parameter.key().to_owned(),
                    value: a.charted.map(|c| c.to_string()),
                    subscore: a.subscore,
                    age_s,
                })
                .collect(),
            problems: score.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What an alert rests on: NEWS2's score, or a rule family's own facts (a glucose alert's
/// readings and trend, a dose's schedule), as that family documents them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum AlertEvidence {
    News2(Evidence),
    Facts(serde_json::Value),
}

impl AlertEvidence {
    /// NEWS2's evidence, if this is it.
    pub fn news2(&self) -> Option<&Evidence> {
        match self {
            AlertEvidence::News2(e) => Some(e),
            AlertEvidence::Facts(_) => None,
        }
    }
}

/// The risk-model part of an alert's evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RiskEvidence {
    pub model: String,
    pub version: String,
    /// What the probability is of (`sepsis within the PhysioNet 2019 horizon`).
    pub outcome: String,
    pub probability: f64,
    pub threshold: f64,
    pub clear_below: f64,
    /// The features that move the probability most, largest first.
    pub top_features: Vec<Contribution>,
}

/// One feature's part in a probability: its value, and how much the probability would drop were
/// it at its training mean (negative: it lowers the risk).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    pub feature: String,
    pub value: Option<f64>,
    pub contribution: f64,
}

/// Who an alert that pages is for.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Recipient {
    /// Whoever looks after the patient: the ward.
    #[default]
    Ward,
    /// The second recipient, when the ward did not acknowledge: the outreach or rapid-response
    /// team.
    Escalation,
}

impl Recipient {
    pub fn name(self) -> &'static str {
        match self {
            Recipient::Ward => "ward",
            Recipient::Escalation => "escalation",
        }
    }

    fn is_ward(&self) -> bool {
        *self == Recipient::Ward
    }
}

/// An alert for clinicians.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// Derived from the content: the same alert has the same id in every run.
    pub id: String,
    pub patient: String,
    /// Event time (RFC 3339, UTC).
    pub time: String,
    /// The same instant in microseconds since the Unix epoch.
    pub time_us: i64,
    pub kind: AlertKind,
    pub event: AlertEvent,
    pub severity: Severity,
    /// One sentence for a person.
    pub summary: String,
    /// The recommended clinical response (RCP), or what to do about the data.
    pub response: String,
    pub evidence: Option<AlertEvidence>,
    /// For risk alerts: the model, the probability and what drives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskEvidence>,
    /// Who it pages, when not the ward (absent: the ward).
    #[serde(default, skip_serializing_if = "Recipient::is_ward")]
    pub recipient: Recipient,
}

/// Who and when an alert is about, and what of: the head of [`Alert::of_facts`].
#[derive(Clone, Copy, Debug)]
pub struct Head<'a> {
    pub patient: &'a str,
    pub time_us: i64,
    pub kind: AlertKind,
    pub event: AlertEvent,
    pub severity: Severity,
}

impl Alert {
    /// Builds an alert; the id hashes patient, time, kind, event and summary.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        patient: &str,
        time: EventTime,
        kind: AlertKind,
        event: AlertEvent,
        severity: Severity,
        summary: String,
        response: String,
        evidence: Option<Evidence>,
    ) -> Alert {
        let mut hash = Fnv64::new();
        for part in [
            patient,
            &time.micros().to_string(),
            kind.name(),
            &format!("{event:?}"),
            &summary,
        ] {
            hash.write(part.as_bytes());
            hash.write(&[0]);
        }
        Alert {
            id: format!("{:016x}", hash.finish()),
            patient: patient.to_owned(),
            time: time.to_rfc3339(),
            time_us: time.micros(),
            kind,
            event,
            severity,
            summary,
            response,
            evidence: evidence.map(AlertEvidence::News2),
            risk: None,
            recipient: Recipient::Ward,
        }
    }

    /// The same alert resting on a rule family's own facts.
    pub fn with_facts(mut self, facts: serde_json::Value) -> Alert {
        self.evidence = Some(AlertEvidence::Facts(facts));
        self
    }

    /// A device-kind rule's alert (glucose, pump, medication, device): what it is about, what
    /// happened and what to do, resting on its facts.
    pub fn of_facts(
        head: Head<'_>,
        summary: String,
        response: &str,
        facts: serde_json::Value,
    ) -> Alert {
        Alert::new(
            head.patient,
            EventTime::from_micros(head.time_us),
            head.kind,
            head.event,
            head.severity,
            summary,
            response.to_owned(),
            None,
        )
        .with_facts(facts)
    }

    /// Whether it is for people. Score updates and the reminders of a band that stays raised
    /// are board state: sinks that page leave them out, as do the alert counts and the alert
    /// archive.
    pub fn pages(&self) -> bool {
        !matches!(
            self.event,
            AlertEvent::Scored | AlertEvent::Reminder | AlertEvent::Acknowledged
        )
    }

    /// Whether it is a score update (board state: the NEWS2 total, bounds, band or completeness
    /// changed).
    pub fn is_score_update(&self) -> bool {
        self.event == AlertEvent::Scored
    }

    /// The deterministic output order: event time, then patient, then kind, then the rest.
    pub fn sort_key(&self) -> (i64, &str, AlertKind, AlertEvent, &str) {
        (self.time_us, &self.patient, self.kind, self.event, &self.id)
    }

    /// One JSON line.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

impl fmt::Display for Alert {
    /// One line for a person at a console.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:<10} {:<10} {}: {}",
            self.time,
            self.patient,
            self.severity.name().to_uppercase(),
            self.kind.name(),
            self.summary
        )
    }
}

/// FNV-1a, 64 bits: a stable content hash (std's hashers may change between releases).
struct Fnv64(u64);

impl Fnv64 {
    fn new() -> Fnv64 {
        Fnv64(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= b as u64;
            self.0 = self.0.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// The record that a clinician acknowledged an alert (board state): its evidence names the alert
/// acknowledged, who and what they noted.
pub fn acknowledged(ack: &crate::monitor::events::Acknowledgement) -> Alert {
    let note = match ack.note.is_empty() {
        true => String::new(),
        false => format!(": {}", ack.note),
    };
    Alert::new(
        ack.patient.as_str(),
        EventTime::from_micros(ack.at_us),
        ack.kind,
        AlertEvent::Acknowledged,
        Severity::Info,
        format!("alert {} acknowledged by {}{note}", ack.alert, ack.by),
        match ack.kind {
            AlertKind::News2 => {
                "the band's reminders pause for its monitoring frequency, and it does not escalate"
            }
            _ => "recorded with the alert",
        }
        .to_owned(),
        None,
    )
    .with_facts(serde_json::json!({
        "alert": ack.alert,
        "alert_time_us": ack.alert_time_us,
        "by": ack.by,
        "note": ack.note,
    }))
}

/// A data-quality alert about one parameter.
pub fn data_quality_alert(
    patient: &str,
    time: EventTime,
    event: AlertEvent,
    parameter: Parameter,
    detail: String,
) -> Alert {
    let response = match event {
        AlertEvent::Invalid => format!(
            "check the {} sensor and its placement; the value was not scored",
            parameter.human_name()
        ),
        _ => format!(
            "record {} now: NEWS2 is incomplete without it and is not a low score",
            parameter.human_name()
        ),
    };
    Alert::new(
        patient,
        time,
        AlertKind::DataQuality,
        event,
        Severity::Warning,
        format!("{}: {detail}", parameter.key()),
        response,
        None,
    )
}

/// A device whose clock cannot be believed: its observations are held aside, not scored.
/// `device` is `None` for observations sent without one; `how_far` says how far off and from
/// what ("20 months ahead of the ward's clock").
pub fn clock_alert(patient: &str, time: EventTime, device: Option<&str>, how_far: &str) -> Alert {
    let who = match device {
        Some(device) => format!("device {device} reports"),
        None => "observations without a device report".to_owned(),
    };
    Alert::new(
        patient,
        time,
        AlertKind::DataQuality,
        AlertEvent::Clock,
        Severity::Warning,
        format!("{who} times {how_far}: they are held aside, not scored"),
        "check the device's date, time zone and network time, and that it is paired with this \
         patient; until its clock is right its readings are not used: chart this patient's vital \
         signs by hand"
            .to_owned(),
        None,
    )
}

/// The patient's observations cannot be read from their source (`what`: which part and why).
pub fn unreadable_alert(patient: &str, time: EventTime, what: &str) -> Alert {
    Alert::new(
        patient,
        time,
        AlertKind::DataQuality,
        AlertEvent::Unreadable,
        Severity::Warning,
        format!("{what}: this patient's observations sent there are not arriving"),
        "this patient is unmonitored by Vigil until its source is read again: chart the vital \
         signs by hand, and tell whoever runs Vigil (its log says why)"
            .to_owned(),
        None,
    )
}

/// A risk alert: the model's probability reached its threshold (`Raised`) or fell back below
/// the clearing level (`Lowered`). `response` is the model's recommended response on raising.
pub fn risk_alert(
    patient: &str,
    time: EventTime,
    event: AlertEvent,
    risk: RiskEvidence,
    response: &str,
    evidence: Option<Evidence>,
) -> Alert {
    let percent = |p: f64| format!("{:.1} %", 100.0 * p);
    let (severity, summary, response) = match event {
        AlertEvent::Lowered => (
            Severity::Info,
            format!(
                "{} risk fell to {}, below {} ({} v{})",
                risk.outcome,
                percent(risk.probability),
                percent(risk.clear_below),
                risk.model,
                risk.version
            ),
            "continue the monitoring the NEWS2 band asks for".to_owned(),
        ),
        _ => (
            Severity::Medium,
            format!(
                "{} risk {} reached the alert threshold {} ({} v{})",
                risk.outcome,
                percent(risk.probability),
                percent(risk.threshold),
                risk.model,
                risk.version
            ),
            response.to_owned(),
        ),
    };
    let mut alert = Alert::new(
        patient,
        time,
        AlertKind::Risk,
        event,
        severity,
        summary,
        response,
        evidence,
    );
    alert.risk = Some(risk);
    alert
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_is_named_as_it_is_serialised() {
        use AlertEvent::*;
        for event in [
            Raised,
            Reminder,
            Lowered,
            Missing,
            Stale,
            Invalid,
            Clock,
            Unreadable,
            Scored,
            Escalated,
            Unacknowledged,
        ] {
            assert_eq!(
                serde_json::to_string(&event).unwrap(),
                format!("\"{}\"", event.name())
            );
        }
    }

    #[test]
    fn ids_are_derived_from_content() {
        let t = EventTime::from_micros(42);
        let a = Alert::new(
            "p1",
            t,
            AlertKind::News2,
            AlertEvent::Raised,
            Severity::High,
            "x".into(),
            "r".into(),
            None,
        );
        let b = Alert::new(
            "p1",
            t,
            AlertKind::News2,
            AlertEvent::Raised,
            Severity::High,
            "x".into(),
            "r".into(),
            None,
        );
        let c = Alert::new(
            "p2",
            t,
            AlertKind::News2,
            AlertEvent::Raised,
            Severity::High,
            "x".into(),
            "r".into(),
            None,
        );
        assert_eq!(a.id, b.id);
        assert_ne!(a.id, c.id);
        assert_eq!(a.id.len(), 16);
    }
}
