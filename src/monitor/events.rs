//! What a patient's monitor hears: observations, impossible values, prescriptions, records held
//! for a wrong device clock, and the end of the input; and the total order in which one tick's
//! events are applied, so that arrival order never shows in the output.
//!
//! The live dataflow ([`crate::pipeline`]) and training ([`crate::training`]) apply events through
//! the one function [`apply_set`].

use std::cmp::Ordering;

use serde::{Deserialize, Serialize};

use super::{MonitorSettings, PatientMonitor};
use crate::alerting::Alert;
use crate::observation::{EventTime, Identifier, Observation, Subject, Value, Vital};
use crate::registry::Prescribed;

/// What flows from the source to the monitors.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// A valid observation.
    Observation(Observation),
    /// An impossible value of a known patient: a data-quality problem.
    Invalid { subject: Subject, reason: String },
    /// A registry change: the patient's SpO2 scale, or a medication's schedule, from `time` on.
    Prescription {
        patient: Identifier,
        time: EventTime,
        prescribed: Prescribed,
    },
    /// A record whose time was not believed (its device's clock, see [`crate::pipeline::clock`]): reported to its
    /// patient at its partition's clock, never scored. Boxed: rare, and every event in flight
    /// is as large as the largest kind.
    Held(Box<Held>),
    /// A glucose reading that arrived behind its partition's clock: a CGM's backfill after a
    /// signal loss. Its patient hears of it at the clock (`at_us`), to be scored, never to page
    /// for the past. Boxed, as rare.
    Backfill(Box<Backfill>),
    /// The part of the source the patient's observations come from cannot be read on (a Kafka
    /// partition that stalled): they are unmonitored.
    Unreadable(Box<Unreadable>),
    /// A clinician acknowledged an alert: it takes effect at its own event time. Boxed: rare.
    Acknowledged(Box<Acknowledgement>),
    /// The source has ended; its latest event time, addressed to one worker.
    End { worker: u64, time_us: i64 },
    /// Worker 0's source asks one worker for a snapshot of its patients as they are before the
    /// tick of `at_us` ([`crate::pipeline::snapshot`]); never applied to a patient.
    Snapshot { worker: u64, at_us: i64 },
}

/// A clinician's acknowledgement of an alert, as the monitors hear of it: at the event time
/// (the watermark) at which it took effect, so that a replay applies it at the same instant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acknowledgement {
    pub patient: Identifier,
    /// The alert's id, kind and event time.
    pub alert: String,
    pub kind: crate::alerting::AlertKind,
    pub alert_time_us: i64,
    /// Who acknowledged, and what they noted.
    pub by: String,
    #[serde(default)]
    pub note: String,
    /// The event time it took effect at (µs).
    pub at_us: i64,
}

/// A patient whose observations cannot be read, as its monitor hears of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Unreadable {
    pub patient: Identifier,
    /// When it was found (the partition's clock), µs.
    pub at_us: i64,
    /// What cannot be read, and why.
    pub what: String,
}

/// A backfilled reading, and the clock it arrived at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Backfill {
    pub obs: Observation,
    pub at_us: i64,
}

/// A record held aside, as its patient's monitor hears of it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Held {
    pub patient: Identifier,
    pub device: Option<Identifier>,
    pub vital: Vital,
    /// The time it claimed.
    pub claimed: EventTime,
    /// How far off, from what, and when it was held (`hold.at_us`: its event time here).
    pub hold: Hold,
}

impl Event {
    /// The patient and event time of an event (the end marker has neither).
    pub fn subject(&self) -> Option<(&Identifier, EventTime)> {
        match self {
            Event::Observation(o) => Some((o.patient(), o.time())),
            Event::Invalid { subject, .. } => Some((&subject.patient, subject.time)),
            Event::Prescription { patient, time, .. } => Some((patient, *time)),
            Event::Held(held) => Some((&held.patient, EventTime::from_micros(held.hold.at_us))),
            Event::Backfill(b) => Some((b.obs.patient(), EventTime::from_micros(b.at_us))),
            Event::Unreadable(u) => Some((&u.patient, EventTime::from_micros(u.at_us))),
            Event::Acknowledged(a) => Some((&a.patient, EventTime::from_micros(a.at_us))),
            Event::End { .. } | Event::Snapshot { .. } => None,
        }
    }

    /// The event time (µs).
    pub fn time_us(&self) -> i64 {
        match self {
            Event::Observation(o) => o.time().micros(),
            Event::Invalid { subject, .. } => subject.time.micros(),
            Event::Prescription { time, .. } => time.micros(),
            Event::Held(held) => held.hold.at_us,
            Event::Backfill(b) => b.at_us,
            Event::Unreadable(u) => u.at_us,
            Event::Acknowledged(a) => a.at_us,
            Event::End { time_us, .. } => *time_us,
            Event::Snapshot { at_us, .. } => *at_us,
        }
    }
}

/// What a held record's time was compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HoldKind {
    /// Too far ahead of the partition's clock.
    Ahead,
    /// Too far behind the partition's clock.
    Behind,
    /// Too far ahead of the wall clock when it arrived.
    WallClock,
}

impl HoldKind {
    /// The name in the archive's `held` column.
    pub fn name(self) -> &'static str {
        match self {
            HoldKind::Ahead => "ahead",
            HoldKind::Behind => "behind",
            HoldKind::WallClock => "wall_clock",
        }
    }

    pub fn from_name(name: &str) -> Option<HoldKind> {
        match name {
            "ahead" => Some(HoldKind::Ahead),
            "behind" => Some(HoldKind::Behind),
            "wall_clock" => Some(HoldKind::WallClock),
            _ => None,
        }
    }
}

/// A record held aside.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub kind: HoldKind,
    /// The record's time minus the time it was compared with (µs; negative when behind).
    pub skew_us: i64,
    /// The partition's clock when it was held: the time its data-quality alert is raised at.
    pub at_us: i64,
}

impl Hold {
    /// Why, for a person: "20 months ahead of the ward's clock".
    pub fn describe(&self) -> String {
        let (direction, reference) = match self.kind {
            HoldKind::Ahead => ("ahead of", "the ward's clock"),
            HoldKind::Behind => ("behind", "the ward's clock"),
            HoldKind::WallClock => ("ahead of", "the wall clock"),
        };
        format!(
            "{} {direction} {reference}",
            span(self.skew_us.unsigned_abs())
        )
    }
}

/// A length of time as a person says it, to the nearest unit: 45 s, 12 min, 3 h, 4 days,
/// 20 months, 26 years.
pub fn span(us: u64) -> String {
    let s = us / 1_000_000;
    const DAY: u64 = 86_400;
    let nearest = |unit: u64| (s + unit / 2) / unit;
    match s {
        _ if s < 120 => format!("{s} s"),
        _ if s < 2 * 3600 => format!("{} min", nearest(60)),
        _ if s < 2 * DAY => format!("{} h", nearest(3600)),
        _ if s < 61 * DAY => format!("{} days", nearest(DAY)),
        // A month of 30.44 days, a year of 365.25.
        _ if s < 731 * DAY => format!("{} months", (s * 100 + 1522 * DAY) / (3044 * DAY)),
        _ => format!("{} years", (s * 100 + 18262 * DAY) / (36525 * DAY)),
    }
}

/// Puts a tick's events in the engine's total order (by time, a hash of the patient, then
/// [`order`]) and removes exact duplicates; returns how many were removed.
pub fn normalise(events: &mut Vec<Event>) -> u64 {
    // Comparing patient ids as strings was most of the sort (thousands of events a tick): sort
    // on (time, a hash of the patient) first, and let the full order break only the ties. The
    // order across patients changes, which nothing observes (the alert sink orders its output),
    // and within a patient and time it is the full order.
    // The sort moves 24-byte keys, not the events, which are then moved once into place: it
    // was a sixth of a monitor worker when it moved whole events through its merges. Ties end
    // on the arrival index, so it is the stable sort it replaced.
    let mut keys: Vec<(i64, u64, usize)> = events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let hash = e.subject().map_or(u64::MAX, |(p, _)| p.stable_hash());
            (e.time_us(), hash, i)
        })
        .collect();
    keys.sort_unstable_by(|a, b| {
        (a.0, a.1)
            .cmp(&(b.0, b.1))
            .then_with(|| order(&events[a.2], &events[b.2]))
            .then(a.2.cmp(&b.2))
    });
    let mut arrived: Vec<Option<Event>> = events.drain(..).map(Some).collect();
    events.extend(keys.iter().filter_map(|k| arrived[k.2].take()));
    let before = events.len();
    events.dedup_by(|b, a| duplicate(a, b));
    (before - events.len()) as u64
}

/// Runs one observation set (the normalised events of one patient at one event time, as
/// `chunk_by(same_patient_and_time)` splits them) through the patient's monitor: prescriptions
/// and impossible values first, then the observations, scored once. Returns how many
/// observations it held. The live dataflow and training replay datasets through this one path.
pub fn apply_set(
    monitor: &mut PatientMonitor,
    settings: &MonitorSettings,
    set: &[Event],
    alerts: &mut Vec<Alert>,
) -> usize {
    let mut observations: Vec<&Observation> = Vec::with_capacity(set.len());
    for e in set {
        match e {
            Event::Prescription {
                time, prescribed, ..
            } => monitor.prescribe(settings, *time, prescribed, alerts),
            Event::Invalid { subject, reason } => {
                monitor.invalid(settings, subject.vital, subject.time, reason, alerts)
            }
            Event::Unreadable(u) => {
                monitor.unreadable(settings, EventTime::from_micros(u.at_us), &u.what, alerts)
            }
            Event::Backfill(b) => {
                monitor.backfill(settings, EventTime::from_micros(b.at_us), &b.obs, alerts)
            }
            Event::Held(held) => monitor.held(
                settings,
                held.device.as_ref(),
                EventTime::from_micros(held.hold.at_us),
                &held.hold.describe(),
                alerts,
            ),
            Event::Acknowledged(a) => monitor.acknowledge(settings, a, alerts),
            Event::Observation(o) => observations.push(o),
            Event::End { .. } | Event::Snapshot { .. } => {}
        }
    }
    monitor.observe_set(settings, &observations, alerts);
    observations.len()
}

/// The total order of events within a tick.
fn order(a: &Event, b: &Event) -> Ordering {
    key(a)
        .cmp(&key(b))
        .then_with(|| value_key(a).cmp(&value_key(b)))
        .then_with(|| detail(a).cmp(&detail(b)))
}

/// A device kind's detail: two statuses of one device at one instant are ordered by it.
fn detail(e: &Event) -> Option<&crate::observation::Detail> {
    match e {
        Event::Observation(o) => o.detail(),
        _ => None,
    }
}

/// (time, patient, kind, vital, device): prescriptions first, then invalid values and held
/// records, then observations, and the end marker last.
fn key(e: &Event) -> (i64, &str, u8, u8, &str) {
    match e {
        Event::Prescription { patient, time, .. } => (time.micros(), patient.as_str(), 0, 0, ""),
        Event::Invalid { subject, .. } => (
            subject.time.micros(),
            subject.patient.as_str(),
            1,
            subject.vital as u8,
            "",
        ),
        Event::Backfill(b) => (
            b.at_us,
            b.obs.patient().as_str(),
            1,
            b.obs.vital() as u8,
            b.obs.device().map_or("", Identifier::as_str),
        ),
        Event::Held(held) => (
            held.hold.at_us,
            held.patient.as_str(),
            1,
            held.vital as u8,
            held.device.as_ref().map_or("", Identifier::as_str),
        ),
        Event::Unreadable(u) => (u.at_us, u.patient.as_str(), 1, u8::MAX, ""),
        // (Applied before the instant's observations, like the other reports: it acknowledges
        // what the clinician saw, not what this instant brings.)
        Event::Acknowledged(a) => (
            a.at_us,
            a.patient.as_str(),
            1,
            u8::MAX - 1,
            a.alert.as_str(),
        ),
        Event::Observation(o) => (
            o.time().micros(),
            o.patient().as_str(),
            2,
            o.vital() as u8,
            o.device().map_or("", Identifier::as_str),
        ),
        Event::End { time_us, .. } => (*time_us, "", 3, 0, ""),
        Event::Snapshot { at_us, .. } => (*at_us, "", 3, 1, ""),
    }
}

fn value_key(e: &Event) -> (u64, &str) {
    match e {
        Event::Observation(o) => match o.value() {
            Value::Number(n) => (n.to_bits(), ""),
            Value::Acvpu(a) => (a as u64, ""),
            Value::Code(_) => o.distinct_key().map_or((0, ""), |(c, m)| (u64::from(c), m)),
            Value::None => (0, ""),
        },
        Event::Invalid { reason, .. } => (0, reason.as_str()),
        Event::Held(held) => (held.claimed.micros() as u64, ""),
        Event::Backfill(b) => (b.obs.time().micros() as u64, ""),
        Event::Unreadable(u) => (0, u.what.as_str()),
        Event::Acknowledged(a) => (a.alert_time_us as u64, a.by.as_str()),
        _ => (0, ""),
    }
}

fn duplicate(a: &Event, b: &Event) -> bool {
    match (a, b) {
        (Event::Observation(x), Event::Observation(y)) => x == y,
        (Event::End { .. }, Event::End { .. }) => false,
        _ => a == b,
    }
}

/// Whether two normalised events belong to one observation set.
pub fn same_patient_and_time(a: &Event, b: &Event) -> bool {
    let (ta, pa, ka, _, _) = key(a);
    let (tb, pb, kb, _, _) = key(b);
    (ta, pa, ka == 3) == (tb, pb, kb == 3)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::{Unit, Vital};
    use proptest::prelude::*;

    fn observation(patient: u8, device: u8, second: u8, vital: u8, value: u8, unit: bool) -> Event {
        // SpO2 of 1 as a percentage and as a fraction: equal in the order, not duplicates.
        let (vital, unit) = match (vital % 2, unit) {
            (0, _) => (Vital::HeartRate, Some(Unit::PerMinute)),
            (_, true) => (Vital::Spo2, Some(Unit::Percent)),
            (_, false) => (Vital::Spo2, Some(Unit::Fraction)),
        };
        let value = match vital {
            Vital::HeartRate => 60.0 + f64::from(value % 4),
            _ => 1.0,
        };
        let obs = Observation::new(
            Identifier::new(&format!("p{}", patient % 3)).unwrap(),
            Some(Identifier::new(&format!("d{}", device % 2)).unwrap()),
            EventTime::from_micros(i64::from(second % 3) * 1_000_000),
            vital,
            Value::Number(value),
            unit,
        )
        .unwrap();
        Event::Observation(obs)
    }

    proptest! {
        /// The engine's order is the stable sort on (time, patient hash, full order), whatever
        /// the arrival order, and exact duplicates are removed.
        #[test]
        fn normalise_is_the_stable_sort_without_duplicates(
            raw in proptest::collection::vec((0u8..6, 0u8..2, 0u8..3, 0u8..2, 0u8..4, any::<bool>()), 0..60),
        ) {
            let events: Vec<Event> = raw
                .iter()
                .map(|&(p, d, s, v, x, u)| observation(p, d, s, v, x, u))
                .collect();
            let mut expected = events.clone();
            expected.sort_by(|a, b| {
                let hash = |e: &Event| e.subject().map_or(u64::MAX, |(p, _)| p.stable_hash());
                (a.time_us(), hash(a))
                    .cmp(&(b.time_us(), hash(b)))
                    .then_with(|| order(a, b))
            });
            let before = expected.len();
            expected.dedup_by(|b, a| duplicate(a, b));
            let mut got = events;
            let removed = normalise(&mut got);
            prop_assert_eq!(&got, &expected);
            prop_assert_eq!(removed as usize, before - expected.len());
        }
    }
}
