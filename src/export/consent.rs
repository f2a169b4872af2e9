//! Which archived observations may go to research: those of a patient whose consent was not
//! withdrawn at the observation's time, decided in differential dataflow.
//!
//! Consent is a collection of (patient, consent) that each registry change updates from its
//! event time on, like prescriptions ([`crate::pipeline::feed_latest`]); observations enter at
//! their own event times, and the antijoin with the withdrawn patients holds each one exactly
//! when consent stood at its time. So a withdrawal excludes what follows it, a consent given
//! again admits what follows that, and the data from before a withdrawal, when the patient had
//! consented, stays admitted.

use std::sync::{Arc, Mutex};

use differential_dataflow::input::Input;

use crate::observation::Identifier;
use crate::registry::{Consent, ConsentChange};

/// For each `(patient, time µs)` of `rows`, whether it may go to research under `changes`.
/// (`rows` is taken whole: the dataflow's worker owns what it is fed.)
pub fn admitted(rows: Vec<(Identifier, i64)>, changes: &[ConsentChange]) -> Vec<bool> {
    let changes: Vec<(i64, Identifier, Consent)> = changes
        .iter()
        .map(|c| {
            let time = c.from.map_or(i64::MIN, |t| t.micros());
            (time, c.patient.clone(), c.consent)
        })
        .collect();
    let count = rows.len();
    // Per row, the sum of the updates at its own time: 1 when consent stood, 0 when not (an
    // antijoin emits the row and, when withdrawn, its retraction, maybe in separate updates).
    let kept = Arc::new(Mutex::new(vec![0isize; count]));
    let out = Arc::clone(&kept);
    timely::execute_directly(move |worker| {
        let (mut observations, mut consent) = worker.dataflow::<i64, _, _>(|scope| {
            let (observations_in, observations) =
                scope.new_collection::<(Identifier, (usize, i64)), isize>();
            let (consent_in, consent) = scope.new_collection::<(Identifier, Consent), isize>();
            let withdrawn = consent
                .filter(|(_, c)| *c == Consent::Withdrawn)
                .map(|(patient, _)| patient);
            observations
                .antijoin(withdrawn)
                .inspect(move |((_, (index, at)), time, diff)| {
                    // Present at its own time: consent stood when it was recorded. Later
                    // changes move it at later times, which do not concern it.
                    if time == at
                        && let Ok(mut kept) = out.lock()
                        && let Some(slot) = kept.get_mut(*index)
                    {
                        *slot += diff;
                    }
                });
            (observations_in, consent_in)
        });
        crate::pipeline::feed_latest(changes, |patient, value, time, diff| {
            consent.update_at((patient.clone(), value), time, diff)
        });
        for (index, (patient, at)) in rows.into_iter().enumerate() {
            observations.update_at((patient, (index, at)), at, 1);
        }
    });
    let sums = kept.lock().map(|k| k.clone()).unwrap_or_default();
    sums.into_iter().map(|sum| sum > 0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observation::EventTime;

    fn id(s: &str) -> Identifier {
        Identifier::new(s).unwrap()
    }

    fn change(patient: &str, from: Option<i64>, consent: Consent) -> ConsentChange {
        ConsentChange {
            patient: id(patient),
            from: from.map(EventTime::from_micros),
            consent,
        }
    }

    #[test]
    fn a_withdrawal_excludes_from_its_time_on_and_consent_again_readmits() {
        let rows = vec![
            (id("p1"), 100),
            (id("p1"), 199),
            (id("p1"), 200),
            (id("p1"), 250),
            (id("p1"), 300),
            (id("p2"), 250),
            (id("p3"), 5),
        ];
        let changes = vec![
            change("p1", Some(200), Consent::Withdrawn),
            change("p1", Some(300), Consent::Given),
            change("p3", None, Consent::Withdrawn),
        ];
        assert_eq!(
            admitted(rows.clone(), &changes),
            vec![true, true, false, false, true, true, false]
        );
        assert_eq!(admitted(rows.clone(), &[]), vec![true; rows.len()]);
    }

    /// What consent stood for `patient` at `at`: the last change (in time, then file order) at
    /// or before it; given when there is none.
    fn reference(changes: &[ConsentChange], patient: &Identifier, at: i64) -> bool {
        let mut ordered: Vec<&ConsentChange> = changes.iter().collect();
        ordered.sort_by_key(|c| c.from.map_or(i64::MIN, |t| t.micros()));
        ordered
            .into_iter()
            .rfind(|c| &c.patient == patient && c.from.map_or(i64::MIN, |t| t.micros()) <= at)
            .is_none_or(|c| c.consent == Consent::Given)
    }

    proptest::proptest! {
        #[test]
        fn admits_exactly_what_consent_allowed_at_each_time(
            changes in proptest::collection::vec((0..3u8, proptest::option::of(0..50i64), proptest::bool::ANY), 0..8),
            rows in proptest::collection::vec((0..3u8, 0..60i64), 0..40),
        ) {
            let changes: Vec<ConsentChange> = changes
                .into_iter()
                .map(|(p, from, given)| {
                    let consent = if given { Consent::Given } else { Consent::Withdrawn };
                    change(&format!("p{p}"), from, consent)
                })
                .collect();
            let rows: Vec<(Identifier, i64)> =
                rows.into_iter().map(|(p, t)| (id(&format!("p{p}")), t)).collect();
            let expected: Vec<bool> =
                rows.iter().map(|(p, t)| reference(&changes, p, *t)).collect();
            proptest::prop_assert_eq!(admitted(rows.clone(), &changes), expected);
        }
    }
}
