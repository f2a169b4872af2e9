use proptest::prelude::*;

use super::*;
use crate::observation::{Acvpu, EventTime, Identifier, Observation, Unit, Value, Vital};

const TICK_US: i64 = 1_000_000;
const T0: i64 = 1_700_000_000_000_000;

fn wire(patient: &str, time_us: i64, rest: &str) -> Observation {
    let time = EventTime::from_micros(time_us).to_rfc3339();
    let text =
        format!(r#"{{"patient":"{patient}","device":"d-{patient}","time":"{time}",{rest}}}"#);
    Observation::from_json(text.as_bytes()).unwrap()
}

/// One of every shape of event: numbers with and without a device, a letter, a code, a kind
/// with its detail (kept whole), and events that are not observations.
fn event(shape: u8, patient: u8, time_us: i64, number: f64) -> Event {
    let p = format!("p{patient}");
    let id = Identifier::new(&p).unwrap();
    let device = Identifier::new(&format!("m{}", patient % 2)).unwrap();
    let time = EventTime::from_micros(time_us);
    let plain = |device, vital, value, unit| {
        Event::Observation(Observation::new(id.clone(), device, time, vital, value, unit).unwrap())
    };
    match shape % 7 {
        0 => plain(
            Some(device),
            Vital::HeartRate,
            Value::Number(number),
            Some(Unit::PerMinute),
        ),
        1 => plain(
            None,
            Vital::HeartRate,
            Value::Number(number),
            Some(Unit::PerMinute),
        ),
        2 => plain(
            Some(device),
            Vital::Consciousness,
            Value::Acvpu(Acvpu::V),
            None,
        ),
        3 => Event::Observation(wire(
            &p,
            time_us,
            r#""vital":"pump_event","value":"occlusion""#,
        )),
        4 => Event::Observation(wire(
            &p,
            time_us,
            r#""vital":"medication","value":"taken","medication":"metformin""#,
        )),
        5 => Event::End {
            worker: u64::from(patient),
            time_us,
        },
        _ => Event::Snapshot {
            worker: 0,
            at_us: time_us,
        },
    }
}

#[test]
fn a_plain_observation_waits_in_24_bytes() {
    assert_eq!(std::mem::size_of::<Compact>(), 24);
    assert_eq!(std::mem::size_of::<Event>(), 72);
}

#[test]
fn an_observation_outside_its_ticks_range_waits_whole_and_comes_back() {
    let mut pending = Pending::new(TICK_US);
    let tick = T0 / TICK_US;
    // Filed under a tick before its time by more than 2³² µs, and under one after it.
    let far = event(0, 1, T0 + 5_000_000_000, 80.0);
    let before = event(0, 1, T0 - 1, 81.0);
    pending.push(tick, far.clone());
    pending.push(tick, before.clone());
    let mut out = Vec::new();
    assert!(pending.take(tick, &mut out));
    assert_eq!(out, vec![far, before]);
    assert!(!pending.take(tick, &mut out));
    assert!(out.is_empty());
}

proptest! {
    /// Whatever the events and however they are spread over ticks, each tick comes back with
    /// the events filed under it in the order they were filed, and no id is left in the table.
    #[test]
    fn every_tick_comes_back_as_it_was_filed(
        filed in prop::collection::vec(
            (0i64..4, any::<u8>(), 0u8..6, 0i64..TICK_US, 20.0f64..250.0),
            0..200,
        ),
        batch in 1usize..20,
    ) {
        let mut pending = Pending::new(TICK_US);
        let base = T0 / TICK_US;
        let mut expected: BTreeMap<i64, Vec<Event>> = BTreeMap::new();
        for chunk in filed.chunks(batch) {
            let tick = base + chunk[0].0;
            let mut events: Vec<Event> = chunk
                .iter()
                .map(|&(_, shape, patient, offset, n)| event(shape, patient, tick * TICK_US + offset, n))
                .collect();
            expected.entry(tick).or_default().extend(events.iter().cloned());
            pending.append(tick, &mut events);
            prop_assert!(events.is_empty());
        }
        prop_assert_eq!(pending.first_tick(), expected.keys().next().copied());
        let mut out = Vec::new();
        for (tick, events) in &expected {
            prop_assert!(pending.take(*tick, &mut out));
            prop_assert_eq!(&out, events);
        }
        prop_assert_eq!(pending.first_tick(), None);
        prop_assert!(pending.ids.index.is_empty());
        prop_assert!(pending.ids.slots.iter().all(|s| s.waiting == 0));
    }
}
