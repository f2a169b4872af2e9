//! Who may see what on the board. With a users file ([`users`]) every page, fragment, API call
//! and the live stream need a session ([`sessions`]); a clinician sees the patients of their
//! wards only, a data engineer the counts per ward and no patient, a researcher nothing (their
//! data comes de-identified from `vigil export --research`). Without one, the demo board serves
//! everything to whoever reaches it, which is why it may then listen on a loopback address only.
//!
//! Invariants: the [`Scope`] is decided here, once per request, and the server filters every
//! answer through it (rows, counts, pages, events): a page cannot forget to ask. A patient
//! with no ward is seen only by a clinician of every ward (`*`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

pub mod sessions;
pub mod users;

#[cfg(test)]
mod tests;

use sessions::{Attempts, Session, Sessions};
use users::{Role, User, Users, UsersFileError};

/// Who is asking.
#[derive(Clone, Debug)]
pub enum Viewer {
    /// The demo board, without a users file: anyone who reaches the loopback address.
    Anyone,
    /// A signed-in user, with their session's CSRF token.
    User { user: Arc<User>, csrf: String },
}

/// What a viewer may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every patient and ward.
    Everything,
    /// The patients and counts of these wards.
    Wards(Vec<String>),
    /// The counts of every ward, no patient.
    Counts,
}

/// Why a viewer sees nothing of what they asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// A researcher: nothing on the board.
    Researcher,
    /// A data engineer asked for a patient.
    NoPatients,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Researcher => {
                "researchers see no patient data on the board: research data comes \
                 de-identified from `vigil export --research`"
            }
            Refused::NoPatients => {
                "a data engineer sees the counts per ward, not patients: ask a clinician \
                 of the ward"
            }
        }
    }
}

impl Viewer {
    /// What they may see.
    pub fn scope(&self) -> Result<Scope, Refused> {
        let Viewer::User { user, .. } = self else {
            return Ok(Scope::Everything);
        };
        match user.role {
            Role::Clinician if user.wards.iter().any(|w| w == "*") => Ok(Scope::Everything),
            Role::Clinician => Ok(Scope::Wards(user.wards.clone())),
            Role::DataEngineer => Ok(Scope::Counts),
            Role::Researcher => Err(Refused::Researcher),
        }
    }

    /// Their name, when they signed in.
    pub fn name(&self) -> Option<&str> {
        match self {
            Viewer::Anyone => None,
            Viewer::User { user, .. } => Some(&user.name),
        }
    }
}

impl Scope {
    /// Whether a patient on `ward` (or on none) is seen.
    pub fn patient(&self, ward: Option<&str>) -> bool {
        match self {
            Scope::Everything => true,
            Scope::Wards(wards) => ward.is_some_and(|w| wards.iter().any(|x| x == w)),
            Scope::Counts => false,
        }
    }

    /// Whether any patient is seen.
    pub fn patients(&self) -> Result<(), Refused> {
        match self {
            Scope::Counts => Err(Refused::NoPatients),
            _ => Ok(()),
        }
    }

    /// Whether the counts of `ward` are seen.
    pub fn ward(&self, ward: &str) -> bool {
        match self {
            Scope::Wards(wards) => wards.iter().any(|w| w == ward),
            Scope::Everything | Scope::Counts => true,
        }
    }
}

/// Why a sign-in failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignInRefused {
    /// Unknown name or wrong password (which, the answer does not say).
    Wrong,
    /// Too many wrong passwords: try again after this long.
    Locked(Duration),
    /// The board holds as many sessions as it keeps.
    Full,
}

/// The users file, as last read, and when it was checked.
#[derive(Debug)]
struct Loaded {
    users: Arc<Users>,
    modified: Option<SystemTime>,
    checked: Instant,
}

/// Sign-ins and sessions over a users file.
#[derive(Debug)]
pub struct Access {
    path: PathBuf,
    loaded: Mutex<Loaded>,
    sessions: Mutex<Sessions>,
    attempts: Mutex<Attempts>,
    /// Whether the board serves HTTPS (its cookies are then `Secure`).
    pub tls: bool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

impl Access {
    /// Reads the users file at `path`; one that is missing, does not parse or has no user is
    /// refused (a board nobody can sign in to is a mistake).
    pub fn open(path: &Path, tls: bool) -> Result<Access, UsersFileError> {
        let users = Users::load(path)?;
        if users.is_empty() {
            return Err(UsersFileError::Read {
                path: path.to_owned(),
                source: std::io::Error::other(
                    "it has no user: add one with `vigil user add FILE NAME --role ...`",
                ),
            });
        }
        Ok(Access {
            path: path.to_owned(),
            loaded: Mutex::new(Loaded {
                users: Arc::new(users),
                modified: modified(path),
                checked: Instant::now(),
            }),
            sessions: Mutex::default(),
            attempts: Mutex::default(),
            tls,
        })
    }

    /// The users, read again when the file changed (checked at most once a second). A file
    /// that no longer parses keeps the users it had, and says so.
    pub fn users(&self) -> Arc<Users> {
        let mut loaded = lock(&self.loaded);
        let now = Instant::now();
        if now.duration_since(loaded.checked) >= Duration::from_secs(1) {
            loaded.checked = now;
            let modified = modified(&self.path);
            if modified != loaded.modified {
                loaded.modified = modified;
                match Users::load(&self.path) {
                    Ok(users) => loaded.users = Arc::new(users),
                    Err(e) => tracing::warn!("the board keeps the users it had: {e}"),
                }
            }
        }
        Arc::clone(&loaded.users)
    }

    /// The user and session of cookie `token`, while both last (a user removed from the file
    /// loses their sessions at once).
    pub fn session(&self, token: &str) -> Option<(Arc<User>, Session)> {
        let session = lock(&self.sessions).get(token, Instant::now())?;
        let user = Arc::clone(self.users().get(&session.user)?);
        Some((user, session))
    }

    /// How long `name` must still wait, if it is locked.
    pub fn locked(&self, name: &str) -> Option<Duration> {
        lock(&self.attempts).locked(name, Instant::now())
    }

    /// Checks `password` (slow: a hash; call it off the server's thread) and starts a session.
    pub fn sign_in(
        &self,
        name: &str,
        password: &str,
    ) -> Result<(Arc<User>, String, Session), SignInRefused> {
        if let Some(wait) = self.locked(name) {
            return Err(SignInRefused::Locked(wait));
        }
        let Some(user) = self.users().authenticate(name, password) else {
            return Err(match lock(&self.attempts).failed(name, Instant::now()) {
                Some(wait) => SignInRefused::Locked(wait),
                None => SignInRefused::Wrong,
            });
        };
        lock(&self.attempts).succeeded(name);
        let (token, session) = lock(&self.sessions)
            .start(&user.name, Instant::now())
            .ok_or(SignInRefused::Full)?;
        Ok((user, token, session))
    }

    /// Ends the session of cookie `token`.
    pub fn sign_out(&self, token: &str) {
        lock(&self.sessions).end(token);
    }
}
