//! `alerts.alerts_in_order(...)`: gathers every worker's alerts on worker 0 and writes them to
//! the sinks, once the frontier has passed their tick, in (event time, patient, kind) order.
//!
//! Invariant: the sinks receive each tick's alerts once, whole and sorted, after every earlier
//! tick's; so the output is byte-identical with any number of workers. The sinks are flushed at
//! least once a second while alerts flow, and only then is the delivered line published and
//! recorded ([`super::durability`]).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;
use timely::dataflow::operators::vec::Map;

use super::cluster::wire::Carried;
use super::durability::{Delivery, DeliveryLog};
use super::{PipelineError, WorkerState};
use crate::alerting::Alert;
use crate::sinks::{AlertSink, SinkError};

/// Sinks are flushed at least this often while alerts flow.
const FLUSH_INTERVAL: Duration = Duration::from_secs(1);

/// The alert sink operator.
pub trait AlertsInOrder {
    /// Writes the stream's alerts to `sinks` (worker 0 has them; other workers pass `None`), in
    /// order, publishing how far they are delivered to `delivery` and, with an archive, to `log`.
    fn alerts_in_order(
        self,
        sinks: Option<Vec<Box<dyn AlertSink>>>,
        log: Option<DeliveryLog>,
        delivery: Arc<Delivery>,
        state: Rc<RefCell<WorkerState>>,
    );
}

impl AlertsInOrder for Stream<'_, i64, Vec<Alert>> {
    fn alerts_in_order(
        self,
        sinks: Option<Vec<Box<dyn AlertSink>>>,
        log: Option<DeliveryLog>,
        delivery: Arc<Delivery>,
        state: Rc<RefCell<WorkerState>>,
    ) {
        let owner = sinks.is_some();
        let mut writer = Writer {
            sinks: sinks.unwrap_or_default(),
            log,
            delivery,
            state,
            dirty: false,
            last_flush: Instant::now(),
        };
        let mut pending: BTreeMap<i64, Vec<Alert>> = BTreeMap::new();
        let mut finished = false;
        // Alerts cross processes carried (see `Carried`): bincode cannot read them back.
        self.map(Carried).sink(
            Exchange::new(|_: &Carried<Alert>| 0),
            "AlertSink",
            move |(input, frontier)| {
                input.for_each(|time, data| {
                    pending
                        .entry(time.least().copied().unwrap_or(i64::MIN))
                        .or_default()
                        .extend(data.drain(..).map(|c| c.0));
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
                    if let Some(log) = writer.log.as_mut() {
                        log.alerts_at(*entry.key());
                    }
                    ready.append(&mut entry.remove());
                }
                writer.write(ready);
                writer.deliver(limit);
                writer.report();
                finished = limit.is_none();
                if finished {
                    writer.finish();
                }
            },
        );
    }
}

/// Worker 0's sinks and what it has told the sources.
struct Writer {
    sinks: Vec<Box<dyn AlertSink>>,
    log: Option<DeliveryLog>,
    delivery: Arc<Delivery>,
    state: Rc<RefCell<WorkerState>>,
    /// Alerts were written since the last flush.
    dirty: bool,
    last_flush: Instant,
}

impl Writer {
    /// Writes a batch of alerts, in order, leaving out those an earlier run delivered.
    fn write(&mut self, mut ready: Vec<Alert>) {
        if let Some(from) = self.log.as_ref().and_then(|l| l.resend_from_us) {
            let before = ready.iter().filter(|a| a.pages()).count();
            ready.retain(|a| a.time_us >= from);
            let after = ready.iter().filter(|a| a.pages()).count();
            self.state.borrow_mut().summary.alerts_already_delivered += (before - after) as u64;
        }
        if ready.is_empty() {
            return;
        }
        ready.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        // Score updates are board state: only the sinks that show it get them. Without such a
        // sink they are dropped here; with one, the others get a copy of the alerts that page.
        if !self.sinks.iter().any(|s| s.board_state()) {
            ready.retain(Alert::pages);
        }
        let paging: Option<Vec<Alert>> = (!ready.iter().all(Alert::pages))
            .then(|| ready.iter().filter(|a| a.pages()).cloned().collect());
        let pages: &[Alert] = paging.as_deref().unwrap_or(&ready);
        for i in 0..self.sinks.len() {
            let batch = if self.sinks[i].board_state() {
                &ready
            } else {
                pages
            };
            if batch.is_empty() {
                continue;
            }
            if let Err(e) = self.sinks[i].write(batch) {
                self.fail(i, e);
            }
        }
        if let Some(log) = self.log.as_mut() {
            log.archive(pages);
        }
        self.dirty = true;
    }

    /// Flushes when due (or at the end, `limit` none), then publishes and records that every
    /// alert before `limit` is delivered.
    fn deliver(&mut self, limit: Option<i64>) {
        if self.dirty && (limit.is_none() || self.last_flush.elapsed() >= FLUSH_INTERVAL) {
            for i in 0..self.sinks.len() {
                if let Err(e) = self.sinks[i].flush() {
                    self.fail(i, e);
                }
            }
            self.dirty = false;
            self.last_flush = Instant::now();
        }
        if self.dirty {
            return;
        }
        self.delivery.set_delivered(limit.unwrap_or(i64::MAX));
        let Some(log) = self.log.as_mut() else {
            return;
        };
        let result = log.delivered(limit, &self.delivery);
        let mut st = self.state.borrow_mut();
        st.summary.alerts_archived = log.archived();
        if let Err(e) = result {
            st.error.get_or_insert(PipelineError::Archive(e));
        }
    }

    /// With metrics, when due: what each sink holds undelivered.
    fn report(&self) {
        let st = self.state.borrow();
        if let Some(m) = st.metrics().filter(|_| st.metrics_due()) {
            for sink in &self.sinks {
                m.backlog(&sink.describe(), sink.backlog());
            }
        }
    }

    /// The run is over: each sink delivers what it still holds.
    fn finish(&mut self) {
        for i in 0..self.sinks.len() {
            if let Err(e) = self.sinks[i].finish() {
                self.fail(i, e);
            }
        }
    }

    /// Sink `i` failed: nothing more is confirmed, and the run ends with the error.
    fn fail(&mut self, i: usize, source: std::io::Error) {
        self.delivery.fail();
        let sink = self.sinks[i].describe();
        self.state
            .borrow_mut()
            .error
            .get_or_insert(PipelineError::Sink(SinkError { sink, source }));
    }
}
