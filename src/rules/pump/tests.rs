use crate::alerting::{Alert, AlertEvent, AlertKind, Severity};
use crate::config::PipelineConfig;
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::news2::Scale;
use crate::observation::{EventTime, Observation};

const MIN: i64 = 60_000_000;
const T0: i64 = 1_772_370_000_000_000;

fn settings() -> MonitorSettings {
    // The glucose rule's own alerts are off where they would only add noise here.
    let text = "[source]\nkind = \"simulator\"\n[glucose]\nhigh = \"off\"\nlow = \"off\"\n\
                fast_rate = 5.0\nrapid_rate = 6.0\nurgent_low_soon = \"off\"\n";
    MonitorSettings::from_config(&PipelineConfig::parse(text, None).unwrap())
}

fn line(t: i64, device: &str, rest: &str) -> Observation {
    let time = EventTime::from_micros(t).to_rfc3339();
    Observation::from_json(
        format!(r#"{{"patient":"h-1","device":"{device}","time":"{time}",{rest}}}"#).as_bytes(),
    )
    .unwrap()
}

fn pump(t: i64, code: &str) -> Observation {
    line(
        t,
        "pump-1",
        &format!(r#""vital":"pump_event","value":"{code}""#),
    )
}

fn bolus(t: i64, units: f64) -> Observation {
    line(
        t,
        "pump-1",
        &format!(r#""vital":"insulin","value":{units},"unit":"U","delivery":"bolus""#),
    )
}

/// CGM readings every 5 minutes from T0, then `then` 20 minutes on.
fn with_trace(values: &[f64], then: Vec<Observation>) -> Vec<Observation> {
    let mut out: Vec<Observation> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            line(
                T0 + i as i64 * 5 * MIN,
                "g7",
                &format!(r#""vital":"glucose","value":{v},"unit":"mg/dL""#),
            )
        })
        .collect();
    out.extend(then);
    out
}

fn pump_alerts(observations: &[Observation]) -> Vec<(i64, AlertEvent, Severity)> {
    let s = settings();
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(T0), Scale::One);
    let mut out: Vec<Alert> = Vec::new();
    for o in observations {
        m.observe(&s, o, &mut out);
    }
    out.iter()
        .filter(|a| a.kind == AlertKind::Pump)
        .map(|a| ((a.time_us - T0) / MIN, a.event, a.severity))
        .collect()
}

#[test]
fn each_alarm_is_an_alert_and_a_repeat_within_15_minutes_is_not() {
    let got = pump_alerts(&[
        pump(T0, "occlusion"),
        pump(T0 + 10 * MIN, "occlusion"),
        pump(T0 + 16 * MIN, "occlusion"),
        pump(T0 + 17 * MIN, "low_reservoir"),
        pump(T0 + 18 * MIN, "low_battery"),
        pump(T0 + 19 * MIN, "no_delivery"),
        pump(T0 + 20 * MIN, "suspend"),
        pump(T0 + 21 * MIN, "resume"),
    ]);
    assert_eq!(
        got,
        [
            (0, AlertEvent::Occlusion, Severity::Medium),
            (16, AlertEvent::Occlusion, Severity::Medium),
            (17, AlertEvent::LowReservoir, Severity::Warning),
            (18, AlertEvent::LowBattery, Severity::Warning),
            (19, AlertEvent::NoDelivery, Severity::Medium),
            (20, AlertEvent::Suspended, Severity::Medium),
        ]
    );
}

#[test]
fn no_insulin_while_glucose_rises_escalates_even_within_the_repeat() {
    // 2 mg/dL/min from 150: rising.
    let got = pump_alerts(&with_trace(
        &[150.0, 160.0, 170.0, 180.0],
        vec![pump(T0 + 15 * MIN, "occlusion")],
    ));
    assert_eq!(got, [(15, AlertEvent::Occlusion, Severity::High)]);
    // 0.5 mg/dL/min: not rising; the same alarm, escalated once glucose rises, again at once.
    let got = pump_alerts(&with_trace(
        &[150.0, 152.5, 155.0, 157.5],
        vec![pump(T0 + 15 * MIN, "suspend")],
    ));
    assert_eq!(got, [(15, AlertEvent::Suspended, Severity::Medium)]);
    let mut rising = with_trace(
        &[150.0, 152.5, 155.0, 157.5],
        vec![pump(T0 + 15 * MIN, "suspend")],
    );
    for (i, v) in [170.0, 185.0, 200.0].into_iter().enumerate() {
        rising.push(line(
            T0 + (20 + 5 * i as i64) * MIN,
            "g7",
            &format!(r#""vital":"glucose","value":{v},"unit":"mg/dL""#),
        ));
    }
    rising.push(pump(T0 + 31 * MIN, "suspend"));
    assert_eq!(
        pump_alerts(&rising),
        [
            (15, AlertEvent::Suspended, Severity::Medium),
            (31, AlertEvent::Suspended, Severity::High)
        ]
    );
}

#[test]
fn glucose_above_250_escalates_and_old_glucose_says_nothing() {
    let got = pump_alerts(&with_trace(
        &[260.0],
        vec![pump(T0 + 5 * MIN, "no_delivery")],
    ));
    assert_eq!(got, [(5, AlertEvent::NoDelivery, Severity::High)]);
    let got = pump_alerts(&with_trace(
        &[260.0],
        vec![pump(T0 + 31 * MIN, "no_delivery")],
    ));
    assert_eq!(got, [(31, AlertEvent::NoDelivery, Severity::Medium)]);
}

#[test]
fn a_bolus_while_glucose_falls_fast_below_100_is_risky() {
    // Falling 6 mg/dL/min: at least `[glucose] fast_rate` (5 in these settings).
    let fast = [150.0, 120.0, 90.0, 60.0];
    assert_eq!(
        pump_alerts(&with_trace(&fast, vec![bolus(T0 + 15 * MIN, 2.0)])),
        [(15, AlertEvent::RiskyBolus, Severity::High)]
    );
    // Falling fast but still high; below 100 but falling slowly: a bolus is not flagged.
    let high = [250.0, 220.0, 190.0, 160.0];
    assert!(pump_alerts(&with_trace(&high, vec![bolus(T0 + 15 * MIN, 2.0)])).is_empty());
    let slow = [96.0, 94.0, 92.0, 90.0];
    assert!(pump_alerts(&with_trace(&slow, vec![bolus(T0 + 15 * MIN, 2.0)])).is_empty());
}
