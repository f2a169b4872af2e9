use proptest::prelude::*;

use super::*;
use crate::config::PipelineConfig;
use crate::monitor::events::{Event, apply_set, normalise, same_patient_and_time};
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::news2::Scale;
use crate::observation::Identifier;
use crate::registry::Slot;

const MIN: i64 = 60_000_000;
const HOUR: i64 = 60 * MIN;
/// 2026-03-01T00:00:00Z.
const DAY0: i64 = 1_772_323_200_000_000;

fn schedule(slots: &[(&str, u16)], grace_s: u32, utc_offset_s: i32) -> Schedule {
    Schedule {
        medication: Identifier::new("metformin").unwrap(),
        slots: slots
            .iter()
            .map(|(n, m)| Slot {
                name: Identifier::new(n).unwrap(),
                minute: *m,
            })
            .collect(),
        grace_s,
        utc_offset_s,
    }
}

/// Twice a day, 08:00 and 20:00 UTC, two hours' grace.
fn twice_daily() -> Schedule {
    schedule(&[("am", 8 * 60), ("pm", 20 * 60)], 7200, 0)
}

/// Runs doses (in time order) against `doses` up to `until`: what was missed, and the credits.
fn follow(doses: &mut Doses, taken: &[i64], until: i64) -> (Vec<i64>, Vec<Credit>) {
    let (mut missed, mut credits, mut happened) = (Vec::new(), Vec::new(), Vec::new());
    for &t in taken {
        doses.on_timer(t - 1, &mut happened);
        credits.push(doses.dose(t, None));
    }
    doses.on_timer(until, &mut happened);
    for Happened::Missed { at_us, .. } in happened {
        missed.push((at_us - DAY0) / HOUR);
    }
    (missed, credits)
}

#[test]
fn a_dose_within_grace_is_on_time_and_one_after_it_is_late_and_the_slot_missed_first() {
    let mut d = Doses::new(twice_daily(), DAY0);
    let (missed, credits) = follow(&mut d, &[DAY0 + 10 * HOUR], DAY0 + 12 * HOUR);
    assert_eq!(missed, Vec::<i64>::new());
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: DAY0 + 8 * HOUR,
            slot: 0,
            late: false
        }]
    );

    let mut d = Doses::new(twice_daily(), DAY0);
    let (missed, credits) = follow(&mut d, &[DAY0 + 10 * HOUR + 1], DAY0 + 12 * HOUR);
    assert_eq!(missed, [8]);
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: DAY0 + 8 * HOUR,
            slot: 0,
            late: true
        }]
    );
}

#[test]
fn a_late_dose_is_its_own_slots_and_never_erases_the_next() {
    let mut d = Doses::new(twice_daily(), DAY0);
    // The morning's dose at 13:00, nothing in the evening: the evening is missed.
    let (missed, credits) = follow(&mut d, &[DAY0 + 13 * HOUR], DAY0 + 23 * HOUR);
    assert_eq!(missed, [8, 20]);
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: DAY0 + 8 * HOUR,
            slot: 0,
            late: true
        }]
    );
    // Both taken, the morning's very late (17:00, before the evening's early window at
    // 18:00): each slot has its own dose.
    let mut d = Doses::new(twice_daily(), DAY0);
    let (missed, credits) = follow(
        &mut d,
        &[DAY0 + 17 * HOUR, DAY0 + 20 * HOUR + 30 * MIN],
        DAY0 + 23 * HOUR,
    );
    assert_eq!(missed, [8]);
    assert_eq!(
        credits,
        [
            Credit::Slot {
                at_us: DAY0 + 8 * HOUR,
                slot: 0,
                late: true
            },
            Credit::Slot {
                at_us: DAY0 + 20 * HOUR,
                slot: 1,
                late: false
            },
        ]
    );
}

#[test]
fn a_dose_just_before_the_next_slot_is_the_next_ones_even_after_a_missed_one() {
    // Once a day at 21:30: yesterday's missed, today's taken 20 min early.
    let daily = schedule(&[("night", 21 * 60 + 30)], 7200, 0);
    let mut d = Doses::new(daily.clone(), DAY0);
    let today = DAY0 + 24 * HOUR + 21 * HOUR + 30 * MIN;
    let (missed, credits) = follow(&mut d, &[today - 20 * MIN], today + 3 * HOUR);
    assert_eq!(missed, [21]);
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: today,
            slot: 0,
            late: false
        }]
    );
    // Four times a day (4 h apart, a quarter is 1 h): at 10:30 the 08:00 dose is late, not
    // the 12:00 one early; at 11:15 it is the 12:00 one's.
    let four = schedule(
        &[
            ("a", 8 * 60),
            ("b", 12 * 60),
            ("c", 16 * 60),
            ("d", 20 * 60),
        ],
        7200,
        0,
    );
    let mut d = Doses::new(four.clone(), DAY0);
    let (_, credits) = follow(&mut d, &[DAY0 + 10 * HOUR + 30 * MIN], DAY0 + 11 * HOUR);
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: DAY0 + 8 * HOUR,
            slot: 0,
            late: true
        }]
    );
    let mut d = Doses::new(four, DAY0);
    let (_, credits) = follow(
        &mut d,
        &[DAY0 + 11 * HOUR + 15 * MIN],
        DAY0 + 11 * HOUR + 30 * MIN,
    );
    assert_eq!(
        credits,
        [Credit::Slot {
            at_us: DAY0 + 12 * HOUR,
            slot: 1,
            late: false
        }]
    );
}

#[test]
fn an_early_dose_counts_and_a_second_dose_in_one_window_is_extra() {
    let mut d = Doses::new(twice_daily(), DAY0);
    let (missed, credits) = follow(
        &mut d,
        &[DAY0 + 5 * HOUR, DAY0 + 9 * HOUR],
        DAY0 + 12 * HOUR,
    );
    assert_eq!(missed, Vec::<i64>::new());
    assert_eq!(
        credits,
        [
            Credit::Slot {
                at_us: DAY0 + 8 * HOUR,
                slot: 0,
                late: false
            },
            Credit::Extra
        ]
    );
    // Before the window opens (halfway from the evening before, 02:00), nothing is open: the
    // schedule started at midnight, so there was no evening slot.
    let mut d = Doses::new(twice_daily(), DAY0);
    let (_, credits) = follow(&mut d, &[DAY0 + HOUR, DAY0 + 2 * HOUR], DAY0 + 3 * HOUR);
    assert_eq!(
        credits,
        [
            Credit::Extra,
            Credit::Slot {
                at_us: DAY0 + 8 * HOUR,
                slot: 0,
                late: false
            }
        ]
    );
    let mut d = Doses::new(twice_daily(), DAY0 + 9 * HOUR);
    let (_, credits) = follow(&mut d, &[DAY0 + 10 * HOUR], DAY0 + 12 * HOUR);
    assert_eq!(
        credits,
        [Credit::Extra],
        "the morning slot was before the schedule"
    );
}

#[test]
fn a_device_naming_its_slot_is_credited_to_it_and_offsets_are_local_time() {
    let mut d = Doses::new(twice_daily(), DAY0);
    let mut happened = Vec::new();
    d.on_timer(DAY0 + 14 * HOUR, &mut happened);
    // At 14:30 the morning's slot is open (missed, late) and the evening's has opened: the
    // device says this is the evening's.
    assert_eq!(
        d.dose(DAY0 + 14 * HOUR + 30 * MIN, Some("pm")),
        Credit::Slot {
            at_us: DAY0 + 20 * HOUR,
            slot: 1,
            late: false
        }
    );
    // 08:00 at -07:00 is 15:00 UTC.
    let mut d = Doses::new(schedule(&[("am", 8 * 60)], 3600, -7 * 3600), DAY0);
    let (missed, _) = follow(&mut d, &[], DAY0 + 17 * HOUR);
    assert_eq!(missed, [15]);
}

#[test]
fn adherence_counts_the_last_7_and_30_days() {
    let mut d = Doses::new(twice_daily(), DAY0);
    // Ten days: every morning taken, every evening but the last three days' taken.
    let mut taken = Vec::new();
    for day in 0..10 {
        taken.push(DAY0 + day * 24 * HOUR + 8 * HOUR);
        if day < 7 {
            taken.push(DAY0 + day * 24 * HOUR + 20 * HOUR);
        }
    }
    let end = DAY0 + 10 * 24 * HOUR;
    follow(&mut d, &taken, end);
    assert_eq!(
        d.adherence(end, 30 * 24 * HOUR),
        Adherence {
            taken: 17,
            due: 20,
            late: 0
        }
    );
    assert_eq!(
        d.adherence(end, 7 * 24 * HOUR),
        Adherence {
            taken: 11,
            due: 14,
            late: 0
        }
    );
}

fn settings() -> MonitorSettings {
    let text = "[source]\nkind = \"simulator\"\n";
    MonitorSettings::from_config(&PipelineConfig::parse(text, None).unwrap())
}

fn obs(t: i64, rest: &str) -> Observation {
    let time = EventTime::from_micros(t).to_rfc3339();
    Observation::from_json(
        format!(r#"{{"patient":"h-1","device":"b-1","time":"{time}",{rest}}}"#).as_bytes(),
    )
    .unwrap()
}

fn taken(t: i64) -> Observation {
    obs(
        t,
        r#""vital":"medication","value":"taken","medication":"metformin""#,
    )
}

fn rescue(t: i64) -> Observation {
    obs(t, r#""vital":"inhaler","value":"rescue""#)
}

/// A patient prescribed twice-daily metformin, fed `events` as the engine applies them (by
/// tick, each tick normalised), up to `until`.
fn engine(events: Vec<Observation>, until: i64) -> (PatientMonitor, Vec<Alert>) {
    let s = settings();
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(DAY0), Scale::One);
    let mut out = Vec::new();
    let prescribed = Prescribed::Schedule(Box::new(twice_daily()));
    m.prescribe(&s, EventTime::from_micros(DAY0), &prescribed, &mut out);
    let mut ticks: std::collections::BTreeMap<i64, Vec<Event>> = Default::default();
    for o in events {
        ticks
            .entry(o.time().micros().div_euclid(1_000_000))
            .or_default()
            .push(Event::Observation(o));
    }
    for (_, mut tick) in ticks {
        normalise(&mut tick);
        for set in tick.chunk_by(same_patient_and_time) {
            apply_set(&mut m, &s, set, &mut out);
        }
    }
    m.advance(&s, until, &mut out);
    (m, out)
}

#[test]
fn the_monitor_alerts_missed_and_late_doses_with_adherence() {
    let (_, alerts) = engine(
        vec![taken(DAY0 + 8 * HOUR), taken(DAY0 + 23 * HOUR)],
        DAY0 + 24 * HOUR,
    );
    let got: Vec<_> = alerts
        .iter()
        .map(|a| ((a.time_us - DAY0) / MIN, a.kind, a.event, a.severity))
        .collect();
    assert_eq!(
        got,
        [
            (
                22 * 60,
                AlertKind::Medication,
                AlertEvent::MissedDose,
                Severity::Warning
            ),
            (
                23 * 60,
                AlertKind::Medication,
                AlertEvent::LateDose,
                Severity::Info
            ),
        ]
    );
    let facts = serde_json::to_value(&alerts[1].evidence).unwrap();
    assert_eq!(facts["slot"], "pm");
    assert_eq!(facts["adherence_7d"]["taken"], 2);
    assert_eq!(facts["adherence_7d"]["late"], 1);
    assert!(
        alerts[0].summary.contains("pm slot (20:00)"),
        "{}",
        alerts[0].summary
    );
}

#[test]
fn rescue_puffs_above_four_a_day_alert_once_a_day() {
    let four: Vec<_> = (0..4).map(|i| rescue(DAY0 + i * HOUR)).collect();
    assert!(
        engine(four, DAY0 + 6 * HOUR)
            .1
            .iter()
            .all(|a| a.event != AlertEvent::RescueOveruse)
    );
    let seven: Vec<_> = (0..7).map(|i| rescue(DAY0 + i * HOUR)).collect();
    let (_, alerts) = engine(seven, DAY0 + 8 * HOUR);
    let overuse: Vec<_> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::RescueOveruse)
        .map(|a| (a.time_us - DAY0) / HOUR)
        .collect();
    assert_eq!(overuse, [4], "the fifth puff, and not again that day");
}

#[test]
fn rescue_use_rising_week_on_week_alerts_once_two_weeks_are_watched() {
    // One puff every other day for two weeks, then one a day.
    let mut puffs: Vec<_> = (0..7)
        .map(|d| rescue(DAY0 + 2 * d * 24 * HOUR + 9 * HOUR))
        .collect();
    puffs.extend((14..21).map(|d| rescue(DAY0 + d * 24 * HOUR + 9 * HOUR)));
    let (_, alerts) = engine(puffs, DAY0 + 22 * 24 * HOUR);
    let rising: Vec<_> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::RescueOveruse)
        .map(|a| (a.time_us - DAY0) / (24 * HOUR))
        .collect();
    // Day 18: 6 puffs in the last 7 days (days 12 and 14 to 18) against 3 (days 6, 8, 10);
    // day 17 had 5 against 3.
    assert_eq!(rising.first(), Some(&18), "{alerts:#?}");
    let first = alerts.iter().find(|a| a.event == AlertEvent::RescueOveruse);
    assert!(
        first.is_some_and(|a| a.summary.contains("rising")),
        "{first:?}"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Whatever order doses arrive in within the lateness (the engine applies each tick's
    /// records in its own order), no dose is credited twice and no slot gets two doses, and the
    /// alerts are those of the doses in time order.
    #[test]
    fn no_dose_is_credited_twice_whatever_the_arrival_order(
        times in proptest::collection::vec(0i64..4 * 24 * 60, 0..16),
        jitter in proptest::collection::vec(0i64..60, 16),
    ) {
        let doses: Vec<i64> = times.iter().map(|m| DAY0 + m * MIN).collect();
        let mut arrival: Vec<(i64, i64)> = doses
            .iter()
            .zip(&jitter)
            .map(|(&t, &j)| (t + j * 1_000_000, t))
            .collect();
        arrival.sort();
        let end = DAY0 + 5 * 24 * HOUR;
        let (m, alerts) = engine(arrival.iter().map(|&(_, t)| taken(t)).collect(), end);
        let mut in_order = doses.clone();
        in_order.sort();
        let (_, expected) = engine(in_order.iter().map(|&t| taken(t)).collect(), end);
        prop_assert_eq!(&alerts, &expected);
        let credits: Vec<(i64, i64)> = m.rules().medication.doses()[0]
            .credits()
            .filter_map(|(at, t)| t.map(|t| (at, t)))
            .collect();
        // Each slot once (credits are per slot); each dose time used at most as often as it
        // was reported once (an exact repeat is one report).
        let mut distinct = in_order.clone();
        distinct.dedup();
        let mut used: Vec<i64> = credits.iter().map(|c| c.1).collect();
        used.sort();
        let before = used.len();
        used.dedup();
        prop_assert_eq!(before, used.len(), "a dose credited twice: {:?}", credits);
        prop_assert!(used.iter().all(|t| distinct.binary_search(t).is_ok()));
        let mut slots: Vec<i64> = credits.iter().map(|c| c.0).collect();
        slots.dedup();
        prop_assert_eq!(slots.len(), credits.len());
    }
}
