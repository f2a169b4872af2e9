//! `[[sinks]] kind = "webhook"`: each alert to people `POST`ed as its JSON to a receiver (a
//! paging service, a nurse-call gateway, a chat bridge), signed, through a durable outbox.
//!
//! A flush appends the alerts to the outbox ([`outbox`]) and syncs it: only then does the
//! pipeline count them delivered and commit what they came from. A courier thread
//! ([`delivery`]) sends the outbox to the receiver in order, retrying with backoff and jitter
//! while it is away; what it has not sent when Vigil stops (after `drain`) stays in the outbox
//! and goes first when Vigil next runs with it. Delivery is at least once: the receiver
//! de-duplicates by the `Idempotency-Key` header, the alert's id, and checks
//! `X-Vigil-Signature`.

pub mod delivery;
pub mod outbox;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::Deserialize;

use super::{AlertSink, SinkContext, SinkError, SinkKind};
use crate::alerting::{Alert, Recipient};
use crate::component::{Dur, Problem, Section};
use delivery::{Courier, Shared};
use outbox::Outbox;

/// The `[[sinks]]` of a webhook.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where alerts are `POST`ed: `http://host[:port]/path`.
    pub url: String,
    /// A file holding the signing secret (its bytes, a trailing newline dropped).
    pub secret_file: Option<PathBuf>,
    /// Or an environment variable holding it.
    pub secret_env: Option<String>,
    /// The outbox directory: alerts wait here until the receiver accepts them.
    pub outbox: PathBuf,
    /// Whom this receiver pages for: `ward`, `escalation`, or both (the default).
    #[serde(default = "WebhookConfig::everyone")]
    pub recipients: Vec<Recipient>,
    /// How long one request may take.
    #[serde(default = "WebhookConfig::default_timeout")]
    pub timeout: Dur,
    /// The longest wait between two tries.
    #[serde(default = "WebhookConfig::default_max_backoff")]
    pub max_backoff: Dur,
    /// At the end of a run, how long to wait for the receiver to take what is left.
    #[serde(default = "WebhookConfig::default_drain")]
    pub drain: Dur,
}

impl WebhookConfig {
    fn everyone() -> Vec<Recipient> {
        vec![Recipient::Ward, Recipient::Escalation]
    }
    fn default_timeout() -> Dur {
        Dur::secs(10)
    }
    fn default_max_backoff() -> Dur {
        Dur::secs(60)
    }
    fn default_drain() -> Dur {
        Dur::secs(10)
    }

    /// The signing secret, from its file or its variable.
    fn secret(&self) -> io::Result<Vec<u8>> {
        let secret = match (&self.secret_file, &self.secret_env) {
            (Some(path), _) => {
                let mut bytes = std::fs::read(path).map_err(|e| super::with_path(e, path))?;
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                bytes
            }
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| {
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("the signing secret's variable {var} is not set"),
                    )
                })?
                .into_bytes(),
            (None, None) => Vec::new(),
        };
        if secret.len() < 16 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the signing secret is shorter than 16 bytes: make a long random one \
                 (head -c 32 /dev/urandom | base64 > webhook.secret)",
            ));
        }
        Ok(secret)
    }
}

impl SinkKind for WebhookConfig {
    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !self.url.starts_with("http://") {
            problems.push(section.problem(
                "url",
                format!(
                    "`url` {:?} must be http://host[:port]/path (HTTPS is not built in yet: put a \
                     TLS proxy such as stunnel in front)",
                    self.url
                ),
            ));
        }
        if self.secret_file.is_some() == self.secret_env.is_some() {
            problems.push(section.problem(
                "kind",
                "a webhook needs its signing secret from exactly one of `secret_file` (a file) \
                 or `secret_env` (an environment variable); never write it in the pipeline",
            ));
        }
        if self.recipients.is_empty() {
            problems.push(section.problem(
                "recipients",
                "`recipients` is empty: name `ward`, `escalation`, or both",
            ));
        }
        for (key, d) in [("timeout", self.timeout), ("max_backoff", self.max_backoff)] {
            if d.0.is_zero() {
                problems.push(section.problem(key, format!("`{key}` must be longer than 0")));
            }
        }
        problems
    }

    fn resolve_paths(&mut self, base: &Path) {
        for path in [Some(&mut self.outbox), self.secret_file.as_mut()]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }

    fn build(&self, _cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError> {
        let error = |source| SinkError {
            sink: format!("webhook {}", self.url),
            source,
        };
        let secret = self.secret().map_err(error)?;
        let outbox = Outbox::open(&self.outbox).map_err(error)?;
        Ok(Box::new(Webhook::start(self, secret, outbox)))
    }
}

/// The running webhook: the outbox it appends to, and its courier.
pub struct Webhook {
    url: String,
    recipients: Vec<Recipient>,
    drain: Duration,
    shared: Arc<Shared>,
    courier: Option<std::thread::JoinHandle<()>>,
    /// Alerts appended since the last sync.
    unsynced: bool,
}

impl Webhook {
    fn start(config: &WebhookConfig, secret: Vec<u8>, outbox: Outbox) -> Webhook {
        let shared = Arc::new(Shared {
            outbox: Mutex::new(outbox),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let courier = Courier {
            url: config.url.clone(),
            secret,
            agent: ureq::Agent::config_builder()
                .timeout_global(Some(config.timeout.0))
                .http_status_as_error(false)
                .build()
                .into(),
            first_backoff: Duration::from_millis(250).min(config.max_backoff.0),
            max_backoff: config.max_backoff.0,
        };
        let thread_shared = Arc::clone(&shared);
        let courier = std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || courier.run(thread_shared))
            .ok();
        Webhook {
            url: config.url.clone(),
            recipients: config.recipients.clone(),
            drain: config.drain.0,
            shared,
            courier,
            unsynced: false,
        }
    }
}

impl AlertSink for Webhook {
    fn backlog(&self) -> u64 {
        self.shared.outbox().pending()
    }

    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        let bodies: Vec<String> = alerts
            .iter()
            .filter(|a| a.pages() && self.recipients.contains(&a.recipient))
            .map(Alert::to_json)
            .collect();
        if bodies.is_empty() {
            return Ok(());
        }
        self.shared
            .outbox()
            .append(bodies.iter().map(String::as_str))?;
        self.unsynced = true;
        Ok(())
    }

    /// Returns once the alerts are in the outbox on disk: the receiver gets them from there.
    fn flush(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.shared.outbox().sync()?;
            self.unsynced = false;
            self.shared.wake.notify_all();
        }
        Ok(())
    }

    /// Waits up to `drain` for the receiver to take what is left, then stops the courier.
    fn finish(&mut self) -> io::Result<()> {
        self.flush()?;
        let deadline = Instant::now() + self.drain;
        while self.shared.outbox().pending() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
        if let Some(courier) = self.courier.take() {
            let _ = courier.join();
        }
        let outbox = self.shared.outbox();
        if outbox.pending() > 0 {
            tracing::warn!(
                "webhook {}: the receiver did not take every alert within {}; they wait \
                 in {} and go first when Vigil next runs with this sink",
                self.url,
                Dur(self.drain),
                outbox.dir().display()
            );
        }
        Ok(())
    }

    fn describe(&self) -> String {
        format!("webhook {}", self.url)
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.wake.notify_all();
    }
}
