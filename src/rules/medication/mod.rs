//! The medication rule: doses against the schedules the registry prescribes, and rescue-inhaler
//! use (Propeller-style).
//!
//! * **Missed dose** (`missed_dose`, warning): a slot's grace closed with no dose. Doses are
//!   credited to slots by order ([`doses`]): a late dose is its own slot's, never the next one's.
//! * **Late dose** (`late_dose`, info): a dose credited after its slot's grace closed.
//! * **Rescue overuse** (`rescue_overuse`, medium): more than `rescue_per_day` rescue puffs in
//!   24 hours, or the last 7 days' at `rescue_week_rise` times the 7 days' before (and at least
//!   `rescue_week_min`), once the patient has been watched for 14 days. Each at most once a day.
//!
//! A schedule is due from the later of its `from` and the patient's first event. Every alert's
//! evidence has the medication's adherence over 7 and 30 days (doses taken of those due, late
//! ones counted). A patient without schedules or inhalers pays one pointer.

use std::collections::VecDeque;

use serde_json::json;

use super::{Change, Context, Rule};
use crate::alerting::{Alert, AlertEvent, AlertKind, Head, Severity};
use crate::observation::{Code, Detail, EventTime, Observation, Reading, Vital};
use crate::registry::{Prescribed, Schedule, hhmm};

mod config;
pub mod doses;

pub use config::MedicationConfig;
pub use doses::{Adherence, Credit, Doses, Happened};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;
const WEEK_US: i64 = 7 * DAY_US;

/// One patient's medication state.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Medication {
    state: Option<Box<State>>,
}

#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct State {
    /// Per medication with a schedule, its doses.
    doses: Vec<Doses>,
    /// Rescue puffs (µs, puffs) of the last 14 days.
    rescue: VecDeque<(i64, u32)>,
    /// When the patient's inhaler use was first heard of: the week-on-week test needs two weeks.
    inhaler_since_us: Option<i64>,
    /// When overuse was last alerted: per day, week on week.
    alerted: [Option<i64>; 2],
}

/// One medication's adherence over 7 and 30 days, as the run's summary reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct AdherenceReport {
    pub medication: String,
    pub days_7: Adherence,
    pub days_30: Adherence,
}

impl Medication {
    fn state(&mut self) -> &mut State {
        self.state.get_or_insert_with(Default::default)
    }

    /// Adherence of each scheduled medication as of `now`.
    pub fn adherence(&self, now: i64) -> Vec<AdherenceReport> {
        let Some(state) = &self.state else {
            return Vec::new();
        };
        state
            .doses
            .iter()
            .map(|d| AdherenceReport {
                medication: d.schedule.medication.to_string(),
                days_7: d.adherence(now, WEEK_US),
                days_30: d.adherence(now, doses::HISTORY_US),
            })
            .collect()
    }

    /// Each scheduled medication's slots (for tests and the summary).
    pub fn doses(&self) -> &[Doses] {
        self.state.as_ref().map_or(&[], |s| &s.doses)
    }

    fn schedule(&mut self, now: i64, schedule: &Schedule) {
        let state = self.state();
        state
            .doses
            .retain(|d| d.schedule.medication != schedule.medication);
        if !schedule.slots.is_empty() {
            state.doses.push(Doses::new(schedule.clone(), now));
            state
                .doses
                .sort_by(|a, b| a.schedule.medication.cmp(&b.schedule.medication));
        }
    }

    fn dose(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        let Some(Detail::Medication {
            medication,
            schedule,
        }) = obs.detail()
        else {
            return;
        };
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let Some(doses) = state
            .doses
            .iter_mut()
            .find(|d| d.schedule.medication == *medication)
        else {
            return;
        };
        let now = obs.time().micros();
        let credit = doses.dose(now, schedule.as_ref().map(|s| s.as_str()));
        if let Credit::Slot {
            at_us,
            slot,
            late: true,
        } = credit
            && cx.rules.medication.late_dose
        {
            let name = &doses.schedule.slots[slot].name;
            let late_min = (now - at_us) / 60_000_000;
            let summary = format!(
                "{medication} of the {name} slot ({}) taken late, {} after it was due",
                local_time(&doses.schedule, at_us),
                span_min(late_min)
            );
            let facts = dose_facts(doses, now, at_us, slot, Some(now));
            out.push(medication_alert(
                cx,
                now,
                AlertEvent::LateDose,
                Severity::Info,
                summary,
                "note it; if doses are often late, review the schedule with the patient",
                facts,
            ));
        }
    }

    fn rescue(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        let now = obs.time().micros();
        let puffs = match obs.detail() {
            Some(Detail::Inhaler { puffs }) => u32::from(*puffs).max(1),
            _ => 1,
        };
        let config = &cx.rules.medication;
        let state = self.state();
        state.rescue.push_back((now, puffs));
        while state
            .rescue
            .front()
            .is_some_and(|r| r.0 <= now - 2 * WEEK_US)
        {
            state.rescue.pop_front();
        }
        let since = |t: i64| -> u32 { state.rescue.iter().filter(|r| r.0 > t).map(|r| r.1).sum() };
        let day = since(now - DAY_US);
        let week = since(now - WEEK_US);
        let before = since(now - 2 * WEEK_US) - week;
        let watched = state
            .inhaler_since_us
            .is_some_and(|s| s <= now - 2 * WEEK_US);
        let per_day = config.rescue_per_day.on().filter(|&limit| day > limit);
        let rising = config.rescue_week_rise.on().filter(|&rise| {
            watched && week >= config.rescue_week_min && f64::from(week) >= rise * f64::from(before)
        });
        let fresh = |i: usize| state.alerted[i].is_none_or(|t| now - t >= DAY_US);
        let summary = if let Some(limit) = per_day.filter(|_| fresh(0)) {
            state.alerted[0] = Some(now);
            format!(
                "{day} rescue inhaler puffs in 24 hours (more than {limit}): asthma may be poorly controlled"
            )
        } else if rising.is_some() && fresh(1) {
            state.alerted[1] = Some(now);
            format!(
                "rescue inhaler use rising: {week} puffs in the last 7 days against {before} the 7 days before"
            )
        } else {
            return;
        };
        let facts = json!({
            "rescue_puffs_24h": day,
            "rescue_puffs_7d": week,
            "rescue_puffs_previous_7d": before,
        });
        out.push(medication_alert(
            cx,
            now,
            AlertEvent::RescueOveruse,
            Severity::Medium,
            summary,
            "review asthma control: symptoms, controller adherence and inhaler technique; act on the asthma action plan",
            facts,
        ));
    }
}

impl Rule for Medication {
    fn on_change(&mut self, _: Context<'_>, _: &Change<'_>, _: &mut Vec<Alert>) {}

    fn on_observation(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        // Every observation comes here: a bedside vital's reading is not even made.
        if !matches!(obs.vital(), Vital::Medication | Vital::Inhaler) {
            return;
        }
        match (obs.vital(), obs.reading()) {
            (Vital::Medication, Reading::Code(Code::Taken)) => self.dose(cx, obs, out),
            (Vital::Inhaler, reading) => {
                let now = obs.time().micros();
                let state = self.state();
                state.inhaler_since_us = state.inhaler_since_us.or(Some(now));
                if matches!(reading, Reading::Code(Code::Rescue)) {
                    self.rescue(cx, obs, out);
                }
            }
            _ => {}
        }
    }

    fn on_prescribed(
        &mut self,
        _cx: Context<'_>,
        now: i64,
        prescribed: &Prescribed,
        _out: &mut Vec<Alert>,
    ) {
        if let Prescribed::Schedule(schedule) = prescribed {
            self.schedule(now, schedule);
        }
    }

    fn next_due(&self) -> Option<i64> {
        let state = self.state.as_ref()?;
        state.doses.iter().filter_map(Doses::next_due).min()
    }

    fn on_timer(&mut self, cx: Context<'_>, due: i64, out: &mut Vec<Alert>) {
        let Some(state) = self.state.as_mut() else {
            return;
        };
        let mut happened = Vec::new();
        for doses in &mut state.doses {
            doses.on_timer(due, &mut happened);
            for Happened::Missed { at_us, slot } in happened.drain(..) {
                let name = &doses.schedule.slots[slot].name;
                let summary = format!(
                    "{} of the {name} slot ({}) not taken: missed dose",
                    doses.schedule.medication,
                    local_time(&doses.schedule, at_us),
                );
                let facts = dose_facts(doses, due, at_us, slot, None);
                out.push(medication_alert(
                    cx,
                    due,
                    AlertEvent::MissedDose,
                    Severity::Warning,
                    summary,
                    "contact the patient: remind them of the dose and whether to take it now or skip it, as its instructions say",
                    facts,
                ));
            }
        }
    }

    fn heap_bytes(&self) -> usize {
        self.state.as_ref().map_or(0, |s| {
            std::mem::size_of::<State>()
                + s.doses.capacity() * std::mem::size_of::<Doses>()
                + s.doses.iter().map(Doses::heap_bytes).sum::<usize>()
                + s.rescue.capacity() * std::mem::size_of::<(i64, u32)>()
        })
    }
}

/// A slot's local time of day, as the schedule names it (`08:00`).
fn local_time(schedule: &Schedule, at_us: i64) -> String {
    let local_s = (at_us / 1_000_000 + i64::from(schedule.utc_offset_s)).rem_euclid(86_400);
    hhmm((local_s / 60) as u16)
}

fn span_min(minutes: i64) -> String {
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// The evidence of a dose alert: the slot, the dose, and adherence over 7 and 30 days.
fn dose_facts(
    doses: &Doses,
    now: i64,
    at_us: i64,
    slot: usize,
    taken_us: Option<i64>,
) -> serde_json::Value {
    let adherence = |span| {
        let a = doses.adherence(now, span);
        json!({"taken": a.taken, "due": a.due, "late": a.late, "rate": a.rate().map(|r| (r * 1000.0).round() / 1000.0)})
    };
    json!({
        "medication": doses.schedule.medication.as_str(),
        "slot": doses.schedule.slots[slot].name.as_str(),
        "due": EventTime::from_micros(at_us).to_rfc3339(),
        "grace_minutes": doses.schedule.grace_s / 60,
        "taken": taken_us.map(|t| EventTime::from_micros(t).to_rfc3339()),
        "adherence_7d": adherence(WEEK_US),
        "adherence_30d": adherence(doses::HISTORY_US),
    })
}

fn medication_alert(
    cx: Context<'_>,
    time_us: i64,
    event: AlertEvent,
    severity: Severity,
    summary: String,
    response: &str,
    facts: serde_json::Value,
) -> Alert {
    let head = Head {
        patient: cx.picture.patient(),
        time_us,
        kind: AlertKind::Medication,
        event,
        severity,
    };
    Alert::of_facts(head, summary, response, facts)
}

#[cfg(test)]
mod tests;
