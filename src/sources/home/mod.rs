//! A deterministic home cohort (`[source] kind = "home"`, `vigil simulate --home`): people
//! living with a CGM (most), an insulin pump (some of them), smart pill bottles and inhalers,
//! and the ground truth of what happened to them.
//!
//! Per patient ([`patient`]): CGM readings every 5 minutes with meals, boluses, afternoon
//! exercise and planned nocturnal hypoglycaemia; 10-day sensor sessions with their warm-up; a
//! pump's basal every 30 minutes, a bolus per meal, occlusions that let glucose rise, a low
//! reservoir every third day; pill bottles with the patient's adherence (good, moderate or
//! poor: doses on time, late or missed) and a daily check-in, their batteries running down;
//! an inhaler's controller puffs and rescue puffs, many on a flare day; devices that drop out
//! (a CGM out of range for hours, a bottle offline for a day or two) and come back.
//!
//! The ground truth ([`HomeSimulator::truth`]): each nocturnal hypoglycaemia (from crossing 55
//! mg/dL to recovering above it), dose missed (not taken by the end of its grace), device
//! outage, occlusion, flare (the fifth rescue puff of the day), low bottle battery and sensor
//! nearing its end. The registry ([`HomeSimulator::registry`]) prescribes each patient's
//! schedules. Everything follows from the seed, and patient `k` is the same in any cohort size.

use serde::{Deserialize, Serialize};

use super::{BuildContext, Built, Progress, Source, SourceError, SourceItem, SourceKind};
use crate::component::{Problem, Section};
use crate::observation::{
    Code, Delivery, Detail, DeviceStatus, EventTime, Identifier, Method, Observation, Unit, Value,
    Vital,
};

mod patient;

use patient::{DAY, GRACE, HOUR, HomePatient, MIN, Planned, SENSOR_SESSION, SENSOR_WARMUP};

/// The `[source]` of a home cohort.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HomeConfig {
    pub patients: u32,
    pub days: u32,
    pub seed: u64,
    /// RFC 3339 start (midnight UTC is best: the plan's days are UTC days).
    pub start: String,
}

impl Default for HomeConfig {
    fn default() -> HomeConfig {
        HomeConfig {
            patients: 20,
            days: 14,
            seed: 7,
            start: "2026-03-01T00:00:00Z".to_owned(),
        }
    }
}

impl SourceKind for HomeConfig {
    fn name(&self) -> String {
        "home".to_owned()
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if !(1..=100_000).contains(&self.patients) {
            problems.push(section.problem("patients", "`patients` must be 1 to 100000"));
        }
        if !(1..=366).contains(&self.days) {
            problems.push(section.problem("days", "`days` must be 1 to 366"));
        }
        if EventTime::parse_rfc3339(&self.start).is_err() {
            problems.push(section.problem(
                "start",
                format!("`start` {:?} is not an RFC 3339 time", self.start),
            ));
        }
        problems
    }

    fn build(&self, _cx: &BuildContext) -> Result<Built, SourceError> {
        Ok(Built::One(Box::new(HomeSimulator::new(self))))
    }
}

/// What happened, for the ground truth.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TruthKind {
    NocturnalHypo,
    /// True glucose below 55 mg/dL, below 70 or above 250 (at the CGM's sampling times,
    /// whether it read them or not).
    #[serde(rename = "glucose_below_55")]
    GlucoseBelow55,
    #[serde(rename = "glucose_below_70")]
    GlucoseBelow70,
    #[serde(rename = "glucose_above_250")]
    GlucoseAbove250,
    MissedDose,
    DeviceOutage,
    Occlusion,
    RescueOveruse,
    LowBattery,
    SensorExpiring,
}

/// One ground-truth episode.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Truth {
    pub patient: String,
    pub kind: TruthKind,
    /// RFC 3339: when it began (a hypo: glucose crossed below 55; a missed dose: it was due).
    pub start: String,
    /// When it ended (a missed dose: its grace closed).
    pub end: String,
    /// Which medication and slot, device, or how low.
    pub what: String,
}

impl Truth {
    fn new(patient: &str, kind: TruthKind, start_us: i64, end_us: i64, what: String) -> Truth {
        Truth {
            patient: patient.to_owned(),
            kind,
            start: EventTime::from_micros(start_us).to_rfc3339(),
            end: EventTime::from_micros(end_us).to_rfc3339(),
            what,
        }
    }
}

/// The home cohort as a source, in time order, a day at a time.
pub struct HomeSimulator {
    start_us: i64,
    days: i64,
    day: i64,
    patients: Vec<HomePatient>,
    /// The day's observations, ready.
    ready: std::collections::VecDeque<Observation>,
    truth: Vec<Truth>,
}

impl HomeSimulator {
    pub fn new(config: &HomeConfig) -> HomeSimulator {
        let start_us = EventTime::parse_rfc3339(&config.start)
            .map(EventTime::micros)
            .unwrap_or(1_772_323_200_000_000);
        let days = i64::from(config.days.max(1));
        let patients: Vec<HomePatient> = (0..config.patients)
            .map(|i| HomePatient::new(config.seed, i, days))
            .collect();
        let mut truth = Vec::new();
        for p in &patients {
            p.truth(start_us, days * DAY, &mut truth);
        }
        HomeSimulator {
            start_us,
            days,
            day: 0,
            patients,
            ready: Default::default(),
            truth,
        }
    }

    /// The ground truth: planned episodes, and what the devices reported so far (low
    /// batteries, sensors nearing their end). Complete once the source has ended.
    pub fn truth(&self) -> Vec<Truth> {
        let mut all = self.truth.clone();
        all.sort_by(|a, b| (&a.start, &a.patient).cmp(&(&b.start, &b.patient)));
        all
    }

    /// The registry that prescribes every patient's schedules (CSV, [`crate::registry`]).
    pub fn registry(&self) -> String {
        let mut text =
            String::from("patient,ward,scale,from,medication,schedule,grace,utc_offset\n");
        let from = EventTime::from_micros(self.start_us).to_rfc3339();
        for p in &self.patients {
            let offset = format!(
                "{}{:02}:00",
                if p.offset < 0 { '-' } else { '+' },
                p.offset.abs() / HOUR
            );
            for med in &p.meds {
                let slots: Vec<String> = med
                    .slots
                    .iter()
                    .map(|(name, m)| format!("{name}={:02}:{:02}", m / 60, m % 60))
                    .collect();
                text.push_str(&format!(
                    "{},home,,{from},{},{},{}h,{offset}\n",
                    p.id,
                    med.code,
                    slots.join(" "),
                    GRACE / HOUR
                ));
            }
        }
        text
    }

    /// Every observation of day `day`, in time order.
    fn simulate_day(&mut self, day: i64) {
        let mut out: Vec<Observation> = Vec::new();
        let (from, to) = (day * DAY, (day + 1) * DAY);
        for p in &mut self.patients {
            emit_day(p, self.start_us, from, to, &mut out, &mut self.truth);
        }
        out.sort_by(|a, b| {
            (a.time(), a.patient().as_str(), a.vital() as u8).cmp(&(
                b.time(),
                b.patient().as_str(),
                b.vital() as u8,
            ))
        });
        self.ready.extend(out);
    }
}

/// One patient's observations within `[from, to)` (µs from the start).
fn emit_day(
    p: &mut HomePatient,
    start_us: i64,
    from: i64,
    to: i64,
    out: &mut Vec<Observation>,
    truth: &mut Vec<Truth>,
) {
    let Some(mut e) = Emitter::new(p, start_us, out) else {
        return;
    };
    if p.cgm {
        e.cgm_readings(p, from, to, truth);
    }
    let planned: Vec<(i64, Planned)> = p
        .planned
        .iter()
        .copied()
        .filter(|e| e.0 >= from && e.0 < to)
        .collect();
    for (t, event) in planned {
        e.planned(p, t, event, truth);
    }
}

/// Makes one patient's observations.
struct Emitter<'a> {
    patient: Identifier,
    number: String,
    start_us: i64,
    out: &'a mut Vec<Observation>,
}

impl Emitter<'_> {
    fn new<'a>(
        p: &HomePatient,
        start_us: i64,
        out: &'a mut Vec<Observation>,
    ) -> Option<Emitter<'a>> {
        Some(Emitter {
            patient: Identifier::new(&p.id).ok()?,
            number: p.id[5..].to_owned(),
            start_us,
            out,
        })
    }

    /// The patient's device of a kind: `cgm-0007` (a bottle, `bottle-1`: `bottle-0007-1`).
    fn device(&self, kind: &str) -> Option<Identifier> {
        let name = match kind.split_once('-') {
            Some((kind, n)) => format!("{kind}-{}-{n}", self.number),
            None => format!("{kind}-{}", self.number),
        };
        Identifier::new(&name).ok()
    }

    fn at(&self, t: i64) -> EventTime {
        EventTime::from_micros(self.start_us + t)
    }

    fn push(
        &mut self,
        device: &str,
        t: i64,
        vital: Vital,
        value: Value,
        unit: Option<Unit>,
        detail: Option<Detail>,
    ) {
        let time = self.at(t);
        let device = self.device(device);
        if let Ok(o) = Observation::with_detail(
            self.patient.clone(),
            device,
            time,
            vital,
            value,
            unit,
            detail,
        ) {
            self.out.push(o);
        }
    }

    fn status(&mut self, device: &str, t: i64, status: DeviceStatus) {
        self.push(
            device,
            t,
            Vital::DeviceStatus,
            Value::None,
            None,
            Some(Detail::Status(status)),
        );
    }

    /// Every 5 minutes (at the patient's own second), unless warming up or out of range.
    fn cgm_readings(&mut self, p: &mut HomePatient, from: i64, to: i64, truth: &mut Vec<Truth>) {
        let phase = (self.number.parse::<i64>().unwrap_or(0) * 37 % 300) * 1_000_000;
        let mut t = from + phase;
        while t < to {
            p.drift = 0.98 * p.drift + 1.5 * p.rng.normal();
            let session = (t - p.sensor0).rem_euclid(SENSOR_SESSION);
            let out_of_range = p.cgm_outages.iter().any(|o| t >= o.0 && t < o.1);
            let truly = p.glucose(t);
            excursions(p, self.start_us, t, truly, truth);
            if session >= SENSOR_WARMUP && !out_of_range {
                let reading = (truly * (1.0 + 0.03 * p.rng.normal()))
                    .round()
                    .clamp(40.0, 400.0);
                let cgm = Some(Detail::Glucose {
                    method: Method::Cgm,
                });
                self.push(
                    "cgm",
                    t,
                    Vital::Glucose,
                    Value::Number(reading),
                    Some(Unit::MilligramsPerDecilitre),
                    cgm,
                );
            }
            t += 5 * MIN;
        }
    }

    fn planned(&mut self, p: &mut HomePatient, t: i64, event: Planned, truth: &mut Vec<Truth>) {
        let insulin = |delivery| Some(Detail::Insulin { delivery });
        match event {
            Planned::Dose { med, slot } => {
                let m = &p.meds[usize::from(med)];
                let detail = Detail::Medication {
                    medication: Identifier::new(m.code).unwrap_or_else(|_| self.patient.clone()),
                    schedule: Identifier::new(m.slots[usize::from(slot)].0).ok(),
                };
                let med = usize::from(med);
                self.push_bottle(med, t, Vital::Medication, Value::Code(Code::Taken), detail);
            }
            Planned::Bolus(units) => self.push(
                "pump",
                t,
                Vital::Insulin,
                Value::Number(units),
                Some(Unit::InsulinUnits),
                insulin(Delivery::Bolus),
            ),
            Planned::Basal(rate) => self.push(
                "pump",
                t,
                Vital::Insulin,
                Value::Number(rate),
                Some(Unit::InsulinUnitsPerHour),
                insulin(Delivery::Basal),
            ),
            Planned::Pump(code) => {
                self.push("pump", t, Vital::PumpEvent, Value::Code(code), None, None)
            }
            Planned::Puffs(code, puffs) => self.push(
                "inh",
                t,
                Vital::Inhaler,
                Value::Code(code),
                None,
                Some(Detail::Inhaler { puffs }),
            ),
            // Out of range, the CGM sends nothing at all.
            Planned::CgmStatus if !p.cgm_outages.iter().any(|o| t >= o.0 && t < o.1) => {
                let start = p.sensor0 + (t - p.sensor0).div_euclid(SENSOR_SESSION) * SENSOR_SESSION;
                let status = DeviceStatus {
                    battery: Some(80),
                    sensor_start: Some(self.at(start)),
                    sensor_expires: Some(self.at(start + SENSOR_SESSION)),
                    ..DeviceStatus::default()
                };
                self.status("cgm", t, status);
            }
            Planned::CgmStatus => {}
            Planned::BottleStatus => self.bottle_status(p, t, truth),
            Planned::InhalerStatus => {
                let status = DeviceStatus {
                    battery: Some(90),
                    ..DeviceStatus::default()
                };
                self.status("inh", t, status);
            }
        }
    }

    /// A pill bottle's observation: `bottle-0007-1`, of the patient's second medication.
    fn push_bottle(&mut self, med: usize, t: i64, vital: Vital, value: Value, detail: Detail) {
        self.push(
            &format!("bottle-{med}"),
            t,
            vital,
            value,
            None,
            Some(detail),
        );
    }

    /// The bottles' daily check-in, unless offline; a battery at 20 % or less is ground truth.
    fn bottle_status(&mut self, p: &mut HomePatient, t: i64, truth: &mut Vec<Truth>) {
        if p.bottle_outages.iter().any(|o| t >= o.0 && t < o.1) {
            return;
        }
        let battery = p.bottle_battery.round().clamp(0.0, 100.0) as u8;
        p.bottle_battery -= 1.5;
        for med in 0..p.meds.len() {
            let status = DeviceStatus {
                battery: Some(battery),
                ..DeviceStatus::default()
            };
            let status = Detail::Status(status);
            self.push_bottle(med, t, Vital::DeviceStatus, Value::None, status);
            if battery <= 20 && !p.bottle_low {
                let what = format!("bottle-{}-{med}", self.number);
                truth.push(Truth::new(
                    &p.id,
                    TruthKind::LowBattery,
                    self.start_us + t,
                    self.start_us + t,
                    what,
                ));
            }
        }
        p.bottle_low = battery <= 20;
        if p.bottle_battery < 5.0 {
            // Changed: the next check-in is at full charge.
            p.bottle_battery = 100.0;
        }
    }
}

/// Notes when true glucose enters and leaves each range the glucose rule alerts on.
fn excursions(p: &mut HomePatient, start_us: i64, t: i64, glucose: f64, truth: &mut Vec<Truth>) {
    let kinds = [
        (TruthKind::GlucoseBelow55, glucose < 55.0),
        (TruthKind::GlucoseBelow70, glucose < 70.0),
        (TruthKind::GlucoseAbove250, glucose > 250.0),
    ];
    for (i, (kind, inside)) in kinds.into_iter().enumerate() {
        match (p.excursions[i], inside) {
            (None, true) => p.excursions[i] = Some(t),
            (Some(from), false) => {
                p.excursions[i] = None;
                truth.push(Truth::new(
                    &p.id,
                    kind,
                    start_us + from,
                    start_us + t,
                    String::new(),
                ));
            }
            _ => {}
        }
    }
}

impl Source for HomeSimulator {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let mut produced = 0;
        while produced < max {
            if let Some(o) = self.ready.pop_front() {
                out.push(SourceItem::Observation(o, None));
                produced += 1;
                continue;
            }
            if self.day >= self.days {
                return Ok(false);
            }
            self.simulate_day(self.day);
            self.day += 1;
        }
        Ok(true)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.day as u64,
            total: Some(self.days as u64),
        }
    }
}

#[cfg(test)]
mod tests;
