//! Mirrors what the durability protocol shares between workers across the processes of a
//! cluster, through a small control dataflow beside the run's.
//!
//! Within a process the workers share one [`Delivery`] in memory. Across processes each has its
//! own, and after every step each worker publishes what changed in its part of it:
//! - every worker, the tick below which its archive holds what it processed (`Durable`); process
//!   0's worker 0 applies it for the workers of other processes (its delivery log's line waits
//!   for them);
//! - worker 0, how far alerts are delivered (`Delivered`) or that its sinks failed (`Failed`);
//!   the first worker of every other process applies it (its workers' commits wait for it).
//!
//! A worker's own process's values are never overwritten by a notice: shared memory is the
//! truth there, and a notice can only be as new as it. Notices are a few a second: a flush or a
//! delivery each.

use std::ops::Range;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use timely::dataflow::operators::Input;
use timely::dataflow::operators::Inspect;
use timely::dataflow::operators::vec::Broadcast;
use timely::worker::Worker;

use crate::pipeline::durability::{DELIVERY_WAIT, Delivery};

/// One change, from the worker that made it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Notice {
    Durable { worker: usize, tick: i64 },
    Delivered(i64),
    Failed,
}

/// A worker's end of the control dataflow.
pub struct Mirror {
    input: Option<timely::dataflow::InputHandleVec<u64, Notice>>,
    index: usize,
    delivery: Arc<Delivery>,
    sent_durable: i64,
    sent_delivered: i64,
    sent_failed: bool,
}

impl Mirror {
    /// Installs the control dataflow on `worker`, whose process runs the workers `local`.
    pub fn install(worker: &mut Worker, delivery: Arc<Delivery>, local: Range<usize>) -> Mirror {
        let index = worker.index();
        let applied = Arc::clone(&delivery);
        let input = worker.dataflow::<u64, _, _>(move |scope| {
            let (input, notices) = scope.new_input::<Vec<Notice>>();
            notices.broadcast().inspect(move |notice| match *notice {
                Notice::Durable { worker, tick } if index == 0 && !local.contains(&worker) => {
                    applied.set_durable(worker, tick);
                }
                Notice::Delivered(tick) if index == local.start && !local.contains(&0) => {
                    applied.set_delivered(tick);
                }
                Notice::Failed if index == local.start && !local.contains(&0) => applied.fail(),
                _ => {}
            });
            input
        });
        Mirror {
            input: Some(input),
            index,
            delivery,
            sent_durable: i64::MIN,
            sent_delivered: i64::MIN,
            sent_failed: false,
        }
    }

    /// Sends what changed in this worker's part since it last did; `failed`: this worker's run
    /// failed (worker 0's then tells every process that nothing more will be delivered).
    pub fn publish(&mut self, failed: bool) {
        let Some(input) = self.input.as_mut() else {
            return;
        };
        let durable = self.delivery.durable_of(self.index);
        if durable != self.sent_durable {
            input.send(Notice::Durable {
                worker: self.index,
                tick: durable,
            });
            self.sent_durable = durable;
        }
        if self.index == 0 {
            if (failed || self.delivery.failed()) && !self.sent_failed {
                input.send(Notice::Failed);
                self.sent_failed = true;
            }
            let delivered = self.delivery.delivered_below();
            if delivered != self.sent_delivered && !self.sent_failed {
                input.send(Notice::Delivered(delivered));
                self.sent_delivered = delivered;
            }
        }
        input.flush();
    }

    /// Steps `worker` until the run's dataflow is done, then until this process has heard how
    /// the delivery ended (worker 0's own, or its notice), publishing as it goes; then closes
    /// the control dataflow and steps until every worker of the cluster has.
    pub fn run(mut self, worker: &mut Worker, failed: impl Fn() -> bool) {
        while worker.installed_dataflows().len() > 1 {
            worker.step_or_park(None);
            self.publish(failed());
        }
        // As long as the final commit waits for the delivery itself.
        let deadline = Instant::now() + DELIVERY_WAIT;
        loop {
            self.publish(failed());
            if self.delivery.settled() || failed() || Instant::now() > deadline {
                break;
            }
            worker.step_or_park(Some(Duration::from_millis(20)));
        }
        self.input = None;
        while worker.step_or_park(None) {}
    }
}
