use crate::alerting::{Alert, AlertEvent, AlertKind, Severity};
use crate::config::PipelineConfig;
use crate::monitor::{MonitorSettings, PatientMonitor};
use crate::news2::Scale;
use crate::observation::{EventTime, Observation};

const MIN: i64 = 60_000_000;
const T0: i64 = 1_772_370_000_000_000; // 2026-03-01T13:00:00Z

fn settings(devices: &str) -> MonitorSettings {
    let text = format!("[source]\nkind = \"simulator\"\n[devices]\n{devices}");
    MonitorSettings::from_config(&PipelineConfig::parse(&text, None).unwrap())
}

fn line(t: i64, device: &str, rest: &str) -> Observation {
    let time = EventTime::from_micros(t).to_rfc3339();
    Observation::from_json(
        format!(r#"{{"patient":"h-1","device":"{device}","time":"{time}",{rest}}}"#).as_bytes(),
    )
    .unwrap()
}

fn cgm(t: i64) -> Observation {
    line(t, "g7", r#""vital":"glucose","value":120,"unit":"mg/dL""#)
}

fn status(t: i64, device: &str, fields: &str) -> Observation {
    line(t, device, &format!(r#""vital":"device_status",{fields}"#))
}

fn device_alerts(
    s: &MonitorSettings,
    observations: &[Observation],
    until: i64,
) -> Vec<(i64, AlertEvent, Severity)> {
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(T0), Scale::One);
    let mut out: Vec<Alert> = Vec::new();
    for o in observations {
        m.observe(s, o, &mut out);
    }
    m.advance(s, until, &mut out);
    out.iter()
        .filter(|a| a.kind == AlertKind::Device)
        .map(|a| ((a.time_us - T0) / MIN, a.event, a.severity))
        .collect()
}

#[test]
fn a_cgm_silent_for_an_hour_is_offline_once_and_recovers() {
    let s = settings("");
    // Readings every 5 min to 60 min, then silence: offline exactly at 120 min, not at 119.
    let mut readings: Vec<_> = (0..=12).map(|i| cgm(T0 + i * 5 * MIN)).collect();
    assert_eq!(device_alerts(&s, &readings, T0 + 120 * MIN), []);
    assert_eq!(
        device_alerts(&s, &readings, T0 + 300 * MIN),
        [(120, AlertEvent::Offline, Severity::Warning)]
    );
    readings.push(cgm(T0 + 200 * MIN));
    assert_eq!(
        device_alerts(&s, &readings, T0 + 201 * MIN),
        [
            (120, AlertEvent::Offline, Severity::Warning),
            (200, AlertEvent::Recovered, Severity::Info)
        ]
    );
}

#[test]
fn the_offline_alert_names_the_patient_and_what_is_unwatched() {
    let s = settings("");
    let mut m = PatientMonitor::new("h-1", EventTime::from_micros(T0), Scale::One);
    let mut out = Vec::new();
    m.observe(&s, &cgm(T0), &mut out);
    m.advance(&s, T0 + 90 * MIN, &mut out);
    let offline: Vec<_> = out
        .iter()
        .filter(|a| a.event == AlertEvent::Offline)
        .collect();
    assert_eq!(offline.len(), 1);
    assert_eq!(
        offline[0].summary,
        "CGM g7 silent for 60 min: h-1's glucose is no longer monitored"
    );
}

#[test]
fn each_kind_has_its_interval_and_a_bedside_monitor_is_off_by_default() {
    let s = settings("pill_bottle = \"2h\"");
    let bottle = line(
        T0,
        "b-1",
        r#""vital":"medication","value":"taken","medication":"m""#,
    );
    let monitor = line(
        T0,
        "mon-1",
        r#""vital":"heart_rate","value":80,"unit":"/min""#,
    );
    assert_eq!(
        device_alerts(&s, &[bottle.clone(), monitor.clone()], T0 + 600 * MIN),
        [(120, AlertEvent::Offline, Severity::Warning)]
    );
    let s = settings("pill_bottle = \"off\"\nmonitor = \"30m\"");
    assert_eq!(
        device_alerts(&s, &[bottle, monitor], T0 + 600 * MIN),
        [(30, AlertEvent::Offline, Severity::Warning)]
    );
}

#[test]
fn low_battery_at_20_percent_once_until_charged() {
    let s = settings("");
    let alerts = device_alerts(
        &s,
        &[
            status(T0, "g7", r#""battery":21"#),
            status(T0 + MIN, "g7", r#""battery":20"#),
            status(T0 + 2 * MIN, "g7", r#""battery":12"#),
            status(T0 + 3 * MIN, "g7", r#""battery":90"#),
            status(T0 + 4 * MIN, "g7", r#""battery":5"#),
        ],
        T0 + 5 * MIN,
    );
    assert_eq!(
        alerts,
        [
            (1, AlertEvent::LowBattery, Severity::Warning),
            (4, AlertEvent::LowBattery, Severity::Warning)
        ]
    );
}

#[test]
fn a_sensor_expiring_within_24_hours_alerts_at_that_instant_once() {
    let s = settings("");
    let expires = EventTime::from_micros(T0 + 30 * 60 * MIN).to_rfc3339();
    let fields = format!(r#""battery":80,"sensor_expires":"{expires}""#);
    // Reported 30 h ahead: alerted at 6 h, when it comes within 24 h, with no new report.
    let alerts = device_alerts(&s, &[cgm(T0), status(T0, "g7", &fields)], T0 + 7 * 60 * MIN);
    assert!(
        alerts.contains(&(360, AlertEvent::SensorExpiring, Severity::Warning)),
        "{alerts:?}"
    );
    assert_eq!(
        alerts
            .iter()
            .filter(|a| a.1 == AlertEvent::SensorExpiring)
            .count(),
        1
    );
    // Reported 5 h ahead: at once.
    let soon = EventTime::from_micros(T0 + 5 * 60 * MIN).to_rfc3339();
    let alerts = device_alerts(
        &s,
        &[status(T0, "g7", &format!(r#""sensor_expires":"{soon}""#))],
        T0 + MIN,
    );
    assert_eq!(alerts, [(0, AlertEvent::SensorExpiring, Severity::Warning)]);
}
