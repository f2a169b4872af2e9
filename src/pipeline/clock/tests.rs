use std::time::Instant;

use proptest::prelude::*;

use super::*;

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
const T0: i64 = 1_767_571_200 * S;

fn settings() -> ClockSettings {
    ClockSettings {
        devices: 2,
        tick_us: S,
        lateness_us: MIN,
        max_jump_us: 15 * MIN,
        max_skew_us: None,
    }
}

/// One record through the clock, as the source operator gives it.
fn offer(
    clock: &mut PartitionClock<usize>,
    device: u64,
    time: i64,
    ingest: i64,
    item: usize,
    out: &mut Vec<(usize, Verdict)>,
) {
    match clock.judge(device, time, ingest, out) {
        Judged::Now(verdict) => out.push((item, verdict)),
        Judged::Waits => clock.wait(device, time, ingest, item, out),
    }
}

/// Feeds `(device, time)` records, each carrying its index, and returns every verdict by index.
fn run(clock: &mut PartitionClock<usize>, records: &[(u64, i64)]) -> Vec<Option<Verdict>> {
    let mut verdicts = vec![None; records.len()];
    let mut out = Vec::new();
    clock.begin(Instant::now(), &mut out);
    for (i, &(device, time)) in records.iter().enumerate() {
        offer(clock, device, time, time, i, &mut out);
        for (j, v) in out.drain(..) {
            assert!(verdicts[j].is_none(), "record {j} judged twice");
            verdicts[j] = Some(v);
        }
    }
    clock.finish(&mut out);
    for (j, v) in out.drain(..) {
        assert!(verdicts[j].is_none(), "record {j} judged twice");
        verdicts[j] = Some(v);
    }
    verdicts
}

/// Three devices sending every second from T0 for `seconds`.
fn ward(seconds: i64) -> Vec<(u64, i64)> {
    (0..seconds)
        .flat_map(|s| (1..=3).map(move |d| (d, T0 + s * S)))
        .collect()
}

fn held(v: &Option<Verdict>) -> Option<HoldKind> {
    match v {
        Some(Verdict::Held(h)) => Some(h.kind),
        _ => None,
    }
}

#[test]
fn one_device_far_ahead_moves_nothing_and_all_its_records_are_held() {
    let mut records = ward(600);
    // Device 9 reports times 20 months ahead, once a second from the 100th second on.
    let skewed: Vec<usize> = (0..50).map(|k| 300 + k * 6).collect();
    for (n, &at) in skewed.iter().enumerate() {
        records.insert(at, (9, T0 + 600 * 86_400 * S + n as i64 * S));
    }
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    for (i, v) in verdicts.iter().enumerate() {
        if records[i].0 == 9 {
            assert_eq!(held(v), Some(HoldKind::Ahead), "record {i}");
        } else {
            assert_eq!(*v, Some(Verdict::OnTime), "record {i}");
        }
    }
    assert_eq!(clock.clock_us(), Some(T0 + 599 * S));
}

#[test]
fn a_wrong_clock_is_held_after_a_minute_of_the_ward_and_its_alert_is_at_the_wards_time() {
    let mut records = ward(300);
    records.insert(30, (9, T0 + 86_400 * S));
    let mut clock = PartitionClock::new(settings());
    let mut out = Vec::new();
    clock.begin(Instant::now(), &mut out);
    let mut decided_at = None;
    for (i, &(device, time)) in records.iter().enumerate() {
        offer(&mut clock, device, time, time, i, &mut out);
        if let Some((_, Verdict::Held(hold))) = out.iter().find(|(j, _)| *j == 30) {
            decided_at = Some((i, *hold));
        }
        out.clear();
    }
    let (i, hold) = decided_at.expect("the skewed record was held");
    // Held once the ward's clock had moved on a minute since it arrived (at 9 s).
    assert_eq!(records[i], (2, T0 + 69 * S), "decided at record {i}");
    assert_eq!(hold.at_us, T0 + 69 * S);
    assert_eq!(hold.skew_us, 86_400 * S - 69 * S);
    assert_eq!(hold.describe(), "24 h ahead of the ward's clock");
}

#[test]
fn a_whole_stream_that_jumps_a_day_moves_on_and_holds_nothing() {
    let mut records = ward(120);
    let day = 86_400 * S;
    records.extend(ward(120).into_iter().map(|(d, t)| (d, t + day)));
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::OnTime)),
        "{verdicts:?}"
    );
    assert_eq!(clock.clock_us(), Some(T0 + day + 119 * S));
}

#[test]
fn a_device_reset_to_2000_is_held_behind_and_late_records_are_late() {
    let mut records = ward(300);
    let y2000 = 946_684_800 * S;
    // At the 200th second of the ward's clock (record 600).
    records.insert(600, (9, y2000));
    records.insert(601, (1, T0 + 130 * S)); // 69 s behind: late
    records.insert(602, (2, T0 + 170 * S)); // 29 s behind: on time
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    assert_eq!(held(&verdicts[600]), Some(HoldKind::Behind));
    assert_eq!(verdicts[601], Some(Verdict::Late));
    assert_eq!(verdicts[602], Some(Verdict::OnTime));
    let Some(Verdict::Held(hold)) = verdicts[600] else {
        unreachable!()
    };
    assert_eq!(hold.describe(), "26 years behind the ward's clock");
}

#[test]
fn a_first_record_from_a_wrong_clock_does_not_set_the_time() {
    let mut records = vec![(9, T0 + 600 * 86_400 * S)];
    records.extend(ward(200));
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    assert_eq!(held(&verdicts[0]), Some(HoldKind::Ahead));
    assert!(verdicts[1..].iter().all(|v| *v == Some(Verdict::OnTime)));
}

#[test]
fn a_device_a_little_ahead_and_accepted_first_does_not_make_the_others_late() {
    // Device 1 runs 100 s ahead (believable: within the jump), and its records come first.
    let mut records: Vec<(u64, i64)> = (0..5).map(|s| (1, T0 + (100 + s) * S)).collect();
    for s in 0..300 {
        records.extend((1..=3).map(|d| (d, T0 + s * S + if d == 1 { 105 * S } else { 0 })));
    }
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::OnTime)),
        "{verdicts:?}"
    );
    // It follows the second most advanced device, not the one ahead.
    assert_eq!(clock.clock_us(), Some(T0 + 299 * S));
}

#[test]
fn devices_back_from_silence_take_the_clock_back_from_one_running_ahead() {
    let mut clock = PartitionClock::new(settings());
    let mut out = Vec::new();
    let start = Instant::now();
    clock.begin(start, &mut out);
    for (i, device) in [1, 2, 3].into_iter().enumerate() {
        offer(&mut clock, device, T0, T0, i, &mut out);
    }
    // Devices 2 and 3 fall silent while device 1, 100 s ahead, goes on alone.
    clock.begin(start + IDLE, &mut out);
    offer(&mut clock, 1, T0 + 130 * S, T0, 3, &mut out);
    assert_eq!(clock.clock_us(), Some(T0 + 130 * S));
    out.clear();
    // They come back at the ward's time: late while behind the clock, until they catch up
    // with it; from then on the clock follows them again, not device 1.
    let mut item = 4;
    for s in 31..200 {
        clock.begin(
            start + IDLE + std::time::Duration::from_millis(s as u64),
            &mut out,
        );
        for d in [1, 2, 3] {
            let time = T0 + s * S + if d == 1 { 100 * S } else { 0 };
            offer(&mut clock, d, time, T0, item, &mut out);
            item += 1;
        }
    }
    let late = out.iter().filter(|(_, v)| *v == Verdict::Late).count();
    assert!(late < 2 * 80, "{late} late");
    assert!(out.iter().all(|(_, v)| !matches!(v, Verdict::Held(_))));
    assert_eq!(clock.clock_us(), Some(T0 + 199 * S));
}

#[test]
fn a_partition_with_one_device_follows_it_through_a_jump() {
    let records: Vec<(u64, i64)> = (0..100)
        .map(|s| (1, T0 + s * S + if s >= 50 { 86_400 * S } else { 0 }))
        .collect();
    let mut clock = PartitionClock::new(settings());
    let verdicts = run(&mut clock, &records);
    assert!(
        verdicts.iter().all(|v| *v == Some(Verdict::OnTime)),
        "{verdicts:?}"
    );
}

#[test]
fn a_device_silent_for_idle_no_longer_holds_the_clock_back() {
    let mut clock = PartitionClock::new(settings());
    let mut out = Vec::new();
    let start = Instant::now();
    clock.begin(start, &mut out);
    for (i, device) in [1, 2, 3].into_iter().enumerate() {
        offer(&mut clock, device, T0, T0, i, &mut out);
    }
    // Devices 2 and 3 fall silent; device 1 goes on for ten minutes.
    offer(&mut clock, 1, T0 + 600 * S, T0, 3, &mut out);
    assert_eq!(clock.clock_us(), Some(T0));
    clock.begin(start + IDLE, &mut out);
    offer(&mut clock, 1, T0 + 601 * S, T0, 4, &mut out);
    assert_eq!(clock.clock_us(), Some(T0 + 601 * S));
}

#[test]
fn a_time_far_ahead_of_the_wall_clock_is_held_in_a_live_source() {
    let mut clock = PartitionClock::new(ClockSettings {
        max_skew_us: Some(5 * MIN),
        ..settings()
    });
    let mut out = Vec::new();
    clock.begin(Instant::now(), &mut out);
    for (i, device) in [1, 2, 3].into_iter().enumerate() {
        offer(&mut clock, device, T0, T0 + S, i, &mut out);
    }
    offer(&mut clock, 1, T0 + 2 * 3600 * S, T0 + 2 * S, 3, &mut out);
    let verdict = out.iter().find(|(i, _)| *i == 3).map(|(_, v)| *v);
    let Some(Verdict::Held(hold)) = verdict else {
        panic!("{out:?}")
    };
    assert_eq!(hold.kind, HoldKind::WallClock);
    assert_eq!(hold.describe(), "120 min ahead of the wall clock");
    assert_eq!(hold.at_us, T0);
}

#[test]
fn spans_read_as_a_person_says_them() {
    for (us, text) in [
        (45 * S, "45 s"),
        (12 * MIN, "12 min"),
        (3 * 3600 * S, "3 h"),
        (4 * 86_400 * S, "4 days"),
        (600 * 86_400 * S, "20 months"),
        (89 * MIN + 29 * S, "89 min"),
        (26 * 366 * 86_400 * S, "26 years"),
    ] {
        assert_eq!(span(us as u64), text);
    }
}

proptest! {
    /// Once the clock has started from three devices, a fourth whose every time is held (far
    /// ahead or far behind, from any record on) changes no verdict of any other record.
    #[test]
    fn a_device_whose_times_are_held_changes_no_other_verdict(
        gaps in proptest::collection::vec((1u64..=3, 0i64..3, 0i64..120), 1..300),
        inserts in proptest::collection::vec((0usize..300, any::<bool>(), 1i64..1_000_000), 1..40),
    ) {
        // Three devices that start together, then send with small disorder and some lateness.
        let mut others: Vec<(u64, i64)> = (1..=3).map(|d| (d, T0)).collect();
        let mut now = T0;
        for (device, step, behind) in gaps {
            now += step * S;
            others.push((device, now - behind * S));
        }
        let mut with = others.clone();
        for (at, ahead, minutes) in inserts {
            let offset = (20 + minutes) * MIN * if ahead { 1 } else { -1 };
            let at = (at % others.len()).max(3);
            // Far from the other devices' record there, never from an earlier insert (two
            // inserts in one place, one ahead and one behind, would cancel out).
            let near = with[..=at].iter().rev().find(|(d, _)| *d != 9);
            let time = near.map_or(T0, |r| r.1) + offset;
            with.insert(at, (9, time));
        }
        let alone = run(&mut PartitionClock::new(settings()), &others);
        let mixed = run(&mut PartitionClock::new(settings()), &with);
        let mixed_others: Vec<Option<Verdict>> = with
            .iter()
            .zip(&mixed)
            .filter(|((d, _), _)| *d != 9)
            .map(|(_, v)| *v)
            .collect();
        for (i, ((d, _), v)) in with.iter().zip(&mixed).enumerate() {
            if *d == 9 {
                prop_assert!(held(v).is_some(), "record {} of the wrong clock: {:?}", i, v);
            }
        }
        prop_assert_eq!(mixed_others, alone);
    }
}
