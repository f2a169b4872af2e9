use crate::alerting::{Alert, AlertEvent, AlertKind, Severity};
use crate::config::PipelineConfig;
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::news2::Scale;
use crate::observation::{EventTime, Observation};

const MIN: i64 = 60_000_000;
const T0: i64 = 1_772_370_000_000_000; // 2026-03-01T13:00:00Z

fn settings(glucose: &str) -> MonitorSettings {
    let text = format!("[source]\nkind = \"simulator\"\n[glucose]\n{glucose}");
    MonitorSettings::from_config(&PipelineConfig::parse(&text, None).unwrap())
}

fn line(t: i64, rest: &str) -> Observation {
    let time = EventTime::from_micros(t).to_rfc3339();
    Observation::from_json(
        format!(r#"{{"patient":"h-1","device":"g7","time":"{time}",{rest}}}"#).as_bytes(),
    )
    .unwrap()
}

fn cgm(t: i64, mg_dl: f64) -> Observation {
    line(
        t,
        &format!(r#""vital":"glucose","value":{mg_dl},"unit":"mg/dL""#),
    )
}

fn meter(t: i64, mg_dl: f64) -> Observation {
    line(
        t,
        &format!(r#""vital":"glucose","value":{mg_dl},"unit":"mg/dL","method":"meter""#),
    )
}

/// Every alert of a patient fed `observations` (in time order), up to `until`.
fn run_until(s: &MonitorSettings, observations: &[Observation], until: i64) -> Vec<Alert> {
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(T0), Scale::One);
    let mut out = Vec::new();
    for o in observations {
        m.observe(s, o, &mut out);
    }
    m.advance(s, until, &mut out);
    out
}

fn run(s: &MonitorSettings, observations: &[Observation]) -> Vec<Alert> {
    let end = observations.last().map_or(T0, |o| o.time().micros());
    run_until(s, observations, end)
}

fn events(alerts: &[Alert]) -> Vec<(i64, AlertEvent, Severity)> {
    alerts
        .iter()
        .map(|a| ((a.time_us - T0) / MIN, a.event, a.severity))
        .collect()
}

/// CGM readings every 5 minutes from T0.
fn trace(values: &[f64]) -> Vec<Observation> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| cgm(T0 + i as i64 * 5 * MIN, v))
        .collect()
}

#[test]
fn urgent_low_below_55_and_not_at_55_and_repeats_every_five_minutes() {
    let s = settings("");
    assert!(
        run(&s, &trace(&[60.0, 55.0, 55.0]))
            .iter()
            .all(|a| a.event != AlertEvent::UrgentLow)
    );
    let alerts = run(&s, &trace(&[60.0, 54.0, 52.0, 51.0, 58.0, 53.0]));
    let urgent: Vec<_> = events(&alerts)
        .into_iter()
        .filter(|e| e.1 == AlertEvent::UrgentLow)
        .collect();
    assert_eq!(
        urgent,
        [5, 10, 15, 25].map(|m| (m, AlertEvent::UrgentLow, Severity::High))
    );
    assert!(alerts.iter().all(|a| a.kind == AlertKind::Glucose));
    // The repeat says how long it has lasted; the new episode starts again.
    assert!(
        alerts[1]
            .summary
            .starts_with("urgent low: glucose 54 mg/dL"),
        "{}",
        alerts[1].summary
    );
    let repeat = alerts.iter().find(|a| a.time_us == T0 + 15 * MIN).unwrap();
    assert!(
        repeat.summary.starts_with("urgent low for 10 min"),
        "{}",
        repeat.summary
    );
}

#[test]
fn a_reading_four_minutes_after_an_urgent_low_does_not_repeat_it() {
    let s = settings("");
    let readings = [
        cgm(T0, 50.0),
        cgm(T0 + 4 * MIN, 50.0),
        cgm(T0 + 5 * MIN, 50.0),
    ];
    let urgent: Vec<i64> = run(&s, &readings)
        .iter()
        .filter(|a| a.event == AlertEvent::UrgentLow)
        .map(|a| (a.time_us - T0) / MIN)
        .collect();
    assert_eq!(urgent, [0, 5]);
}

#[test]
fn a_meter_reading_below_55_is_an_urgent_low_too() {
    let alerts = run(&settings(""), &[meter(T0, 48.0)]);
    assert_eq!(
        events(&alerts),
        [(0, AlertEvent::UrgentLow, Severity::High)]
    );
    let facts = serde_json::to_value(&alerts[0].evidence).unwrap();
    assert_eq!(facts["method"], "meter");
}

#[test]
fn low_below_70_once_per_excursion() {
    // (66 falling 0.9 mg/dL/min is 48 in 20 minutes: urgent low soon, tested on its own.)
    let s = settings("urgent_low_soon = \"off\"");
    assert!(run(&s, &trace(&[75.0, 70.0, 70.0])).is_empty());
    let alerts = run(&s, &trace(&[75.0, 69.0, 66.0, 72.0, 68.0]));
    assert_eq!(
        events(&alerts),
        [
            (5, AlertEvent::Low, Severity::Medium),
            (20, AlertEvent::Low, Severity::Medium)
        ]
    );
}

#[test]
fn high_above_250_and_thresholds_are_configurable() {
    let s = settings("fast_rate = 5.0\nrapid_rate = 6.0");
    assert!(run(&s, &trace(&[240.0, 250.0])).is_empty());
    let alerts = run(&s, &trace(&[240.0, 251.0, 260.0]));
    assert_eq!(events(&alerts), [(5, AlertEvent::High, Severity::Warning)]);
    let s = settings(
        "high = 180\nlow = \"off\"\nfast_rate = 5.0\nrapid_rate = 6.0\nurgent_low_soon = \"off\"",
    );
    let alerts = run(&s, &trace(&[170.0, 181.0]));
    assert_eq!(events(&alerts), [(5, AlertEvent::High, Severity::Warning)]);
    assert!(run(&s, &trace(&[75.0, 65.0])).is_empty());
}

#[test]
fn falling_fast_at_2_per_minute_and_more_urgent_at_3() {
    let s = settings("low = \"off\"\nurgent_low_soon = \"off\"");
    // 1.8 mg/dL/min: not fast.
    assert!(run(&s, &trace(&[250.0, 241.0, 232.0, 223.0])).is_empty());
    // 2 mg/dL/min from the third reading (ten minutes of trend), then 3.
    let alerts = run(
        &s,
        &trace(&[250.0, 240.0, 230.0, 220.0, 200.0, 180.0, 160.0]),
    );
    assert_eq!(
        events(&alerts),
        [
            (10, AlertEvent::FallingFast, Severity::Warning),
            (25, AlertEvent::FallingFast, Severity::Medium)
        ]
    );
    assert!(
        alerts[0].summary.starts_with("glucose falling 2 mg/dL/min"),
        "{}",
        alerts[0].summary
    );
    let rising = run(&s, &trace(&[100.0, 110.0, 120.0]));
    assert_eq!(
        events(&rising),
        [(10, AlertEvent::RisingFast, Severity::Warning)]
    );
}

#[test]
fn urgent_low_soon_when_the_trend_reaches_55_within_20_minutes() {
    let s = settings("low = \"off\"\nfast_rate = 3.0\nrapid_rate = 4.0");
    // 1.5 mg/dL/min from 90: 60 in 20 minutes, not below 55.
    assert!(run(&s, &trace(&[105.0, 97.5, 90.0])).is_empty());
    // 2 mg/dL/min from 90: 50 in 20 minutes.
    let alerts = run(&s, &trace(&[110.0, 100.0, 90.0, 80.0]));
    assert_eq!(
        events(&alerts),
        [(10, AlertEvent::UrgentLowSoon, Severity::Medium)]
    );
    let facts = serde_json::to_value(&alerts[0].evidence).unwrap();
    assert_eq!(facts["predicted_mg_dl"], 50.0);
    assert_eq!(facts["minutes_to_urgent_low"], 17.5);
    assert_eq!(facts["readings"].as_array().unwrap().len(), 3);
}

#[test]
fn signal_loss_at_the_instant_20_minutes_pass_without_a_reading() {
    let s = settings("");
    let alerts = run_until(
        &s,
        &[cgm(T0, 120.0), cgm(T0 + 5 * MIN, 121.0)],
        T0 + 60 * MIN,
    );
    assert_eq!(
        events(&alerts),
        [(25, AlertEvent::SignalLoss, Severity::Warning)]
    );
    // A reading 19 minutes later, and none is lost.
    let alerts = run_until(
        &s,
        &[cgm(T0, 120.0), cgm(T0 + 19 * MIN, 121.0)],
        T0 + 39 * MIN,
    );
    assert!(alerts.is_empty(), "{alerts:#?}");
    // Once per silence: the next reading re-arms it.
    let alerts = run_until(
        &s,
        &[cgm(T0, 120.0), cgm(T0 + 30 * MIN, 121.0)],
        T0 + 90 * MIN,
    );
    assert_eq!(
        events(&alerts),
        [
            (20, AlertEvent::SignalLoss, Severity::Warning),
            (50, AlertEvent::SignalLoss, Severity::Warning)
        ]
    );
}

#[test]
fn a_sudden_drop_is_annotated_as_a_suspected_compression_low_and_never_downgraded() {
    let alerts = run(&settings(""), &trace(&[130.0, 128.0, 50.0]));
    let urgent = alerts
        .iter()
        .find(|a| a.event == AlertEvent::UrgentLow)
        .unwrap();
    assert_eq!(urgent.severity, Severity::High);
    let facts = serde_json::to_value(&urgent.evidence).unwrap();
    assert_eq!(facts["suspected_compression"]["from_mg_dl"], 128.0);
    assert_eq!(facts["suspected_compression"]["fall_mg_dl_per_min"], 15.6);
    // A fall a body can make is not annotated.
    let alerts = run(&settings(""), &trace(&[70.0, 62.0, 54.0]));
    let urgent = alerts
        .iter()
        .find(|a| a.event == AlertEvent::UrgentLow)
        .unwrap();
    let facts = serde_json::to_value(&urgent.evidence).unwrap();
    assert!(facts.get("suspected_compression").is_none(), "{facts}");
}

#[test]
fn a_warming_up_sensor_is_data_quality_and_its_readings_are_not_used() {
    let s = settings("");
    let start = EventTime::from_micros(T0).to_rfc3339();
    let mut readings = vec![line(
        T0,
        &format!(r#""vital":"device_status","sensor_start":"{start}""#),
    )];
    readings.extend([
        cgm(T0 + 5 * MIN, 40.0),
        cgm(T0 + 10 * MIN, 40.0),
        cgm(T0 + 30 * MIN, 40.0),
    ]);
    let alerts = run(&s, &readings);
    assert_eq!(
        alerts
            .iter()
            .map(|a| ((a.time_us - T0) / MIN, a.kind, a.event))
            .collect::<Vec<_>>(),
        [
            (5, AlertKind::DataQuality, AlertEvent::Warmup),
            (30, AlertKind::Glucose, AlertEvent::UrgentLow)
        ]
    );
}

#[test]
fn a_home_patient_with_only_a_cgm_is_never_missing_news2_parameters() {
    let alerts = run_until(&settings(""), &trace(&[120.0; 30]), T0 + 24 * 60 * MIN);
    // The CGM's own silence is the device rule's (offline), never a missing NEWS2 parameter.
    assert!(
        alerts
            .iter()
            .all(|a| matches!(a.kind, AlertKind::Glucose | AlertKind::Device)),
        "{alerts:#?}"
    );
}

#[test]
fn urgent_low_can_be_raised_but_never_turned_off_or_set_below_55() {
    let parse = |glucose: &str| {
        PipelineConfig::parse(
            &format!("[source]\nkind = \"simulator\"\n\n[glucose]\n{glucose}"),
            None,
        )
    };
    let err = parse("urgent_low = \"off\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 5: [glucose] `urgent_low` cannot be turned off: a glucose below 55 mg/dL always alarms"
    );
    let err = parse("low = 60\nurgent_low = 54").unwrap_err();
    assert_eq!(
        err.to_string(),
        "line 6: [glucose] `urgent_low` 54 mg/dL is below 55 mg/dL, the lowest it may be set"
    );
    let s = settings("urgent_low = 60");
    assert_eq!(
        events(&run(&s, &[cgm(T0, 58.0)])),
        [(0, AlertEvent::UrgentLow, Severity::High)]
    );
    let err = parse("signal_loss = \"soon\"").unwrap_err();
    assert!(err.to_string().contains("not a duration"), "{err}");
}

#[test]
fn backfilled_lows_are_one_note_a_minute_after_the_burst_and_never_an_alarm() {
    let s = settings("");
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(T0), Scale::One);
    let mut out = Vec::new();
    m.observe(&s, &cgm(T0 + 60 * MIN, 120.0), &mut out);
    let at = EventTime::from_micros(T0 + 61 * MIN);
    for (i, v) in [50.0, 44.0, 52.0].into_iter().enumerate() {
        m.backfill(&s, at, &cgm(T0 + (30 + 5 * i as i64) * MIN, v), &mut out);
    }
    m.advance(&s, T0 + 62 * MIN + 1, &mut out);
    assert_eq!(events(&out), [(62, AlertEvent::Backfilled, Severity::Info)]);
    let facts = serde_json::to_value(&out[0].evidence).unwrap();
    assert_eq!(
        (
            facts["readings"].as_u64(),
            facts["below_urgent_low"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(facts["lowest_mg_dl"], 44.0);
}
