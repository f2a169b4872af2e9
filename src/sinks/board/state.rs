//! What the ward board shows, built from the board-state stream alone: every patient's latest
//! NEWS2 (band, total and its bounds, what is stale or missing), the model's risk, devices
//! offline, a bounded history for the sparkline and the charts, and the alerts with their
//! acknowledgements; and each change, numbered, for the live stream (`/events`), whose log
//! ([`super::Board`]'s) replays them from any `Last-Event-ID`.
//!
//! Invariants: state changes only through [`BoardState::apply`], in the sinks' deterministic
//! order, so a replay rebuilds the same board; every change is one numbered [`BoardEvent`]
//! (ids rise by one), handed over once by [`BoardState::take_changes`]; history per patient is
//! bounded ([`HISTORY`], [`ALERTS_KEPT`]), so the board's memory grows with patients, not with
//! time.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::Serialize;

use crate::alerting::{Alert, AlertEvent, AlertKind, Severity};
use crate::news2::Band;

/// Score points kept per patient (a day at one every 5 minutes).
pub const HISTORY: usize = 288;
/// Alerts kept per patient.
pub const ALERTS_KEPT: usize = 50;

/// A patient as the overview lists them (`GET /api/patients`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PatientRow {
    pub patient: String,
    pub ward: Option<String>,
    /// `null` before a first score.
    pub band: Option<Band>,
    pub news2: Option<News2View>,
    pub risk: Option<f64>,
    /// Parameters stale or missing, by key (`temp`).
    pub stale: Vec<String>,
    /// Devices gone silent, as their alerts name them.
    pub offline: Vec<String>,
    /// The latest alert to people, and who acknowledged it.
    pub alert: Option<RowAlert>,
    /// Event time of the last change (µs).
    pub updated_us: i64,
}

/// The latest alert to people on a row.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RowAlert {
    pub id: String,
    pub event: AlertEvent,
    pub summary: String,
    pub time_us: i64,
    pub acknowledged: Option<Acknowledged>,
}

/// Patients per band on one ward (from the dataflow's count of the registry's wards).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WardCounts {
    pub ward: String,
    pub high: i64,
    pub medium: i64,
    pub low_medium: i64,
    pub low: i64,
}

/// The NEWS2 part of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct News2View {
    pub total: u8,
    pub upper: u8,
    pub complete: bool,
}

/// One point of a patient's history: the score, and each charted value, at an instant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Point {
    pub time_us: i64,
    pub total: u8,
    pub upper: u8,
    /// Charted values by parameter key, where there is one.
    pub values: BTreeMap<String, f64>,
}

/// An alert on the board, with who acknowledged it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BoardAlert {
    pub alert: Alert,
    pub acknowledged: Option<Acknowledged>,
}

/// Who acknowledged an alert, when (event time, µs) and what they noted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Acknowledged {
    pub by: String,
    pub note: String,
    pub at_us: i64,
}

/// A patient's page (`GET /api/patients/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct PatientPage {
    pub history: VecDeque<Point>,
    pub alerts: VecDeque<BoardAlert>,
}

/// One change, as the live stream sends it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum BoardEvent {
    /// `event: alert`: an alert to people.
    Alert(Box<Alert>),
    /// `event: patient`: a patient's row changed.
    Patient(Box<PatientRow>),
    /// `event: wards`: the patients per band of these wards changed.
    Wards(Vec<WardCounts>),
}

impl BoardEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self {
            BoardEvent::Alert(_) => "alert",
            BoardEvent::Patient(_) => "patient",
            BoardEvent::Wards(_) => "wards",
        }
    }
}

/// The board.
#[derive(Debug, Default)]
pub struct BoardState {
    wards: HashMap<String, String>,
    rows: BTreeMap<String, PatientRow>,
    pages: HashMap<String, PatientPage>,
    /// Changes not yet taken by [`BoardState::take_changes`].
    changes: Vec<(u64, BoardEvent)>,
    next_id: u64,
    counts: BTreeMap<String, WardCounts>,
}

impl BoardState {
    /// A board of the registry's `wards` (patient → ward).
    pub fn new(wards: HashMap<String, String>) -> BoardState {
        BoardState {
            wards,
            next_id: 1,
            ..BoardState::default()
        }
    }

    /// Takes one alert or board-state record.
    pub fn apply(&mut self, alert: &Alert) {
        let ward = self.wards.get(&alert.patient).cloned();
        let row = self
            .rows
            .entry(alert.patient.clone())
            .or_insert_with(|| PatientRow {
                patient: alert.patient.clone(),
                ward,
                band: None,
                news2: None,
                risk: None,
                stale: Vec::new(),
                offline: Vec::new(),
                alert: None,
                updated_us: alert.time_us,
            });
        let page = self.pages.entry(alert.patient.clone()).or_default();
        let changed = update(row, page, alert).then(|| {
            row.updated_us = alert.time_us;
            Box::new(row.clone())
        });
        if alert.pages() {
            self.push(BoardEvent::Alert(Box::new(alert.clone())));
        }
        if let Some(row) = changed {
            self.push(BoardEvent::Patient(row));
        }
    }

    fn push(&mut self, event: BoardEvent) {
        self.changes.push((self.next_id, event));
        self.next_id += 1;
    }

    /// The id of the latest change (0 before any).
    pub fn last_id(&self) -> u64 {
        self.next_id.saturating_sub(1)
    }

    /// The changes since the last call, oldest first, each with its id.
    pub fn take_changes(&mut self) -> Vec<(u64, BoardEvent)> {
        std::mem::take(&mut self.changes)
    }

    /// Takes changes of the patients per band per ward (`+1` a patient came into the band on
    /// that ward, `-1` left it), as the dataflow counts them.
    pub fn count_wards(&mut self, changes: &[((String, Band), i64)]) {
        let mut touched: Vec<&String> = changes.iter().map(|((w, _), _)| w).collect();
        touched.sort();
        touched.dedup();
        for ((ward, band), diff) in changes {
            let counts = self
                .counts
                .entry(ward.clone())
                .or_insert_with(|| WardCounts {
                    ward: ward.clone(),
                    ..WardCounts::default()
                });
            match band {
                Band::High => counts.high += diff,
                Band::Medium => counts.medium += diff,
                Band::LowMedium => counts.low_medium += diff,
                Band::Low => counts.low += diff,
            }
        }
        let event: Vec<WardCounts> = touched
            .into_iter()
            .filter_map(|w| self.counts.get(w).cloned())
            .collect();
        self.counts
            .retain(|_, c| c.high != 0 || c.medium != 0 || c.low_medium != 0 || c.low != 0);
        if !event.is_empty() {
            self.push(BoardEvent::Wards(event));
        }
    }

    /// Patients per band on each ward, by ward.
    pub fn wards(&self) -> Vec<WardCounts> {
        self.counts.values().cloned().collect()
    }

    /// The overview: most urgent first (band, then NEWS2's upper bound, then risk).
    pub fn patients(&self) -> Vec<PatientRow> {
        let mut rows: Vec<PatientRow> = self.rows.values().cloned().collect();
        rows.sort_by(|a, b| {
            urgency(b)
                .partial_cmp(&urgency(a))
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| a.patient.cmp(&b.patient))
        });
        rows
    }

    /// One patient's row and page.
    pub fn patient(&self, id: &str) -> Option<(&PatientRow, &PatientPage)> {
        Some((self.rows.get(id)?, self.pages.get(id)?))
    }

    /// The ward `patient` is on, as the board shows it.
    pub fn ward_of(&self, patient: &str) -> Option<&str> {
        match self.rows.get(patient) {
            Some(row) => row.ward.as_deref(),
            None => self.wards.get(patient).map(String::as_str),
        }
    }

    /// The alert `id` of a patient, to acknowledge it.
    pub fn alert(&self, id: &str) -> Option<&Alert> {
        self.pages
            .values()
            .flat_map(|p| p.alerts.iter())
            .map(|a| &a.alert)
            .find(|a| a.id == id)
    }
}

/// How urgent a row is: band first (an incomplete score with no band yet ranks with low: not
/// knowing is not better), then what NEWS2 could be, then the model's risk.
pub fn urgency(row: &PatientRow) -> (i8, u8, f64) {
    let band = match (row.band, row.news2) {
        (Some(b), _) => b as i8,
        (None, Some(_)) => Band::Low as i8,
        (None, None) => -1,
    };
    let upper = row.news2.map_or(0, |n| n.upper);
    (band, upper, row.risk.unwrap_or(0.0))
}

/// The band in force a score update gives: the policy's (its severity), which stays raised
/// until it comes down, over the score's own.
pub fn band_in_force(update: &Alert, evidence: &crate::alerting::Evidence) -> Option<Band> {
    match update.severity {
        Severity::High => Some(Band::High),
        Severity::Medium => Some(Band::Medium),
        Severity::LowMedium => Some(Band::LowMedium),
        Severity::Info | Severity::Warning => evidence.band,
    }
}

/// Applies `alert` to a patient's row and page; whether the row changed.
fn update(row: &mut PatientRow, page: &mut PatientPage, alert: &Alert) -> bool {
    match (alert.kind, alert.event) {
        (AlertKind::News2, AlertEvent::Scored) => {
            let Some(e) = alert.evidence.as_ref().and_then(|e| e.news2()) else {
                return false;
            };
            row.band = band_in_force(alert, e);
            row.news2 = Some(News2View {
                total: e.total,
                upper: e.total_upper_bound,
                complete: e.status == crate::news2::Status::Complete,
            });
            row.stale = e
                .problems
                .iter()
                .filter(|p| p.contains(": stale") || p.ends_with(": missing"))
                .filter_map(|p| p.split(':').next().map(str::to_owned))
                .collect();
            let values = e
                .values
                .iter()
                .filter_map(|v| Some((v.parameter.clone(), v.value.as_deref()?.parse().ok()?)))
                .collect();
            if page.history.len() == HISTORY {
                page.history.pop_front();
            }
            page.history.push_back(Point {
                time_us: alert.time_us,
                total: e.total,
                upper: e.total_upper_bound,
                values,
            });
            true
        }
        (AlertKind::Risk, _) => {
            row.risk = alert.risk.as_ref().map(|r| r.probability);
            keep(page, alert);
            true
        }
        (AlertKind::Device, AlertEvent::Offline | AlertEvent::Recovered) => {
            let device = device_of(alert);
            row.offline.retain(|d| *d != device);
            if alert.event == AlertEvent::Offline {
                row.offline.push(device);
            }
            keep(page, alert);
            true
        }
        (_, AlertEvent::Acknowledged) => acknowledge(row, page, alert),
        _ if alert.pages() => {
            keep(page, alert);
            row.alert = Some(RowAlert {
                id: alert.id.clone(),
                event: alert.event,
                summary: alert.summary.clone(),
                time_us: alert.time_us,
                acknowledged: None,
            });
            true
        }
        _ => false,
    }
}

fn keep(page: &mut PatientPage, alert: &Alert) {
    if page.alerts.len() == ALERTS_KEPT {
        page.alerts.pop_front();
    }
    page.alerts.push_back(BoardAlert {
        alert: alert.clone(),
        acknowledged: None,
    });
}

/// Marks the alert an acknowledgement record names; whether the row changed (it names the
/// row's latest alert).
fn acknowledge(row: &mut PatientRow, page: &mut PatientPage, record: &Alert) -> bool {
    let Some(crate::alerting::AlertEvidence::Facts(facts)) = &record.evidence else {
        return false;
    };
    let text = |k: &str| facts[k].as_str().unwrap_or_default().to_owned();
    let id = text("alert");
    let acknowledged = Acknowledged {
        by: text("by"),
        note: text("note"),
        at_us: record.time_us,
    };
    if let Some(a) = page.alerts.iter_mut().find(|a| a.alert.id == id) {
        a.acknowledged = Some(acknowledged.clone());
    }
    match row.alert.as_mut() {
        Some(latest) if latest.id == id => {
            latest.acknowledged = Some(acknowledged);
            true
        }
        _ => false,
    }
}

/// The device a device alert is about, as its facts name it.
fn device_of(alert: &Alert) -> String {
    match &alert.evidence {
        Some(crate::alerting::AlertEvidence::Facts(f)) => {
            f["device"].as_str().unwrap_or("a device").to_owned()
        }
        _ => "a device".to_owned(),
    }
}

#[cfg(test)]
mod tests;
