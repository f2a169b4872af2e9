//! The board's users file: one user a line, `name:role:wards:hash`, like `/etc/shadow`, where
//! `wards` is a comma-separated list (a clinician's; `*` is every ward) and `hash` an Argon2id
//! PHC string. Lines starting with `#` and blank lines are ignored. `vigil user add` writes it;
//! the board reads it when it starts and again whenever it changes, so a user added or removed
//! takes effect at their next request, without a restart.
//!
//! Invariants: a password is never stored, only its Argon2id hash with a random salt; a file
//! that does not parse is refused whole, with the line that is wrong (a board that silently
//! dropped a line would lock a clinician out, or let a removed one in).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use thiserror::Error;

/// What a user may do on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sees and acknowledges the patients of their wards.
    Clinician,
    /// Sees how many patients are in each band on each ward, never a patient.
    DataEngineer,
    /// Sees nothing on the board: research data comes de-identified from `vigil export`.
    Researcher,
}

impl Role {
    pub const NAMES: [&'static str; 3] = ["clinician", "data-engineer", "researcher"];

    pub fn name(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::DataEngineer => "data-engineer",
            Role::Researcher => "researcher",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "clinician" => Some(Role::Clinician),
            "data-engineer" => Some(Role::DataEngineer),
            "researcher" => Some(Role::Researcher),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One user of the board.
#[derive(Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// A clinician's wards (`*`: every ward); empty for the other roles.
    pub wards: Vec<String>,
    /// The Argon2id PHC string.
    hash: String,
}

impl fmt::Debug for User {
    // The hash is not a secret the way a password is, but it is an offline guessing target:
    // it stays out of logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("wards", &self.wards)
            .finish_non_exhaustive()
    }
}

/// What is wrong with a user, a users file or a password.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum UserError {
    #[error(
        "a user name is 1 to 64 letters, digits or . _ - @ (it signs their acknowledgements): {0:?}"
    )]
    Name(String),
    #[error("a ward is 1 to 32 letters, digits or . _ - (or * for every ward): {0:?}")]
    Ward(String),
    #[error("a clinician sees the patients of their wards: give at least one --ward")]
    NoWard,
    #[error("only a clinician has wards: a {0} sees no patient")]
    WardsForRole(Role),
    #[error("a password must be at least {MIN_PASSWORD} characters")]
    ShortPassword,
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error("{path}:{line}: {reason}")]
    Line {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("{path}: user {name} appears on lines {first} and {line}")]
    Duplicate {
        path: String,
        name: String,
        first: usize,
        line: usize,
    },
}

/// Shortest password taken (NIST SP 800-63B's minimum).
pub const MIN_PASSWORD: usize = 8;

impl User {
    /// A new user with `password` hashed (Argon2id, the crate's defaults: 19 MiB, 2 passes).
    pub fn new(
        name: &str,
        role: Role,
        wards: Vec<String>,
        password: &str,
    ) -> Result<User, UserError> {
        check(name, role, &wards)?;
        if password.chars().count() < MIN_PASSWORD {
            return Err(UserError::ShortPassword);
        }
        let salt = SaltString::generate(&mut OsRng);
        let hash = Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map_err(|e| UserError::Hash(e.to_string()))?
            .to_string();
        Ok(User {
            name: name.to_owned(),
            role,
            wards,
            hash,
        })
    }

    /// Whether `password` is theirs. Takes as long as a hash (tens of milliseconds).
    pub fn verify(&self, password: &str) -> bool {
        verify_hash(&self.hash, password)
    }

    /// Their line of the users file.
    pub fn line(&self) -> String {
        format!(
            "{}:{}:{}:{}",
            self.name,
            self.role,
            self.wards.join(","),
            self.hash
        )
    }

    /// What they see, in words: `clinician of wards 4A, 4B`.
    pub fn describe(&self) -> String {
        match (self.role, self.wards.as_slice()) {
            (Role::Clinician, [w]) if w == "*" => "clinician of every ward".to_owned(),
            (Role::Clinician, [w]) => format!("clinician of ward {w}"),
            (Role::Clinician, wards) => format!("clinician of wards {}", wards.join(", ")),
            (role, _) => role.name().to_owned(),
        }
    }
}

fn verify_hash(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Checks a user's name, and that their wards fit their role.
pub fn check(name: &str, role: Role, wards: &[String]) -> Result<(), UserError> {
    let name_ok = (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_@".contains(c));
    if !name_ok {
        return Err(UserError::Name(name.to_owned()));
    }
    for ward in wards {
        let ok = ward == "*"
            || ((1..=32).contains(&ward.len())
                && ward
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-_".contains(c)));
        if !ok {
            return Err(UserError::Ward(ward.clone()));
        }
    }
    match role {
        Role::Clinician if wards.is_empty() => Err(UserError::NoWard),
        Role::Clinician => Ok(()),
        _ if !wards.is_empty() => Err(UserError::WardsForRole(role)),
        _ => Ok(()),
    }
}

/// A parsed users file, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Users {
    by_name: BTreeMap<String, Arc<User>>,
}

/// A hash of a password nobody has, verified when the name is unknown, so that a wrong name
/// takes as long to refuse as a wrong password (the answer's timing does not say who exists).
fn decoy() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"not anyone's password", &salt)
            .map_or_else(|_| String::new(), |h| h.to_string())
    })
}

impl Users {
    /// Parses the users file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Users, UserError> {
        let at = |line: usize, reason: String| UserError::Line {
            path: path.display().to_string(),
            line,
            reason,
        };
        let mut by_name = BTreeMap::new();
        let mut lines = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let n = i + 1;
            let raw = raw.trim();
            if raw.is_empty() || raw.starts_with('#') {
                continue;
            }
            let user = parse_line(raw).map_err(|reason| at(n, reason))?;
            if let Some(first) = lines.insert(user.name.clone(), n) {
                return Err(UserError::Duplicate {
                    path: path.display().to_string(),
                    name: user.name,
                    first,
                    line: n,
                });
            }
            by_name.insert(user.name.clone(), Arc::new(user));
        }
        Ok(Users { by_name })
    }

    /// Reads and parses the users file at `path`.
    pub fn load(path: &Path) -> Result<Users, UsersFileError> {
        let text = std::fs::read_to_string(path).map_err(|e| UsersFileError::Read {
            path: path.to_owned(),
            source: e,
        })?;
        Ok(Users::parse(&text, path)?)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<User>> {
        self.by_name.get(name)
    }

    /// The user `name` if `password` is theirs. An unknown name costs a hash too.
    pub fn authenticate(&self, name: &str, password: &str) -> Option<Arc<User>> {
        match self.by_name.get(name) {
            Some(user) => user.verify(password).then(|| Arc::clone(user)),
            None => {
                verify_hash(decoy(), password);
                None
            }
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<User>> {
        self.by_name.values()
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }

    /// Adds `user`, or replaces the user of that name when `replace`.
    pub fn insert(&mut self, user: User, replace: bool) -> Result<(), String> {
        if !replace && self.by_name.contains_key(&user.name) {
            return Err(format!(
                "user {} exists: --replace sets a new password and role",
                user.name
            ));
        }
        self.by_name.insert(user.name.clone(), Arc::new(user));
        Ok(())
    }

    /// Removes user `name`; whether there was one.
    pub fn remove(&mut self, name: &str) -> bool {
        self.by_name.remove(name).is_some()
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        let mut text = String::from(
            "# Vigil board users: name:role:wards:argon2id hash, written by `vigil user add`\n",
        );
        for user in self.by_name.values() {
            text.push_str(&user.line());
            text.push('\n');
        }
        text
    }
}

/// A users file that cannot be read or parsed.
#[derive(Debug, Error)]
pub enum UsersFileError {
    #[error("the board's users file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Invalid(#[from] UserError),
}

fn parse_line(line: &str) -> Result<User, String> {
    let mut fields = line.splitn(4, ':');
    let (Some(name), Some(role), Some(wards), Some(hash)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Err("expected name:role:wards:hash".to_owned());
    };
    let role = Role::parse(role)
        .ok_or_else(|| format!("role {role:?} is not one of {}", Role::NAMES.join(", ")))?;
    let wards: Vec<String> = wards
        .split(',')
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    check(name, role, &wards).map_err(|e| e.to_string())?;
    match PasswordHash::new(hash) {
        Ok(h) if h.algorithm.as_str() == "argon2id" => {}
        Ok(h) => return Err(format!("the hash is {}, not argon2id", h.algorithm)),
        Err(e) => return Err(format!("the hash is not a PHC string: {e}")),
    }
    Ok(User {
        name: name.to_owned(),
        role,
        wards,
        hash: hash.to_owned(),
    })
}
