//! How well a risk score predicts a label: the measures of the field, as pure functions.
//!
//! * AUROC (ties count half) and AUPRC (average precision, ties taken as one threshold, as the
//!   PhysioNet 2019 scorer does), the Brier score and a calibration table by deciles;
//! * the PhysioNet/CinC 2019 **normalised utility** exactly as the challenge's
//!   `evaluate_sepsis_score.py` defines it: per stay, rows are hours; a stay whose labels turn 1
//!   has its onset 6 rows after the first 1 (`t_sepsis`); a positive prediction earns up to 1
//!   from 12 h before onset to 3 h after it (peak 6 h before), a missed one costs up to 2 after
//!   6 h before onset, a false alarm 0.05; the total is normalised between predicting nothing
//!   (0) and the best possible predictions (1);
//! * sensitivity and positive predictive value at a threshold, and the lead time of the first
//!   alert before onset.

use serde::Serialize;

const DT_EARLY: f64 = -12.0;
const DT_OPTIMAL: f64 = -6.0;
const DT_LATE: f64 = 3.0;
const MAX_U_TP: f64 = 1.0;
const MIN_U_FN: f64 = -2.0;
const U_FP: f64 = -0.05;
const U_TN: f64 = 0.0;

/// Area under the ROC curve; `NaN` without both classes.
pub fn auroc(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    let negatives = labels.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return f64::NAN;
    }
    // Mann–Whitney: the sum of the positives' ranks, ties at their average rank.
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += order[i..=j].iter().filter(|&&k| labels[k]).count() as f64 * average_rank;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Area under the precision–recall curve (average precision, one step per distinct score).
pub fn auprc(scores: &[f64], labels: &[bool]) -> f64 {
    let positives = labels.iter().filter(|&&l| l).count() as f64;
    if positives == 0.0 {
        return f64::NAN;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
    let (mut tp, mut fp, mut area, mut recall) = (0.0, 0.0, 0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j < order.len() && scores[order[j]] == scores[order[i]] {
            if labels[order[j]] {
                tp += 1.0;
            } else {
                fp += 1.0;
            }
            j += 1;
        }
        let r = tp / positives;
        area += (r - recall) * tp / (tp + fp);
        recall = r;
        i = j;
    }
    area
}

/// Mean squared error of probabilities.
pub fn brier(probabilities: &[f64], labels: &[bool]) -> f64 {
    let n = probabilities.len().max(1) as f64;
    probabilities
        .iter()
        .zip(labels)
        .map(|(p, &l)| (p - f64::from(u8::from(l))).powi(2))
        .sum::<f64>()
        / n
}

/// One bin of a calibration table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CalibrationBin {
    pub rows: usize,
    pub min_probability: f64,
    pub max_probability: f64,
    pub mean_probability: f64,
    pub observed_rate: f64,
}

/// Ten bins of equal size by predicted probability, lowest first.
pub fn calibration_deciles(probabilities: &[f64], labels: &[bool]) -> Vec<CalibrationBin> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]));
    let n = order.len();
    (0..10)
        .filter_map(|d| {
            let bin = &order[d * n / 10..(d + 1) * n / 10];
            if bin.is_empty() {
                return None;
            }
            let p: Vec<f64> = bin.iter().map(|&i| probabilities[i]).collect();
            let positives = bin.iter().filter(|&&i| labels[i]).count();
            Some(CalibrationBin {
                rows: bin.len(),
                min_probability: p[0],
                max_probability: p[p.len() - 1],
                mean_probability: p.iter().sum::<f64>() / p.len() as f64,
                observed_rate: positives as f64 / bin.len() as f64,
            })
        })
        .collect()
}

/// The onset row of a stay (`t_sepsis`: 6 rows after the first positive label), if septic.
fn onset(labels: &[bool]) -> Option<f64> {
    labels
        .iter()
        .position(|&l| l)
        .map(|first| first as f64 - DT_OPTIMAL)
}

/// The challenge's utility of one stay's predictions (one row per hour).
pub fn stay_utility(labels: &[bool], predictions: &[bool]) -> f64 {
    let t_sepsis = onset(labels);
    let septic = t_sepsis.is_some();
    let t_sepsis = t_sepsis.unwrap_or(f64::INFINITY);
    let m1 = MAX_U_TP / (DT_OPTIMAL - DT_EARLY);
    let b1 = -m1 * DT_EARLY;
    let m2 = -MAX_U_TP / (DT_LATE - DT_OPTIMAL);
    let b2 = -m2 * DT_LATE;
    let m3 = MIN_U_FN / (DT_LATE - DT_OPTIMAL);
    let b3 = -m3 * DT_OPTIMAL;
    let mut total = 0.0;
    for (t, &predicted) in predictions.iter().enumerate().take(labels.len()) {
        let t = t as f64;
        if t > t_sepsis + DT_LATE {
            continue;
        }
        let dt = t - t_sepsis;
        total += match (septic, predicted) {
            (true, true) if t <= t_sepsis + DT_OPTIMAL => (m1 * dt + b1).max(U_FP),
            (true, true) => m2 * dt + b2,
            (false, true) => U_FP,
            (true, false) if t <= t_sepsis + DT_OPTIMAL => 0.0,
            (true, false) => m3 * dt + b3,
            (false, false) => U_TN,
        };
    }
    total
}

/// The normalised utility of a cohort: `(observed − inaction) / (best − inaction)`, each stay
/// given as (labels, predictions), one per hourly row.
pub fn normalised_utility<'a>(stays: impl IntoIterator<Item = (&'a [bool], &'a [bool])>) -> f64 {
    let (mut observed, mut best, mut inaction) = (0.0, 0.0, 0.0);
    for (labels, predictions) in stays {
        let n = labels.len();
        let mut ideal = vec![false; n];
        if let Some(t_sepsis) = onset(labels) {
            let from = (t_sepsis + DT_EARLY).max(0.0) as usize;
            let to = ((t_sepsis + DT_LATE + 1.0) as usize).min(n);
            for p in ideal.iter_mut().take(to).skip(from) {
                *p = true;
            }
        }
        observed += stay_utility(labels, predictions);
        best += stay_utility(labels, &ideal);
        inaction += stay_utility(labels, &vec![false; n]);
    }
    (observed - inaction) / (best - inaction)
}

/// Sensitivity and positive predictive value of `score ≥ threshold`, by row.
pub fn sensitivity_ppv(scores: &[f64], labels: &[bool], threshold: f64) -> (f64, f64) {
    let (mut tp, mut fp, mut fn_) = (0usize, 0usize, 0usize);
    for (&s, &l) in scores.iter().zip(labels) {
        match (s >= threshold, l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, true) => fn_ += 1,
            (false, false) => {}
        }
    }
    let ratio = |a: usize, b: usize| {
        if a + b == 0 {
            f64::NAN
        } else {
            a as f64 / (a + b) as f64
        }
    };
    (ratio(tp, fn_), ratio(tp, fp))
}

/// How early alerts came for the septic stays.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LeadTime {
    /// Septic stays.
    pub septic_stays: usize,
    /// Septic stays with an alert at or before onset.
    pub alerted_before_onset: usize,
    /// Median hours from the first alert to onset, over those stays.
    pub median_hours: Option<f64>,
}

/// Lead times of the first alert (`predictions`) before onset, one stay per item.
pub fn lead_time<'a>(stays: impl IntoIterator<Item = (&'a [bool], &'a [bool])>) -> LeadTime {
    let mut septic_stays = 0;
    let mut leads = Vec::new();
    for (labels, predictions) in stays {
        let Some(t_sepsis) = onset(labels) else {
            continue;
        };
        septic_stays += 1;
        if let Some(first) = predictions.iter().position(|&p| p)
            && first as f64 <= t_sepsis
        {
            leads.push(t_sepsis - first as f64);
        }
    }
    leads.sort_by(f64::total_cmp);
    let median_hours = match leads.len() {
        0 => None,
        n if n % 2 == 1 => Some(leads[n / 2]),
        n => Some((leads[n / 2 - 1] + leads[n / 2]) / 2.0),
    };
    LeadTime {
        septic_stays,
        alerted_before_onset: leads.len(),
        median_hours,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(v: &[u8]) -> Vec<bool> {
        v.iter().map(|&x| x == 1).collect()
    }

    #[test]
    fn utility_matches_the_challenge_example() {
        // evaluate_sepsis_score.py: labels [0,0,0,0,1,1], predictions [0,0,1,1,1,1] → 3.3888…
        let u = stay_utility(&b(&[0, 0, 0, 0, 1, 1]), &b(&[0, 0, 1, 1, 1, 1]));
        assert!((u - 3.388_888_888_888_889).abs() < 1e-12, "{u}");
    }

    #[test]
    fn utility_charges_false_alarms_and_late_misses() {
        assert!((stay_utility(&b(&[0, 0, 0]), &b(&[1, 1, 0])) + 0.1).abs() < 1e-12);
        // Labelled from row 0, so onset is row 6 and the optimum row 0: silence costs 2/9 more
        // each hour after it, up to −2 at onset + 3 (row 9).
        let labels = vec![true; 10];
        let silent = stay_utility(&labels, &[false; 10]);
        let expected: f64 = (1..=9).map(|t| -2.0 / 9.0 * (t as f64)).sum();
        assert!((silent - expected).abs() < 1e-12, "{silent} vs {expected}");
    }

    #[test]
    fn normalised_utility_is_0_for_inaction_and_1_for_the_best() {
        let septic = b(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
        let healthy = [false; 20];
        let nothing = [false; 20];
        assert_eq!(
            normalised_utility([(&septic[..], &nothing[..]), (&healthy[..], &nothing[..])]),
            0.0
        );
        // Best: from onset − 12 = row 4 to onset + 3 = row 19.
        let mut best = [false; 20];
        best[4..20].iter_mut().for_each(|p| *p = true);
        assert!(
            (normalised_utility([(&septic[..], &best[..]), (&healthy[..], &nothing[..])]) - 1.0)
                .abs()
                < 1e-12
        );
        // Alarming on everyone all the time: 7.3 for the septic stay (−0.05 × 4 too early, 3.5
        // rising, 4 falling), −1 per healthy stay; inaction −10, best 7.5. With 20 healthy
        // stays: (7.3 − 20 + 10) / 17.5.
        let always = [true; 20];
        let cohort = std::iter::once((&septic[..], &always[..]))
            .chain(std::iter::repeat_n((&healthy[..], &always[..]), 20));
        let u = normalised_utility(cohort);
        assert!((u - (7.3 - 20.0 + 10.0) / 17.5).abs() < 1e-12, "{u}");
    }

    #[test]
    fn auroc_and_auprc_of_known_rankings() {
        let labels = b(&[0, 0, 1, 1]);
        assert_eq!(auroc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        assert_eq!(auroc(&[0.9, 0.8, 0.2, 0.1], &labels), 0.0);
        assert_eq!(auroc(&[0.5, 0.5, 0.5, 0.5], &labels), 0.5);
        // One positive ranked between the negatives: 3 of 4 pairs ordered.
        assert_eq!(auroc(&[0.1, 0.3, 0.2, 0.9], &labels), 0.75);
        assert_eq!(auprc(&[0.1, 0.2, 0.8, 0.9], &labels), 1.0);
        // Ranked P, N, P, N: precision 1 at recall ½, then ⅔ at recall 1.
        let ap = auprc(&[0.9, 0.8, 0.7, 0.1], &b(&[1, 0, 1, 0]));
        assert!((ap - (0.5 + 0.5 * 2.0 / 3.0)).abs() < 1e-12);
        // All tied: one threshold, precision = prevalence.
        assert_eq!(auprc(&[0.5; 4], &labels), 0.5);
        assert!(auroc(&[0.1, 0.2], &b(&[0, 0])).is_nan());
    }

    #[test]
    fn brier_calibration_and_thresholds() {
        let labels = b(&[0, 1]);
        assert_eq!(brier(&[0.0, 1.0], &labels), 0.0);
        assert_eq!(brier(&[0.5, 0.5], &labels), 0.25);
        let probs: Vec<f64> = (0..100).map(|i| i as f64 / 100.0).collect();
        let labels: Vec<bool> = (0..100).map(|i| i >= 90).collect();
        let table = calibration_deciles(&probs, &labels);
        assert_eq!(table.len(), 10);
        assert_eq!(table[9].observed_rate, 1.0);
        assert_eq!(table[0].observed_rate, 0.0);
        assert_eq!(table[0].rows, 10);
        let (sens, ppv) = sensitivity_ppv(&probs, &labels, 0.85);
        assert_eq!(sens, 1.0);
        assert_eq!(ppv, 10.0 / 15.0);
    }

    #[test]
    fn lead_time_counts_alerts_before_onset() {
        // Onset at row 10 (first label at 4): alert at row 3 → 7 h ahead.
        let septic = b(&[0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1]);
        let early = b(&[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]);
        let late = b(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        let lt = lead_time([(&septic[..], &early[..]), (&septic[..], &late[..])]);
        assert_eq!(lt.septic_stays, 2);
        assert_eq!(lt.alerted_before_onset, 1);
        assert_eq!(lt.median_hours, Some(7.0));
    }
}
