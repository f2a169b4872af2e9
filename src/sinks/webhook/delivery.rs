//! The webhook's courier: a thread that sends the outbox's lines to the receiver, in order, one
//! `POST` each, until told to stop.
//!
//! Each request carries the alert id as `Idempotency-Key` and `X-Vigil-Signature: sha256=<hex>`,
//! the HMAC-SHA256 of the body under the shared secret. A receiver that does not answer, or
//! answers 408, 429 or 5xx, is tried again after an exponential backoff with jitter (so that
//! many Vigils do not knock together); the line stays first in the outbox until it is accepted.
//! Any other refusal (a 4xx: the receiver will never take it) is kept in `rejected.jsonl` beside
//! the outbox, with the status and what the receiver said, and the courier goes on: one alert
//! the receiver cannot read must not hold back every alert after it.

use std::io::{self, Write};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::outbox::Outbox;

/// Lines read from the outbox at a time.
const BATCH: usize = 64;

/// What the pipeline and the courier share.
pub struct Shared {
    pub outbox: Mutex<Outbox>,
    /// Signalled when lines are synced, and when the courier is to stop.
    pub wake: Condvar,
    pub stop: std::sync::atomic::AtomicBool,
}

impl Shared {
    /// The outbox, locked (a panic elsewhere leaves it as whole as its last write).
    pub fn outbox(&self) -> std::sync::MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Where and how to send.
pub struct Courier {
    pub url: String,
    pub secret: Vec<u8>,
    pub agent: ureq::Agent,
    pub first_backoff: Duration,
    pub max_backoff: Duration,
}

/// How one request went.
enum Outcome {
    Accepted,
    /// Never to be accepted: the status and what the receiver said.
    Refused(u16, String),
    /// Not now: why.
    Retry(String),
}

impl Courier {
    /// Sends until `shared.stop` is set: what is left stays in the outbox for the next run.
    pub fn run(self, shared: Arc<Shared>) {
        let mut backoff = self.first_backoff;
        let mut complained = None::<Instant>;
        loop {
            let lines = match self.wait_for_lines(&shared) {
                Some(Ok(lines)) => lines,
                Some(Err(e)) => {
                    tracing::warn!("webhook {}: cannot read the outbox: {e}", self.url);
                    return;
                }
                None => return,
            };
            for (body, end) in lines {
                loop {
                    match self.send(&body) {
                        Outcome::Accepted => break,
                        Outcome::Refused(status, said) => {
                            self.keep_refused(&shared, &body, status, &said);
                            break;
                        }
                        Outcome::Retry(why) => {
                            if complained.is_none_or(|t| t.elapsed() >= Duration::from_secs(60)) {
                                tracing::warn!(
                                    "webhook {}: {why}; alerts wait in the outbox and are \
                                     sent when it answers",
                                    self.url
                                );
                                complained = Some(Instant::now());
                            }
                            if !self.pause(&shared, jittered(backoff)) {
                                return;
                            }
                            backoff = (backoff * 2).min(self.max_backoff);
                        }
                    }
                }
                backoff = self.first_backoff;
                let mut outbox = shared.outbox();
                if let Err(e) = outbox.accepted(end) {
                    tracing::warn!("webhook {}: cannot mark the outbox: {e}", self.url);
                }
            }
        }
    }

    /// The next lines to send, waiting for some; `None` once stopped.
    fn wait_for_lines(&self, shared: &Shared) -> Option<io::Result<Vec<(String, u64)>>> {
        let mut outbox = shared.outbox();
        loop {
            if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return None;
            }
            if outbox.pending() > 0 {
                return Some(outbox.next(BATCH));
            }
            outbox = shared
                .wake
                .wait_timeout(outbox, Duration::from_secs(1))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
    }

    /// Waits `wait` before a retry; false when told to stop meanwhile (the line stays).
    fn pause(&self, shared: &Shared, wait: Duration) -> bool {
        let deadline = Instant::now() + wait;
        let mut outbox = shared.outbox();
        while Instant::now() < deadline {
            if shared.stop.load(std::sync::atomic::Ordering::SeqCst) {
                return false;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            outbox = shared
                .wake
                .wait_timeout(outbox, left.min(Duration::from_millis(200)))
                .map_or_else(|e| e.into_inner().0, |(g, _)| g);
        }
        !shared.stop.load(std::sync::atomic::Ordering::SeqCst)
    }

    fn send(&self, body: &str) -> Outcome {
        let key = alert_id(body).unwrap_or_default();
        let outcome = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", &key)
            .header(
                "X-Vigil-Signature",
                signature(&self.secret, body.as_bytes()),
            )
            .send(body);
        match outcome {
            Ok(response) => {
                let status = response.status().as_u16();
                if (200..300).contains(&status) {
                    return Outcome::Accepted;
                }
                let said: String = response
                    .into_body()
                    .read_to_string()
                    .unwrap_or_default()
                    .chars()
                    .take(300)
                    .collect();
                match status {
                    408 | 429 | 500.. => Outcome::Retry(format!("HTTP {status}: {said}")),
                    _ => Outcome::Refused(status, said),
                }
            }
            Err(e) => Outcome::Retry(e.to_string()),
        }
    }

    fn keep_refused(&self, shared: &Shared, body: &str, status: u16, said: &str) {
        let dir = shared.outbox().dir().to_owned();
        let path = dir.join("rejected.jsonl");
        tracing::warn!(
            "webhook {} refused alert {} with HTTP {status}: {said}; kept in {}",
            self.url,
            alert_id(body).unwrap_or_default(),
            path.display()
        );
        let record = serde_json::json!({
            "status": status,
            "said": said,
            "alert": serde_json::from_str::<serde_json::Value>(body).unwrap_or_default(),
        });
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| writeln!(f, "{record}").and_then(|_| f.sync_data()));
        if let Err(e) = written {
            tracing::warn!("webhook: cannot write {}: {e}", path.display());
        }
    }
}

/// `sha256=` and the hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // (HMAC takes a key of any length.)
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(body);
    let bytes = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(7 + 64);
    hex.push_str("sha256=");
    for b in bytes {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// The `id` of an alert's JSON.
fn alert_id(body: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: String,
    }
    serde_json::from_str::<Id>(body).ok().map(|i| i.id)
}

/// Half of `backoff` plus a random part of the other half ("equal jitter"): never less than
/// half the backoff, and callers that failed together spread out.
fn jittered(backoff: Duration) -> Duration {
    let half = backoff / 2;
    let nanos = half.as_nanos().max(1) as u64;
    half + Duration::from_nanos(random_u64() % nanos)
}

/// A random number: std's hasher keys are drawn from the OS for each `RandomState`, which is
/// all the randomness a jitter needs (no crate for it).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(Instant::now().elapsed().as_nanos() as u64);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_hmac_sha256_of_the_body() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn jitter_stays_between_half_the_backoff_and_the_backoff() {
        let backoff = Duration::from_millis(800);
        let waits: Vec<Duration> = (0..200).map(|_| jittered(backoff)).collect();
        assert!(waits.iter().all(|w| *w >= backoff / 2 && *w < backoff));
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "spread out: {}", distinct.len());
    }

    #[test]
    fn the_idempotency_key_is_the_alert_id() {
        assert_eq!(
            alert_id(r#"{"id":"b9787b5896d7709e","patient":"p"}"#).as_deref(),
            Some("b9787b5896d7709e")
        );
        assert_eq!(alert_id("not json"), None);
    }
}
