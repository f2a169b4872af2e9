//! Who is signed in, and who is slowed down. A session is a random 256-bit token in a cookie;
//! the board keeps only the token's SHA-256 (a memory dump gives no usable cookie), the user's
//! name, a CSRF token for their forms and when it ends. Five wrong passwords in a row lock the
//! name for 30 seconds, doubling with each further failure up to 15 minutes; a right password
//! after the lock ends starts again from nothing.
//!
//! Invariants: time is passed in (`now`), so the rules are tested without waiting; both tables
//! are bounded, so a flood of made-up names or sign-ins cannot grow memory without end.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};

/// How long a session lasts: a shift.
pub const SESSION: Duration = Duration::from_secs(12 * 3600);
/// Wrong passwords in a row before the name is slowed.
pub const FREE_FAILURES: u32 = 5;
/// The first lock, and the longest.
pub const FIRST_LOCK: Duration = Duration::from_secs(30);
pub const LONGEST_LOCK: Duration = Duration::from_secs(15 * 60);
/// Sessions and failing names kept at most.
const MAX_SESSIONS: usize = 10_000;
const MAX_NAMES: usize = 10_000;

/// A new random token: 32 bytes, as 64 hex digits.
pub fn token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    crate::audit::hex(&bytes)
}

/// Whether two tokens are equal, in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// One signed-in user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub user: String,
    /// What every form and state-changing call of this session must carry.
    pub csrf: String,
    pub ends: Instant,
}

/// The sessions, by their token's hash.
#[derive(Debug, Default)]
pub struct Sessions {
    by_hash: HashMap<[u8; 32], Session>,
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl Sessions {
    /// Starts a session for `user`: its cookie token, or `None` when the board holds as many
    /// live sessions as it keeps.
    pub fn start(&mut self, user: &str, now: Instant) -> Option<(String, Session)> {
        if self.by_hash.len() >= MAX_SESSIONS {
            self.by_hash.retain(|_, s| s.ends > now);
            if self.by_hash.len() >= MAX_SESSIONS {
                return None;
            }
        }
        let token = token();
        let session = Session {
            user: user.to_owned(),
            csrf: self::token(),
            ends: now + SESSION,
        };
        self.by_hash.insert(digest(&token), session.clone());
        Some((token, session))
    }

    /// The live session of cookie `token`.
    pub fn get(&mut self, token: &str, now: Instant) -> Option<Session> {
        let key = digest(token);
        match self.by_hash.get(&key) {
            Some(s) if s.ends > now => Some(s.clone()),
            Some(_) => {
                self.by_hash.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends the session of cookie `token`.
    pub fn end(&mut self, token: &str) {
        self.by_hash.remove(&digest(token));
    }
}

#[derive(Clone, Copy, Debug)]
struct Failures {
    count: u32,
    until: Option<Instant>,
}

/// Wrong passwords by name.
#[derive(Debug, Default)]
pub struct Attempts {
    by_name: HashMap<String, Failures>,
}

impl Attempts {
    /// How long `name` must still wait before a password is even checked.
    pub fn locked(&self, name: &str, now: Instant) -> Option<Duration> {
        let until = self.by_name.get(name)?.until?;
        (until > now).then(|| until - now)
    }

    /// A wrong password for `name`: how long it is now locked, if it is.
    pub fn failed(&mut self, name: &str, now: Instant) -> Option<Duration> {
        if self.by_name.len() >= MAX_NAMES && !self.by_name.contains_key(name) {
            // Keep the names that are locked: forgetting one would unlock it.
            self.by_name.retain(|_, f| f.until.is_some_and(|u| u > now));
        }
        let failures = self.by_name.entry(name.to_owned()).or_insert(Failures {
            count: 0,
            until: None,
        });
        failures.count += 1;
        let beyond = failures.count.checked_sub(FREE_FAILURES)?;
        let lock = FIRST_LOCK
            .saturating_mul(1 << beyond.min(10))
            .min(LONGEST_LOCK);
        failures.until = Some(now + lock);
        Some(lock)
    }

    /// The right password for `name`: its failures are forgotten.
    pub fn succeeded(&mut self, name: &str) {
        self.by_name.remove(name);
    }
}
