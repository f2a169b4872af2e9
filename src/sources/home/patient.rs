//! One simulated patient at home: their devices, their day, and the ground truth of what
//! happened to them.
//!
//! Glucose is a baseline with meals (a rise peaking an hour after eating, mostly covered by the
//! bolus), afternoon exercise (a fall) and slow drift; some nights a hypoglycaemia is planned:
//! 45 minutes of descent to 55 mg/dL, 20 to 50 minutes below it, 30 minutes of recovery. The CGM
//! reads it every 5 minutes with 3 % noise; each sensor lasts 10 days and warms up 30 minutes.

use super::{Truth, TruthKind};
use crate::sources::simulator::Rng;

pub const MIN: i64 = 60_000_000;
pub const HOUR: i64 = 60 * MIN;
pub const DAY: i64 = 24 * HOUR;

/// The grace the simulated registry gives every dose.
pub const GRACE: i64 = 2 * HOUR;

/// A CGM sensor's session.
pub const SENSOR_SESSION: i64 = 10 * DAY;
pub const SENSOR_WARMUP: i64 = 30 * MIN;

/// A medication a patient takes from a pill bottle.
#[derive(Clone, Debug)]
pub struct Med {
    pub code: &'static str,
    /// (slot name, local minute of the day).
    pub slots: Vec<(&'static str, i64)>,
}

/// What a patient has.
#[derive(Clone, Debug)]
pub struct HomePatient {
    pub id: String,
    pub rng: Rng,
    /// Local time, µs east of UTC.
    pub offset: i64,
    pub cgm: bool,
    pub pump: bool,
    pub meds: Vec<Med>,
    /// Of doses: share taken on time, and share taken late (the rest missed).
    pub on_time: f64,
    pub late: f64,
    pub asthma: bool,
    /// Glucose at rest, mg/dL.
    pub base: f64,
    /// Planned events, each a (start, end) in µs from the start.
    pub hypos: Vec<(i64, i64, f64)>,
    pub meals: Vec<(i64, f64)>,
    pub exercise: Vec<(i64, i64)>,
    pub occlusions: Vec<(i64, i64)>,
    pub cgm_outages: Vec<(i64, i64)>,
    pub bottle_outages: Vec<(i64, i64)>,
    /// Days (from the start) of an asthma flare: rescue use of 5 to 8 puffs.
    pub flare_days: Vec<i64>,
    pub drift: f64,
    pub bottle_battery: f64,
    /// The bottles' last check-in was at or below 20 %.
    pub bottle_low: bool,
    /// When the CGM's first sensor session started (before the start: it is warmed up).
    pub sensor0: i64,
    /// Discrete events, in time order once planned.
    pub planned: Vec<(i64, Planned)>,
    /// Ground truth found while planning.
    pub found: Vec<(TruthKind, i64, i64, String)>,
    /// When true glucose went below 55, below 70 and above 250, while it is.
    pub excursions: [Option<i64>; 3],
}

/// A discrete event of a patient's plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Planned {
    /// A dose of `meds[med]` for its slot `slot`.
    Dose {
        med: u8,
        slot: u8,
    },
    Bolus(f64),
    Basal(f64),
    Pump(crate::observation::Code),
    CgmStatus,
    BottleStatus,
    InhalerStatus,
    /// Inhaler puffs: controller or rescue.
    Puffs(crate::observation::Code, u8),
}

impl HomePatient {
    pub fn new(seed: u64, index: u32, days: i64) -> HomePatient {
        let mut rng = Rng::new(seed ^ 0x686f_6d65, u64::from(index) + 1);
        let offset = [-7, -5, 0, 1][(rng.next() % 4) as usize] * HOUR;
        let cgm = rng.chance(0.7);
        let pump = cgm && rng.chance(0.6);
        let mut meds = Vec::new();
        if rng.chance(0.6) {
            meds.push(Med {
                code: "metformin",
                slots: vec![("am", 8 * 60), ("pm", 20 * 60)],
            });
        }
        if rng.chance(0.4) {
            meds.push(Med {
                code: "atorvastatin",
                slots: vec![("night", 21 * 60 + 30)],
            });
        }
        let asthma = rng.chance(0.35);
        if meds.is_empty() && !cgm && !asthma {
            meds.push(Med {
                code: "metformin",
                slots: vec![("am", 8 * 60), ("pm", 20 * 60)],
            });
        }
        // Adherence: good, moderate or poor.
        let (on_time, late) = match rng.next() % 3 {
            0 => (0.95, 0.03),
            1 => (0.8, 0.08),
            _ => (0.6, 0.12),
        };
        let base = rng.range(105.0, 150.0);
        let bottle_battery = if rng.chance(0.25) {
            rng.range(28.0, 40.0)
        } else {
            100.0
        };
        let mut p = HomePatient {
            id: format!("home-{index:04}"),
            rng,
            offset,
            cgm,
            pump,
            meds,
            on_time,
            late,
            asthma,
            base,
            hypos: Vec::new(),
            meals: Vec::new(),
            exercise: Vec::new(),
            occlusions: Vec::new(),
            cgm_outages: Vec::new(),
            bottle_outages: Vec::new(),
            flare_days: Vec::new(),
            drift: 0.0,
            bottle_battery,
            bottle_low: false,
            sensor0: 0,
            planned: Vec::new(),
            found: Vec::new(),
            excursions: [None; 3],
        };
        p.plan(days);
        p.plan_devices(days);
        p.planned.sort_by_key(|e| e.0);
        p
    }

    /// Plans every day's meals, exercise, hypos, occlusions, outages and flares.
    fn plan(&mut self, days: i64) {
        let hypo_rate = if self.cgm {
            self.rng.range(0.05, 0.25)
        } else {
            0.0
        };
        for day in 0..days {
            let midnight = day * DAY - self.offset;
            for (hour, carbs) in [(7.5, 50.0), (12.5, 70.0), (19.0, 80.0)] {
                let at = midnight + ((hour + self.rng.range(-0.5, 0.5)) * HOUR as f64) as i64;
                self.meals.push((at, carbs * self.rng.range(0.6, 1.4)));
            }
            if self.rng.chance(0.3) {
                let at = midnight + (self.rng.range(15.0, 18.0) * HOUR as f64) as i64;
                self.exercise
                    .push((at, at + (self.rng.range(0.75, 1.5) * HOUR as f64) as i64));
            }
            // A night's hypo starts (crosses 55) between 01:00 and 04:00, the night after
            // `day`'s evening; not on the first night (the CGM is still settling in).
            if day > 0 && self.rng.chance(hypo_rate) {
                let at = midnight + (self.rng.range(1.0, 4.0) * HOUR as f64) as i64;
                let below = (self.rng.range(20.0, 50.0) * MIN as f64) as i64;
                self.hypos
                    .push((at, at + below, self.rng.range(40.0, 50.0)));
            }
            // Devices drop out in the daytime (out of range, a dead phone).
            if self.cgm && day > 0 && self.rng.chance(0.08) {
                let at = midnight + (self.rng.range(9.0, 14.0) * HOUR as f64) as i64;
                self.cgm_outages
                    .push((at, at + (self.rng.range(70.0, 180.0) * MIN as f64) as i64));
            }
            if self.pump && self.rng.chance(0.05) {
                let at = midnight + (self.rng.range(9.0, 15.0) * HOUR as f64) as i64;
                self.occlusions
                    .push((at, at + (self.rng.range(1.0, 2.5) * HOUR as f64) as i64));
            }
            if !self.meds.is_empty() && day > 0 && day + 3 < days && self.rng.chance(0.03) {
                let at = midnight + (self.rng.range(9.0, 12.0) * HOUR as f64) as i64;
                self.bottle_outages
                    .push((at, at + (self.rng.range(30.0, 50.0) * HOUR as f64) as i64));
            }
            if self.asthma && day > 0 && self.rng.chance(0.04) {
                self.flare_days.push(day);
            }
        }
    }

    /// Plans what the devices report besides CGM readings: doses, pump deliveries and alarms,
    /// statuses, puffs; and the ground truth of doses missed and flares.
    fn plan_devices(&mut self, days: i64) {
        use crate::observation::Code;
        let end = days * DAY;
        self.sensor0 = -((self.rng.range(0.5, 9.0) * DAY as f64) as i64 / MIN) * MIN;
        let mut plan: Vec<(i64, Planned)> = Vec::new();
        for k in 0..=(days * 4) {
            let at = k * 6 * HOUR + i64::from(k > 0) * 7 * MIN;
            if self.cgm && at < end {
                plan.push((at, Planned::CgmStatus));
            }
        }
        if self.cgm {
            let mut start = self.sensor0 + SENSOR_SESSION;
            while start < end {
                plan.push((start, Planned::CgmStatus));
                start += SENSOR_SESSION;
            }
        }
        // West of UTC, the local day before the start has slots after it.
        self.plan_doses(-DAY - self.offset, end, &mut plan);
        for day in 0..days {
            let midnight = day * DAY - self.offset;
            if !self.meds.is_empty() {
                plan.push((
                    if day == 0 { 0 } else { midnight + 3 * HOUR },
                    Planned::BottleStatus,
                ));
            }
            if self.asthma {
                plan.push((
                    if day == 0 { 0 } else { midnight + 4 * HOUR },
                    Planned::InhalerStatus,
                ));
            }
            self.plan_doses(midnight, end, &mut plan);
            if self.pump {
                for half in 0..48 {
                    let rate = ((0.6
                        + 0.4 * (half as f64 / 48.0 * std::f64::consts::TAU).sin().abs())
                        * 20.0)
                        .round()
                        / 20.0;
                    plan.push((midnight + half * 30 * MIN + 2 * MIN, Planned::Basal(rate)));
                }
                if day % 3 == 2 {
                    plan.push((midnight + 18 * HOUR, Planned::Pump(Code::LowReservoir)));
                }
            }
            if self.asthma {
                self.plan_puffs(day, midnight, &mut plan);
            }
        }
        if self.pump {
            for &(at, carbs) in &self.meals {
                plan.push((at, Planned::Bolus((carbs / 10.0 * 10.0).round() / 10.0)));
            }
            for &(at, to) in &self.occlusions {
                plan.push((at, Planned::Pump(Code::Occlusion)));
                plan.push((to, Planned::Pump(Code::Resume)));
            }
        }
        plan.retain(|e| e.0 >= 0 && e.0 < end);
        self.planned = plan;
    }

    /// The day's doses, with the ground truth of those missed (not taken by the end of grace).
    fn plan_doses(&mut self, midnight: i64, end: i64, plan: &mut Vec<(i64, Planned)>) {
        let out = |t: i64, outages: &[(i64, i64)]| outages.iter().any(|o| t >= o.0 && t < o.1);
        for (m, med) in self.meds.iter().enumerate() {
            for (k, &(slot, minute)) in med.slots.iter().enumerate() {
                let due = midnight + minute * MIN;
                let r = self.rng.unit();
                let taken = if r < self.on_time {
                    let early_late = (10.0 + 25.0 * self.rng.normal()).clamp(-50.0, 110.0);
                    Some(due + (early_late * MIN as f64) as i64)
                } else if r < self.on_time + self.late {
                    Some(due + GRACE + (self.rng.range(10.0, 120.0) * MIN as f64) as i64)
                } else {
                    None
                };
                if due < MIN || due + GRACE >= end - 10 * MIN {
                    continue;
                }
                if taken.is_none_or(|t| t > due + GRACE) {
                    let what = format!("{} {slot}", med.code);
                    self.found
                        .push((TruthKind::MissedDose, due, due + GRACE, what));
                }
                if let Some(t) = taken.filter(|&t| !out(t, &self.bottle_outages)) {
                    plan.push((
                        t,
                        Planned::Dose {
                            med: m as u8,
                            slot: k as u8,
                        },
                    ));
                }
            }
        }
    }

    /// The day's inhaler puffs: the controller morning and evening, rescue now and then, and
    /// often on a flare day.
    fn plan_puffs(&mut self, day: i64, midnight: i64, plan: &mut Vec<(i64, Planned)>) {
        use crate::observation::Code;
        for hour in [8, 20] {
            if self.rng.chance(0.85) {
                let at = midnight + hour * HOUR + (self.rng.range(0.0, 40.0) * MIN as f64) as i64;
                plan.push((at, Planned::Puffs(Code::Controller, 2)));
            }
        }
        let flare = self.flare_days.contains(&day);
        let count = if flare {
            5 + self.rng.next() % 4
        } else {
            u64::from(self.rng.chance(0.15))
        };
        let mut times: Vec<i64> = (0..count)
            .map(|_| midnight + (self.rng.range(7.0, 22.0) * HOUR as f64) as i64)
            .collect();
        times.sort();
        for &t in &times {
            plan.push((t, Planned::Puffs(Code::Rescue, 1)));
        }
        if flare && times.len() >= 5 {
            self.found.push((
                TruthKind::RescueOveruse,
                times[4],
                midnight + DAY,
                format!("{} puffs", times.len()),
            ));
        }
    }

    /// Glucose as it is (mg/dL) at `t` µs from the start, without the sensor's noise.
    pub fn glucose(&self, t: i64) -> f64 {
        let mut g = self.base + self.drift;
        for &(at, carbs) in self.meals.iter().filter(|m| t >= m.0 && t < m.0 + 5 * HOUR) {
            // The bolus covers most of a meal; what is left peaks an hour after it.
            let d = (t - at) as f64 / HOUR as f64;
            let cover = if self.cgm { 0.55 } else { 0.0 };
            g += carbs * 1.6 * (1.0 - cover) * d * (1.0 - d).exp();
        }
        for &(at, end) in self
            .exercise
            .iter()
            .filter(|e| t >= e.0 && t < e.1 + 2 * HOUR)
        {
            let done = ((t - at) as f64 / (end - at) as f64).min(1.0);
            let after = ((t - end).max(0) as f64 / (2 * HOUR) as f64).min(1.0);
            g -= 45.0 * done * (1.0 - after);
        }
        for &(at, end) in self
            .occlusions
            .iter()
            .filter(|o| t >= o.0 && t < o.1 + 2 * HOUR)
        {
            let rise = ((t.min(end) - at) as f64 / MIN as f64) * 0.9;
            let after = ((t - end).max(0) as f64 / (2 * HOUR) as f64).min(1.0);
            g += rise.min(150.0) * (1.0 - after);
        }
        if let Some(&(at, end, target)) = self
            .hypos
            .iter()
            .find(|h| t >= h.0 - 45 * MIN && t < h.1 + 30 * MIN)
        {
            let lerp = |a: f64, b: f64, w: f64| a + (b - a) * w.clamp(0.0, 1.0);
            g = if t < at {
                lerp(
                    g.max(90.0),
                    55.0,
                    (t - (at - 45 * MIN)) as f64 / (45 * MIN) as f64,
                )
            } else if t <= end {
                lerp(55.0, target, (t - at) as f64 / (10 * MIN) as f64)
            } else {
                lerp(target, g.max(90.0), (t - end) as f64 / (30 * MIN) as f64)
            };
        }
        g.clamp(40.0, 400.0)
    }

    /// The ground truth of the plan within `[0, end)`.
    pub fn truth(&self, start_us: i64, end: i64, out: &mut Vec<Truth>) {
        let mut push = |kind, from: i64, to: i64, what: String| {
            if from >= 0 && to < end {
                out.push(Truth::new(
                    &self.id,
                    kind,
                    start_us + from,
                    start_us + to,
                    what,
                ));
            }
        };
        for &(at, end, target) in &self.hypos {
            // Below 55 from `at` until the recovery crosses it again.
            let normal = self.glucose(end + 31 * MIN).max(90.0);
            let back = end + ((55.0 - target) / (normal - target) * (30 * MIN) as f64) as i64;
            push(
                TruthKind::NocturnalHypo,
                at,
                back,
                format!("lowest {target:.0} mg/dL"),
            );
        }
        for &(at, to) in &self.cgm_outages {
            push(
                TruthKind::DeviceOutage,
                at,
                to,
                format!("cgm-{}", &self.id[5..]),
            );
        }
        for &(at, to) in &self.bottle_outages {
            push(
                TruthKind::DeviceOutage,
                at,
                to,
                format!("bottle-{}", &self.id[5..]),
            );
        }
        for &(at, to) in &self.occlusions {
            push(TruthKind::Occlusion, at, to, String::new());
        }
        // A sensor's end is known from its first status (at the start, or the session's own
        // start): it nears its end a day before.
        if self.cgm {
            let mut expires = self.sensor0 + SENSOR_SESSION;
            while expires - DAY < end {
                push(
                    TruthKind::SensorExpiring,
                    (expires - DAY).max(0),
                    (expires - DAY).max(0),
                    "cgm".into(),
                );
                expires += SENSOR_SESSION;
            }
        }
        for (kind, from, to, what) in &self.found {
            push(*kind, *from, *to, what.clone());
        }
    }
}
