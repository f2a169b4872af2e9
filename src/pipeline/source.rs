//! The source operator: reads a [`Source`] on worker 0, stamps records with their event-time
//! tick, holds its capability at the watermark, and sends late and rejected records aside.

use std::cell::RefCell;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

use serde::Serialize;
use timely::dataflow::operators::generic::operator::source as timely_source;
use timely::dataflow::{Scope, Stream};

use super::{Event, WorkerState};
use crate::observation::Observation;
use crate::sinks::{JsonLines, with_path};
use crate::sources::{Rejected, Source, SourceItem};

/// Records read per activation: large enough to amortise, small enough to stay responsive.
const BATCH: usize = 8192;

/// Files for records that are not processed: rejected (dead letters) and late.
pub struct SideOutputs {
    dead_letter: Option<JsonLines>,
    late: Option<JsonLines>,
}

#[derive(Serialize)]
struct DeadLetter<'a> {
    position: &'a str,
    reason: &'a str,
    field: Option<&'a str>,
    raw: Option<&'a str>,
}

#[derive(Serialize)]
struct LateRecord<'a> {
    reason: &'static str,
    watermark: String,
    observation: serde_json::Value,
    #[serde(skip)]
    _marker: std::marker::PhantomData<&'a ()>,
}

impl SideOutputs {
    pub fn open(dead_letter: Option<&Path>, late: Option<&Path>) -> io::Result<SideOutputs> {
        let open = |p: Option<&Path>| {
            p.map(|p| JsonLines::create(p).map_err(|e| with_path(e, p)))
                .transpose()
        };
        Ok(SideOutputs {
            dead_letter: open(dead_letter)?,
            late: open(late)?,
        })
    }

    fn rejected(&mut self, r: &Rejected) -> io::Result<()> {
        if let Some(out) = &mut self.dead_letter {
            out.write_record(&DeadLetter {
                position: &r.position,
                reason: &r.reason,
                field: r.field,
                raw: r.raw.as_deref(),
            })?;
        }
        Ok(())
    }

    fn late(&mut self, obs: &Observation, watermark_us: i64) -> io::Result<()> {
        if let Some(out) = &mut self.late {
            let observation =
                serde_json::from_str(&obs.to_json()).unwrap_or(serde_json::Value::Null);
            out.write_record(&LateRecord {
                reason: "event time is before the watermark (latest event time minus allowed lateness)",
                watermark: crate::observation::EventTime::from_micros(watermark_us).to_rfc3339(),
                observation,
                _marker: std::marker::PhantomData,
            })?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        for out in [&mut self.dead_letter, &mut self.late]
            .into_iter()
            .flatten()
        {
            crate::sinks::AlertSink::flush(out)?;
        }
        Ok(())
    }
}

/// What the source operator of one worker needs.
pub struct SourceParts {
    pub source: Option<Box<dyn Source>>,
    pub side: Option<SideOutputs>,
    pub peers: u64,
    pub tick_us: i64,
    pub lateness_us: i64,
    pub progress: bool,
    pub state: Rc<RefCell<WorkerState>>,
}

/// The source operator. Workers other than 0 have no source and close at once.
pub fn source<'scope>(
    scope: Scope<'scope, i64>,
    parts: SourceParts,
) -> Stream<'scope, i64, Vec<Event>> {
    let SourceParts {
        mut source,
        mut side,
        peers,
        tick_us,
        lateness_us,
        progress,
        state,
    } = parts;
    let tick = move |us: i64| us.div_euclid(tick_us);
    timely_source(scope, "Source", move |capability, info| {
        let activator = scope.activator_for(info.address);
        let mut cap = Some(capability);
        let mut items = Vec::with_capacity(BATCH);
        let mut stamped: Vec<(i64, Event)> = Vec::with_capacity(BATCH);
        let mut max_us: Option<i64> = None;
        let mut read: u64 = 0;
        let started = Instant::now();
        let mut last_report = Instant::now();
        move |output| {
            let Some(c) = cap.as_mut() else { return };
            let Some(src) = source.as_mut() else {
                cap = None;
                return;
            };
            items.clear();
            let more = match src.fill(BATCH, &mut items) {
                Ok(more) => more,
                Err(e) => {
                    state.borrow_mut().error = Some(e.into());
                    false
                }
            };
            // The watermark moves with every record, so lateness does not depend on batching.
            let mut watermark_tick = *c.time();
            let mut st = state.borrow_mut();
            read += items.len() as u64;
            for item in items.drain(..) {
                let (time_us, event) = match item {
                    SourceItem::Observation(obs) => (obs.time().micros(), Event::Observation(obs)),
                    SourceItem::Rejected(r) => {
                        st.summary.rejected += 1;
                        if let Some(side) = side.as_mut()
                            && let Err(e) = side.rejected(&r)
                        {
                            st.error.get_or_insert(e.into());
                        }
                        match r.subject {
                            Some(subject) => {
                                st.summary.invalid_values += 1;
                                (
                                    subject.time.micros(),
                                    Event::Invalid {
                                        subject,
                                        reason: r.reason,
                                    },
                                )
                            }
                            None => continue,
                        }
                    }
                };
                if tick(time_us) < watermark_tick {
                    if let Event::Observation(obs) = &event {
                        st.summary.late += 1;
                        if let Some(side) = side.as_mut()
                            && let Err(e) = side.late(obs, watermark_tick * tick_us)
                        {
                            st.error.get_or_insert(e.into());
                        }
                    }
                    continue;
                }
                max_us = max_us.max(Some(time_us));
                watermark_tick = watermark_tick.max(tick(time_us.saturating_sub(lateness_us)));
                stamped.push((tick(time_us), event));
            }
            drop(st);

            // One session per tick.
            stamped.sort_by_key(|(t, _)| *t);
            let mut session_time = None;
            let mut batch_cap = None;
            for (t, event) in stamped.drain(..) {
                if session_time != Some(t) {
                    batch_cap = Some(c.delayed(&t));
                    session_time = Some(t);
                }
                if let Some(bc) = &batch_cap {
                    output.session(bc).give(event);
                }
            }
            drop(batch_cap);

            // Hold the capability at the watermark.
            if watermark_tick > *c.time() {
                c.downgrade(&watermark_tick);
            }
            if progress && last_report.elapsed().as_millis() >= 500 {
                last_report = Instant::now();
                report_progress(src.progress(), read, max_us, started);
            }
            if more && state.borrow().error.is_none() {
                activator.activate();
            } else {
                // The end: every worker learns the latest event time, then the source closes.
                let end_us = max_us.unwrap_or(*c.time() * tick_us);
                let end_cap = c.delayed(&tick(end_us).max(*c.time()));
                for worker in 0..peers {
                    output.session(&end_cap).give(Event::End {
                        worker,
                        time_us: end_us,
                    });
                }
                if let Some(side) = side.as_mut()
                    && let Err(e) = side.flush()
                {
                    state.borrow_mut().error.get_or_insert(e.into());
                }
                cap = None;
            }
        }
    })
}

fn report_progress(
    progress: crate::sources::Progress,
    read: u64,
    max_us: Option<i64>,
    started: Instant,
) {
    let done = match progress.total {
        Some(total) if total > 0 => format!("{:5.1}%", 100.0 * progress.done as f64 / total as f64),
        _ => String::from("     "),
    };
    let position = max_us.map_or(String::new(), |t| {
        crate::observation::EventTime::from_micros(t).to_rfc3339()
    });
    let elapsed = started.elapsed().as_secs_f64();
    eprint!(
        "\r\x1b[2K{done}  {read} records  {:.0}/s  event time {position}  {elapsed:.0} s",
        read as f64 / elapsed.max(1e-3)
    );
}
