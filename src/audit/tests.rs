use proptest::prelude::*;

use super::*;

/// A sound trail of `n` records, as text, and its head.
fn trail(n: usize) -> (Vec<Record>, Head) {
    let mut records: Vec<Record> = Vec::new();
    let mut prev = GENESIS.to_owned();
    for i in 0..n {
        let mut r = Record {
            seq: i as u64 + 1,
            at: format!("2026-12-02T00:00:{:02}Z", i % 60),
            who: format!("nurse.{}", i % 3),
            action: ["viewed", "acknowledged", "exported"][i % 3].to_owned(),
            what: format!("alert {i:016x} of sim-{:05}", i % 7),
            prev: prev.clone(),
            hash: String::new(),
        };
        r.hash = r.computed_hash();
        prev = r.hash.clone();
        records.push(r);
    }
    let head = Head {
        records: n as u64,
        hash: prev,
    };
    (records, head)
}

fn text(records: &[Record]) -> String {
    records
        .iter()
        .map(|r| serde_json::to_string(r).unwrap() + "\n")
        .collect()
}

#[test]
fn a_sound_trail_verifies_and_an_empty_one_too() {
    let (records, head) = trail(5);
    assert_eq!(
        verify_text(&text(&records), &head),
        Ok(Verified {
            records: 5,
            beyond_head: 0
        })
    );
    let (none, empty) = trail(0);
    assert!(verify_text(&text(&none), &empty).is_ok());
}

#[test]
fn records_past_the_head_are_counted_not_called_tampering() {
    let (records, _) = trail(4);
    let (_, head3) = trail(3);
    assert_eq!(
        verify_text(&text(&records), &head3),
        Ok(Verified {
            records: 3,
            beyond_head: 1
        })
    );
}

#[test]
fn the_log_appends_chained_records_and_refuses_a_tampered_trail() {
    let dir = std::env::temp_dir().join(format!("vigil-audit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("audit.jsonl");
    let mut log = AuditLog::open(&path).unwrap();
    log.record("nurse.jones", "acknowledged", "alert a1 of sim-00044")
        .unwrap();
    log.record("dr.lee", "viewed", "sim-00044").unwrap();
    drop(log);
    let mut log = AuditLog::open(&path).unwrap();
    let third = log.record("ana", "exported", "research set").unwrap();
    assert_eq!(third.seq, 3);
    assert_eq!(
        verify(&path, &head_path(&path)).unwrap(),
        Verified {
            records: 3,
            beyond_head: 0
        }
    );
    let edited = std::fs::read_to_string(&path)
        .unwrap()
        .replace("dr.lee", "dr.who");
    std::fs::write(&path, edited).unwrap();
    let err = AuditLog::open(&path).unwrap_err();
    assert!(
        err.to_string().contains("line 2: record 2 was edited"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// An edited field, without a new hash, is caught at its line.
    #[test]
    fn an_edited_record_is_caught_at_its_line(n in 1usize..30, i in 0usize..30, field in 0usize..4) {
        let i = i % n;
        let (mut records, head) = trail(n);
        match field {
            0 => records[i].who.push('x'),
            1 => records[i].action = "deleted".into(),
            2 => records[i].what.push_str(" and more"),
            _ => records[i].at = "2020-01-01T00:00:00Z".into(),
        }
        prop_assert_eq!(verify_text(&text(&records), &head), Err(Tampered::Edited { line: i + 1, seq: i as u64 + 1 }));
    }

    /// An edited record given a new hash breaks the link of the one after it, or, the last,
    /// the head.
    #[test]
    fn an_edited_and_rehashed_record_breaks_the_chain(n in 1usize..30, i in 0usize..30) {
        let i = i % n;
        let (mut records, head) = trail(n);
        records[i].what.push_str(" (rewritten)");
        records[i].hash = records[i].computed_hash();
        let expected = if i + 1 < n {
            Tampered::Broken { line: i + 2, seq: i as u64 + 2 }
        } else {
            Tampered::Replaced { seq: n as u64 }
        };
        prop_assert_eq!(verify_text(&text(&records), &head), Err(expected));
    }

    /// A deleted record is caught where it was; the last one, by the head.
    #[test]
    fn a_deleted_record_is_caught(n in 1usize..30, i in 0usize..30) {
        let i = i % n;
        let (mut records, head) = trail(n);
        records.remove(i);
        let expected = if i + 1 < n {
            Tampered::Sequence { line: i + 1, expected: i as u64 + 1, found: i as u64 + 2 }
        } else {
            Tampered::Truncated { records: n as u64 - 1, head: n as u64 }
        };
        prop_assert_eq!(verify_text(&text(&records), &head), Err(expected));
    }

    /// Two records swapped are caught at the first of them.
    #[test]
    fn reordered_records_are_caught(n in 2usize..30, i in 0usize..30, j in 0usize..30) {
        let (i, j) = (i % n, j % n);
        prop_assume!(i != j);
        let (lo, hi) = (i.min(j), i.max(j));
        let (mut records, head) = trail(n);
        records.swap(lo, hi);
        prop_assert_eq!(
            verify_text(&text(&records), &head),
            Err(Tampered::Sequence { line: lo + 1, expected: lo as u64 + 1, found: hi as u64 + 1 })
        );
    }

    /// A trail cut short is caught by the head kept apart.
    #[test]
    fn a_cut_tail_is_caught(n in 1usize..30, keep in 0usize..30) {
        let keep = keep % n;
        let (records, head) = trail(n);
        prop_assert_eq!(
            verify_text(&text(&records[..keep]), &head),
            Err(Tampered::Truncated { records: keep as u64, head: n as u64 })
        );
    }
}
