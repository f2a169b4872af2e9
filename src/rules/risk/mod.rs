//! The risk rule: after each observation set (at most once per `[risk] every` of event time),
//! the pipeline's risk model scores the patient's features ([`crate::risk::features`]); a risk
//! alert is raised when the probability reaches the threshold and lowered once it falls below
//! `clear_below` (hysteresis: a probability hovering at the threshold does not flap).

use super::{Change, Context, Rule, Settings};
use crate::alerting::{self, Alert, AlertEvent, Evidence};
use crate::observation::EventTime;
use crate::observation::Vital;

/// One patient's risk state.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Risk {
    /// A risk alert is raised and not yet cleared.
    raised: bool,
    /// When the risk was last scored (µs; `i64::MIN`: never).
    scored_us: i64,
}

impl Default for Risk {
    fn default() -> Risk {
        Risk {
            raised: false,
            scored_us: i64::MIN,
        }
    }
}

impl Risk {
    fn assess(&mut self, cx: Context<'_>, now_us: i64, out: &mut Vec<Alert>) {
        let Some(risk) = cx.risk else {
            return;
        };
        if self.scored_us > i64::MIN && now_us - self.scored_us < risk.every_us {
            return;
        }
        self.scored_us = now_us;
        let now = EventTime::from_micros(now_us);
        let x = risk.features_of(cx.picture, cx.settings, now);
        let probability = risk.model.probability(&x);
        let event = if !self.raised && probability >= risk.threshold {
            AlertEvent::Raised
        } else if self.raised && probability < risk.clear_below {
            AlertEvent::Lowered
        } else {
            return;
        };
        self.raised = event == AlertEvent::Raised;
        let top_features = risk
            .model
            .contributions(&x, 5)
            .into_iter()
            .map(|(i, contribution)| alerting::Contribution {
                feature: risk.model.features[i].clone(),
                value: x.get(i).copied().filter(|v| v.is_finite()),
                contribution,
            })
            .collect();
        let evidence = alerting::RiskEvidence {
            model: risk.model.name.clone(),
            version: risk.model.version.clone(),
            outcome: risk.model.outcome.clone(),
            probability,
            threshold: risk.threshold,
            clear_below: risk.clear_below,
            top_features,
        };
        let (score, ages) = cx.picture.score_at(cx.settings, now_us);
        out.push(alerting::risk_alert(
            cx.picture.patient(),
            now,
            event,
            evidence,
            &risk.model.response,
            Some(Evidence::of(&score, ages)),
        ));
    }
}

impl Rule for Risk {
    fn windows_read(settings: &Settings<'_>, read: &mut Vec<(Vital, i64)>) {
        if let Some(risk) = settings.risk {
            risk.features.windows_read(read);
        }
    }

    fn on_change(&mut self, cx: Context<'_>, change: &Change<'_>, out: &mut Vec<Alert>) {
        if let Change::Observed { now } = *change {
            self.assess(cx, now, out);
        }
    }
}
