use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::sessions::{self, Attempts, FIRST_LOCK, LONGEST_LOCK, SESSION, Sessions};
use super::users::{Role, User, UserError, Users};
use super::{Refused, Scope, Viewer};

fn user(name: &str, role: Role, wards: &[&str]) -> User {
    let wards = wards.iter().map(|w| w.to_string()).collect();
    User::new(name, role, wards, "a long password").unwrap()
}

#[test]
fn a_users_file_round_trips_and_checks_the_password() {
    let mut users = Users::default();
    users
        .insert(user("alice", Role::Clinician, &["4A", "4B"]), false)
        .unwrap();
    users
        .insert(user("dan", Role::DataEngineer, &[]), false)
        .unwrap();
    assert!(
        users
            .insert(user("dan", Role::Researcher, &[]), false)
            .is_err()
    );
    let text = users.to_text();
    assert!(text.contains("alice:clinician:4A,4B:$argon2id$"), "{text}");
    assert!(!text.contains("a long password"));
    let read = Users::parse(&text, Path::new("users")).unwrap();
    assert_eq!(read, users);
    let alice = read.authenticate("alice", "a long password").unwrap();
    assert_eq!(alice.describe(), "clinician of wards 4A, 4B");
    assert!(read.authenticate("alice", "a long passworD").is_none());
    assert!(read.authenticate("nobody", "a long password").is_none());
    assert!(!format!("{alice:?}").contains("argon2"), "no hash in Debug");
}

#[test]
fn a_users_file_that_is_wrong_says_which_line() {
    let good = user("alice", Role::Clinician, &["4A"]).line();
    let hash = good.rsplit(':').next().unwrap();
    let at = |text: &str| {
        Users::parse(text, Path::new("users"))
            .unwrap_err()
            .to_string()
    };
    let e = at(&format!("# users\n\n{good}\nbob:nurse:4A:{hash}\n"));
    assert!(e.starts_with("users:4: role \"nurse\""), "{e}");
    let e = at(&format!("{good}\n{good}\n"));
    assert_eq!(e, "users: user alice appears on lines 1 and 2");
    let e = at("bob:clinician:4A:plaintext\n");
    assert!(e.contains("users:1: the hash is not a PHC string"), "{e}");
    let e = at(&format!("bob:clinician::{hash}\n"));
    assert!(e.contains("at least one --ward"), "{e}");
    let e = at("bob:clinician\n");
    assert!(e.contains("expected name:role:wards:hash"), "{e}");
    assert_eq!(
        User::new("x", Role::Researcher, vec![], "short").unwrap_err(),
        UserError::ShortPassword
    );
    assert!(matches!(
        User::new("a b", Role::Researcher, vec![], "long enough"),
        Err(UserError::Name(_))
    ));
}

#[test]
fn each_role_sees_its_own() {
    let viewer = |u: User| Viewer::User {
        user: Arc::new(u),
        csrf: String::new(),
    };
    let a = viewer(user("a", Role::Clinician, &["4A"])).scope().unwrap();
    assert!(a.patient(Some("4A")) && !a.patient(Some("4B")) && !a.patient(None));
    assert!(a.ward("4A") && !a.ward("4B") && a.patients().is_ok());
    let every = viewer(user("e", Role::Clinician, &["*"])).scope().unwrap();
    assert_eq!(every, Scope::Everything);
    assert!(
        every.patient(None),
        "a clinician of every ward sees patients without one"
    );
    let d = viewer(user("d", Role::DataEngineer, &[])).scope().unwrap();
    assert!(d.ward("4B") && !d.patient(Some("4B")));
    assert_eq!(d.patients(), Err(Refused::NoPatients));
    let r = viewer(user("r", Role::Researcher, &[])).scope();
    assert_eq!(r, Err(Refused::Researcher));
    assert_eq!(Viewer::Anyone.scope(), Ok(Scope::Everything));
}

#[test]
fn five_wrong_passwords_lock_a_name_for_longer_each_time() {
    let mut attempts = Attempts::default();
    let t0 = Instant::now();
    for _ in 0..4 {
        assert_eq!(attempts.failed("bob", t0), None);
    }
    assert_eq!(attempts.locked("bob", t0), None, "four are free");
    assert_eq!(attempts.failed("bob", t0), Some(FIRST_LOCK));
    assert_eq!(attempts.locked("bob", t0), Some(FIRST_LOCK));
    assert_eq!(
        attempts.locked("alice", t0),
        None,
        "other names are not slowed"
    );
    let later = t0 + FIRST_LOCK;
    assert_eq!(attempts.locked("bob", later), None, "the lock ends");
    assert_eq!(
        attempts.failed("bob", later),
        Some(FIRST_LOCK * 2),
        "and doubles"
    );
    let mut t = later;
    for _ in 0..12 {
        t += LONGEST_LOCK;
        attempts.failed("bob", t);
    }
    assert_eq!(
        attempts.locked("bob", t),
        Some(LONGEST_LOCK),
        "up to a limit"
    );
    attempts.succeeded("bob");
    assert_eq!(
        attempts.failed("bob", t),
        None,
        "a right password starts again"
    );
}

#[test]
fn a_session_lasts_a_shift_and_ends_when_asked() {
    let mut sessions = Sessions::default();
    let t0 = Instant::now();
    let (token, session) = sessions.start("alice", t0).unwrap();
    assert_eq!(token.len(), 64);
    assert_ne!(token, session.csrf);
    assert_eq!(
        sessions.get(&token, t0 + Duration::from_secs(60)),
        Some(session)
    );
    assert_eq!(
        sessions.get(&token, t0 + SESSION),
        None,
        "over after a shift"
    );
    let (token, _) = sessions.start("alice", t0).unwrap();
    assert!(sessions.get(&"0".repeat(64), t0).is_none());
    sessions.end(&token);
    assert!(sessions.get(&token, t0).is_none());
    assert!(sessions::same("abc", "abc") && !sessions::same("abc", "abd"));
    assert!(!sessions::same("abc", "abcd"));
}
