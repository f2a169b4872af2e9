//! The alert sink operator: gathers every worker's alerts on worker 0 and writes them, once the
//! frontier has passed their tick, in (event time, patient, kind) order.
//!
//! It also tells the sources how far alerts are delivered ([`Delivery`]): sinks are flushed (a
//! file fsynced, a Kafka producer's messages confirmed) at least once a second while alerts flow,
//! and then every alert of a tick before the published one is durable. Sources commit their
//! input positions only behind that line.

use std::cell::RefCell;
use std::collections::BTreeMap;
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
}

impl Default for Delivery {
    fn default() -> Delivery {
        Delivery {
            below: AtomicI64::new(i64::MIN),
            failed: AtomicBool::new(false),
        }
    }
}

impl Delivery {
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

pub fn ordered_sink(
    alerts: Stream<'_, i64, Vec<Alert>>,
    sinks: Option<Vec<Box<dyn AlertSink>>>,
    delivery: Arc<Delivery>,
    state: Rc<RefCell<WorkerState>>,
) {
    let owner = sinks.is_some();
    let mut sinks = sinks.unwrap_or_default();
    let mut pending: BTreeMap<i64, Vec<Alert>> = BTreeMap::new();
    let mut dirty = false;
    let mut last_flush = Instant::now();
    let mut finished = false;
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
                ready.append(&mut entry.remove());
            }
            let fail = |e: std::io::Error| {
                delivery.failed.store(true, Ordering::Release);
                state.borrow_mut().error.get_or_insert(e.into());
            };
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
            }
            finished = end;
        },
    );
}
