//! Durability: one protocol, so that a crash, a restart or an outage loses nothing.
//!
//! 1. **Archive, then commit.** Each worker's source archives every record it reads
//!    ([`super::side`]) and flushes the archive every `flush_every` (a file written, fsynced,
//!    renamed). A flush makes what was read before it durable: the worker publishes the tick
//!    before which every record it processed is in the archive ([`Delivery::set_durable`]), and
//!    queues the source's checkpoint, never past a record still waiting for its verdict
//!    ([`Commits::flushed`]).
//! 2. **Deliver, then commit.** Worker 0's alert sink flushes its sinks (a file fsynced, a Kafka
//!    producer's messages confirmed) at least once a second while alerts flow, and publishes the
//!    tick before which every alert is delivered ([`Delivery`]). A queued checkpoint is committed
//!    only once every alert of the ticks up to what it covers is delivered
//!    ([`Commits::commit_delivered`]).
//! 3. **The delivered line.** With an archive, the alert sink also archives the alerts (the
//!    archive's alerts dataset, written every `flush_every` and at the end) and records how far
//!    alerts are delivered, archived *and* the observations behind them archived
//!    ([`DeliveryLog`], the archive's `_vigil/delivered.json`), at most once a second.
//! 4. **Resume.** A run over an archive that holds rows of its source first replays them (see
//!    [`crate::sources::resume`]), rebuilding every patient, sends none of the alerts before the
//!    delivered line again (they were delivered), and sends the ones after it (one delivered just
//!    before a crash may come twice, with the same `id`); every partition's clock starts at least
//!    at the line, so what the earlier run judged late is late again ([`resume_line`]). With a
//!    snapshot of the patients behind the line ([`super::snapshot`]), it replays only the rows
//!    after the snapshot, and the patients come from it. At the end of a run the line is at
//!    least the tick of its last snapshot: everything before it is delivered and archived.
//! 5. **The end.** A finite source, or a stop, drains: what waits is decided, the archive flushed
//!    and marked durable to the end, the alerts delivered, and the final checkpoint committed
//!    ([`final_commit`]). Nothing past the durable archive is ever committed: if the archive
//!    cannot be written (a full disk), nothing more is.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use super::PipelineError;
use crate::alerting::Alert;
use crate::archive::alerts::AlertsWriter;
use crate::archive::{ArchiveError, Delivered};
use crate::sources::{Checkpoint, Source, SourceError};

/// How far alerts are delivered and observations archived, shared by the alert sink (worker 0)
/// and every worker's source.
#[derive(Debug)]
pub struct Delivery {
    /// Every alert of a tick before this one is delivered.
    below: AtomicI64,
    /// The sinks failed: nothing more will be confirmed.
    failed: AtomicBool,
    /// Per worker, the tick before which every observation its source processed is durable in
    /// the archive (`i64::MAX` for a worker that archives nothing).
    durable: Vec<AtomicI64>,
    /// The tick of the latest snapshot worker 0's source asked for.
    snapshot: AtomicI64,
}

impl Delivery {
    pub fn new(workers: usize) -> Delivery {
        Delivery {
            snapshot: AtomicI64::new(i64::MIN),
            below: AtomicI64::new(i64::MIN),
            failed: AtomicBool::new(false),
            durable: (0..workers).map(|_| AtomicI64::new(i64::MIN)).collect(),
        }
    }

    /// Worker `w`'s archive holds every observation it processed before `tick`.
    pub fn set_durable(&self, worker: usize, tick: i64) {
        if let Some(d) = self.durable.get(worker) {
            d.store(tick, Ordering::Release);
        }
    }

    /// Worker `w`'s durable tick, as it last set it (or as a notice from its process said).
    pub fn durable_of(&self, worker: usize) -> i64 {
        self.durable
            .get(worker)
            .map_or(i64::MAX, |d| d.load(Ordering::Acquire))
    }

    /// Every observation processed before the returned tick is durable in the archive.
    pub fn durable_below(&self) -> i64 {
        self.durable
            .iter()
            .map(|d| d.load(Ordering::Acquire))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Worker 0's source asked for a snapshot at `tick`.
    pub fn snapshot_requested(&self, tick: i64) {
        self.snapshot.fetch_max(tick, Ordering::AcqRel);
    }

    /// The tick of the latest snapshot asked for (`i64::MIN`: none).
    pub fn latest_snapshot(&self) -> i64 {
        self.snapshot.load(Ordering::Acquire)
    }

    /// Every alert of a tick before `tick` is delivered.
    pub fn set_delivered(&self, tick: i64) {
        self.below.store(tick, Ordering::Release);
    }

    /// The sinks failed: no alert will be confirmed any more, and nothing committed.
    pub fn fail(&self) {
        self.failed.store(true, Ordering::Release);
    }

    /// Whether the sinks failed.
    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    /// Whether the delivery is over: every alert delivered, or the sinks failed.
    pub fn settled(&self) -> bool {
        self.failed() || self.below.load(Ordering::Acquire) == i64::MAX
    }

    /// Every alert of a tick before the returned one is delivered.
    pub fn delivered_below(&self) -> i64 {
        if self.failed() {
            i64::MIN
        } else {
            self.below.load(Ordering::Acquire)
        }
    }

    /// Waits until every alert is delivered; false if the sinks failed or time ran out.
    pub fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.settled() {
                return !self.failed();
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// One worker's checkpoints taken at flushes, waiting for their alerts to be delivered.
#[derive(Debug, Default)]
pub struct Commits {
    /// Each with the tick its alerts must be delivered below (the latest processed tick).
    uncommitted: VecDeque<(i64, Checkpoint)>,
}

impl Commits {
    /// The archive was flushed: everything this worker processed before `durable_tick` is in
    /// it, and `checkpoint` (if the source keeps positions) covers what was read, up to the
    /// ticks below `latest_tick`.
    pub fn flushed(
        &mut self,
        delivery: &Delivery,
        worker: usize,
        durable_tick: i64,
        checkpoint: Option<Checkpoint>,
        latest_tick: i64,
    ) {
        delivery.set_durable(worker, durable_tick);
        if let Some(checkpoint) = checkpoint {
            self.uncommitted.push_back((latest_tick, checkpoint));
        }
    }

    /// Commits the latest checkpoint whose alerts are all delivered; whether there was one.
    pub fn commit_delivered(
        &mut self,
        source: &mut dyn Source,
        delivery: &Delivery,
    ) -> Result<bool, SourceError> {
        let delivered = delivery.delivered_below();
        let mut ready = None;
        while self
            .uncommitted
            .front()
            .is_some_and(|(t, _)| *t < delivered)
        {
            ready = self.uncommitted.pop_front();
        }
        match ready {
            Some((_, checkpoint)) => source.commit(&checkpoint).map(|()| true),
            None => Ok(false),
        }
    }
}

/// How long the end of a run waits for every alert to be delivered.
pub const DELIVERY_WAIT: Duration = Duration::from_secs(300);

/// At the end of a worker's run: once every alert is delivered, the source's final position is
/// committed. Nothing is committed after an error. True when there was a position to commit.
pub fn final_commit(source: &mut dyn Source, delivery: &Delivery) -> Result<bool, PipelineError> {
    let Some(checkpoint) = source.checkpoint() else {
        return Ok(false);
    };
    if !delivery.wait_all(DELIVERY_WAIT) {
        return Err(PipelineError::Undelivered);
    }
    source
        .commit(&checkpoint)
        .map(|()| true)
        .map_err(PipelineError::from)
}

/// An archive's record of the alerts: the alerts dataset, and how far alerts are delivered
/// (`_vigil/delivered.json`).
pub struct DeliveryLog {
    pub dir: PathBuf,
    /// The source, as the archive names it.
    pub source: String,
    pub tick_us: i64,
    /// Alerts before this event time were delivered by an earlier run: not sent again.
    pub resend_from_us: Option<i64>,
    alerts: AlertsWriter,
    /// How often the alerts dataset is written to.
    every: Duration,
    last_persist: Instant,
    /// Every alert of a tick before this one is in the alerts dataset.
    archived_below: i64,
    /// The line last written (ticks), the latest tick that had alerts, and when it was written.
    logged: i64,
    latest_alert_tick: i64,
    last_write: Instant,
}

/// The delivered line is written at most this often while alerts flow.
pub const LOG_EVERY: Duration = Duration::from_secs(1);

impl DeliveryLog {
    /// The record of the archive under `dir`, written to every `every`.
    pub fn new(
        dir: &Path,
        source: &str,
        tick_us: i64,
        resend_from_us: Option<i64>,
        every: Duration,
        key: Option<Arc<crate::archive::ArchiveKey>>,
    ) -> DeliveryLog {
        let tick_us = tick_us.max(1);
        DeliveryLog {
            dir: dir.to_owned(),
            source: source.to_owned(),
            tick_us,
            resend_from_us,
            alerts: AlertsWriter::new(dir, key),
            every,
            last_persist: Instant::now(),
            archived_below: i64::MIN,
            logged: resend_from_us.map_or(i64::MIN, |us| us.div_euclid(tick_us)),
            latest_alert_tick: i64::MIN,
            last_write: Instant::now(),
        }
    }

    /// Alerts of `tick` were written.
    pub fn alerts_at(&mut self, tick: i64) {
        self.latest_alert_tick = self.latest_alert_tick.max(tick);
    }

    /// Alerts written to the sinks, in order: archived too.
    pub fn archive(&mut self, alerts: &[Alert]) {
        self.alerts.push(alerts);
    }

    /// Alerts archived (written to the alerts dataset).
    pub fn archived(&self) -> u64 {
        self.alerts.written()
    }

    /// Every alert before `limit` is delivered (`None`: the end, all of them): writes the
    /// buffered alerts when due, then records how far alerts are delivered and archived with
    /// the observations behind them, when it moved and a second has passed (or at the end).
    pub fn delivered(
        &mut self,
        limit: Option<i64>,
        delivery: &Delivery,
    ) -> Result<(), ArchiveError> {
        let end = limit.is_none();
        if end || (self.alerts.has_buffered() && self.last_persist.elapsed() >= self.every) {
            self.alerts.persist()?;
            self.last_persist = Instant::now();
        }
        if !self.alerts.has_buffered() {
            self.archived_below = limit.unwrap_or(i64::MAX);
        }
        let line = match limit {
            Some(l) => l.min(delivery.durable_below()).min(self.archived_below),
            // At the end every alert is delivered and every observation archived: up to the
            // last snapshot too, which a restart then starts from.
            None => self
                .logged
                .max(self.latest_alert_tick.saturating_add(1))
                .max(match delivery.failed() {
                    true => i64::MIN,
                    false => delivery.latest_snapshot(),
                }),
        };
        if line <= self.logged || (!end && self.last_write.elapsed() < LOG_EVERY) {
            return Ok(());
        }
        self.last_write = Instant::now();
        Delivered::new(&self.source, line.saturating_mul(self.tick_us)).write(&self.dir)?;
        self.logged = line;
        Ok(())
    }
}

/// The delivered line of an earlier run of `source` over the archive `dir`, when the run resumes
/// over it (`resuming`): alerts before it are not sent again.
pub fn resume_line(dir: &Path, source: &str, resuming: bool) -> Result<Option<i64>, ArchiveError> {
    if !resuming {
        return Ok(None);
    }
    let delivered = Delivered::read(dir)?.filter(|d| d.source == source);
    tracing::info!(
        archive = %dir.display(),
        "resuming over the archive {}: rebuilding patients' state from it{}",
        dir.display(),
        delivered.as_ref().map_or(String::new(), |d| format!(
            "; alerts before {} were delivered and are not sent again",
            d.before
        ))
    );
    Ok(delivered.map(|d| d.before_us))
}
