//! The ward board: what clinicians see, live, served by `vigil run ... --board ADDR` (or a
//! `[board]` section). [`state`] holds what it shows, built from the board-state stream (score
//! updates, reminders, acknowledgements) and the alerts to people, in the sinks' deterministic
//! order; [`BoardSink`] feeds it from the dataflow; [`server`] serves it: HTML pages for people,
//! a JSON API for scripts and a live stream of changes (server-sent events) for both.
//!
//! Invariants: the dataflow never waits on a browser (the sink only locks the state to apply a
//! batch; the server runs on its own thread); an acknowledgement made on the board reaches the
//! monitors only through worker 0's source, which stamps it at the watermark and records it in
//! the archive first (see [`crate::pipeline::acknowledgements::LiveAcks`]).

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::pipeline::acknowledgements::{AckRequest, LiveAcks};

pub mod access;
mod pages;
pub mod server;
mod sink;
pub mod state;
pub mod tls;

pub use sink::BoardSink;
pub use state::BoardState;

/// Changes the live stream can replay.
pub const LOG_CAPACITY: usize = 100_000;

/// The `[board]` section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoardConfig {
    /// Where to listen, `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// The users file (`vigil user add`): every page then needs a sign-in.
    #[serde(default)]
    pub users: Option<PathBuf>,
    /// The certificate chain (PEM) and its key: the board then serves HTTPS only.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
}

impl BoardConfig {
    /// A board at `listen`, as the demo serves it: no users, no TLS.
    pub fn at(listen: SocketAddr) -> BoardConfig {
        BoardConfig {
            listen,
            users: None,
            tls_cert: None,
            tls_key: None,
        }
    }

    /// The certificate and key, when both are given.
    pub fn tls(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    /// Why the board may not serve as configured, if it may not: patients' data leaves this
    /// machine only behind a sign-in and over TLS.
    pub fn refuse(&self) -> Option<String> {
        if self.tls_cert.is_some() != self.tls_key.is_some() {
            return Some("give both tls_cert and tls_key (--board-cert, --board-key)".to_owned());
        }
        let addr = self.listen;
        if addr.ip().is_loopback() {
            return None;
        }
        let missing = match (self.users.is_some(), self.tls().is_some()) {
            (true, true) => return None,
            (false, false) => "a sign-in (users) and TLS (tls_cert, tls_key)",
            (false, true) => "a sign-in (users)",
            (true, false) => {
                "TLS (tls_cert, tls_key): passwords and sessions would cross it in clear"
            }
        };
        Some(format!(
            "the board would serve patients' data to the network at {addr} without {missing}; \
             listen on a loopback address (127.0.0.1:8080), or give the board users \
             (`vigil user add`) and a certificate"
        ))
    }

    /// Paths relative to the pipeline's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        for path in [&mut self.users, &mut self.tls_cert, &mut self.tls_key]
            .into_iter()
            .flatten()
        {
            if path.is_relative() {
                *path = base.join(&*path);
            }
        }
    }
}

/// The board as the server and the sink share it.
#[derive(Debug)]
pub struct Board {
    inner: Mutex<Inner>,
    /// The latest change's id, for the live streams to wake on.
    changed: tokio::sync::watch::Sender<u64>,
    /// Where acknowledgements go; set once the run starts.
    acks: OnceLock<Arc<LiveAcks>>,
    /// Where every acknowledgement is recorded first, when the run keeps an audit trail.
    audit: Option<Mutex<crate::audit::AuditLog>>,
}

#[derive(Debug, Default)]
struct Inner {
    state: BoardState,
    /// The log's changes as the live stream sends them, oldest first: serialised once, however
    /// many clients follow.
    published: VecDeque<Published>,
    /// The run is over: nothing more changes, and nothing more can be acknowledged.
    closed: bool,
}

/// One change as the live stream sends it.
#[derive(Clone, Debug)]
pub struct Published {
    pub id: u64,
    /// When the board applied it (wall clock, ms since the epoch), for a client to measure
    /// its latency.
    pub applied_ms: u64,
    /// `alert`, `patient` or `wards`.
    pub name: &'static str,
    pub json: Arc<str>,
    /// Who may see it.
    pub about: About,
}

/// What a change is about, for the live stream to send it only to those who may see it.
#[derive(Clone, Debug)]
pub enum About {
    /// A patient, on this ward (or none).
    Patient(Option<Arc<str>>),
    /// These wards' counts.
    Wards(Arc<[state::WardCounts]>),
}

impl Published {
    /// The change as `scope` may see it: itself, the counts of its wards only, or nothing.
    pub fn seen(&self, scope: &access::Scope) -> Option<Arc<str>> {
        match (&self.about, scope) {
            (_, access::Scope::Everything) => Some(Arc::clone(&self.json)),
            (About::Patient(ward), scope) => scope
                .patient(ward.as_deref())
                .then(|| Arc::clone(&self.json)),
            (About::Wards(counts), scope) => {
                let seen: Vec<_> = counts.iter().filter(|c| scope.ward(&c.ward)).collect();
                if seen.is_empty() {
                    return None;
                }
                if seen.len() == counts.len() {
                    return Some(Arc::clone(&self.json));
                }
                serde_json::to_string(&seen).ok().map(Arc::from)
            }
        }
    }
}

/// An acknowledgement the board could not queue.
#[derive(Debug, PartialEq, Eq)]
pub enum AckRefused {
    /// No alert to people with this id is on the board.
    Unknown,
    /// The run is over (or has not started): nothing would apply it.
    Closed,
    /// The audit trail could not record it, so it was not made.
    Unrecorded(String),
}

impl Default for Board {
    fn default() -> Board {
        Board {
            inner: Mutex::default(),
            changed: tokio::sync::watch::Sender::new(0),
            acks: OnceLock::new(),
            audit: None,
        }
    }
}

impl Board {
    /// A board that records every acknowledgement in `audit` before it takes effect.
    pub fn with_audit(audit: crate::audit::AuditLog) -> Board {
        Board {
            audit: Some(Mutex::new(audit)),
            ..Board::default()
        }
    }

    /// The run starts: the registry's wards (patient → ward), and where acknowledgements go.
    pub fn attach(&self, wards: HashMap<String, String>, acks: Arc<LiveAcks>) {
        let mut inner = self.lock();
        inner.state = BoardState::new(wards);
        inner.published.clear();
        inner.closed = false;
        drop(inner);
        let _ = self.acks.set(acks);
        self.changed.send_replace(0);
    }

    /// Applies a batch of alerts and board state, in order, and wakes the live streams.
    pub fn apply(&self, alerts: &[crate::alerting::Alert]) {
        self.change(|state| {
            for alert in alerts {
                state.apply(alert);
            }
        });
    }

    /// Changes the state, notes when each new change of its log was applied, and wakes the
    /// live streams.
    fn change(&self, f: impl FnOnce(&mut BoardState)) {
        let now = wall_ms();
        let mut inner = self.lock();
        let before = inner.state.last_id();
        f(&mut inner.state);
        let last = inner.state.last_id();
        for (id, event) in inner.state.take_changes() {
            if inner.published.len() == LOG_CAPACITY {
                inner.published.pop_front();
            }
            let json = serde_json::to_string(&event).unwrap_or_else(|_| "null".to_owned());
            let about = match &event {
                state::BoardEvent::Alert(a) => {
                    About::Patient(inner.state.ward_of(&a.patient).map(Arc::from))
                }
                state::BoardEvent::Patient(row) => {
                    About::Patient(row.ward.as_deref().map(Arc::from))
                }
                state::BoardEvent::Wards(counts) => About::Wards(counts.as_slice().into()),
            };
            inner.published.push_back(Published {
                id,
                applied_ms: now,
                name: event.name(),
                json: json.into(),
                about,
            });
        }
        drop(inner);
        if last != before {
            self.changed.send_replace(last);
        }
    }

    /// Takes the dataflow's changes of the patients per band per ward.
    pub fn count_wards(&self, changes: &[((String, crate::news2::Band), i64)]) {
        self.change(|state| state.count_wards(changes));
    }

    /// The run is over.
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.send_modify(|_| {});
    }

    /// Whether the run is over.
    pub fn closed(&self) -> bool {
        self.lock().closed
    }

    /// Reads the state.
    pub fn read<T>(&self, f: impl FnOnce(&BoardState) -> T) -> T {
        f(&self.lock().state)
    }

    /// The changes after `id`, oldest first; `None` if some have left the log (the client
    /// must reload).
    pub fn since(&self, id: u64) -> Option<Vec<Published>> {
        let inner = self.lock();
        let first = inner
            .published
            .front()
            .map_or(inner.state.last_id() + 1, |p| p.id);
        // Evicted, or an id from before a restart (ids start again at 1): reload.
        if id + 1 < first || id > inner.state.last_id() {
            return None;
        }
        let skip = inner.published.partition_point(|p| p.id <= id);
        Some(inner.published.iter().skip(skip).cloned().collect())
    }

    /// A receiver that wakes on every change.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Queues a clinician's acknowledgement of alert `id`, for the source to stamp.
    pub fn acknowledge(&self, id: &str, by: String, note: String) -> Result<(), AckRefused> {
        let inner = self.lock();
        if inner.closed {
            return Err(AckRefused::Closed);
        }
        let alert = inner
            .state
            .alert(id)
            .filter(|a| a.pages())
            .ok_or(AckRefused::Unknown)?;
        let patient =
            crate::observation::Identifier::new(&alert.patient).map_err(|_| AckRefused::Unknown)?;
        let request = AckRequest {
            patient,
            alert: alert.id.clone(),
            kind: alert.kind,
            alert_time_us: alert.time_us,
            by,
            note,
        };
        drop(inner);
        let acks = self.acks.get().ok_or(AckRefused::Closed)?;
        // Recorded before it can take effect: an act the trail lacks did not happen.
        let what = format!("alert {} of {}", request.alert, request.patient.as_str());
        self.record(&request.by, "acknowledged", &what)
            .map_err(AckRefused::Unrecorded)?;
        acks.push(request);
        Ok(())
    }

    /// Records `who` did `action` to `what` in the audit trail, when the run keeps one.
    pub fn record(&self, who: &str, action: &str, what: &str) -> Result<(), String> {
        let Some(audit) = &self.audit else {
            return Ok(());
        };
        let mut audit = audit.lock().unwrap_or_else(|e| e.into_inner());
        audit
            .record(who, action, what)
            .map(drop)
            .map_err(|e| e.to_string())
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves a board that is still readable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn wall_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerting::Evidence;
    use crate::observation::EventTime;

    fn update(t: i64, hr: f64) -> crate::alerting::Alert {
        let s = crate::news2::score_of(16.0, hr, Some(37.0));
        crate::rules::news2::policy::score_update(
            "p1",
            EventTime::from_micros(t),
            &s,
            None,
            Evidence::of(&s, [None; 7]),
        )
    }

    #[test]
    fn a_client_resumes_after_its_last_id_and_reloads_after_a_restart() {
        let board = Board::default();
        board.attach(HashMap::new(), Arc::new(LiveAcks::new(None, None)));
        board.apply(&[update(1, 60.0), update(2, 95.0), update(3, 135.0)]);
        let after: Vec<u64> = board.since(1).unwrap().iter().map(|p| p.id).collect();
        assert_eq!(after, [2, 3]);
        assert!(board.since(3).unwrap().is_empty());
        let event: serde_json::Value =
            serde_json::from_str(&board.since(2).unwrap()[0].json).unwrap();
        assert_eq!(event["patient"], "p1");
        // A browser that was following an earlier run's board (ids start again at 1).
        assert!(board.since(40).is_none());
    }

    #[test]
    fn the_live_log_replays_from_any_id_and_says_when_it_cannot() {
        let board = Board::default();
        board.attach(HashMap::new(), Arc::new(LiveAcks::new(None, None)));
        let updates: Vec<_> = (0..5).map(|t| update(t, 60.0 + t as f64)).collect();
        board.apply(&updates);
        assert_eq!(
            board.read(|s| s.last_id()),
            5,
            "one change per score update"
        );
        let after = board.since(3).unwrap();
        assert_eq!(after.iter().map(|p| p.id).collect::<Vec<_>>(), [4, 5]);
        assert!(after.iter().all(|p| p.name == "patient"));
        assert!(board.since(5).unwrap().is_empty());
        let more: Vec<_> = (0..LOG_CAPACITY as i64)
            .map(|t| update(10 + t, 60.0 + (t % 20) as f64))
            .collect();
        board.apply(&more);
        assert!(board.since(3).is_none(), "evicted: the client reloads");
        let last = board.read(|s| s.last_id());
        assert!(board.since(last - 1).is_some());
        let history = board.read(|s| s.patient("p1").map(|(_, page)| page.history.len()));
        assert_eq!(history, Some(state::HISTORY));
    }

    #[test]
    fn the_live_stream_sends_each_viewer_their_wards_only() {
        let board = Board::default();
        let wards = HashMap::from([("p1".to_owned(), "4A".to_owned())]);
        board.attach(wards, Arc::new(LiveAcks::new(None, None)));
        board.apply(&[update(1, 135.0)]);
        board.count_wards(&[
            (("4A".to_owned(), crate::news2::Band::High), 1),
            (("4B".to_owned(), crate::news2::Band::Low), 1),
        ]);
        let log = board.since(0).unwrap();
        let of = |scope: access::Scope| -> Vec<String> {
            log.iter()
                .filter_map(|p| p.seen(&scope).map(|json| format!("{} {json}", p.name)))
                .collect()
        };
        let all = of(access::Scope::Everything);
        assert_eq!(all.len(), log.len());
        let b = of(access::Scope::Wards(vec!["4B".to_owned()]));
        assert_eq!(b.len(), 1, "4B sees its counts only: {b:?}");
        assert!(b[0].starts_with("wards ") && b[0].contains("4B") && !b[0].contains("4A"));
        let a = of(access::Scope::Wards(vec!["4A".to_owned()]));
        assert!(a.iter().any(|e| e.contains("\"p1\"")), "{a:?}");
        assert!(a.iter().all(|e| !e.contains("4B")), "{a:?}");
        let counts = of(access::Scope::Counts);
        assert!(counts.iter().all(|e| e.starts_with("wards ")), "{counts:?}");
    }

    #[test]
    fn an_acknowledgement_of_an_unknown_alert_or_after_the_run_is_refused() {
        let board = Board::default();
        let acks = Arc::new(LiveAcks::new(None, None));
        board.attach(HashMap::new(), Arc::clone(&acks));
        assert_eq!(
            board.acknowledge("nope", "a".into(), String::new()),
            Err(AckRefused::Unknown)
        );
        board.close();
        assert_eq!(
            board.acknowledge("nope", "a".into(), String::new()),
            Err(AckRefused::Closed)
        );
        assert!(acks.take(0).unwrap().is_empty());
    }
}
