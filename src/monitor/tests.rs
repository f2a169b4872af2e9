use super::*;
use crate::alerting::{AlertEvent, AlertKind, Severity};
use crate::config::PipelineConfig;
use crate::news2::{Band, Status};
use crate::observation::{Acvpu, Unit, Value};
use proptest::prelude::*;

const S: i64 = 1_000_000;
const MIN: i64 = 60 * S;
const H: i64 = 60 * MIN;

fn settings() -> MonitorSettings {
    let config = PipelineConfig::parse("[source]\nkind = \"simulator\"\n", None).unwrap();
    MonitorSettings::from_config(&config)
}

fn obs(t_us: i64, vital: Vital, value: f64) -> Observation {
    let (value, unit) = match vital {
        Vital::Consciousness => (Value::Acvpu(Acvpu::ALL[value as usize]), None),
        Vital::RespiratoryRate | Vital::HeartRate => (Value::Number(value), Some(Unit::PerMinute)),
        Vital::Spo2 => (Value::Number(value), Some(Unit::Percent)),
        Vital::Temperature => (Value::Number(value), Some(Unit::Celsius)),
        Vital::SystolicBp | Vital::DiastolicBp => {
            (Value::Number(value), Some(Unit::MillimetresOfMercury))
        }
        Vital::SupplementalOxygen => (Value::Number(value), Some(Unit::LitresPerMinute)),
        Vital::Glucose => (Value::Number(value), Some(Unit::MilligramsPerDecilitre)),
        other => panic!("{other} is not a measurement of this helper"),
    };
    Observation::new(
        Identifier::new("p1").unwrap(),
        None,
        EventTime::from_micros(t_us),
        vital,
        value,
        unit,
    )
    .unwrap()
}

/// A complete set at `t`: rr, spo2, oxygen flow, sbp, hr, acvpu, temp.
fn set(t: i64, values: [f64; 7]) -> Vec<Observation> {
    let vitals = [
        Vital::RespiratoryRate,
        Vital::Spo2,
        Vital::SupplementalOxygen,
        Vital::SystolicBp,
        Vital::HeartRate,
        Vital::Consciousness,
        Vital::Temperature,
    ];
    vitals
        .into_iter()
        .zip(values)
        .map(|(v, x)| obs(t, v, x))
        .collect()
}

const NORMAL: [f64; 7] = [16.0, 98.0, 0.0, 120.0, 70.0, 0.0, 37.0];
const HIGH: [f64; 7] = [26.0, 91.0, 0.0, 120.0, 135.0, 0.0, 37.0]; // 3 + 3 + 3 = 9

/// The alerts that page people (board state, score updates and reminders, left out).
fn run(m: &mut PatientMonitor, s: &MonitorSettings, observations: &[Observation]) -> Vec<Alert> {
    let mut out = run_all(m, s, observations);
    out.retain(Alert::pages);
    out
}

fn run_all(
    m: &mut PatientMonitor,
    s: &MonitorSettings,
    observations: &[Observation],
) -> Vec<Alert> {
    let mut out = Vec::new();
    m.observe_set(s, observations, &mut out);
    out
}

#[test]
fn a_score_update_comes_when_the_total_band_or_completeness_changes_and_only_then() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let updates = |alerts: Vec<Alert>| -> Vec<String> {
        alerts
            .into_iter()
            .filter(|a| a.event == crate::alerting::AlertEvent::Scored)
            .map(|a| format!("{} {}", a.time, a.summary))
            .collect()
    };
    // The same normal set every half hour: one update, the first complete score.
    let mut normal = Vec::new();
    for k in 0..4 {
        normal.extend(set(k * 30 * MIN, NORMAL));
    }
    let first = updates(run_all(&mut m, &s, &normal));
    assert_eq!(first, vec!["1970-01-01T00:00:00Z NEWS2 0, band low"]);
    // A high set: an update (and the band alert, which pages).
    let all = run_all(&mut m, &s, &set(2 * H + 10 * MIN, HIGH));
    assert!(
        all.iter()
            .any(|a| a.pages() && a.event == crate::alerting::AlertEvent::Raised)
    );
    let high = updates(all);
    assert_eq!(high.len(), 1, "{high:?}");
    assert!(high[0].contains("band high"), "{high:?}");
    // The same high set again: nothing new to show.
    assert!(updates(run_all(&mut m, &s, &set(2 * H + 40 * MIN, HIGH))).is_empty());
}

#[test]
fn a_stable_complete_patient_raises_nothing() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut all = Vec::new();
    for k in 0..12 {
        all.extend(set(k * 30 * MIN, NORMAL));
    }
    let alerts = run(&mut m, &s, &all);
    assert!(alerts.is_empty(), "{alerts:#?}");
    let (score, _) = m.score_at(&s, 6 * H);
    assert_eq!(
        (score.status, score.band),
        (Status::Complete, Some(Band::Low))
    );
}

#[test]
fn a_rising_band_is_alerted_with_its_evidence() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut observations = set(0, NORMAL);
    observations.extend(set(10 * MIN, HIGH));
    let alerts = run(&mut m, &s, &observations);
    // One set at one time is scored once: one alert, straight to high.
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let high = &alerts[0];
    assert_eq!(
        (high.kind, high.event, high.severity),
        (AlertKind::News2, AlertEvent::Raised, Severity::High)
    );
    assert_eq!(high.time_us, 10 * MIN);
    let evidence = high.evidence.as_ref().and_then(|e| e.news2()).unwrap();
    assert_eq!(evidence.band, Some(Band::High));
    assert_eq!(evidence.values[0].value.as_deref(), Some("26"));
    assert_eq!(evidence.values[0].age_s, Some(0));
    assert!(high.response.starts_with("emergency response"));
}

#[test]
fn reminders_follow_the_band_until_k_lower_sets() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &set(0, HIGH));
    // Reminders every 15 minutes while high; the data stay fresh for an hour.
    m.advance(&s, 50 * MIN, &mut alerts);
    let reminders: Vec<i64> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::Reminder)
        .map(|a| a.time_us)
        .collect();
    assert_eq!(reminders, vec![15 * MIN, 30 * MIN, 45 * MIN]);
    // Three new normal sets (K = 3) bring it down.
    let mut normal = Vec::new();
    for (k, hr) in [70.0, 71.0, 72.0].into_iter().enumerate() {
        let mut values = NORMAL;
        values[4] = hr;
        normal.extend(set(50 * MIN + k as i64 * 5 * MIN, values));
    }
    let later = run(&mut m, &s, &normal);
    let lowered: Vec<&Alert> = later
        .iter()
        .filter(|a| a.event == AlertEvent::Lowered)
        .collect();
    assert_eq!(lowered.len(), 1, "{later:#?}");
    assert_eq!(lowered[0].time_us, 60 * MIN); // K = 3 lower sets, 5 min apart
}

#[test]
fn silence_makes_parameters_stale_and_the_score_incomplete() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &set(0, NORMAL));
    m.advance(&s, 3 * H, &mut alerts);
    // hr, rr and spo2 have a 1 h limit, sbp 2 h: each goes stale once, at its own time.
    let stale: Vec<(String, i64)> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::Stale)
        .map(|a| (a.summary.split(':').next().unwrap().to_owned(), a.time_us))
        .collect();
    assert_eq!(
        stale,
        vec![
            ("rr".into(), H + 1),
            ("spo2".into(), H + 1),
            ("hr".into(), H + 1),
            ("sbp".into(), 2 * H + 1)
        ]
    );
    let (score, _) = m.score_at(&s, 3 * H);
    assert_eq!(score.status, Status::Incomplete);
    assert_ne!(score.band, Some(Band::Low));
    // No second alert for the same silence.
    let before = alerts.len();
    m.advance(&s, 5 * H, &mut alerts);
    assert_eq!(alerts.len(), before);
}

#[test]
fn parameters_never_received_are_reported_missing() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &[obs(0, Vital::HeartRate, 70.0)]);
    m.advance(&s, H + 2, &mut alerts);
    let missing: Vec<&str> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::Missing)
        .map(|a| a.summary.as_str())
        .collect();
    assert_eq!(
        missing,
        vec![
            "rr: no value received for 60 min since monitoring began",
            "spo2: no value received for 60 min since monitoring began"
        ]
    );
    assert!(
        alerts
            .iter()
            .any(|a| a.event == AlertEvent::Stale && a.summary.starts_with("hr"))
    );
}

#[test]
fn invalid_values_are_reported_at_most_once_per_limit() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &set(0, NORMAL));
    for k in 1..=5 {
        m.invalid(
            &s,
            Vital::HeartRate,
            EventTime::from_micros(k * S),
            "`value` 900 /min is not a possible heart rate",
            &mut alerts,
        );
    }
    let invalid: Vec<&Alert> = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::Invalid)
        .collect();
    assert_eq!(invalid.len(), 1);
    assert_eq!(invalid[0].time_us, S);
    let (score, _) = m.score_at(&s, 6 * S);
    assert_eq!(score.status, Status::Invalid);
}

#[test]
fn a_scale_2_prescription_takes_effect_from_its_time() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut values = NORMAL;
    values[1] = 89.0; // 3 on scale 1, 0 on scale 2
    let alerts = run(&mut m, &s, &set(0, values));
    assert_eq!(alerts.len(), 1);
    assert_eq!(m.score_at(&s, S).0.total, 3);
    let mut out = Vec::new();
    m.prescribe(
        &s,
        EventTime::from_micros(2 * S),
        &crate::registry::Prescribed::Scale(Scale::Two),
        &mut out,
    );
    assert_eq!(m.score_at(&s, 3 * S).0.total, 0);
}

#[test]
fn state_is_bounded() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut out = Vec::new();
    for second in 0..(8 * 3600) {
        m.observe(&s, &obs(second * S, Vital::HeartRate, 70.0), &mut out);
    }
    // About 13 buckets per window width, whatever the rate.
    assert!(m.window(Vital::HeartRate).buckets() <= s.picture.windows.max_buckets());
    assert!(
        s.picture.windows.max_buckets() <= 3 * 13 + 3,
        "{}",
        s.picture.windows.max_buckets()
    );
    assert!(m.state_bytes() < 64 * 1024, "{} bytes", m.state_bytes());
}

#[test]
fn the_rules_read_the_glucose_trend_and_the_models_windows_only() {
    let mut s = settings();
    s.keep_read_windows();
    let fifteen_minutes = 15 * 60_000;
    for vital in Vital::ALL {
        let kept = s.picture.layout(vital).durations().to_vec();
        let expected = if vital == Vital::Glucose {
            vec![fifteen_minutes]
        } else {
            vec![]
        };
        assert_eq!(kept, expected, "{vital}");
    }
}

/// A window kept alone gives the statistics it gave beside the others, to the bit, with fewer
/// buckets; a vital without windows still knows its last value.
#[test]
fn a_kept_window_is_the_same_alone_and_the_others_cost_nothing() {
    let all = settings();
    let mut kept = settings();
    kept.picture
        .keep_windows(&[(Vital::HeartRate, 4 * 3_600_000)]);
    let (mut a, mut b) = (
        PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One),
        PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One),
    );
    let mut out = Vec::new();
    for second in 0..(6 * 3600) {
        let hr = 60.0 + ((second * 7919) % 61) as f64 * 0.5;
        for (m, s) in [(&mut a, &all), (&mut b, &kept)] {
            m.observe(s, &obs(second * S, Vital::HeartRate, hr), &mut out);
            m.observe(s, &obs(second * S, Vital::Spo2, 97.0), &mut out);
        }
    }
    let now = EventTime::from_micros(6 * H - S);
    let stats = |m: &PatientMonitor, s: &MonitorSettings| m.window_stats(s, Vital::HeartRate, now);
    let (sa, sb) = (stats(&a, &all), stats(&b, &kept));
    assert!(sa.iter().all(Option::is_some));
    // Durations 15 min, 1 h, 4 h: only the 4 h one is kept.
    assert_eq!(sb[2], sa[2]);
    assert_eq!((sb[0], sb[1]), (None, None));
    assert!(b.window(Vital::HeartRate).buckets() < a.window(Vital::HeartRate).buckets());
    assert_eq!(b.window(Vital::Spo2).buckets(), 0);
    assert_eq!(b.window(Vital::Spo2).last(), a.window(Vital::Spo2).last());
    assert!(b.state_bytes() + 2_000 < a.state_bytes());
}

proptest! {
    /// Alerts do not depend on how often time is advanced between inputs.
    #[test]
    fn alerts_do_not_depend_on_how_time_is_advanced(
        steps in proptest::collection::vec(1i64..(3 * H), 1..20),
        hrs in proptest::collection::vec(40.0f64..160.0, 1..20),
    ) {
        let s = settings();
        let mut inputs = Vec::new();
        let mut t = 0;
        for (i, hr) in hrs.iter().enumerate() {
            t += steps[i % steps.len()] / 7;
            inputs.extend(set(t, [16.0, 97.0, 0.0, 120.0, *hr, 0.0, 37.0]));
        }
        let end = t + 6 * H;
        let mut a = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
        let mut b = a.clone();
        let mut out_a = Vec::new();
        let mut out_b = Vec::new();
        for o in &inputs {
            a.observe(&s, o, &mut out_a);
        }
        a.advance(&s, end, &mut out_a);
        for o in &inputs {
            // b is nudged forward in many small steps before each input
            let mut x = 0;
            while x < o.time().micros() {
                b.advance(&s, x, &mut out_b);
                x += 7 * MIN;
            }
            b.observe(&s, o, &mut out_b);
        }
        b.advance(&s, end, &mut out_b);
        prop_assert_eq!(out_a, out_b);
    }
}

#[test]
fn a_brief_artefact_is_not_charted_but_a_sustained_change_is() {
    let s = settings(); // settle 2 min
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &set(0, NORMAL));
    // SpO2 every 5 s: 30 s of probe-off at 70 % inside steady 98 %.
    for k in 1..=60 {
        let spo2 = if (20..26).contains(&k) { 70.0 } else { 98.0 };
        m.observe(&s, &obs(k * 5 * S, Vital::Spo2, spo2), &mut alerts);
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
    // A real fall, sustained for over half the settle stretch, is charted.
    for k in 61..=90 {
        m.observe(&s, &obs(k * 5 * S, Vital::Spo2, 88.0), &mut alerts);
    }
    // The board hears of each new score as the median falls (half-way at the 72nd sample, an
    // even count's median; 88 at the 73rd), and of nothing before.
    let updates: Vec<i64> = alerts
        .iter()
        .filter(|a| !a.pages())
        .map(|a| a.time_us)
        .collect();
    assert_eq!(updates, vec![72 * 5 * S, 73 * 5 * S]);
    alerts.retain(Alert::pages);
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].event, AlertEvent::Raised);
    // 13 of 24 samples in the stretch are 88 by the 73rd: the median falls then.
    assert_eq!(alerts[0].time_us, 73 * 5 * S);
}

#[test]
fn reminders_pause_when_nothing_is_current_and_resume_with_new_data() {
    let s = settings();
    let mut m = PatientMonitor::new("p1", EventTime::from_micros(0), Scale::One);
    let mut alerts = run(&mut m, &s, &set(0, HIGH));
    // Everything goes stale by 12 h (the longest limit); no reminders after that.
    m.advance(&s, 48 * H, &mut alerts);
    let last_reminder = alerts
        .iter()
        .filter(|a| a.event == AlertEvent::Reminder)
        .map(|a| a.time_us)
        .max()
        .unwrap();
    assert!(last_reminder <= 12 * H + 1, "reminded at {last_reminder}");
    // A new value brings reminders back, one period later.
    let mut later = Vec::new();
    m.observe(&s, &obs(48 * H, Vital::HeartRate, 135.0), &mut later);
    m.advance(&s, 48 * H + 20 * MIN, &mut later);
    let reminders: Vec<i64> = later
        .iter()
        .filter(|a| a.event == AlertEvent::Reminder)
        .map(|a| a.time_us)
        .collect();
    assert_eq!(reminders, vec![48 * H + 15 * MIN]);
}
