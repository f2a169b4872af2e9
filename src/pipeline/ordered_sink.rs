//! The alert sink operator: gathers every worker's alerts on worker 0 and writes them, once the
//! frontier has passed their tick, in (event time, patient, kind) order.
//!
//! It also tells the sources how far alerts are delivered ([`Delivery`]): sinks are flushed (a
//! file fsynced, a Kafka producer's messages confirmed) at least once a second while alerts flow,
//! and then every alert of a tick before the published one is durable. Sources commit their
//! input positions only behind that line.
//!
//! With an archive, the sink also records there how far alerts are delivered *and* the
//! observations behind them archived ([`crate::archive::Delivered`]), at most once a second and
//! at the end. A run that resumes over the archive rebuilds patients' state from it, and the
//! alerts before that line, delivered already, are not sent again; the ones after it are, so
//! none is lost (a few may come twice, with the same content-derived id).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use super::WorkerState;
use crate::alerting::Alert;
use crate::sinks::AlertSink;

/// How far alerts are delivered, shared by the sink (worker 0) and every source.
#[derive(Debug)]
pub struct Delivery {
    /// Every alert of a tick before this one is delivered.
    below: AtomicI64,
    /// The sinks failed: nothing more will be confirmed.
    failed: AtomicBool,
    /// Per worker, the tick before which every observation its source processed is durable in
    /// the archive (`i64::MAX` for a worker that archives nothing).
    durable: Vec<AtomicI64>,
}

impl Delivery {
    pub fn new(workers: usize) -> Delivery {
        Delivery {
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

    /// Every observation processed before the returned tick is durable in the archive.
    fn durable_below(&self) -> i64 {
        self.durable
            .iter()
            .map(|d| d.load(Ordering::Acquire))
            .min()
            .unwrap_or(i64::MAX)
    }

    /// Every alert of a tick before the returned one is delivered.
    pub fn delivered_below(&self) -> i64 {
        if self.failed.load(Ordering::Acquire) {
            i64::MIN
        } else {
            self.below.load(Ordering::Acquire)
        }
    }

    /// Waits until every alert is delivered; false if the sinks failed or time ran out.
    pub fn wait_all(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.failed.load(Ordering::Acquire) {
                return false;
            }
            if self.below.load(Ordering::Acquire) == i64::MAX {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Sinks are flushed at least this often while alerts flow.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// How far alerts are delivered, kept in an archive's directory.
pub struct DeliveryLog {
    pub dir: PathBuf,
    /// The source, as the archive names it.
    pub source: String,
    pub tick_us: i64,
    /// Alerts before this event time were delivered by an earlier run: not sent again.
    pub resend_from_us: Option<i64>,
}

pub fn ordered_sink(
    alerts: Stream<'_, i64, Vec<Alert>>,
    sinks: Option<Vec<Box<dyn AlertSink>>>,
    log: Option<DeliveryLog>,
    delivery: Arc<Delivery>,
    state: Rc<RefCell<WorkerState>>,
) {
    let owner = sinks.is_some();
    let mut sinks = sinks.unwrap_or_default();
    let mut pending: BTreeMap<i64, Vec<Alert>> = BTreeMap::new();
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut finished = false;
    let resend_from_us = log.as_ref().and_then(|l| l.resend_from_us);
    let tick_us = log.as_ref().map_or(1, |l| l.tick_us.max(1));
    // The line last written to the log (ticks), the latest tick that had alerts, and when.
    let mut logged = resend_from_us.map_or(i64::MIN, |us| us.div_euclid(tick_us));
    let mut latest_alert_tick = i64::MIN;
    let mut last_log = Instant::now();
    alerts.sink(
        Exchange::new(|_: &Alert| 0),
        "AlertSink",
        move |(input, frontier)| {
            input.for_each(|time, data| {
                pending
                    .entry(time.least().copied().unwrap_or(i64::MIN))
                    .or_default()
                    .append(data);
            });
            if !owner || finished {
                return;
            }
            let limit = frontier.frontier().first().copied();
            let mut ready: Vec<Alert> = Vec::new();
            while let Some(entry) = pending.first_entry() {
                if limit.is_some_and(|l| *entry.key() >= l) {
                    break;
                }
                latest_alert_tick = latest_alert_tick.max(*entry.key());
                ready.append(&mut entry.remove());
            }
            let fail = |e: std::io::Error| {
                delivery.failed.store(true, Ordering::Release);
                state.borrow_mut().error.get_or_insert(e.into());
            };
            if let Some(from) = resend_from_us {
                let before = ready.len();
                ready.retain(|a| a.time_us >= from);
                state.borrow_mut().summary.alerts_already_delivered +=
                    (before - ready.len()) as u64;
            }
            if !ready.is_empty() {
                ready.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
                for sink in &mut sinks {
                    if let Err(e) = sink.write(&ready) {
                        fail(e);
                    }
                }
                dirty = true;
            }
            let end = limit.is_none();
            if dirty && (end || last_flush.elapsed() >= FLUSH_INTERVAL) {
                for sink in &mut sinks {
                    if let Err(e) = sink.flush() {
                        fail(e);
                    }
                }
                dirty = false;
                last_flush = Instant::now();
            }
            if !dirty {
                delivery
                    .below
                    .store(limit.unwrap_or(i64::MAX), Ordering::Release);
                if let Some(log) = &log {
                    // At the end every alert is delivered and every observation archived.
                    let line = match limit {
                        Some(l) => l.min(delivery.durable_below()),
                        None => logged.max(latest_alert_tick.saturating_add(1)),
                    };
                    if line > logged && (end || last_log.elapsed() >= FLUSH_INTERVAL) {
                        let us = line.saturating_mul(tick_us);
                        match crate::archive::Delivered::new(&log.source, us).write(&log.dir) {
                            Ok(()) => logged = line,
                            Err(e) => {
                                state
                                    .borrow_mut()
                                    .error
                                    .get_or_insert(super::PipelineError::Archive(e));
                            }
                        }
                        last_log = Instant::now();
                    }
                }
            }
            finished = end;
        },
    );
}
