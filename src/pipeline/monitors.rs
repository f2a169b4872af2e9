//! The keyed monitor operator: each worker keeps the [`PatientMonitor`]s of its patients and
//! drives them tick by tick, once the frontier has passed each tick.
//!
//! Within a tick, events are processed in a total order (time, patient, kind, vital, device,
//! value) and exact duplicates (the same patient, device, vital, time and value) are removed, so
//! arrival order never shows in the output. Ticks with no events but with due timers are visited
//! too, so silence is noticed at the time it becomes stale, whatever else the stream carries.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use super::placement::Placement;
use super::{Event, FastMap, WorkerState, worker_of};
use crate::alerting::Alert;
use crate::monitor::events::{apply_set, normalise, same_patient_and_time};
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::news2::Scale;
use crate::observation::{EventTime, Identifier};

/// A registry update: `(patient, scale)` from a time on, added (+1) or retracted (−1).
type Prescription = ((Identifier, Scale), i64, isize);

pub(super) fn monitors<'scope>(
    events: Stream<'scope, i64, Vec<Event>>,
    prescriptions: Stream<'scope, i64, Vec<Prescription>>,
    settings: MonitorSettings,
    placement: Placement,
    tick_us: i64,
    state: Rc<RefCell<WorkerState>>,
) -> Stream<'scope, i64, Vec<Alert>> {
    events.binary_frontier(
        prescriptions,
        Exchange::new(move |e: &Event| worker_of(e, &placement)),
        Exchange::new(move |p: &Prescription| placement.worker(&(p.0).0)),
        "Monitors",
        move |capability, _info| {
            let mut cap = Some(capability);
            let mut pending: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
            // Events of the last tick processed: a new tick is sized like it. A minute of every
            // patient's data waits in `pending` (the allowed lateness); grown by doubling, each
            // tick was copied as it grew and kept up to half its capacity unused.
            let mut tick_len = 0usize;
            // Boxed: the map's table stays small (and in cache) and each monitor's address is
            // known without touching it, to prefetch.
            let mut patients: FastMap<Identifier, Box<PatientMonitor>> = FastMap::default();
            let mut scales: FastMap<Identifier, Scale> = FastMap::default();
            let mut timers: BTreeSet<(i64, Identifier)> = BTreeSet::new();
            let mut due_of: FastMap<Identifier, i64> = FastMap::default();
            let mut end_us: Option<i64> = None;
            let mut alerts: Vec<Alert> = Vec::new();
            move |(input, frontier), (registry, registry_frontier), output| {
                // The as-of join: a prescription becomes an event at its own time, ordered with
                // the observations (a retraction is implied by the scale that replaces it).
                registry.for_each(|_time, data| {
                    for ((patient, scale), time_us, diff) in data.drain(..) {
                        if diff > 0 {
                            let time = EventTime::from_micros(time_us);
                            pending
                                .entry(time_us.div_euclid(tick_us))
                                .or_default()
                                .push(Event::Prescription {
                                    patient,
                                    time,
                                    scale,
                                });
                        }
                    }
                });
                input.for_each(|time, data| {
                    pending
                        .entry(time.least().copied().unwrap_or(i64::MIN))
                        .or_insert_with(|| Vec::with_capacity(tick_len + tick_len / 16))
                        .append(data);
                });
                let Some(c) = cap.as_mut() else {
                    pending.clear();
                    return;
                };
                let done =
                    frontier.frontier().is_empty() && registry_frontier.frontier().is_empty();
                // Ticks strictly before `limit` are complete on both inputs.
                let limit = [
                    frontier.frontier().first(),
                    registry_frontier.frontier().first(),
                ]
                .into_iter()
                .flatten()
                .min()
                .copied()
                .unwrap_or(i64::MAX);
                loop {
                    let next_data = pending.keys().next().copied();
                    let next_timer = timers.first().map(|(due, _)| due.div_euclid(tick_us));
                    let Some(t) = [next_data, next_timer].into_iter().flatten().min() else {
                        break;
                    };
                    if t >= limit {
                        break;
                    }
                    // At the end, once every event is processed (the end marker among them), timers
                    // fire up to the source's last event time only.
                    // (Compare the due time itself, not its tick: a timer due later in the end's
                    // own tick must stop the loop too.)
                    let next_due = timers.first().map(|(due, _)| *due);
                    if next_data.is_none()
                        && done
                        && end_us.is_none_or(|end| next_due.is_some_and(|due| due > end))
                    {
                        break;
                    }
                    if t > *c.time() {
                        c.downgrade(&t);
                    }
                    let mut st = state.borrow_mut();
                    if let Some(mut events) = pending.remove(&t) {
                        tick_len = events.len();
                        st.summary.duplicates += normalise(&mut events);
                        let sets: Vec<&[Event]> = events.chunk_by(same_patient_and_time).collect();
                        // Memory-bound: ask for the monitor two sets ahead, and for the blocks
                        // of the one after this (its monitor asked for a set ago), while this
                        // one is worked on.
                        for (i, set) in sets.iter().copied().enumerate() {
                            if let Some(m) = monitor_of(&patients, sets.get(i + 2)) {
                                m.prefetch(false);
                            }
                            if let Some(m) = monitor_of(&patients, sets.get(i + 1)) {
                                m.prefetch(true);
                            }
                            if let Event::End { time_us, .. } = &set[0] {
                                end_us = end_us.max(Some(*time_us));
                                continue;
                            }
                            let Some((patient, time)) = set[0].subject() else {
                                continue;
                            };
                            if let Event::Prescription { scale, .. } = &set[0]
                                && !patients.contains_key(patient)
                            {
                                scales.insert(patient.clone(), *scale);
                                continue;
                            }
                            st.summary.first_event_us =
                                super::min_some(st.summary.first_event_us, Some(time.micros()));
                            st.summary.last_event_us =
                                st.summary.last_event_us.max(Some(time.micros()));
                            let monitor = patients.entry(patient.clone()).or_insert_with(|| {
                                let scale = scales.get(patient).copied().unwrap_or_default();
                                Box::new(PatientMonitor::new(patient.as_str(), time, scale))
                            });
                            st.summary.observations +=
                                apply_set(monitor, &settings, set, &mut alerts) as u64;
                            reschedule(
                                &mut timers,
                                &mut due_of,
                                patient,
                                monitor.next_due(&settings),
                            );
                        }
                    }
                    // Timers due within this tick (and, at the end, not after the last event).
                    let mut until = (t + 1).saturating_mul(tick_us);
                    if done && let Some(end) = end_us {
                        until = until.min(end + 1);
                    }
                    while let Some((due, patient)) = timers.first().cloned() {
                        if due >= until {
                            break;
                        }
                        timers.remove(&(due, patient.clone()));
                        due_of.remove(&patient);
                        if let Some(monitor) = patients.get_mut(&patient) {
                            monitor.advance(&settings, until, &mut alerts);
                            reschedule(
                                &mut timers,
                                &mut due_of,
                                &patient,
                                monitor.next_due(&settings),
                            );
                        }
                    }
                    for a in &alerts {
                        st.summary.alerts += 1;
                        *st.summary
                            .alerts_by_kind
                            .entry(format!("{}/{}", a.kind.name(), event_name(a)))
                            .or_default() += 1;
                    }
                    drop(st);
                    if !alerts.is_empty() {
                        output.session(&*c).give_iterator(alerts.drain(..));
                    }
                }
                if done {
                    let mut st = state.borrow_mut();
                    st.summary.patients = patients.len() as u64;
                    st.summary.state_bytes =
                        patients.values().map(|m| m.state_bytes()).sum::<usize>() as u64;
                    cap = None;
                } else if limit > *c.time() {
                    c.downgrade(&limit);
                }
            }
        },
    )
}

/// The monitor of a set's patient, if it has one yet.
fn monitor_of<'a>(
    patients: &'a FastMap<Identifier, Box<PatientMonitor>>,
    set: Option<&&[Event]>,
) -> Option<&'a PatientMonitor> {
    let (patient, _) = set?.first()?.subject()?;
    patients.get(patient).map(|m| &**m)
}

fn event_name(a: &Alert) -> String {
    serde_json::to_value(a.event)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn reschedule(
    timers: &mut BTreeSet<(i64, Identifier)>,
    due_of: &mut FastMap<Identifier, i64>,
    patient: &Identifier,
    due: Option<i64>,
) {
    // Most observations leave a patient's next timer where it was (it is set by the parameter
    // heard from least recently): nothing to move.
    if due_of.get(patient).copied() == due {
        return;
    }
    if let Some(old) = due_of.remove(patient) {
        timers.remove(&(old, patient.clone()));
    }
    if let Some(due) = due {
        timers.insert((due, patient.clone()));
        due_of.insert(patient.clone(), due);
    }
}
