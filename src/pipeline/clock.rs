//! The event-time clock of one partition (a Kafka partition, or the whole of a file): which
//! records are on time, which are late, and which are held aside because their device's clock
//! cannot be believed.
//!
//! **No single device sets the time.** The clock follows the `k`-th most advanced device of the
//! partition (`[time] clock_devices`, 2 by default), counting only devices whose times it has
//! accepted lately (a device silent for [`IDLE`] stops holding it back, so a partition with one
//! device sending follows that device). One device whose clock runs ahead is the most advanced
//! and moves nothing; while fewer than `k` devices have been accepted, the clock follows the
//! leaders only if no other device heard lately (late, or not judged yet) holds it back, so a
//! device a minute ahead that happens to be accepted first cannot make every other device late.
//! A record is then judged against the clock, in this order:
//!
//! * more than `max_clock_skew` ahead of the wall clock at ingest (live sources only): **held**;
//! * more than `max_time_jump` behind the clock: **held** (a device reset to 2000);
//! * behind the watermark (the clock minus `allowed_lateness`, at tick granularity): **late**;
//! * more than `max_time_jump` ahead of the clock: it **waits** for the jump to be confirmed. If
//!   `k` devices heard from lately make the jump (a replayed file with a day's gap: every device
//!   moves together), the clock jumps and the waiting records are on time. Otherwise, once the
//!   clock has moved on by a minute (or the lateness, if longer) or [`CONFIRM_RECORDS`] records
//!   later, they are **held** and the device is marked as wrong: its later records that far
//!   ahead are held at once, until it sends a time that can be believed again;
//! * otherwise **on time**: it may move the clock.
//!
//! A held record never moves the clock. Until the partition has heard from `k + 1` devices (or
//! [`STARTUP_RECORDS`] records, or for [`IDLE`], or the input ends), records wait too, and the
//! clock starts at the `k`-th most advanced of those devices, so a first record from a device
//! with a wrong clock cannot set the time either.
//!
//! **Determinism.** Verdicts depend only on the partition's own records in arrival order, never
//! on how they were batched or interleaved with other partitions, with two exceptions that need
//! a partition of fewer than `k + 1` devices: the [`IDLE`] rules above read the wall clock.
//! Verdicts come out in the order they are reached, which is arrival order except for records
//! that waited; [`PartitionClock::undecided`] tells the caller what still waits, so that it can
//! keep the archive in arrival order.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::FastMap;
pub use crate::monitor::events::{Hold, HoldKind, span};

/// A device not accepted for this long (wall clock) no longer holds its partition's clock back,
/// and a partition that has heard from fewer than `k + 1` devices for this long starts its clock
/// from those it has.
pub const IDLE: Duration = Duration::from_secs(30);

/// A partition starts its clock after at most this many records.
pub const STARTUP_RECORDS: usize = 4096;

/// A jump not confirmed within this many records of the partition is a wrong clock.
pub const CONFIRM_RECORDS: u64 = 1024;

/// At most this many records wait for a jump to be confirmed; beyond, the oldest is held.
const MAX_WAITING: usize = 1 << 16;

/// How a partition's clock judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClockSettings {
    /// `k`: the clock follows the `k`-th most advanced device.
    pub devices: usize,
    pub tick_us: i64,
    pub lateness_us: i64,
    /// Further than this from the clock, ahead or behind, a time is not believed.
    pub max_jump_us: i64,
    /// Further than this ahead of the wall clock at ingest, a time is not believed (live sources).
    pub max_skew_us: Option<i64>,
}

impl ClockSettings {
    /// How far the clock must move on before an unconfirmed jump is judged a wrong clock.
    fn confirm_us(&self) -> i64 {
        self.lateness_us.max(60_000_000)
    }
}

/// The clock's judgement of one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    OnTime,
    Late,
    Held(Hold),
}

/// What the clock makes of a record when it arrives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Judged {
    Now(Verdict),
    /// It waits for the clock to be set, or for its jump to be confirmed: the caller gives it
    /// to [`PartitionClock::wait`], which keeps it until its verdict.
    Waits,
}

#[derive(Clone, Copy, Debug)]
struct Device {
    /// The latest accepted time (`i64::MIN`: none).
    latest: i64,
    /// The latest time claimed beyond the clock (`i64::MIN`: none).
    claim: i64,
    /// When (the batch's wall-clock reading) a record was last accepted, and last heard.
    accepted_at: Instant,
    heard_at: Instant,
    /// Its times were judged wrong, and it has sent none that could be believed since.
    wrong: bool,
    /// Its latest record was not held and does not wait for a jump: while fewer than `k`
    /// devices are accepted, it holds the clock back (see [`PartitionClock::follow_top`]).
    counts: bool,
}

impl Device {
    fn new(now: Instant) -> Device {
        Device {
            latest: i64::MIN,
            claim: i64::MIN,
            accepted_at: now,
            heard_at: now,
            wrong: false,
            counts: true,
        }
    }
}

struct Waiting<T> {
    key: u64,
    time_us: i64,
    /// How far ahead of the wall clock it was, if further than allowed.
    wall_skew_us: Option<i64>,
    ingest_us: i64,
    item: T,
    /// Its place among the partition's records, and the clock when it began to wait.
    seq: u64,
    clock_at: i64,
}

/// One partition's clock; `T` is what the caller carries with each record.
pub struct PartitionClock<T> {
    settings: ClockSettings,
    devices: FastMap<u64, Device>,
    /// The most advanced devices accepted lately, at most `k`, most advanced first.
    top: Vec<(u64, i64)>,
    /// `None` until the partition has heard from enough devices to set it.
    clock: Option<i64>,
    /// Before the clock is set: the records, and each device's first time among them.
    startup: Vec<Waiting<T>>,
    startup_first: FastMap<u64, i64>,
    /// Records waiting for a jump to be confirmed, in arrival order.
    waiting: VecDeque<Waiting<T>>,
    seq: u64,
    first_heard: Option<Instant>,
    now: Instant,
}

impl<T> PartitionClock<T> {
    pub fn new(settings: ClockSettings) -> PartitionClock<T> {
        PartitionClock {
            settings: ClockSettings {
                devices: settings.devices.max(1),
                tick_us: settings.tick_us.max(1),
                ..settings
            },
            devices: FastMap::default(),
            top: Vec::new(),
            clock: None,
            startup: Vec::new(),
            startup_first: FastMap::default(),
            waiting: VecDeque::new(),
            seq: 0,
            first_heard: None,
            now: Instant::now(),
        }
    }

    /// The clock, once set.
    pub fn clock_us(&self) -> Option<i64> {
        self.clock
    }

    /// The earliest event time a record still to be decided here may have: the watermark, or
    /// before the clock is set, the earliest waiting record's time less the lateness.
    pub fn floor_us(&self) -> Option<i64> {
        match self.clock {
            Some(c) => Some(c.saturating_sub(self.settings.lateness_us)),
            None => self
                .startup
                .iter()
                .map(|w| w.time_us)
                .min()
                .map(|t| t.saturating_sub(self.settings.lateness_us)),
        }
    }

    /// Whether records still wait for a verdict.
    pub fn undecided(&self) -> bool {
        !self.startup.is_empty() || !self.waiting.is_empty()
    }

    /// The earliest-arrived record still waiting for a verdict.
    pub fn oldest_waiting(&self) -> Option<&T> {
        [self.startup.first(), self.waiting.front()]
            .into_iter()
            .flatten()
            .min_by_key(|w| w.seq)
            .map(|w| &w.item)
    }

    /// Starts a batch read at `now` (one wall-clock reading per batch): devices silent for
    /// [`IDLE`] stop holding the clock back, and a partition that waited that long for its
    /// devices starts its clock.
    pub fn begin(&mut self, now: Instant, out: &mut Vec<(T, Verdict)>) {
        self.now = now;
        let idle = |at: Instant| now.saturating_duration_since(at) >= IDLE;
        if self.clock.is_none() && !self.startup.is_empty() && self.first_heard.is_some_and(idle) {
            self.start(out);
        }
        let before = self.top.len();
        let devices = &self.devices;
        self.top
            .retain(|(key, _)| devices.get(key).is_some_and(|d| !idle(d.accepted_at)));
        if self.top.len() < before {
            self.rescan();
        }
    }

    /// Judges one record of device `key` at `time_us`, which arrived at `ingest_us` (wall
    /// clock): its verdict, or that it waits, and then the caller gives it to [`Self::wait`].
    /// The verdicts of waiting records it decides are appended to `out`.
    pub fn judge(
        &mut self,
        key: u64,
        time_us: i64,
        ingest_us: i64,
        out: &mut Vec<(T, Verdict)>,
    ) -> Judged {
        self.seq += 1;
        self.first_heard.get_or_insert(self.now);
        let wall_skew_us = self.wall_skew(time_us, ingest_us);
        self.verdict(key, time_us, wall_skew_us, out)
    }

    /// Keeps a record [`Self::judge`] said waits until its verdict, which is appended to `out`
    /// with the verdicts of the records it decides.
    pub fn wait(
        &mut self,
        key: u64,
        time_us: i64,
        ingest_us: i64,
        item: T,
        out: &mut Vec<(T, Verdict)>,
    ) {
        let wall_skew_us = self.wall_skew(time_us, ingest_us);
        let waiting = Waiting {
            key,
            time_us,
            wall_skew_us,
            ingest_us,
            item,
            seq: self.seq,
            clock_at: self.clock.unwrap_or(i64::MIN),
        };
        if self.clock.is_some() {
            self.waiting.push_back(waiting);
            self.try_jump(out);
            self.decide_waiting(out);
            return;
        }
        if wall_skew_us.is_none() {
            self.startup_first.entry(key).or_insert(time_us);
        }
        self.startup.push(waiting);
        if self.startup_first.len() > self.settings.devices || self.startup.len() >= STARTUP_RECORDS
        {
            self.start(out);
        }
    }

    fn wall_skew(&self, time_us: i64, ingest_us: i64) -> Option<i64> {
        self.settings.max_skew_us.and_then(|max| {
            let skew = time_us.saturating_sub(ingest_us);
            (skew > max).then_some(skew)
        })
    }

    /// A record judged elsewhere (a replay of the archive, or a source that is in event-time
    /// order by construction) was on time: it moves the clock as it did, to at least `clock_us`.
    pub fn follow(&mut self, key: u64, time_us: i64, clock_us: i64) {
        let now = self.now;
        let device = self.devices.entry(key).or_insert_with(|| Device::new(now));
        device.heard_at = now;
        self.raise(clock_us);
        self.accept(key, time_us);
    }

    /// Moves the clock to at least `clock_us` (a resumed run: what was delivered is behind it).
    pub fn raise(&mut self, clock_us: i64) {
        self.clock = Some(self.clock.unwrap_or(i64::MIN).max(clock_us));
    }

    /// The end of the input: every record still waiting is decided.
    pub fn finish(&mut self, out: &mut Vec<(T, Verdict)>) {
        if self.clock.is_none() {
            self.start(out);
        }
        while let Some(w) = self.waiting.pop_front() {
            self.hold_ahead(w, out);
        }
    }

    /// Sets the clock from the devices heard so far, at the `k`-th most advanced of their first
    /// times, and judges the records that waited for it in arrival order (which moves it on).
    fn start(&mut self, out: &mut Vec<(T, Verdict)>) {
        let mut first: Vec<i64> = self.startup_first.values().copied().collect();
        first.sort_unstable_by(|a, b| b.cmp(a));
        self.startup_first.clear();
        let startup = std::mem::take(&mut self.startup);
        let Some(&clock) = first.get(self.settings.devices.min(first.len()).wrapping_sub(1)) else {
            // Nothing believable yet: only records too far ahead of the wall clock.
            for w in startup {
                let hold = Hold {
                    kind: HoldKind::WallClock,
                    skew_us: w.wall_skew_us.unwrap_or(0),
                    at_us: w.ingest_us,
                };
                out.push((w.item, Verdict::Held(hold)));
            }
            return;
        };
        self.clock = Some(clock);
        for mut w in startup {
            match self.verdict(w.key, w.time_us, w.wall_skew_us, out) {
                Judged::Now(verdict) => out.push((w.item, verdict)),
                Judged::Waits => {
                    w.clock_at = self.clock.unwrap_or(clock);
                    self.waiting.push_back(w);
                    self.try_jump(out);
                    self.decide_waiting(out);
                }
            }
        }
    }

    /// The verdict of a record, or that it waits (the clock is not set, or it is a jump not
    /// yet confirmed). A record on time moves the clock.
    fn verdict(
        &mut self,
        key: u64,
        time_us: i64,
        wall_skew_us: Option<i64>,
        out: &mut Vec<(T, Verdict)>,
    ) -> Judged {
        let now = self.now;
        let s = self.settings;
        let Self {
            devices,
            top,
            clock,
            ..
        } = self;
        let device = devices.entry(key).or_insert_with(|| Device::new(now));
        device.heard_at = now;
        let Some(c) = *clock else {
            return Judged::Waits;
        };
        let hold = |kind, skew_us| {
            Judged::Now(Verdict::Held(Hold {
                kind,
                skew_us,
                at_us: c,
            }))
        };
        // Held, or waiting for a jump, it no longer holds the clock back; late, it does.
        device.counts = false;
        if let Some(skew) = wall_skew_us {
            return hold(HoldKind::WallClock, skew);
        }
        let offset = time_us.saturating_sub(c);
        if offset < -s.max_jump_us {
            return hold(HoldKind::Behind, offset);
        }
        let tick = |us: i64| us.div_euclid(s.tick_us);
        if tick(time_us) < tick(c.saturating_sub(s.lateness_us)) {
            device.counts = true;
            return Judged::Now(Verdict::Late);
        }
        if offset > s.max_jump_us {
            device.claim = device.claim.max(time_us);
            if device.wrong {
                return hold(HoldKind::Ahead, offset);
            }
            return Judged::Waits;
        }
        if accept_into(device, top, now, s.devices, key, time_us) {
            self.follow_top();
        }
        if !self.waiting.is_empty() {
            self.decide_waiting(out);
        }
        Judged::Now(Verdict::OnTime)
    }

    /// An on-time record: its device's latest time, the leading devices and the clock.
    fn accept(&mut self, key: u64, time_us: i64) {
        let now = self.now;
        let k = self.settings.devices;
        if let Some(device) = self.devices.get_mut(&key)
            && accept_into(device, &mut self.top, now, k, key, time_us)
        {
            self.follow_top();
        }
    }

    /// The clock follows the `k`-th most advanced device accepted lately. While fewer than `k`
    /// are, it follows the last of them only if no other device heard lately holds it back
    /// (one whose records are late or not judged yet): otherwise one device running a minute
    /// ahead, accepted first, would make every other device's records late, and they would
    /// never be accepted to take the clock back.
    fn follow_top(&mut self) {
        let k = self.settings.devices;
        if self.top.len() < k {
            let now = self.now;
            let holding = self
                .devices
                .values()
                .filter(|d| d.counts && now.saturating_duration_since(d.heard_at) < IDLE)
                .take(k)
                .count();
            if self.top.len() < holding {
                return;
            }
        }
        if let Some(&(_, kth)) = self.top.last() {
            self.clock = Some(self.clock.unwrap_or(kth).max(kth));
        }
    }

    /// Rebuilds the leading devices from every device accepted lately.
    fn rescan(&mut self) {
        let now = self.now;
        let mut live: Vec<(u64, i64)> = self
            .devices
            .iter()
            .filter(|(_, d)| {
                d.latest > i64::MIN && now.saturating_duration_since(d.accepted_at) < IDLE
            })
            .map(|(k, d)| (*k, d.latest))
            .collect();
        live.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        live.truncate(self.settings.devices);
        self.top = live;
        self.follow_top();
    }

    /// Moves the clock forward if `k` devices heard from lately (or all of them, if fewer)
    /// claim times beyond it: the whole stream jumped.
    fn try_jump(&mut self, out: &mut Vec<(T, Verdict)>) {
        let Some(clock) = self.clock else { return };
        let beyond = clock.saturating_add(self.settings.max_jump_us);
        let now = self.now;
        let mut heard = 0usize;
        let mut claims: Vec<i64> = Vec::new();
        for device in self.devices.values() {
            if now.saturating_duration_since(device.heard_at) >= IDLE {
                continue;
            }
            heard += 1;
            if device.claim > beyond && !device.wrong {
                claims.push(device.claim);
            }
        }
        let k = self.settings.devices.min(heard).max(1);
        if claims.len() < k {
            return;
        }
        claims.sort_unstable_by(|a, b| b.cmp(a));
        let jumped = claims[k - 1];
        self.clock = Some(jumped);
        // Release what the jump makes believable, in arrival order; the rest waits on.
        let jump = jumped.saturating_add(self.settings.max_jump_us);
        let mut still = VecDeque::with_capacity(self.waiting.len());
        for w in std::mem::take(&mut self.waiting) {
            if w.time_us <= jump {
                self.accept(w.key, w.time_us);
                out.push((w.item, Verdict::OnTime));
            } else {
                still.push_back(w);
            }
        }
        self.waiting = still;
    }

    /// Decides the oldest waiting records: on time once the clock has caught up with them;
    /// held once the clock moved on without them, or enough records came and none confirmed.
    fn decide_waiting(&mut self, out: &mut Vec<(T, Verdict)>) {
        let Some(clock) = self.clock else { return };
        let s = self.settings;
        while let Some(front) = self.waiting.front() {
            if front.time_us <= clock.saturating_add(s.max_jump_us) {
                let Some(w) = self.waiting.pop_front() else {
                    break;
                };
                self.accept(w.key, w.time_us);
                out.push((w.item, Verdict::OnTime));
                continue;
            }
            let moved_on = clock >= front.clock_at.saturating_add(s.confirm_us());
            let many = self.seq - front.seq >= CONFIRM_RECORDS;
            if !(moved_on || many || self.waiting.len() > MAX_WAITING) {
                break;
            }
            let Some(w) = self.waiting.pop_front() else {
                break;
            };
            let key = w.key;
            self.hold_ahead(w, out);
            // Its device's clock is wrong: whatever else of it waits is held with it.
            let (same, rest): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut self.waiting)
                .into_iter()
                .partition(|w| w.key == key);
            self.waiting = rest;
            for w in same {
                self.hold_ahead(w, out);
            }
        }
    }

    fn hold_ahead(&mut self, w: Waiting<T>, out: &mut Vec<(T, Verdict)>) {
        let clock = self.clock.unwrap_or(w.time_us);
        if let Some(device) = self.devices.get_mut(&w.key) {
            device.wrong = true;
            device.counts = false;
        }
        let hold = Hold {
            kind: HoldKind::Ahead,
            skew_us: w.time_us.saturating_sub(clock),
            at_us: clock,
        };
        out.push((w.item, Verdict::Held(hold)));
    }
}

/// An on-time record of `device` (`key`): its latest time and the leading devices (`top`, at
/// most `k`, most advanced first), and whether those changed: then the clock follows them.
fn accept_into(
    device: &mut Device,
    top: &mut Vec<(u64, i64)>,
    now: Instant,
    k: usize,
    key: u64,
    time_us: i64,
) -> bool {
    device.accepted_at = now;
    device.wrong = false;
    device.counts = true;
    // Out of order within its device it cannot lead any further, but a device that was
    // silent is back among the leaders if it leads.
    let latest = device.latest.max(time_us);
    device.latest = latest;
    match top.iter().position(|(d, _)| *d == key) {
        Some(i) if top[i].1 == latest => return false,
        Some(i) => top[i].1 = latest,
        None if top.len() < k => top.push((key, latest)),
        None if top.last().is_some_and(|(_, t)| latest > *t) => {
            if let Some(last) = top.last_mut() {
                *last = (key, latest);
            }
        }
        None => return false,
    }
    top.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    true
}

#[cfg(test)]
mod tests;
