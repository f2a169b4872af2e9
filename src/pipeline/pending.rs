//! The events a worker's monitors hold until the frontier passes their tick, kept small.
//!
//! A minute of every patient's data waits here (the allowed lateness): 12.6 million
//! observations for 100,000 bedside patients. As an [`Event`] each takes 72 bytes, most of them
//! two shared ids (16 bytes each) and a value (16). Here a plain observation (one without a
//! kind's detail) takes 24: its patient and device as numbers in the worker's table of the ids
//! that wait, its time as the microsecond within its tick, and its value's bits. Every other
//! event waits as it is.
//!
//! Invariant: a tick is given back as it was put in, the same events in the same (arrival)
//! order, since the monitors' order breaks its last ties on it
//! ([`crate::monitor::events::normalise`]). An id stays in the table while an event of it waits.

use std::collections::BTreeMap;

use super::{Event, FastMap};
use crate::observation::{Acvpu, Code, EventTime, Identifier, Observation, Unit, Value, Vital};

/// The events waiting, by tick.
pub struct Pending {
    ticks: BTreeMap<i64, Tick>,
    ids: Ids,
    tick_us: i64,
    /// Events of the last tick taken: a new tick is sized like it. Grown by doubling, each tick
    /// was copied as it grew and kept up to half its capacity unused.
    tick_len: usize,
}

/// One tick's events.
struct Tick {
    compact: Vec<Compact>,
    /// The events kept whole, each with its place in the tick's arrival order.
    whole: Vec<(usize, Event)>,
}

/// A plain observation, 24 bytes.
#[derive(Clone, Copy, Debug)]
struct Compact {
    patient: u32,
    /// [`NO_DEVICE`] for none.
    device: u32,
    /// Its time, from the start of its tick.
    offset_us: u32,
    /// A number's bits, low half first (two halves keep the alignment, and the size, at 4).
    bits: [u32; 2],
    vital: Vital,
    unit: Option<Unit>,
    kind: Kind,
}

/// A value without its number, which [`Compact::bits`] holds.
#[derive(Clone, Copy, Debug)]
enum Kind {
    Number,
    Acvpu(Acvpu),
    Code(Code),
    None,
}

const NO_DEVICE: u32 = u32::MAX;

impl Pending {
    pub fn new(tick_us: i64) -> Pending {
        Pending {
            ticks: BTreeMap::new(),
            ids: Ids::default(),
            tick_us,
            tick_len: 0,
        }
    }

    /// Files `event` under `tick`.
    pub fn push(&mut self, tick: i64, event: Event) {
        let len = self.tick_len;
        let t = self.ticks.entry(tick).or_insert_with(|| Tick {
            compact: Vec::with_capacity(len + len / 16),
            whole: Vec::new(),
        });
        match compact(&mut self.ids, self.tick_us, tick, &event) {
            Some(c) => t.compact.push(c),
            None => t.whole.push((t.compact.len() + t.whole.len(), event)),
        }
    }

    /// Files every event of `events` under `tick`, leaving it empty.
    pub fn append(&mut self, tick: i64, events: &mut Vec<Event>) {
        for event in events.drain(..) {
            self.push(tick, event);
        }
    }

    /// The earliest tick with events.
    pub fn first_tick(&self) -> Option<i64> {
        self.ticks.keys().next().copied()
    }

    /// Moves the events of `tick` into `out` (emptied first), in the order they came; whether
    /// there were any.
    pub fn take(&mut self, tick: i64, out: &mut Vec<Event>) -> bool {
        out.clear();
        let Some(t) = self.ticks.remove(&tick) else {
            return false;
        };
        out.reserve(t.compact.len() + t.whole.len());
        let mut whole = t.whole.into_iter().peekable();
        let mut compact = t.compact.into_iter();
        loop {
            if let Some((_, e)) = whole.next_if(|(at, _)| *at == out.len()) {
                out.push(e);
                continue;
            }
            match compact.next() {
                Some(c) => out.push(rebuild(&mut self.ids, self.tick_us, tick, c)),
                None => break,
            }
        }
        out.extend(whole.map(|(_, e)| e));
        self.tick_len = out.len();
        true
    }

    /// Forgets every event.
    pub fn clear(&mut self) {
        self.ticks.clear();
        self.ids = Ids::default();
    }
}

/// `event`'s compact form, if it is a plain observation whose time is within 2³² µs of its
/// tick's start (always, with ticks up to an hour long).
fn compact(ids: &mut Ids, tick_us: i64, tick: i64, event: &Event) -> Option<Compact> {
    let Event::Observation(o) = event else {
        return None;
    };
    if o.detail().is_some() {
        return None;
    }
    let offset = o.time().micros().checked_sub(tick.checked_mul(tick_us)?)?;
    let offset_us = u32::try_from(offset).ok()?;
    let (kind, bits) = match o.value() {
        Value::Number(n) => (Kind::Number, n.to_bits()),
        Value::Acvpu(a) => (Kind::Acvpu(a), 0),
        Value::Code(c) => (Kind::Code(c), 0),
        Value::None => (Kind::None, 0),
    };
    // The ids last: once one is held, nothing else may fail.
    let patient = ids.hold(o.patient())?;
    let device = match o.device() {
        None => NO_DEVICE,
        Some(d) => match ids.hold(d) {
            Some(i) => i,
            None => {
                ids.release(patient);
                return None;
            }
        },
    };
    Some(Compact {
        patient,
        device,
        offset_us,
        bits: [bits as u32, (bits >> 32) as u32],
        vital: o.vital(),
        unit: o.unit(),
        kind,
    })
}

/// The observation `c` was made from.
fn rebuild(ids: &mut Ids, tick_us: i64, tick: i64, c: Compact) -> Event {
    let patient = ids.release(c.patient);
    let device = (c.device != NO_DEVICE).then(|| ids.release(c.device));
    // (No overflow: `compact` computed the offset from this very sum.)
    let time = EventTime::from_micros(tick * tick_us + i64::from(c.offset_us));
    let value = match c.kind {
        Kind::Number => Value::Number(f64::from_bits(
            u64::from(c.bits[0]) | u64::from(c.bits[1]) << 32,
        )),
        Kind::Acvpu(a) => Value::Acvpu(a),
        Kind::Code(code) => Value::Code(code),
        Kind::None => Value::None,
    };
    Event::Observation(Observation::rebuilt(
        patient, device, time, c.vital, value, c.unit,
    ))
}

/// The ids of the events waiting, each numbered while one waits (a number is reused once no
/// event of its id waits, so the table holds what waits, whatever ids came before).
#[derive(Default)]
struct Ids {
    index: FastMap<Identifier, u32>,
    slots: Vec<Slot>,
    free: Vec<u32>,
}

struct Slot {
    id: Identifier,
    waiting: u64,
}

impl Ids {
    /// `id`'s number, held for one more event; none once 2³² − 1 ids wait.
    fn hold(&mut self, id: &Identifier) -> Option<u32> {
        if let Some(&i) = self.index.get(id) {
            self.slots[i as usize].waiting += 1;
            return Some(i);
        }
        let slot = Slot {
            id: id.clone(),
            waiting: 1,
        };
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = slot;
                i
            }
            None => {
                let i = u32::try_from(self.slots.len())
                    .ok()
                    .filter(|&i| i != NO_DEVICE)?;
                self.slots.push(slot);
                i
            }
        };
        self.index.insert(id.clone(), i);
        Some(i)
    }

    /// The id numbered `i`, released by one event.
    fn release(&mut self, i: u32) -> Identifier {
        let slot = &mut self.slots[i as usize];
        slot.waiting -= 1;
        let id = slot.id.clone();
        if slot.waiting == 0 {
            self.index.remove(&id);
            self.free.push(i);
        }
        id
    }
}

#[cfg(test)]
mod tests;
