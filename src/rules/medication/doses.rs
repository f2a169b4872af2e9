//! One medication's doses against its schedule: which slot each dose is credited to, when a slot
//! is missed, and adherence over the last days.
//!
//! Slots are credited **by order**: a dose goes to the earliest slot not yet credited whose
//! window is open, not to the slot nearest its time, so a late morning dose is the morning's and
//! the evening still needs its own. A slot's window opens halfway from the slot before it (a dose
//! may be a little early) and stays open until shortly before the next slot is due (by `grace`,
//! or a quarter of the gap if shorter: a dose then is the next one's, early); its grace closes
//! at `grace` after its time (or when the next slot is due, if sooner) — with no dose by then it
//! is missed, and a dose after that is late. A dose with no open slot is an extra dose, credited to
//! nothing. A device that names the slot (`schedule: "am"`) has its dose credited to the first
//! open slot of that name, if one is open.
//!
//! Invariants: each slot is credited at most once, each dose to at most one slot; slots are
//! visited in time order, and everything is a function of the doses' times (never of when they
//! arrived). Slots are due from the schedule's start on, never before.

use std::collections::VecDeque;

use crate::registry::Schedule;

const DAY_US: i64 = 86_400_000_000;

/// Resolved slots are kept this long, for adherence over 30 days.
pub const HISTORY_US: i64 = 30 * DAY_US;

/// One slot of one day.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Due {
    /// When it is due (µs).
    pub at_us: i64,
    /// Which of the schedule's slots.
    pub slot: usize,
    /// A dose from here on may be credited to it.
    pub opens_us: i64,
    /// When the dose credited to it was taken.
    pub taken_us: Option<i64>,
    /// Its grace closed with no dose (a missed dose was alerted).
    pub missed: bool,
}

/// What a dose was credited to.
#[derive(Clone, Debug, PartialEq)]
pub enum Credit {
    /// The slot due at `at_us`; `late` when its grace had closed.
    Slot { at_us: i64, slot: usize, late: bool },
    /// No slot was open for it.
    Extra,
}

/// Adherence over a stretch: doses taken of those due.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Adherence {
    pub taken: u32,
    pub due: u32,
    /// Of those taken, how many after their grace.
    pub late: u32,
}

impl Adherence {
    /// Taken of due, 0 to 1; `None` when nothing was due.
    pub fn rate(self) -> Option<f64> {
        (self.due > 0).then(|| f64::from(self.taken) / f64::from(self.due))
    }
}

/// One medication's slots, from its schedule's start.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Doses {
    pub schedule: Schedule,
    /// Slots not yet expired, in time order; never fewer than two while the schedule has slots
    /// (the second's time is when the first expires).
    due: VecDeque<Due>,
    /// Expired slots of the last [`HISTORY_US`]: (due, when taken, missed).
    history: VecDeque<(i64, Option<i64>, bool)>,
}

/// What happened at a timer.
#[derive(Clone, Debug, PartialEq)]
pub enum Happened {
    /// The grace of the slot due at `at_us` closed with no dose.
    Missed { at_us: i64, slot: usize },
}

impl Doses {
    /// The schedule's slots from `start_us` on.
    pub fn new(schedule: Schedule, start_us: i64) -> Doses {
        let mut doses = Doses {
            schedule,
            due: VecDeque::new(),
            history: VecDeque::new(),
        };
        if let Some((at_us, slot)) = doses.next_after(start_us - 1) {
            let before = doses.previous_before(at_us).unwrap_or(at_us);
            let opens_us = (at_us - (at_us - before) / 2).max(start_us);
            doses.due.push_back(Due {
                at_us,
                slot,
                opens_us,
                taken_us: None,
                missed: false,
            });
            doses.fill();
        }
        doses
    }

    /// The first slot due strictly after `t`.
    fn next_after(&self, t: i64) -> Option<(i64, usize)> {
        let offset = i64::from(self.schedule.utc_offset_s) * 1_000_000;
        let day = (t + offset).div_euclid(DAY_US);
        (day..day + 2).find_map(|d| {
            self.schedule.slots.iter().enumerate().find_map(|(i, s)| {
                let at = d * DAY_US + i64::from(s.minute) * 60_000_000 - offset;
                (at > t).then_some((at, i))
            })
        })
    }

    /// The last slot due strictly before `t`.
    fn previous_before(&self, t: i64) -> Option<i64> {
        let offset = i64::from(self.schedule.utc_offset_s) * 1_000_000;
        let day = (t + offset).div_euclid(DAY_US);
        (day - 1..=day).rev().find_map(|d| {
            self.schedule.slots.iter().rev().find_map(|s| {
                let at = d * DAY_US + i64::from(s.minute) * 60_000_000 - offset;
                (at < t).then_some(at)
            })
        })
    }

    /// Keeps two slots ahead: the second's time is when the first expires.
    fn fill(&mut self) {
        while self.due.len() < 2 {
            let Some(last) = self.due.back() else { return };
            let previous = last.at_us;
            let Some((at_us, slot)) = self.next_after(previous) else {
                return;
            };
            self.due.push_back(Due {
                at_us,
                slot,
                opens_us: at_us - (at_us - previous) / 2,
                taken_us: None,
                missed: false,
            });
        }
    }

    /// When a slot's grace closes: `grace` after it, or when the next is due if sooner.
    fn closes_us(&self, i: usize) -> i64 {
        let grace = self.due[i].at_us + i64::from(self.schedule.grace_s) * 1_000_000;
        self.due
            .get(i + 1)
            .map_or(grace, |next| grace.min(next.at_us))
    }

    /// The next timer: the first slot's grace closing with no dose, or its expiry.
    pub fn next_due(&self) -> Option<i64> {
        let first = self.due.front()?;
        let expires = self.due.get(1)?.at_us;
        let closes = (first.taken_us.is_none() && !first.missed).then(|| self.closes_us(0));
        Some(closes.map_or(expires, |c| c.min(expires)))
    }

    /// Fires what is due up to `until` (inclusive), in time order.
    pub fn on_timer(&mut self, until: i64, happened: &mut Vec<Happened>) {
        while let Some(next) = self.next_due().filter(|&d| d <= until) {
            let first_closes = self.closes_us(0);
            let Some(first) = self.due.front_mut() else {
                return;
            };
            if first.taken_us.is_none() && !first.missed && first_closes == next {
                first.missed = true;
                happened.push(Happened::Missed {
                    at_us: first.at_us,
                    slot: first.slot,
                });
            }
            if self.due.get(1).is_some_and(|d| d.at_us == next) {
                self.expire();
            }
        }
    }

    /// The first slot expires: into the history, and one more slot is kept ahead.
    fn expire(&mut self) {
        let Some(first) = self.due.pop_front() else {
            return;
        };
        self.history
            .push_back((first.at_us, first.taken_us, first.missed));
        while self
            .history
            .front()
            .is_some_and(|h| h.0 <= first.at_us - HISTORY_US)
        {
            self.history.pop_front();
        }
        self.fill();
    }

    /// A dose taken at `t` (after every timer before `t` fired), for the slot named `slot_name`
    /// if the device said.
    pub fn dose(&mut self, t: i64, slot_name: Option<&str>) -> Credit {
        // Open: not credited, its window opened, and not yet given up for the next slot: a
        // dose taken shortly before the next slot is due (within `grace`, or a quarter of the
        // gap if shorter) is the next one's, taken early, not a very late dose of this one.
        let due = &self.due;
        let grace = i64::from(self.schedule.grace_s) * 1_000_000;
        let open = |i: usize| {
            let d = &due[i];
            d.taken_us.is_none()
                && d.opens_us <= t
                && due.get(i + 1).is_none_or(|next| {
                    let early = grace.min((next.at_us - d.at_us) / 4);
                    t < next.at_us - early
                })
        };
        let named = slot_name.and_then(|name| {
            (0..due.len())
                .find(|&i| open(i) && self.schedule.slots[due[i].slot].name.as_str() == name)
        });
        let Some(i) = named.or_else(|| (0..due.len()).find(|&i| open(i))) else {
            return Credit::Extra;
        };
        let late = t > self.closes_us(i);
        let d = &mut self.due[i];
        d.taken_us = Some(t);
        Credit::Slot {
            at_us: d.at_us,
            slot: d.slot,
            late,
        }
    }

    /// Adherence over the slots due in `(now - span, now]` whose outcome is known (taken, or
    /// missed).
    pub fn adherence(&self, now: i64, span_us: i64) -> Adherence {
        let resolved = self
            .history
            .iter()
            .copied()
            .map(|(at, taken, missed)| (at, taken.is_some(), taken.is_some() && missed))
            .chain(
                self.due
                    .iter()
                    .filter(|d| d.taken_us.is_some() || d.missed)
                    .map(|d| {
                        (
                            d.at_us,
                            d.taken_us.is_some(),
                            d.taken_us.is_some() && d.missed,
                        )
                    }),
            );
        let mut a = Adherence::default();
        for (_, taken, late) in resolved.filter(|(at, ..)| *at > now - span_us && *at <= now) {
            a.due += 1;
            a.taken += u32::from(taken);
            a.late += u32::from(late);
        }
        a
    }

    /// Every slot of the last 30 days and those not yet expired: (due, when the dose credited
    /// to it was taken).
    pub fn credits(&self) -> impl Iterator<Item = (i64, Option<i64>)> + '_ {
        self.history
            .iter()
            .map(|h| (h.0, h.1))
            .chain(self.due.iter().map(|d| (d.at_us, d.taken_us)))
    }

    pub fn heap_bytes(&self) -> usize {
        self.due.capacity() * std::mem::size_of::<Due>()
            + self.history.capacity() * std::mem::size_of::<(i64, Option<i64>, bool)>()
            + self.schedule.slots.capacity() * std::mem::size_of::<crate::registry::Slot>()
    }
}
