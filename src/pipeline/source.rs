//! The source operator: reads a worker's [`Source`], gives each record its verdict against its
//! partition's event-time clock ([`super::clock`]), stamps what is on time with its tick, and
//! holds its capability at the slowest partition's watermark.
//!
//! Each batch goes through short steps: **dedup** (a repeat of an observation its partition has
//! seen is counted and dropped, [`super::dedup`]); the **clock** (on time, late, or held aside
//! for a device clock that cannot be believed); the **side outputs** (late records to the late
//! file, rejected and held ones to the dead letters); the **archive** (every record with its
//! verdict, in its partition's arrival order, [`super::side::ArchiveOrder`]); **durability** (a
//! flush every `flush_every`, and the checkpoint it makes committable once the alerts behind it
//! are delivered, [`super::durability`]). Then the records on time enter the
//! dataflow at their ticks, and the capability moves to the watermark.
//!
//! Invariants: a record is judged only by its own partition's records, so which are late or held
//! does not depend on batching or on how partitions interleave; a record whose verdict waits is
//! neither archived nor committed, and holds back the archive rows of its partition's later
//! records; every record that reaches this operator is archived, with its verdict, or, when it is
//! not a record of a known patient, dead-lettered.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use timely::container::CapacityContainerBuilder;
use timely::dataflow::operators::Capability;
use timely::dataflow::operators::generic::OutputBuilderSession;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::{Scope, Stream};

use super::clock::{ClockSettings, Hold, HoldKind, IDLE, Judged, PartitionClock, Verdict};
use super::dedup::Dedup;
use super::durability::{Commits, Delivery};
use super::side::{ArchiveOrder, DeadLetter, SideOutputs};
use super::{Acknowledgement, Backfill, Event, PipelineError, WorkerState};
use crate::archive::Row;
use crate::observation::{EventTime, Identifier, Vital};
use crate::sources::{
    Archived, Checkpoint, Drained, Position, Recorded, Rejected, Source, SourceItem,
};

/// The source operator's output.
type Output<'a> = OutputBuilderSession<'a, i64, CapacityContainerBuilder<Vec<Event>>>;

/// Records read per activation: large enough to amortise, small enough to stay responsive.
const BATCH: usize = 8192;

/// How often an idle drain behind its source's end asks again (each ask is a broker round trip).
const DRAIN_ASK_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

fn wall_clock_us() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// The clock of a record's device: the device, or the patient when it came without one.
fn device_key(patient: &Identifier, device: Option<&Identifier>) -> u64 {
    use std::hash::{BuildHasher, Hash, Hasher};
    let mut h = foldhash::fast::FixedState::with_seed(0x000c_10c4).build_hasher();
    match device {
        Some(d) => (1u8, d.as_str()).hash(&mut h),
        None => (0u8, patient.as_str()).hash(&mut h),
    }
    h.finish()
}

/// A record on its way through the clock.
struct Slot {
    event: Event,
    at: Option<Position>,
    ingest_us: i64,
    /// Its place in the partition's archive order, when there is an archive.
    seq: Option<u64>,
    /// Read back from the archive: its partition's clock when the live run judged it (a
    /// replayed backfill is heard at it).
    recorded_clock_us: Option<i64>,
}

/// One partition's state: its clock, what it has seen, and its archive order.
struct Partition {
    id: Option<i32>,
    clock: PartitionClock<Slot>,
    dedup: Dedup,
    order: ArchiveOrder,
    heard: Instant,
    /// A resumed run's floor has been applied (what was delivered is behind its watermark).
    floored: bool,
}

/// What the source operator of one worker needs.
pub struct SourceParts {
    /// Shared with the worker, which commits the final checkpoint once the dataflow is done.
    pub source: Rc<RefCell<Option<Box<dyn Source>>>>,
    pub side: Option<SideOutputs>,
    /// Set to stop reading (SIGINT, SIGTERM).
    pub stop: Arc<AtomicBool>,
    /// Stop once nothing was read for this long.
    pub exit_when_idle: Option<std::time::Duration>,
    /// How often the archive is flushed: what it then holds becomes committable.
    pub flush_every: std::time::Duration,
    /// How far alerts are delivered: positions are committed only behind it.
    pub delivery: Arc<Delivery>,
    pub worker: usize,
    pub peers: u64,
    /// How each partition's clock judges (`max_skew_us` applies to live sources only).
    pub clock: ClockSettings,
    /// A resumed run: every partition's clock starts at least here, the line before which
    /// alerts were delivered plus the lateness, so what the earlier run judged late stays late.
    pub resume_clock_us: Option<i64>,
    pub progress: bool,
    pub state: Rc<RefCell<WorkerState>>,
    /// Acknowledgements to apply, each at its own event time (worker 0's; sorted by it).
    pub acknowledgements: Vec<Acknowledgement>,
    /// Acknowledgements made during the run (on the board; worker 0's).
    pub live_acks: Option<Arc<super::acknowledgements::LiveAcks>>,
    /// How often to ask every worker for a snapshot of its patients (worker 0's).
    pub snapshot_every: Option<std::time::Duration>,
}

/// The source operator.
pub trait ReadSource<'scope> {
    /// The stream of a worker's source's records on time (and of held ones' reports), at their
    /// ticks. A worker without a source closes at once.
    fn read_source(self, parts: SourceParts) -> Stream<'scope, i64, Vec<Event>>;
}

impl<'scope> ReadSource<'scope> for Scope<'scope, i64> {
    fn read_source(self, parts: SourceParts) -> Stream<'scope, i64, Vec<Event>> {
        source(self, parts)
    }
}

fn source<'scope>(
    scope: Scope<'scope, i64>,
    parts: SourceParts,
) -> Stream<'scope, i64, Vec<Event>> {
    if !parts.side.as_ref().is_some_and(SideOutputs::archives) {
        // Nothing to make durable here: this worker never holds the delivery log back.
        parts.delivery.set_durable(parts.worker, i64::MAX);
    }
    timely_source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(capability);
        let mut reader = Reader::new(parts);
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let source = Rc::clone(&reader.source);
            let mut source = source.borrow_mut();
            let Some(src) = source.as_mut() else {
                cap = None;
                return;
            };
            let more = reader.read(src.as_mut(), *c.time());
            reader.emit(c, output);
            if more && reader.state.borrow().error.is_none() {
                activator.activate();
            } else {
                reader.finish(src.as_mut(), c, output);
                cap = None;
            }
        }
    })
}

/// A worker's source operator between activations.
struct Reader {
    source: Rc<RefCell<Option<Box<dyn Source>>>>,
    side: Option<SideOutputs>,
    partitions: Vec<Partition>,
    /// The partition of the last record.
    last_partition: usize,
    clock: ClockSettings,
    stop: Arc<AtomicBool>,
    exit_when_idle: Option<std::time::Duration>,
    flush_every: std::time::Duration,
    delivery: Arc<Delivery>,
    worker: usize,
    peers: u64,
    resume_clock_us: Option<i64>,
    /// Whether the source is live (its times are checked against the wall clock) and whether it
    /// archives (its rows keep each partition's arrival order).
    live: bool,
    archiving: bool,
    progress: bool,
    state: Rc<RefCell<WorkerState>>,
    items: Vec<SourceItem>,
    verdicts: Vec<(Slot, Verdict)>,
    /// Records on time (and held ones' reports) for the dataflow, with their ticks.
    stamped: Vec<(i64, Event)>,
    /// The tick the capability is held at.
    watermark_tick: i64,
    /// The latest event time processed.
    max_us: Option<i64>,
    read: u64,
    expected: Option<usize>,
    started: Instant,
    last_flush: Instant,
    last_report: Instant,
    last_read: Instant,
    /// When an idle drain last asked its source whether it was read to its end, and whether it
    /// has said the source is behind.
    drain_asked: Option<Instant>,
    behind_said: bool,
    /// Checkpoints taken at flushes, waiting for their alerts to be delivered.
    commits: Commits,
    /// Acknowledgements not yet given to the dataflow, latest first.
    acknowledgements: Vec<Acknowledgement>,
    live_acks: Option<Arc<super::acknowledgements::LiveAcks>>,
    snapshot_every: Option<std::time::Duration>,
    last_snapshot: Instant,
}

impl Reader {
    fn new(parts: SourceParts) -> Reader {
        let now = Instant::now();
        Reader {
            archiving: parts.side.as_ref().is_some_and(SideOutputs::archives),
            live: false,
            source: parts.source,
            side: parts.side,
            partitions: Vec::new(),
            last_partition: 0,
            clock: parts.clock,
            stop: parts.stop,
            exit_when_idle: parts.exit_when_idle,
            flush_every: parts.flush_every,
            delivery: parts.delivery,
            worker: parts.worker,
            peers: parts.peers,
            resume_clock_us: parts.resume_clock_us,
            progress: parts.progress,
            state: parts.state,
            items: Vec::with_capacity(BATCH),
            verdicts: Vec::new(),
            stamped: Vec::with_capacity(BATCH),
            watermark_tick: i64::MIN,
            max_us: None,
            read: 0,
            expected: None,
            started: now,
            last_flush: now,
            last_report: now,
            last_read: now,
            drain_asked: None,
            behind_said: false,
            commits: Commits::default(),
            acknowledgements: {
                let mut acks = parts.acknowledgements;
                acks.sort_by_key(|a| std::cmp::Reverse(a.at_us));
                acks
            },
            live_acks: parts.live_acks,
            snapshot_every: parts.snapshot_every,
            last_snapshot: now,
        }
    }

    fn tick(&self, us: i64) -> i64 {
        us.div_euclid(self.clock.tick_us)
    }

    /// Reads and judges one batch; whether there is more to read.
    fn read(&mut self, src: &mut dyn Source, cap_tick: i64) -> bool {
        self.expected = src.expected_partitions();
        self.live = src.live();
        self.items.clear();
        let more = match src.fill(BATCH, &mut self.items) {
            Ok(more) => {
                if !self.items.is_empty() {
                    self.last_read = Instant::now();
                }
                let idle = self
                    .exit_when_idle
                    .is_some_and(|idle| self.last_read.elapsed() >= idle);
                let ends = idle && more && self.drain_ends(src);
                more && !ends && !self.stop.load(Ordering::Relaxed)
            }
            Err(e) => {
                self.fail(e.into());
                false
            }
        };
        let now = Instant::now();
        for i in 0..self.partitions.len() {
            self.partitions[i].clock.begin(now, &mut self.verdicts);
            self.settle_all(i, src, cap_tick, false);
        }
        for stall in src.stalled() {
            self.unreadable(&stall, cap_tick);
        }
        let ingest_us = wall_clock_us();
        self.read += self.items.len() as u64;
        let mut items = std::mem::take(&mut self.items);
        for item in items.drain(..) {
            self.admit(item, src, ingest_us, cap_tick, now);
        }
        self.items = items;
        for p in &mut self.partitions {
            if let Some(w) = p.clock.floor_us() {
                p.dedup.evict(w);
            }
        }
        self.advance_watermark(now);
        self.make_durable(src);
        self.commit_delivered(src);
        self.report_metrics(src);
        if self.progress && self.last_report.elapsed().as_millis() >= 500 {
            self.last_report = Instant::now();
            report_progress(src.progress(), self.read, self.max_us, self.started);
        }
        more
    }

    /// The partition a record belongs to (created on its first record).
    fn partition(&mut self, id: Option<i32>, now: Instant) -> usize {
        // Records of one partition come in runs: the last one found is looked at first.
        let last = self.last_partition;
        let found = match self.partitions.get(last) {
            Some(p) if p.id == id => Some(last),
            _ => self.partitions.iter().position(|p| p.id == id),
        };
        if let Some(i) = found {
            self.partitions[i].heard = now;
            self.last_partition = i;
            return i;
        }
        self.last_partition = self.partitions.len();
        let mut clock = PartitionClock::new(ClockSettings {
            max_skew_us: self.clock.max_skew_us.filter(|_| self.live),
            ..self.clock
        });
        clock.begin(now, &mut Vec::new());
        self.partitions.push(Partition {
            id,
            clock,
            dedup: Dedup::new(self.clock.lateness_us),
            order: ArchiveOrder::default(),
            heard: now,
            floored: false,
        });
        self.partitions.len() - 1
    }

    /// Dedup and clock for one record.
    fn admit(
        &mut self,
        item: SourceItem,
        src: &mut dyn Source,
        ingest_us: i64,
        cap_tick: i64,
        now: Instant,
    ) {
        let (event, at) = match item {
            SourceItem::Observation(obs, at) => (Event::Observation(obs), at),
            SourceItem::Rejected(r) => match self.rejected(r) {
                Some(invalid) => invalid,
                None => return,
            },
            SourceItem::Archived(archived) => return self.replayed(*archived, src, cap_tick, now),
        };
        let p = self.partition(at.and_then(|a| a.partition), now);
        if let Event::Observation(obs) = &event
            && !self.partitions[p].dedup.first(obs)
        {
            self.state.borrow_mut().summary.duplicates += 1;
            return;
        }
        if let Some(floor) = self.resume_clock_us
            && !self.partitions[p].floored
        {
            self.partitions[p].floored = true;
            self.partitions[p].clock.raise(floor);
        }
        let (key, time_us) = key_and_time(&event);
        let slot = self.slot(p, event, at, ingest_us);
        let part = &mut self.partitions[p];
        let judged = if src.time_ordered() {
            part.clock.follow(key, time_us, time_us);
            Judged::Now(Verdict::OnTime)
        } else {
            part.clock
                .judge(key, time_us, ingest_us, &mut self.verdicts)
        };
        match judged {
            Judged::Now(verdict) => self.settle(p, slot, verdict, src, cap_tick, false),
            Judged::Waits => part
                .clock
                .wait(key, time_us, ingest_us, slot, &mut self.verdicts),
        }
        if !self.verdicts.is_empty() {
            self.settle_all(p, src, cap_tick, false);
        } else if self.archiving {
            self.archive_ready(p);
        }
    }

    /// A record of partition `p` on its way to its verdict, with its place in the partition's
    /// archive order when there is an archive.
    fn slot(&mut self, p: usize, event: Event, at: Option<Position>, ingest_us: i64) -> Slot {
        let seq = self.archiving.then(|| self.partitions[p].order.reserve());
        Slot {
            event,
            at,
            ingest_us,
            seq,
            recorded_clock_us: None,
        }
    }

    /// A record that is not an observation: dead-lettered; an impossible value of a known
    /// patient goes on, to be reported to that patient.
    fn rejected(&mut self, r: Rejected) -> Option<(Event, Option<Position>)> {
        self.state.borrow_mut().summary.rejected += 1;
        if let Some(side) = self.side.as_mut()
            && let Err(e) = side.dead_letter(&DeadLetter {
                position: &r.position,
                reason: &r.reason,
                field: r.field,
                raw: r.raw.as_deref(),
            })
        {
            self.fail(e.into());
        }
        let subject = r.subject?;
        let event = Event::Invalid {
            subject,
            reason: r.reason,
        };
        Some((event, r.at))
    }

    /// A record read back from the archive: its recorded verdict stands.
    fn replayed(&mut self, a: Archived, src: &mut dyn Source, cap_tick: i64, now: Instant) {
        let (event, at) = match a.item {
            SourceItem::Observation(obs, at) => (Event::Observation(obs), at),
            SourceItem::Rejected(Rejected {
                subject: Some(subject),
                reason,
                at,
                ..
            }) => (Event::Invalid { subject, reason }, at),
            _ => return,
        };
        let p = self.partition(at.and_then(|a| a.partition), now);
        if let Event::Observation(obs) = &event {
            // Remembered, so that a re-delivery after a resume is a duplicate.
            self.partitions[p].dedup.first(obs);
        }
        let (key, time_us) = key_and_time(&event);
        let mut slot = self.slot(p, event, at, a.ingest_us);
        slot.recorded_clock_us = Some(a.clock_us);
        let part = &mut self.partitions[p];
        let verdict = match a.verdict {
            Recorded::OnTime => {
                part.clock.follow(key, time_us, a.clock_us);
                Verdict::OnTime
            }
            Recorded::Late => Verdict::Late,
            Recorded::Held(kind) => Verdict::Held(Hold {
                kind,
                skew_us: time_us.saturating_sub(match kind {
                    HoldKind::WallClock => a.ingest_us,
                    _ => a.clock_us,
                }),
                at_us: a.clock_us,
            }),
        };
        self.verdicts.push((slot, verdict));
        self.settle_all(p, src, cap_tick, true);
    }

    /// Acts on the verdicts the clock of partition `p` gave.
    fn settle_all(&mut self, p: usize, src: &mut dyn Source, cap_tick: i64, replayed: bool) {
        let mut verdicts = std::mem::take(&mut self.verdicts);
        for (slot, verdict) in verdicts.drain(..) {
            self.settle(p, slot, verdict, src, cap_tick, replayed);
        }
        self.verdicts = verdicts;
        self.archive_ready(p);
    }

    /// Archives partition `p`'s rows that are now in arrival order.
    fn archive_ready(&mut self, p: usize) {
        let Some(side) = self.side.as_mut() else {
            return;
        };
        for row in self.partitions[p].order.ready() {
            if let Err(e) = side.archive(row) {
                self.state
                    .borrow_mut()
                    .error
                    .get_or_insert(PipelineError::Archive(e));
                break;
            }
        }
    }

    /// One record's verdict: into the dataflow, the late file, or held aside and reported; and
    /// its row for the archive.
    fn settle(
        &mut self,
        p: usize,
        slot: Slot,
        verdict: Verdict,
        src: &mut dyn Source,
        cap_tick: i64,
        replayed: bool,
    ) {
        let time_us = slot.event.time_us();
        // A CGM's backfill is far behind the clock by nature: late (heard as a backfill), not a
        // device reset to 2000, within a day. (A replay takes the verdict recorded live.)
        let verdict = match verdict {
            Verdict::Held(hold) if !replayed && is_backfill(&slot.event, hold) => Verdict::Late,
            v => v,
        };
        let clock_us = || self.partitions[p].clock.clock_us().unwrap_or(time_us);
        let on_time = verdict == Verdict::OnTime && self.tick(time_us) >= cap_tick;
        let row = match verdict {
            Verdict::Held(hold) => self.held(&slot, hold, src, cap_tick, replayed),
            _ if on_time => {
                let clock_us = clock_us();
                if matches!(slot.event, Event::Invalid { .. }) {
                    // Counted once it is known to be processed: a late one is only rejected.
                    self.state.borrow_mut().summary.invalid_values += 1;
                }
                self.max_us = self.max_us.max(Some(time_us));
                let row = slot.seq.and_then(|_| row_of(&slot, true, clock_us));
                self.stamped.push((self.tick(time_us), slot.event));
                row
            }
            // Late, or on time by its partition but behind the capability (the partition was
            // silent while the others moved on).
            _ => {
                let clock_us = slot.recorded_clock_us.unwrap_or_else(clock_us);
                if let Event::Observation(obs) = &slot.event
                    && obs.vital() == Vital::Glucose
                {
                    // A CGM's backfill after a signal loss: heard at the clock, scored, never
                    // paging for the past (the glucose rule); archived as it arrived, late.
                    self.state.borrow_mut().summary.backfilled += 1;
                    let backfill = Backfill {
                        obs: obs.clone(),
                        at_us: clock_us,
                    };
                    let tick = self.tick(clock_us).max(cap_tick);
                    self.stamped
                        .push((tick, Event::Backfill(Box::new(backfill))));
                } else if let Event::Observation(obs) = &slot.event {
                    self.state.borrow_mut().summary.late += 1;
                    let watermark = clock_us.saturating_sub(self.clock.lateness_us);
                    if let Some(side) = self.side.as_mut()
                        && let Err(e) = side.late(obs, watermark)
                    {
                        self.fail(e.into());
                    }
                }
                slot.seq.and_then(|_| row_of(&slot, false, clock_us))
            }
        };
        if let (Some(seq), Some(row)) = (slot.seq, row) {
            self.partitions[p].order.fill(seq, row);
        }
    }

    /// A record held aside: dead-lettered with the reason (unless replayed from the archive,
    /// which has it), reported to its patient at its partition's clock; its archive row.
    fn held(
        &mut self,
        slot: &Slot,
        hold: Hold,
        src: &mut dyn Source,
        cap_tick: i64,
        replayed: bool,
    ) -> Option<Row> {
        self.state.borrow_mut().summary.held += 1;
        let (patient, device, vital, wire) = match &slot.event {
            Event::Observation(o) => (o.patient(), o.device(), o.vital(), o.to_json()),
            Event::Invalid { subject, .. } => {
                (&subject.patient, None, subject.vital, String::new())
            }
            _ => return None,
        };
        let time = EventTime::from_micros(slot.event.time_us());
        let reason = held_reason(patient, device, time, &hold);
        // An impossible value was dead-lettered already, as rejected.
        let invalid = matches!(slot.event, Event::Invalid { .. });
        if !replayed && !invalid {
            let position = slot.at.map_or_else(String::new, describe_position);
            if let Some(side) = self.side.as_mut()
                && let Err(e) = side.dead_letter(&DeadLetter {
                    position: &position,
                    reason: &reason,
                    field: Some("time"),
                    raw: Some(&wire),
                })
            {
                self.fail(e.into());
            }
            if let Err(e) = src.dead_letter(slot.at, patient.as_str(), &wire, &reason) {
                self.fail(e.into());
            }
        }
        let report = Event::Held(Box::new(super::Held {
            patient: patient.clone(),
            device: device.cloned(),
            vital,
            claimed: time,
            hold,
        }));
        self.stamped
            .push((self.tick(hold.at_us).max(cap_tick), report));
        row_of(slot, false, hold.at_us).map(|row| row.held(hold.kind, reason))
    }

    /// Whether a drain that read nothing for its idle time ends: when its source was read to
    /// its end, or cannot be (the run fails). A source behind its end with nothing wrong (a
    /// slow broker) is read on, and asked again each [`DRAIN_ASK_EVERY`].
    fn drain_ends(&mut self, src: &mut dyn Source) -> bool {
        if self
            .drain_asked
            .is_some_and(|at| at.elapsed() < DRAIN_ASK_EVERY)
        {
            return false;
        }
        self.drain_asked = Some(Instant::now());
        match src.drained(self.last_read.elapsed()) {
            Ok(Drained::Done) => true,
            Ok(Drained::Behind(behind)) => {
                if !std::mem::replace(&mut self.behind_said, true) {
                    tracing::warn!("{behind}, and nothing came for the idle time: reading on");
                }
                false
            }
            Err(e) => {
                self.fail(e.into());
                true
            }
        }
    }

    /// A partition that cannot be read on: each of its patients is told, at its clock, that its
    /// observations there are not arriving.
    fn unreadable(&mut self, stall: &crate::sources::kafka::Stall, cap_tick: i64) {
        tracing::warn!(
            partition = stall.partition,
            offset = stall.offset,
            unmonitored = stall.patients.len(),
            "partition {} cannot be read past offset {} (of {}): {}; {} patients unmonitored",
            stall.partition,
            stall.offset,
            stall.end,
            stall.why,
            stall.patients.len()
        );
        let clock = self
            .partitions
            .iter()
            .find(|p| p.id == Some(stall.partition))
            .and_then(|p| p.clock.clock_us());
        let Some(at_us) = clock else {
            return;
        };
        let what = format!(
            "partition {} of the source cannot be read past offset {} ({})",
            stall.partition, stall.offset, stall.why
        );
        for patient in &stall.patients {
            let event = Event::Unreadable(Box::new(super::Unreadable {
                patient: patient.clone(),
                at_us,
                what: what.clone(),
            }));
            self.stamped.push((self.tick(at_us).max(cap_tick), event));
        }
    }

    /// Holds the capability at the slowest partition heard from lately; until every expected
    /// partition has spoken, it waits for them (for at most [`IDLE`]).
    fn advance_watermark(&mut self, now: Instant) {
        let waiting = now.saturating_duration_since(self.started) < IDLE
            && self.expected.is_some_and(|n| self.partitions.len() < n);
        if waiting {
            return;
        }
        let floor = self
            .partitions
            .iter()
            .filter(|p| now.saturating_duration_since(p.heard) < IDLE)
            .filter_map(|p| p.clock.floor_us())
            .min();
        if let Some(w) = floor {
            self.watermark_tick = self.watermark_tick.max(self.tick(w));
        }
    }

    /// Flushes the archive when due; what it then holds can be committed once its alerts are
    /// delivered.
    fn make_durable(&mut self, src: &mut dyn Source) {
        if self.state.borrow().error.is_some() || self.last_flush.elapsed() < self.flush_every {
            return;
        }
        let Some(side) = self.side.as_mut() else {
            return;
        };
        self.last_flush = Instant::now();
        if let Err(e) = side.flush_archive() {
            self.fail(PipelineError::Archive(e));
            return;
        }
        if let Some(m) = self.state.borrow().metrics() {
            m.archive_flushed(self.last_flush.elapsed());
        }
        // Everything processed before the watermark is durable now, but for rows held back
        // behind a record still waiting for its verdict.
        let held_back = self
            .partitions
            .iter()
            .filter_map(|p| p.order.held_back_processed_us())
            .min()
            .map_or(i64::MAX, |us| self.tick(us));
        let checkpoint = src.checkpoint().map(|mut checkpoint| {
            self.clamp(&mut checkpoint);
            checkpoint
        });
        let latest = self.max_us.map_or(i64::MIN, |t| self.tick(t));
        self.commits.flushed(
            &self.delivery,
            self.worker,
            self.watermark_tick.min(held_back),
            checkpoint,
            latest,
        );
    }

    /// A checkpoint never passes a record still waiting for its verdict.
    fn clamp(&self, checkpoint: &mut Checkpoint) {
        for (partition, offset) in &mut checkpoint.offsets {
            let waiting = self
                .partitions
                .iter()
                .find(|p| p.id == Some(*partition))
                .and_then(|p| p.clock.oldest_waiting())
                .and_then(|slot| slot.at);
            if let Some(at) = waiting {
                *offset = (*offset).min(at.offset);
            }
        }
    }

    /// Commits the latest checkpoint whose alerts are all delivered.
    fn commit_delivered(&mut self, src: &mut dyn Source) {
        if self.state.borrow().error.is_some() {
            return;
        }
        let started = Instant::now();
        match self.commits.commit_delivered(src, &self.delivery) {
            Ok(true) => {
                if let Some(m) = self.state.borrow().metrics() {
                    m.offsets_committed(started.elapsed());
                }
            }
            Ok(false) => {}
            Err(e) => self.fail(e.into()),
        }
    }

    /// With metrics, when due: how far the watermark is behind the wall clock, each
    /// partition's lag, and what this worker counted.
    fn report_metrics(&mut self, src: &dyn Source) {
        let mut st = self.state.borrow_mut();
        if !st.metrics_due() {
            return;
        }
        if let Some(m) = st.metrics() {
            if self.watermark_tick > i64::MIN {
                let watermark_us = self.watermark_tick.saturating_mul(self.clock.tick_us);
                let behind_us = wall_clock_us().saturating_sub(watermark_us);
                m.watermark_delay(self.worker, behind_us as f64 / 1e6);
            }
            for (partition, messages) in src.lag() {
                m.consumer_lag(partition, messages);
            }
        }
        st.publish(false);
    }

    /// Gives the batch's records to the dataflow, one session per tick, and moves the
    /// capability to the watermark.
    fn emit(&mut self, c: &mut Capability<i64>, output: &mut Output<'_>) {
        self.take_live_acks();
        self.acknowledgements_before(self.watermark_tick, *c.time());
        self.stamped.sort_by_key(|(t, _)| *t);
        let mut session_time = None;
        let mut batch_cap = None;
        for (t, event) in self.stamped.drain(..) {
            if session_time != Some(t) {
                batch_cap = Some(c.delayed(&t));
                session_time = Some(t);
            }
            if let Some(bc) = &batch_cap {
                output.session(bc).give(event);
            }
        }
        drop(batch_cap);
        if self.watermark_tick > *c.time() {
            c.downgrade(&self.watermark_tick);
        }
        let due = self
            .snapshot_every
            .is_some_and(|every| self.last_snapshot.elapsed() >= every);
        if due && self.watermark_tick > i64::MIN {
            self.request_snapshot(c, output);
        }
    }

    /// Asks every worker for a snapshot of its patients before the capability's tick: each
    /// hears of it before the frontier passes that tick, so all take the same cut.
    fn request_snapshot(&mut self, c: &Capability<i64>, output: &mut Output<'_>) {
        self.last_snapshot = Instant::now();
        let tick = *c.time();
        let mut session = output.session(c);
        for worker in 0..self.peers {
            session.give(Event::Snapshot {
                worker,
                at_us: tick.saturating_mul(self.clock.tick_us),
            });
        }
        self.delivery.snapshot_requested(tick);
    }

    /// Takes the acknowledgements made since the last batch, stamped at the watermark: the
    /// earliest event time the monitors have not passed, so they take effect at once, and a
    /// replay (which reads them from the archive) applies them at the same instant.
    fn take_live_acks(&mut self) {
        let Some(live) = &self.live_acks else {
            return;
        };
        if self.watermark_tick == i64::MIN {
            return; // nothing read yet: they wait for a first watermark
        }
        match live.take(self.watermark_tick.saturating_mul(self.clock.tick_us)) {
            Ok(acks) if acks.is_empty() => {}
            Ok(acks) => {
                self.acknowledgements.extend(acks);
                self.acknowledgements
                    .sort_by_key(|a| std::cmp::Reverse(a.at_us));
            }
            Err(e) => self.fail(e),
        }
    }

    /// Stamps the acknowledgements that take effect before tick `limit` (at their own ticks, or
    /// the capability's, `floor`, if that has passed them).
    fn acknowledgements_before(&mut self, limit: i64, floor: i64) {
        while let Some(ack) = self.acknowledgements.last() {
            let tick = self.tick(ack.at_us);
            if tick >= limit {
                break;
            }
            if let Some(ack) = self.acknowledgements.pop() {
                self.stamped
                    .push((tick.max(floor), Event::Acknowledged(Box::new(ack))));
            }
        }
    }

    /// The end of the source: what still waits is decided, every worker learns the end of event
    /// time, and everything is flushed.
    fn finish(&mut self, src: &mut dyn Source, c: &mut Capability<i64>, output: &mut Output<'_>) {
        let cap_tick = *c.time();
        for i in 0..self.partitions.len() {
            self.partitions[i].clock.finish(&mut self.verdicts);
            self.settle_all(i, src, cap_tick, false);
        }
        self.emit(c, output);
        // The end of event time: the latest partition clock (not one device's latest time).
        let end_us = self
            .partitions
            .iter()
            .filter_map(|p| p.clock.clock_us())
            .max()
            .or(self.max_us)
            .unwrap_or(c.time().saturating_mul(self.clock.tick_us));
        // Acknowledgements up to the end of event time apply; later ones would be after it.
        let floor = *c.time();
        while let Some(ack) = self.acknowledgements.pop_if(|a| a.at_us <= end_us) {
            let tick = self.tick(ack.at_us).max(floor);
            self.stamped
                .push((tick, Event::Acknowledged(Box::new(ack))));
        }
        self.acknowledgements.clear();
        self.emit(c, output);
        if self.snapshot_every.is_some() && self.state.borrow().error.is_none() {
            // The end's snapshot: a restart starts from where this run stopped.
            self.request_snapshot(c, output);
        }
        let end_cap = c.delayed(&self.tick(end_us).max(*c.time()));
        for worker in 0..self.peers {
            output.session(&end_cap).give(Event::End {
                worker,
                time_us: end_us,
            });
        }
        if let Some(side) = self.side.as_mut() {
            let mut st = self.state.borrow_mut();
            if let Err(e) = side.flush_archive() {
                st.error.get_or_insert(PipelineError::Archive(e));
            }
            if let Err(e) = side.flush_files() {
                st.error.get_or_insert(e.into());
            }
            let (files, rows) = side.archived();
            st.summary.archive_files = files;
            st.summary.archived = rows;
            if st.error.is_none() {
                self.delivery.set_durable(self.worker, i64::MAX);
            }
        }
        let resumed = src.resumed();
        let mut st = self.state.borrow_mut();
        st.summary.restored = resumed.restored;
        st.summary.already_archived = resumed.skipped;
    }

    fn fail(&self, e: PipelineError) {
        self.state.borrow_mut().error.get_or_insert(e);
    }
}

/// The device clock and event time an event is judged by.
fn key_and_time(event: &Event) -> (u64, i64) {
    match event {
        Event::Observation(o) => (device_key(o.patient(), o.device()), o.time().micros()),
        Event::Invalid { subject, .. } => {
            (device_key(&subject.patient, None), subject.time.micros())
        }
        other => (0, other.time_us()),
    }
}

/// How far behind the clock a glucose reading is still a backfill (a CGM stores a day).
pub const BACKFILL_US: i64 = 24 * 3_600_000_000;

/// Whether a record held for being behind the clock is a CGM's backfill.
fn is_backfill(event: &Event, hold: Hold) -> bool {
    matches!(event, Event::Observation(o) if o.vital() == Vital::Glucose)
        && hold.kind == HoldKind::Behind
        && hold.skew_us >= -BACKFILL_US
}

/// The archive row of a record.
fn row_of(slot: &Slot, processed: bool, clock_us: i64) -> Option<Row> {
    match &slot.event {
        Event::Observation(obs) => Some(Row::observation(
            obs,
            slot.ingest_us,
            slot.at,
            processed,
            clock_us,
        )),
        Event::Invalid { subject, reason } => Some(Row::invalid(
            subject,
            reason,
            slot.ingest_us,
            slot.at,
            processed,
            clock_us,
        )),
        _ => None,
    }
}

/// Why a record was held, for the dead letters and the archive.
fn held_reason(
    patient: &Identifier,
    device: Option<&Identifier>,
    time: EventTime,
    hold: &Hold,
) -> String {
    let who = match device {
        Some(d) => format!("device {d}"),
        None => format!("an observation of {patient} without a device"),
    };
    format!(
        "{who} reports `time` {}, {} ({}): its clock cannot be believed; held aside, not scored",
        time.to_rfc3339(),
        hold.describe(),
        EventTime::from_micros(hold.at_us).to_rfc3339(),
    )
}

fn describe_position(at: Position) -> String {
    match at.partition {
        Some(p) => format!("partition {p} offset {}", at.offset),
        None => format!("line {}", at.offset),
    }
}

fn report_progress(
    progress: crate::sources::Progress,
    read: u64,
    max_us: Option<i64>,
    started: Instant,
) {
    let done = match progress.total {
        Some(total) if total > 0 => format!("{:5.1}%", 100.0 * progress.done as f64 / total as f64),
        _ => String::from("     "),
    };
    let position = max_us.map_or(String::new(), |t| EventTime::from_micros(t).to_rfc3339());
    let elapsed = started.elapsed().as_secs_f64();
    eprint!(
        "\r\x1b[2K{done}  {read} records  {:.0}/s  event time {position}  {elapsed:.0} s",
        read as f64 / elapsed.max(1e-3)
    );
}
