//! `vigil bench`: its arguments are checked before anything is measured.

use crate::vigil;

#[test]
fn a_cohort_of_no_patients_or_minutes_is_a_usage_error() {
    for args in [
        &["bench", "replay", "--patients", "0"][..],
        &["bench", "memory", "--minutes", "0"],
        &["bench", "memory", "--patients", "10,0"],
        &["bench", "workload", "--patients", "0", "--out", "-"],
    ] {
        let o = vigil(args);
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("0 is not in 1.."), "{args:?}: {stderr}");
    }
}

#[test]
fn no_steady_patients_skips_the_steady_run() {
    let o = vigil(&[
        "bench",
        "memory",
        "--patients",
        "20",
        "--minutes",
        "1",
        "--steady-patients",
        "0",
        "--no-risk",
    ]);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let runs: Vec<&str> = stdout.lines().filter(|l| l.starts_with("memory")).collect();
    assert_eq!(runs.len(), 1, "{stdout}");
    assert!(runs[0].contains("1 min of event time"), "{stdout}");
}
