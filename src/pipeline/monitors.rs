//! `events.monitor_patients(...)`: each worker keeps the [`PatientMonitor`]s of its patients and
//! drives them tick by tick, once the frontier has passed each tick.
//!
//! Invariant: within a tick, events are processed in a total order (time, patient, kind, vital,
//! device, value, [`crate::monitor::events`]) with exact duplicates removed, so arrival order
//! never shows in the output; and every timer fires at its own due time. Ticks with no events but
//! with due timers are visited too, so silence is noticed at the time it becomes stale, whatever
//! else the stream carries. At the end, timers fire up to the source's last event time only, so
//! the end of a file is the same instant in every run.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use super::pending::Pending;
use super::placement::Placement;
use super::snapshot::{SnapshotWriter, WardState};
use super::{Event, FastMap, WorkerState, worker_of};
use crate::alerting::Alert;
use crate::monitor::events::{apply_set, normalise, same_patient_and_time};
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::observation::{EventTime, Identifier};
use crate::registry::Prescribed;

/// A registry update: `(patient, prescribed)` from a time on, added (+1) or retracted (−1).
pub type Prescription = ((Identifier, Prescribed), i64, isize);

/// The monitor operator.
pub trait MonitorPatients<'scope> {
    /// Runs each patient's monitor over its events, joined as of their time with the registry's
    /// `prescriptions`; patients are placed on workers by `placement`.
    fn monitor_patients(
        self,
        prescriptions: Stream<'scope, i64, Vec<Prescription>>,
        settings: MonitorSettings,
        placement: Placement,
        tick_us: i64,
        state: Rc<RefCell<WorkerState>>,
        snapshots: Snapshots,
    ) -> Stream<'scope, i64, Vec<Alert>>;
}

/// A worker's snapshots ([`super::snapshot`]): where it writes them, and what it starts from.
#[derive(Debug, Default)]
pub struct Snapshots {
    pub writer: Option<SnapshotWriter>,
    /// A restart's patients, as they were before the tick given.
    pub restored: Option<(i64, WardState)>,
}

impl<'scope> MonitorPatients<'scope> for Stream<'scope, i64, Vec<Event>> {
    fn monitor_patients(
        self,
        prescriptions: Stream<'scope, i64, Vec<Prescription>>,
        settings: MonitorSettings,
        placement: Placement,
        tick_us: i64,
        state: Rc<RefCell<WorkerState>>,
        snapshots: Snapshots,
    ) -> Stream<'scope, i64, Vec<Alert>> {
        self.binary_frontier(
            prescriptions,
            Exchange::new(move |e: &Event| worker_of(e, &placement)),
            Exchange::new(move |p: &Prescription| placement.worker(&(p.0).0)),
            "Monitors",
            move |capability, _info| {
                let mut cap = Some(capability);
                let mut ward = Ward::new(settings, tick_us, state, snapshots);
                move |(input, frontier), (registry, registry_frontier), output| {
                    // The as-of join: a prescription becomes an event at its own time, ordered
                    // with the observations (a retraction is implied by the scale replacing it).
                    registry.for_each(|_time, data| ward.prescriptions(data.drain(..)));
                    input.for_each(|time, data| {
                        ward.arrived(time.least().copied().unwrap_or(i64::MIN), data)
                    });
                    let Some(c) = cap.as_mut() else {
                        ward.pending.clear();
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
                    while let Some(t) = ward.next_tick(limit, done) {
                        if t > *c.time() {
                            c.downgrade(&t);
                        }
                        ward.tick(t, done);
                        if !ward.alerts.is_empty() {
                            output.session(&*c).give_iterator(ward.alerts.drain(..));
                        }
                    }
                    if done {
                        ward.finish();
                        cap = None;
                    } else if limit > *c.time() {
                        c.downgrade(&limit);
                    }
                    ward.report();
                }
            },
        )
    }
}

/// One worker's patients.
struct Ward {
    settings: MonitorSettings,
    tick_us: i64,
    state: Rc<RefCell<WorkerState>>,
    /// Events by tick, waiting for the frontier to pass it (a minute of every patient's data,
    /// the allowed lateness: kept compact).
    pending: Pending,
    /// The tick being processed's events (kept for its capacity).
    events: Vec<Event>,
    /// Boxed: the map's table stays small (and in cache) and each monitor's address is known
    /// without touching it, to prefetch.
    patients: FastMap<Identifier, Box<PatientMonitor>>,
    /// Prescriptions of patients not seen yet, in time order.
    waiting: FastMap<Identifier, Vec<Prescribed>>,
    timers: BTreeSet<(i64, Identifier)>,
    due_of: FastMap<Identifier, i64>,
    /// The source's last event time, once it has ended.
    end_us: Option<i64>,
    alerts: Vec<Alert>,
    /// When patients' state was last measured for the metrics.
    measured: Option<std::time::Instant>,
    snapshots: Option<SnapshotWriter>,
    /// Restored from a snapshot taken before this tick: earlier events are in it.
    from_tick: i64,
}

/// How often the metrics measure patients' state (it walks every monitor).
const MEASURE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

impl Ward {
    fn new(
        settings: MonitorSettings,
        tick_us: i64,
        state: Rc<RefCell<WorkerState>>,
        snapshots: Snapshots,
    ) -> Ward {
        let mut ward = Ward {
            settings,
            tick_us,
            state,
            pending: Pending::new(tick_us),
            events: Vec::new(),
            patients: FastMap::default(),
            waiting: FastMap::default(),
            timers: BTreeSet::new(),
            due_of: FastMap::default(),
            end_us: None,
            alerts: Vec::new(),
            measured: None,
            snapshots: snapshots.writer,
            from_tick: i64::MIN,
        };
        if let Some((tick, restored)) = snapshots.restored {
            ward.restore(tick, restored);
        }
        ward
    }

    /// Starts from a snapshot taken before `tick`: its patients, their timers, and what waits.
    fn restore(&mut self, tick: i64, restored: WardState) {
        self.from_tick = tick;
        self.state.borrow_mut().summary.snapshot_patients = restored.patients.len() as u64;
        for (patient, monitor) in restored.patients {
            let due = monitor.next_due(&self.settings);
            self.patients.insert(patient.clone(), monitor);
            reschedule(&mut self.timers, &mut self.due_of, &patient, due);
        }
        self.waiting.extend(restored.waiting);
    }

    /// Writes the patients as they are before `tick` (every earlier tick is processed). A
    /// snapshot that cannot be written is reported and the run goes on: a restart then replays
    /// more of the archive, never less.
    fn snapshot(&mut self, tick: i64) {
        let Some(writer) = &self.snapshots else {
            return;
        };
        let started = std::time::Instant::now();
        match writer.write(tick, &self.patients, &self.waiting, self.tick_us) {
            Ok(bytes) => {
                let mut st = self.state.borrow_mut();
                st.summary.snapshots += 1;
                st.summary.snapshot_bytes = bytes;
                let ms = started.elapsed().as_millis() as u64;
                st.summary.snapshot_max_ms = st.summary.snapshot_max_ms.max(ms);
                if let Some(m) = st.metrics() {
                    m.snapshot_written(writer.worker as usize);
                }
                tracing::debug!(
                    worker = writer.worker,
                    tick,
                    bytes,
                    seconds = started.elapsed().as_secs_f64(),
                    "snapshot of {} patients written",
                    self.patients.len()
                );
            }
            Err(e) => tracing::warn!(
                worker = writer.worker,
                "a snapshot could not be written (a restart replays more of the archive): {e}"
            ),
        }
    }

    /// With metrics, publishes what the worker counted, and every [`MEASURE_EVERY`] its
    /// patients and their state.
    fn report(&mut self) {
        let mut st = self.state.borrow_mut();
        if !st.metrics_due() {
            return;
        }
        if self.measured.is_none_or(|t| t.elapsed() >= MEASURE_EVERY) {
            self.measured = Some(std::time::Instant::now());
            st.summary.patients = self.patients.len() as u64;
            st.summary.state_bytes = self.state_bytes();
        }
        st.publish(false);
    }

    /// Bytes of every patient's monitor.
    fn state_bytes(&self) -> u64 {
        self.patients
            .values()
            .map(|m| m.state_bytes())
            .sum::<usize>() as u64
    }

    fn prescriptions(&mut self, updates: impl Iterator<Item = Prescription>) {
        for ((patient, prescribed), time_us, diff) in updates {
            let tick = time_us.div_euclid(self.tick_us);
            // (One before a restart's snapshot is in it.)
            if diff > 0 && tick >= self.from_tick {
                let time = EventTime::from_micros(time_us);
                let prescription = Event::Prescription {
                    patient,
                    time,
                    prescribed,
                };
                self.pending.push(tick, prescription);
            }
        }
    }

    fn arrived(&mut self, tick: i64, data: &mut Vec<Event>) {
        if tick < self.from_tick {
            // Replayed to rebuild the source's clock: the snapshot holds what it did here.
            data.clear();
            return;
        }
        self.pending.append(tick, data);
    }

    /// The next tick to process before `limit`: one with events or a due timer. At the end, once
    /// every event is processed, timers fire up to the source's last event time only.
    fn next_tick(&self, limit: i64, done: bool) -> Option<i64> {
        let next_data = self.pending.first_tick();
        let next_due = self.timers.first().map(|(due, _)| *due);
        // At the end a timer due after the last event never fires ([`Self::tick`] stops short
        // of it), so it must not pick a tick either: events of the most advanced device, ahead
        // of the partition's clock, may still be pending after it, and the loop would process
        // that timer's empty tick for ever.
        let firing = next_due.filter(|&due| !(done && self.end_us.is_some_and(|end| due > end)));
        let t = [next_data, firing.map(|d| d.div_euclid(self.tick_us))]
            .into_iter()
            .flatten()
            .min()?;
        if t >= limit {
            return None;
        }
        // (Compare the due time itself, not its tick: a timer due later in the end's own tick
        // must stop the loop too.)
        if next_data.is_none()
            && done
            && self
                .end_us
                .is_none_or(|end| next_due.is_some_and(|due| due > end))
        {
            return None;
        }
        Some(t)
    }

    /// Processes tick `t`: its events in order, then the timers due within it.
    fn tick(&mut self, t: i64, done: bool) {
        let mut events = std::mem::take(&mut self.events);
        if self.pending.take(t, &mut events) {
            let before = events.len();
            events.retain(|e| !matches!(e, Event::Snapshot { .. }));
            if events.len() < before {
                self.snapshot(t);
            }
            let duplicates = normalise(&mut events);
            self.state.borrow_mut().summary.duplicates += duplicates;
            self.apply(&events);
        }
        events.clear();
        self.events = events;
        // Timers due within this tick (and, at the end, not after the last event).
        let mut until = (t + 1).saturating_mul(self.tick_us);
        if done && let Some(end) = self.end_us {
            until = until.min(end + 1);
        }
        self.fire_timers(until);
        let mut st = self.state.borrow_mut();
        for a in self.alerts.iter().filter(|a| a.pages()) {
            st.summary.alerts += 1;
            *st.summary
                .alerts_by_kind
                .entry(format!("{}/{}", a.kind.name(), a.event.name()))
                .or_default() += 1;
        }
    }

    /// Applies a tick's normalised events, one observation set (patient and time) at a time.
    fn apply(&mut self, events: &[Event]) {
        let sets: Vec<&[Event]> = events.chunk_by(same_patient_and_time).collect();
        // Memory-bound: ask for the monitor two sets ahead, and for the blocks of the one after
        // this (its monitor asked for a set ago), while this one is worked on.
        for (i, set) in sets.iter().copied().enumerate() {
            if let Some(m) = monitor_of(&self.patients, sets.get(i + 2)) {
                m.prefetch(false);
            }
            if let Some(m) = monitor_of(&self.patients, sets.get(i + 1)) {
                m.prefetch(true);
            }
            self.apply_set(set);
        }
    }

    fn apply_set(&mut self, set: &[Event]) {
        if let Event::End { time_us, .. } = &set[0] {
            self.end_us = self.end_us.max(Some(*time_us));
            return;
        }
        let Some((patient, time)) = set[0].subject() else {
            return;
        };
        let mut st = self.state.borrow_mut();
        // (Prescriptions sort first in a set: the last event says whether there is another.
        // An acknowledgement is a clinician's act, not an event of the patient's.)
        if !matches!(
            set[set.len() - 1],
            Event::Prescription { .. } | Event::Acknowledged(_)
        ) {
            st.summary.first_event_us =
                super::min_some(st.summary.first_event_us, Some(time.micros()));
            st.summary.last_event_us = st.summary.last_event_us.max(Some(time.micros()));
        }
        // One lookup, and no clone of the id, for a patient already seen: nearly every set.
        if let Some(monitor) = self.patients.get_mut(patient) {
            st.summary.observations +=
                apply_set(monitor, &self.settings, set, &mut self.alerts) as u64;
            let due = monitor.next_due(&self.settings);
            reschedule(&mut self.timers, &mut self.due_of, patient, due);
            return;
        }
        drop(st);
        if set.iter().all(|e| matches!(e, Event::Acknowledged(_))) {
            // (Of a patient this worker never saw: nothing to acknowledge.)
            return;
        }
        self.first_seen(patient, time, set);
    }

    /// A set of a patient not seen yet. What the registry prescribes for them waits for their
    /// first other event: their scale is scored from it, and their doses are due from it (a
    /// schedule from before the period a run covers would otherwise miss every dose before it).
    fn first_seen(&mut self, patient: &Identifier, time: EventTime, set: &[Event]) {
        let n = set
            .iter()
            .take_while(|e| matches!(e, Event::Prescription { .. }))
            .count();
        let waiting = self.waiting.entry(patient.clone()).or_default();
        waiting.extend(set[..n].iter().filter_map(|e| match e {
            Event::Prescription { prescribed, .. } => Some(prescribed.clone()),
            _ => None,
        }));
        if n == set.len() {
            return;
        }
        let waiting = self.waiting.remove(patient).unwrap_or_default();
        let mut monitor = new_monitor(patient, time, waiting, &self.settings, &mut self.alerts);
        let observed = apply_set(&mut monitor, &self.settings, &set[n..], &mut self.alerts);
        self.state.borrow_mut().summary.observations += observed as u64;
        let due = monitor.next_due(&self.settings);
        self.patients.insert(patient.clone(), monitor);
        reschedule(&mut self.timers, &mut self.due_of, patient, due);
    }

    /// Fires the timers due before `until`, each patient's at its own due time.
    fn fire_timers(&mut self, until: i64) {
        while let Some((due, patient)) = self.timers.first().cloned() {
            if due >= until {
                break;
            }
            self.timers.remove(&(due, patient.clone()));
            self.due_of.remove(&patient);
            if let Some(monitor) = self.patients.get_mut(&patient) {
                monitor.advance(&self.settings, until, &mut self.alerts);
                let due = monitor.next_due(&self.settings);
                reschedule(&mut self.timers, &mut self.due_of, &patient, due);
            }
        }
    }

    fn finish(&mut self) {
        let mut st = self.state.borrow_mut();
        st.summary.patients = self.patients.len() as u64;
        st.summary.monitored_us = self
            .patients
            .values()
            .map(|m| m.monitored_us() as u64)
            .sum();
        st.summary.state_bytes = self.state_bytes();
        let end = self.end_us.or(st.summary.last_event_us).unwrap_or(i64::MAX);
        for (patient, monitor) in &self.patients {
            let adherence = monitor.adherence(end);
            if !adherence.is_empty() {
                st.summary.adherence.insert(patient.to_string(), adherence);
            }
        }
    }
}

/// A patient's monitor, first seen at `time`, with what the registry prescribed before it.
fn new_monitor(
    patient: &Identifier,
    time: EventTime,
    waiting: Vec<Prescribed>,
    settings: &MonitorSettings,
    alerts: &mut Vec<Alert>,
) -> Box<PatientMonitor> {
    let scale = waiting
        .iter()
        .rev()
        .find_map(|p| match p {
            Prescribed::Scale(s) => Some(*s),
            Prescribed::Schedule(_) => None,
        })
        .unwrap_or_default();
    let mut monitor = Box::new(PatientMonitor::new(patient.as_str(), time, scale));
    for p in waiting
        .iter()
        .filter(|p| matches!(p, Prescribed::Schedule(_)))
    {
        monitor.prescribe(settings, time, p, alerts);
    }
    monitor
}

/// The monitor of a set's patient, if it has one yet.
fn monitor_of<'a>(
    patients: &'a FastMap<Identifier, Box<PatientMonitor>>,
    set: Option<&&[Event]>,
) -> Option<&'a PatientMonitor> {
    let (patient, _) = set?.first()?.subject()?;
    patients.get(patient).map(|m| &**m)
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
