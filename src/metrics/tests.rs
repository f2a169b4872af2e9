use std::sync::Arc;

use super::*;

fn summary(observations: u64, late: u64, alerts: &[(&str, u64)]) -> RunSummary {
    RunSummary {
        observations,
        late,
        alerts_by_kind: alerts.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        ..RunSummary::default()
    }
}

fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
}

#[test]
fn counters_are_there_at_zero_before_anything_is_read() {
    let m = Metrics::new("kafka");
    let text = m.encode();
    for name in ["observations", "rejected", "late", "duplicates", "held"] {
        let series = format!("vigil_{name}_total{{source=\"kafka\"}}");
        assert_eq!(sample(&text, &series), Some("0"), "{series} in\n{text}");
    }
    assert!(text.ends_with("# EOF\n"));
}

#[test]
fn a_publisher_adds_only_what_changed_and_workers_add_up() {
    let m = Arc::new(Metrics::new("jsonl"));
    let mut zero = Publisher::new(Arc::clone(&m), 0);
    let mut one = Publisher::new(Arc::clone(&m), 1);
    zero.publish(&summary(10, 1, &[("news2/raised", 2)]));
    zero.publish(&summary(15, 1, &[("news2/raised", 3), ("glucose/low", 1)]));
    one.publish(&summary(7, 0, &[("news2/raised", 1)]));
    let text = m.encode();
    let at = |series: &str| sample(&text, series).map(str::to_owned);
    assert_eq!(
        at("vigil_observations_total{source=\"jsonl\"}"),
        Some("22".into())
    );
    assert_eq!(at("vigil_late_total{source=\"jsonl\"}"), Some("1".into()));
    assert_eq!(
        at("vigil_alerts_total{kind=\"news2\",event=\"raised\"}"),
        Some("4".into())
    );
    assert_eq!(
        at("vigil_alerts_total{kind=\"glucose\",event=\"low\"}"),
        Some("1".into())
    );
}

#[test]
fn gauges_are_per_worker_and_set_not_added() {
    let m = Arc::new(Metrics::new("jsonl"));
    let mut p = Publisher::new(Arc::clone(&m), 3);
    for patients in [5, 9, 4] {
        p.publish(&RunSummary {
            patients,
            state_bytes: patients * 1000,
            ..RunSummary::default()
        });
    }
    let text = m.encode();
    assert_eq!(sample(&text, "vigil_patients{worker=\"3\"}"), Some("4"));
    assert_eq!(
        sample(&text, "vigil_state_bytes{worker=\"3\"}"),
        Some("4000")
    );
}

#[test]
fn no_patient_id_reaches_a_label() {
    let m = Arc::new(Metrics::new("kafka"));
    let mut p = Publisher::new(Arc::clone(&m), 0);
    let mut s = summary(3, 0, &[("news2/raised", 1)]);
    s.adherence.insert("patient-0042".into(), Vec::new());
    s.first_event_us = Some(1);
    p.publish(&s);
    m.consumer_lag(2, 17);
    m.backlog("webhook https://pager.example/hook", 3);
    let text = m.encode();
    assert!(!text.contains("patient-0042"), "{text}");
    assert_eq!(
        sample(&text, "vigil_consumer_lag_messages{partition=\"2\"}"),
        Some("17")
    );
}

#[test]
fn the_classic_format_names_counters_with_total_and_has_no_unit_or_eof() {
    let m = Metrics::new("kafka");
    m.archive_flushed(Duration::from_millis(3));
    let text = m.encode_classic();
    assert!(text.contains("# HELP vigil_observations_total Observations scored"));
    assert!(text.contains("# TYPE vigil_observations_total counter\n"));
    assert!(text.contains("# TYPE vigil_archive_flush_seconds histogram\n"));
    assert!(text.contains("vigil_archive_flush_seconds_count 1\n"));
    assert!(
        !text.contains("# UNIT") && !text.contains("# EOF"),
        "{text}"
    );
    assert!(!text.contains("# TYPE vigil_observations counter"));
}
