use super::*;
use crate::alerting::{Alert, AlertEvent, AlertKind, Evidence, Severity};
use crate::monitor::events::Acknowledgement;
use crate::news2;
use crate::observation::{EventTime, Identifier};
use crate::rules::news2::policy;

fn score(rr: f64, hr: f64, temp: Option<f64>) -> news2::Score {
    news2::score_of(rr, hr, temp)
}

fn scored(patient: &str, t: i64, s: &news2::Score) -> Alert {
    policy::score_update(
        patient,
        EventTime::from_micros(t),
        s,
        None,
        Evidence::of(s, [None; 7]),
    )
}

fn board() -> BoardState {
    BoardState::new(HashMap::from([("p1".to_owned(), "4B".to_owned())]))
}

#[test]
fn a_row_reads_as_the_api_documents_it() {
    let mut b = board();
    let incomplete = score(26.0, 135.0, None);
    b.apply(&scored("p1", 10, &incomplete));
    let row = serde_json::to_value(&b.patients()[0]).unwrap();
    assert_eq!(row["patient"], "p1");
    assert_eq!(row["ward"], "4B");
    assert_eq!(row["news2"]["complete"], false);
    assert_eq!(row["news2"]["total"], 6);
    assert_eq!(row["news2"]["upper"], 9);
    assert_eq!(row["stale"], serde_json::json!(["temp"]));
    assert_eq!(row["band"], "medium");
    assert_eq!(row["risk"], serde_json::Value::Null);
    // A patient heard of only by an alert has no band yet.
    let alert = Alert::new(
        "p2",
        EventTime::from_micros(5),
        AlertKind::Glucose,
        AlertEvent::Low,
        Severity::Medium,
        "low".into(),
        "treat".into(),
        None,
    );
    b.apply(&alert);
    let p2 = b
        .patients()
        .into_iter()
        .find(|r| r.patient == "p2")
        .unwrap();
    assert_eq!(
        serde_json::to_value(&p2).unwrap()["band"],
        serde_json::Value::Null
    );
    assert_eq!(p2.ward, None);
}

#[test]
fn the_most_urgent_come_first() {
    let mut b = board();
    b.apply(&scored("calm", 1, &score(16.0, 70.0, Some(37.0))));
    b.apply(&scored("high", 1, &score(26.0, 135.0, Some(39.5))));
    b.apply(&scored("unsure", 1, &score(16.0, 70.0, None)));
    let order: Vec<String> = b.patients().into_iter().map(|r| r.patient).collect();
    assert_eq!(
        order,
        ["high", "unsure", "calm"],
        "an unknown temperature could still be a 3"
    );
}

#[test]
fn every_change_is_numbered_and_handed_over_once() {
    let mut b = board();
    for t in 0..5 {
        b.apply(&scored("p1", t, &score(16.0, 60.0 + t as f64, Some(37.0))));
    }
    assert_eq!(b.last_id(), 5, "one change per score update");
    let changes = b.take_changes();
    assert_eq!(
        changes.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert!(changes.iter().all(|(_, e)| e.name() == "patient"));
    assert!(b.take_changes().is_empty());
    for t in 0..2 * HISTORY as i64 {
        b.apply(&scored(
            "p1",
            10 + t,
            &score(16.0, 60.0 + (t % 20) as f64, Some(37.0)),
        ));
    }
    let (_, page) = b.patient("p1").unwrap();
    assert_eq!(page.history.len(), HISTORY);
}

#[test]
fn an_acknowledgement_marks_its_alert_and_alerts_to_people_are_streamed() {
    let mut b = board();
    let s = score(26.0, 135.0, Some(39.5));
    let raised = policy::band_alert(
        "p1",
        EventTime::from_micros(100),
        policy::BandDecision::Raised {
            from: None,
            to: news2::Band::High,
        },
        &s,
        Evidence::of(&s, [None; 7]),
    );
    b.apply(&raised);
    let streamed: Vec<&str> = b.take_changes().iter().map(|(_, e)| e.name()).collect();
    assert_eq!(
        streamed,
        ["alert", "patient"],
        "the alert, and the row naming it"
    );
    assert_eq!(b.alert(&raised.id).map(|a| a.time_us), Some(100));
    let ack = Acknowledgement {
        patient: Identifier::new("p1").unwrap(),
        alert: raised.id.clone(),
        kind: AlertKind::News2,
        alert_time_us: 100,
        by: "nurse.jones".into(),
        note: "reviewed".into(),
        at_us: 400,
    };
    b.apply(&crate::alerting::acknowledged(&ack));
    let (_, page) = b.patient("p1").unwrap();
    let marked = page.alerts[0].acknowledged.as_ref().unwrap();
    assert_eq!((marked.by.as_str(), marked.at_us), ("nurse.jones", 400));
    let (row, _) = b.patient("p1").unwrap();
    let latest = row.alert.as_ref().unwrap();
    assert_eq!(
        latest.acknowledged.as_ref().map(|k| k.by.as_str()),
        Some("nurse.jones")
    );
    let (_, last) = b.take_changes().pop().unwrap();
    assert_eq!(
        last.name(),
        "patient",
        "the overview hears of the acknowledgement"
    );
}

#[test]
fn the_band_in_force_shows_until_the_policy_lowers_it() {
    let mut b = board();
    let calm = score(16.0, 70.0, Some(37.0));
    let update = policy::score_update(
        "p1",
        EventTime::from_micros(50),
        &calm,
        Some(news2::Band::High),
        Evidence::of(&calm, [None; 7]),
    );
    assert!(
        update.summary.ends_with("the high band stays raised"),
        "{}",
        update.summary
    );
    b.apply(&update);
    let (row, _) = b.patient("p1").unwrap();
    assert_eq!(row.band, Some(news2::Band::High));
    assert_eq!(row.news2.map(|n| n.total), Some(0));
    b.apply(&scored("p1", 60, &calm));
    assert_eq!(b.patient("p1").unwrap().0.band, Some(news2::Band::Low));
}

#[test]
fn ward_counts_follow_the_dataflows_changes_and_are_streamed() {
    let mut b = board();
    b.count_wards(&[
        (("4B".into(), news2::Band::High), 1),
        (("4B".into(), news2::Band::Low), 2),
    ]);
    b.count_wards(&[
        (("4B".into(), news2::Band::High), -1),
        (("4B".into(), news2::Band::Medium), 1),
    ]);
    let w = &b.wards()[0];
    assert_eq!((w.ward.as_str(), w.high, w.medium, w.low), ("4B", 0, 1, 2));
    let (_, last) = b.take_changes().pop().unwrap();
    assert_eq!(last.name(), "wards");
    b.count_wards(&[
        (("4B".into(), news2::Band::Medium), -1),
        (("4B".into(), news2::Band::Low), -2),
    ]);
    assert!(b.wards().is_empty(), "a ward nobody is on leaves the board");
}
