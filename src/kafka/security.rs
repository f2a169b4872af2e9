//! How a Kafka client authenticates and protects its connection: TLS, SASL (SCRAM-SHA-256/512
//! or PLAIN), the CA it trusts, and a password read from a file or an environment variable at
//! connect time, never from the pipeline file or the command line.
//!
//! ```toml
//! [source.security]
//! protocol = "sasl_ssl"               # plaintext (default), ssl, sasl_plaintext, sasl_ssl
//! mechanism = "SCRAM-SHA-512"         # or SCRAM-SHA-256, PLAIN
//! username = "vigil"
//! password_file = "secrets/kafka"     # or password_env = "VIGIL_KAFKA_PASSWORD"
//! ca_file = "certs/ca.pem"            # the CA the brokers' certificates are signed by
//! ```
//!
//! Invariants: a password never reaches a log, an error or `Debug` output; credentials over
//! plaintext are refused unless `allow_plaintext_credentials = true`; the settings this section
//! owns cannot be set, or bypassed, through `properties`; with TLS the broker's certificate
//! must chain to the CA and name the host dialled (librdkafka's `https` identification).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rdkafka::config::ClientConfig;
use serde::Deserialize;

use crate::component::{Problem, Section};

/// The connection's protocol.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Protocol {
    #[default]
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl Protocol {
    fn librdkafka(self) -> &'static str {
        match self {
            Protocol::Plaintext => "plaintext",
            Protocol::Ssl => "ssl",
            Protocol::SaslPlaintext => "sasl_plaintext",
            Protocol::SaslSsl => "sasl_ssl",
        }
    }

    fn sasl(self) -> bool {
        matches!(self, Protocol::SaslPlaintext | Protocol::SaslSsl)
    }

    fn tls(self) -> bool {
        matches!(self, Protocol::Ssl | Protocol::SaslSsl)
    }
}

/// A SASL mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub enum Mechanism {
    #[serde(rename = "SCRAM-SHA-256")]
    ScramSha256,
    #[serde(rename = "SCRAM-SHA-512")]
    ScramSha512,
    #[serde(rename = "PLAIN")]
    Plain,
}

impl Mechanism {
    fn librdkafka(self) -> &'static str {
        match self {
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::Plain => "PLAIN",
        }
    }
}

/// A `[source.security]` or `[sinks.security]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KafkaSecurity {
    #[serde(default)]
    pub protocol: Protocol,
    pub mechanism: Option<Mechanism>,
    pub username: Option<String>,
    /// A file holding the password (a trailing newline is not part of it).
    pub password_file: Option<PathBuf>,
    /// An environment variable holding the password.
    pub password_env: Option<String>,
    /// The CA certificates (PEM) the brokers' certificates must chain to; the system's without.
    pub ca_file: Option<PathBuf>,
    /// Send credentials over `sasl_plaintext` even so (a network nobody else can read).
    #[serde(default)]
    pub allow_plaintext_credentials: bool,
}

/// librdkafka settings this section owns, refused in `properties`.
const OWNED: &[&str] = &[
    "security.protocol",
    "sasl.mechanism",
    "sasl.mechanisms",
    "sasl.username",
    "sasl.password",
    "ssl.ca.location",
    "ssl.ca.pem",
    "ssl.endpoint.identification.algorithm",
    "enable.ssl.certificate.verification",
];

/// Settings that hold secrets: never in a pipeline file.
const SECRETS: &[&str] = &[
    "sasl.password",
    "ssl.key.password",
    "ssl.keystore.password",
    "ssl.key.pem",
    "sasl.oauthbearer.client.secret",
];

/// A password that cannot be read. It names where it was looked for, never what was found.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the Kafka password file {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the Kafka password variable {name} is not set (or not UTF-8)")]
    Env { name: String },
    #[error("the Kafka password from {from} is empty")]
    Empty { from: String },
}

impl KafkaSecurity {
    /// Resolves the files against the pipeline's directory.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.password_file, &mut self.ca_file]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    /// The section's problems, and those of `properties` that would bypass it, each at its line.
    pub fn check(&self, section: &Section, properties: &BTreeMap<String, String>) -> Vec<Problem> {
        let mut problems = Vec::new();
        for name in properties.keys() {
            let key = format!("properties.{name}");
            if SECRETS.contains(&name.as_str()) {
                problems.push(section.problem(&key, format!("`{name}` is a secret, and a pipeline file is no place for it: write security.password_file or security.password_env")));
            } else if OWNED.contains(&name.as_str()) {
                problems.push(section.problem(&key, format!("`{name}` is the security table's to set: write security.protocol, mechanism, username or ca_file")));
            }
        }
        let mut problem = |key: &str, message: String| {
            problems.push(section.problem(&format!("security.{key}"), message))
        };
        let credentials = self.username.is_some()
            || self.password_file.is_some()
            || self.password_env.is_some()
            || self.mechanism.is_some();
        if self.protocol.sasl() {
            if self.mechanism.is_none() {
                problem(
                    "mechanism",
                    "`mechanism` is needed with SASL: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN".into(),
                );
            }
            if self.username.as_deref().is_none_or(str::is_empty) {
                problem("username", "`username` is needed with SASL".into());
            }
            match (&self.password_file, &self.password_env) {
                (None, None) => problem(
                    "protocol",
                    "SASL needs a password: write `password_file` or `password_env`".into(),
                ),
                (Some(_), Some(_)) => problem(
                    "password_env",
                    "write `password_file` or `password_env`, not both".into(),
                ),
                _ => {}
            }
        } else if credentials {
            problem(
                "protocol",
                format!(
                    "credentials are given but `protocol` is {:?}: write \"sasl_ssl\"",
                    self.protocol.librdkafka()
                ),
            );
        }
        if self.protocol == Protocol::SaslPlaintext && !self.allow_plaintext_credentials {
            problem("protocol", "credentials over plaintext: anyone on the network between Vigil and the broker reads them; write protocol = \"sasl_ssl\", or allow_plaintext_credentials = true on a network nobody else can read".into());
        }
        if self.ca_file.is_some() && !self.protocol.tls() {
            problem(
                "ca_file",
                "`ca_file` is for TLS: write protocol = \"ssl\" or \"sasl_ssl\"".into(),
            );
        }
        problems
    }

    /// Sets the section's settings on `config`, reading the password now.
    pub fn apply(&self, config: &mut ClientConfig) -> Result<(), SecretError> {
        config.set("security.protocol", self.protocol.librdkafka());
        if self.protocol.tls() {
            // The broker's certificate must name the host dialled.
            config.set("ssl.endpoint.identification.algorithm", "https");
            if let Some(ca) = &self.ca_file {
                config.set("ssl.ca.location", ca.to_string_lossy());
            }
        }
        if self.protocol.sasl() {
            if let Some(mechanism) = self.mechanism {
                config.set("sasl.mechanisms", mechanism.librdkafka());
            }
            if let Some(user) = &self.username {
                config.set("sasl.username", user);
            }
            config.set("sasl.password", self.password()?);
        }
        Ok(())
    }

    fn password(&self) -> Result<String, SecretError> {
        let (password, from) = match (&self.password_file, &self.password_env) {
            (Some(path), _) => {
                let text = std::fs::read_to_string(path).map_err(|source| SecretError::File {
                    path: path.clone(),
                    source,
                })?;
                (
                    text.trim_end_matches(['\n', '\r']).to_owned(),
                    path.display().to_string(),
                )
            }
            (None, Some(name)) => {
                let value =
                    std::env::var(name).map_err(|_| SecretError::Env { name: name.clone() })?;
                (value, format!("${name}"))
            }
            (None, None) => (String::new(), "nowhere".to_owned()),
        };
        match password.is_empty() {
            true => Err(SecretError::Empty { from }),
            false => Ok(password),
        }
    }
}

#[cfg(test)]
mod tests;
