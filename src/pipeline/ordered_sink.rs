//! The alert sink operator: gathers every worker's alerts on worker 0 and writes them, once the
//! frontier has passed their tick, in (event time, patient, kind) order.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Exchange;
use timely::dataflow::operators::generic::Operator;

use super::WorkerState;
use crate::alerting::Alert;
use crate::sinks::AlertSink;

pub fn ordered_sink(
    alerts: Stream<'_, i64, Vec<Alert>>,
    sinks: Option<Vec<Box<dyn AlertSink>>>,
    state: Rc<RefCell<WorkerState>>,
) {
    let mut sinks = sinks.unwrap_or_default();
    let mut pending: BTreeMap<i64, Vec<Alert>> = BTreeMap::new();
    let mut flushed = false;
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
            let limit = frontier.frontier().first().copied();
            let mut ready: Vec<Alert> = Vec::new();
            while let Some(entry) = pending.first_entry() {
                if limit.is_some_and(|l| *entry.key() >= l) {
                    break;
                }
                ready.append(&mut entry.remove());
            }
            if !ready.is_empty() {
                ready.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
                for sink in &mut sinks {
                    if let Err(e) = sink.write(&ready) {
                        state.borrow_mut().error.get_or_insert(e.into());
                    }
                }
            }
            if limit.is_none() && !flushed {
                flushed = true;
                for sink in &mut sinks {
                    if let Err(e) = sink.flush() {
                        state.borrow_mut().error.get_or_insert(e.into());
                    }
                }
            }
        },
    );
}
