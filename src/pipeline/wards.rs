//! Patients per band per ward, for the board: each patient's current NEWS2 band (a collection
//! the alert stream's score updates change) joined with the registry's wards (a collection its
//! rows change, each from its time), then consolidated, in differential dataflow. So a patient
//! moving ward or band moves one count, at the tick it happened, with no pass over the ward.

use std::sync::Arc;

use differential_dataflow::{AsCollection, VecCollection};
use timely::dataflow::Stream;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::Operator;

use super::FastMap;
use crate::alerting::{Alert, AlertEvent, AlertKind};
use crate::news2::Band;
use crate::sinks::board::Board;

/// The registry's wards as the dataflow takes them: (patient, ward), from each row's tick.
pub type WardsInput = differential_dataflow::input::InputSession<i64, (String, String), isize>;

/// Feeds each patient's ward from the registry rows, each change at its row's tick: the
/// ward before it is retracted then.
pub fn feed_wards(input: &mut WardsInput, rows: &[crate::registry::Prescription], tick_us: i64) {
    let rows = rows.iter().filter_map(|row| {
        let time = row.from.map_or(i64::MIN, |t| t.micros());
        Some((time, row.patient.as_str().to_owned(), row.ward.clone()?))
    });
    super::feed_latest(rows.collect(), |patient, ward, time, diff| {
        let tick = match time {
            i64::MIN => i64::MIN,
            us => us.div_euclid(tick_us.max(1)),
        };
        input.update_at((patient.clone(), ward), tick, diff)
    });
}

/// Counts the patients of each band on each ward into `board`.
pub fn count_wards<'scope>(
    alerts: Stream<'scope, i64, Vec<Alert>>,
    wards: VecCollection<'scope, i64, (String, String), isize>,
    board: Arc<Board>,
) {
    bands(alerts)
        .join(wards)
        .map(|(_, (band, ward))| (ward, band))
        .consolidate()
        .inspect_batch(move |_, updates| {
            let changes: Vec<((String, Band), i64)> = updates
                .iter()
                .map(|(key, _, diff)| (key.clone(), *diff as i64))
                .collect();
            board.count_wards(&changes);
        });
}

/// Each patient's band in force, as a collection: a new band retracts the one before; an
/// incomplete score without a band leaves none. (Each patient's alerts come from one worker,
/// so the last band is known here.)
fn bands<'scope>(
    alerts: Stream<'scope, i64, Vec<Alert>>,
) -> VecCollection<'scope, i64, (String, Band), isize> {
    alerts
        .unary(Pipeline, "Bands", |_, _| {
            let mut last: FastMap<String, Band> = FastMap::default();
            move |input, output| {
                input.for_each(|time, data| {
                    let Some(&t) = time.least() else { return };
                    let cap = time.delayed(&t, 0);
                    let mut session = output.session(&cap);
                    for alert in data.drain(..) {
                        if alert.kind != AlertKind::News2 || alert.event != AlertEvent::Scored {
                            continue;
                        }
                        let Some(evidence) = alert.evidence.as_ref().and_then(|e| e.news2()) else {
                            continue;
                        };
                        let band = crate::sinks::board::state::band_in_force(&alert, evidence);
                        let before = match band {
                            Some(b) => last.insert(alert.patient.clone(), b),
                            None => last.remove(&alert.patient),
                        };
                        if before == band {
                            continue;
                        }
                        if let Some(b) = before {
                            session.give(((alert.patient.clone(), b), t, -1));
                        }
                        if let Some(b) = band {
                            session.give(((alert.patient, b), t, 1));
                        }
                    }
                });
            }
        })
        .as_collection()
}
