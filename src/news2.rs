//! NEWS2, the Royal College of Physicians' National Early Warning Score 2 (2017), as a pure
//! function of one set of parameters and the patient's SpO2 scale.
//!
//! The chart, the bands and the policies for what the chart leaves open are in
//! `../shared/NEWS2.md`; this module follows them to the letter:
//!
//! * Values are quantised to the chart's resolution before banding, half-up, in exact arithmetic:
//!   whole numbers for rates, SpO2 and blood pressure, 0.1 °C for temperature (8.5 → 9,
//!   35.05 → 35.1). Units are converted first, by [`crate::observation`].
//! * A missing, stale or invalid parameter is never scored as normal. The set is then incomplete:
//!   [`Score::total`] is the sum of what could be scored (a lower bound), [`Score::upper_bound`]
//!   what the set could reach, and the band is reported only when the lower bound already reaches
//!   low–medium or above (it escalates now); otherwise it is `None`, never "low".
//! * SpO2 scale 2 is used only when prescribed ([`Scale::Two`] comes from the patient registry,
//!   never from the data). On scale 2 an SpO2 of 93 % or more cannot be scored without knowing
//!   whether the patient breathes air or oxygen.
//! * Confusion (the C of ACVPU) counts as new and scores 3.
//!
//! ```
//! use vigil::exact::Exact;
//! use vigil::news2::{self, AirOrOxygen, Band, Input, Parameters, Scale, Status};
//!
//! let n = |v: f64| Input::Present(Exact::from_f64(v).unwrap());
//! let set = Parameters {
//!     respiration_rate: n(24.0),                     // 2
//!     spo2: n(95.0),                                 // 1
//!     air_or_oxygen: Input::Present(AirOrOxygen::Air), // 0
//!     systolic_bp: n(105.0),                         // 1
//!     pulse: n(112.0),                               // 2
//!     consciousness: Input::Present(vigil::observation::Acvpu::A), // 0
//!     temperature: n(38.45),                         // 38.5 → 1
//! };
//! let score = news2::score(&set, Scale::One);
//! assert_eq!(score.status, Status::Complete);
//! assert_eq!(score.total, 7);
//! assert_eq!(score.band, Some(Band::High));
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exact::Exact;
use crate::observation::{Acvpu, OxygenDelivery};

/// The SpO2 scale of a patient. Scale 2 only by a clinician's prescription (confirmed hypercapnic
/// respiratory failure, target 88–92 %).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub enum Scale {
    #[default]
    #[serde(rename = "1")]
    One,
    #[serde(rename = "2")]
    Two,
}

/// Whether the patient breathes room air or supplemental oxygen.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AirOrOxygen {
    Air,
    Oxygen,
}

impl From<OxygenDelivery> for AirOrOxygen {
    fn from(delivery: OxygenDelivery) -> AirOrOxygen {
        if delivery.on_oxygen() {
            AirOrOxygen::Oxygen
        } else {
            AirOrOxygen::Air
        }
    }
}

/// The seven NEWS2 parameters, in chart order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Parameter {
    RespirationRate,
    Spo2,
    AirOrOxygen,
    SystolicBp,
    Pulse,
    Consciousness,
    Temperature,
}

impl Parameter {
    /// Every parameter, in chart order.
    pub const ALL: [Parameter; 7] = [
        Parameter::RespirationRate,
        Parameter::Spo2,
        Parameter::AirOrOxygen,
        Parameter::SystolicBp,
        Parameter::Pulse,
        Parameter::Consciousness,
        Parameter::Temperature,
    ];

    /// The short key used in JSON and on the command line (`rr`, `spo2`, `air_oxygen`, `sbp`,
    /// `hr`, `acvpu`, `temp`).
    pub fn key(self) -> &'static str {
        match self {
            Parameter::RespirationRate => "rr",
            Parameter::Spo2 => "spo2",
            Parameter::AirOrOxygen => "air_oxygen",
            Parameter::SystolicBp => "sbp",
            Parameter::Pulse => "hr",
            Parameter::Consciousness => "acvpu",
            Parameter::Temperature => "temp",
        }
    }

    /// The chart's name for people.
    pub fn human_name(self) -> &'static str {
        match self {
            Parameter::RespirationRate => "respiration rate",
            Parameter::Spo2 => "SpO2",
            Parameter::AirOrOxygen => "air or oxygen",
            Parameter::SystolicBp => "systolic BP",
            Parameter::Pulse => "pulse",
            Parameter::Consciousness => "consciousness",
            Parameter::Temperature => "temperature",
        }
    }

    /// The highest sub-score this parameter can take: what an unknown value could add.
    pub fn max_subscore(self) -> u8 {
        match self {
            Parameter::AirOrOxygen => 2,
            _ => 3,
        }
    }
}

impl fmt::Display for Parameter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

/// One parameter as known at scoring time.
#[derive(Clone, Debug, PartialEq)]
pub enum Input<T> {
    /// A current, valid value in the chart's unit (/min, %, mmHg, °C).
    Present(T),
    /// Never recorded.
    Missing,
    /// Recorded, but older than the parameter's staleness limit.
    Stale { age: Duration, limit: Duration },
    /// The last value was physiologically impossible or malformed; the reason says why.
    Invalid(String),
}

/// A set of NEWS2 parameters. Numbers are in the chart's units and exact; [`score`] quantises
/// them. Present values are expected to be plausible (checked by [`crate::observation::read`]);
/// the sub-score tables are total, so any number still gets the chart's answer.
#[derive(Clone, Debug, PartialEq)]
pub struct Parameters {
    /// Respiration rate, /min.
    pub respiration_rate: Input<Exact>,
    /// SpO2, %.
    pub spo2: Input<Exact>,
    pub air_or_oxygen: Input<AirOrOxygen>,
    /// Systolic blood pressure, mmHg.
    pub systolic_bp: Input<Exact>,
    /// Pulse, /min.
    pub pulse: Input<Exact>,
    pub consciousness: Input<Acvpu>,
    /// Temperature, °C.
    pub temperature: Input<Exact>,
}

impl Parameters {
    /// A set where every parameter is missing.
    pub fn missing() -> Parameters {
        Parameters {
            respiration_rate: Input::Missing,
            spo2: Input::Missing,
            air_or_oxygen: Input::Missing,
            systolic_bp: Input::Missing,
            pulse: Input::Missing,
            consciousness: Input::Missing,
            temperature: Input::Missing,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The chart, one function per row. Arguments are already quantised to the chart's resolution.

/// Respiration rate sub-score, from breaths per minute.
pub fn respiration_rate_subscore(per_min: i64) -> u8 {
    match per_min {
        ..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        _ => 3,
    }
}

/// SpO2 scale 1 sub-score, from percent.
pub fn spo2_scale1_subscore(percent: i64) -> u8 {
    match percent {
        ..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        _ => 0,
    }
}

/// SpO2 scale 2 sub-score, from percent; `None` when the value is 93 % or more and it is not
/// known whether the patient is on air or oxygen.
pub fn spo2_scale2_subscore(percent: i64, air_or_oxygen: Option<AirOrOxygen>) -> Option<u8> {
    match (percent, air_or_oxygen) {
        (..=83, _) => Some(3),
        (84..=85, _) => Some(2),
        (86..=87, _) => Some(1),
        (88..=92, _) => Some(0),
        (_, Some(AirOrOxygen::Air)) => Some(0),
        (93..=94, Some(AirOrOxygen::Oxygen)) => Some(1),
        (95..=96, Some(AirOrOxygen::Oxygen)) => Some(2),
        (_, Some(AirOrOxygen::Oxygen)) => Some(3),
        (_, None) => None,
    }
}

/// Air or oxygen sub-score.
pub fn air_or_oxygen_subscore(air_or_oxygen: AirOrOxygen) -> u8 {
    match air_or_oxygen {
        AirOrOxygen::Air => 0,
        AirOrOxygen::Oxygen => 2,
    }
}

/// Systolic blood pressure sub-score, from mmHg.
pub fn systolic_bp_subscore(mmhg: i64) -> u8 {
    match mmhg {
        ..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        _ => 3,
    }
}

/// Pulse sub-score, from beats per minute.
pub fn pulse_subscore(per_min: i64) -> u8 {
    match per_min {
        ..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        _ => 3,
    }
}

/// Consciousness sub-score: alert 0; new confusion, voice, pain or unresponsive 3.
pub fn consciousness_subscore(level: Acvpu) -> u8 {
    match level {
        Acvpu::A => 0,
        Acvpu::C | Acvpu::V | Acvpu::P | Acvpu::U => 3,
    }
}

/// Temperature sub-score, from tenths of a degree Celsius (35.1 °C is `351`).
pub fn temperature_subscore(tenths_celsius: i64) -> u8 {
    match tenths_celsius {
        ..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        _ => 2,
    }
}

/// Decimal places of each numeric parameter on the chart.
fn decimals(parameter: Parameter) -> u32 {
    match parameter {
        Parameter::Temperature => 1,
        _ => 0,
    }
}

// ---------------------------------------------------------------------------------------------
// The score.

/// Whether every parameter could be scored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// All seven parameters scored.
    Complete,
    /// At least one parameter missing, stale or unscorable, none invalid.
    Incomplete,
    /// At least one parameter invalid (a data-quality problem); otherwise as incomplete.
    Invalid,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Complete => "complete",
            Status::Incomplete => "incomplete",
            Status::Invalid => "invalid",
        })
    }
}

/// The clinical risk band.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Band {
    /// Total 0–4, no single parameter scoring 3.
    #[serde(rename = "low")]
    Low,
    /// A single parameter scores 3, total 0–4.
    #[serde(rename = "low-medium")]
    LowMedium,
    /// Total 5–6: the key threshold for an urgent response.
    #[serde(rename = "medium")]
    Medium,
    /// Total 7 or more: emergency response.
    #[serde(rename = "high")]
    High,
}

impl Band {
    /// The band a total reaches, given whether any single parameter scores 3.
    pub fn of(total: u8, single_parameter_3: bool) -> Band {
        match total {
            7.. => Band::High,
            5..=6 => Band::Medium,
            _ if single_parameter_3 => Band::LowMedium,
            _ => Band::Low,
        }
    }

    /// The name used in JSON and alerts.
    pub fn name(self) -> &'static str {
        match self {
            Band::Low => "low",
            Band::LowMedium => "low-medium",
            Band::Medium => "medium",
            Band::High => "high",
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The value a parameter was scored at, after quantisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Charted {
    /// A whole number (/min, %, mmHg).
    Whole(i64),
    /// Tenths of a degree Celsius.
    Tenths(i64),
    AirOrOxygen(AirOrOxygen),
    Consciousness(Acvpu),
}

impl fmt::Display for Charted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Charted::Whole(n) => write!(f, "{n}"),
            Charted::Tenths(t) => {
                let sign = if *t < 0 { "-" } else { "" };
                write!(
                    f,
                    "{sign}{}.{}",
                    t.unsigned_abs() / 10,
                    t.unsigned_abs() % 10
                )
            }
            Charted::AirOrOxygen(AirOrOxygen::Air) => f.write_str("air"),
            Charted::AirOrOxygen(AirOrOxygen::Oxygen) => f.write_str("oxygen"),
            Charted::Consciousness(level) => write!(f, "{level}"),
        }
    }
}

/// How one parameter was scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub parameter: Parameter,
    /// The quantised value, when one was present and valid.
    pub charted: Option<Charted>,
    /// The sub-score, when the parameter could be scored.
    pub subscore: Option<u8>,
    /// The highest sub-score the parameter could have: the sub-score itself when scored.
    pub upper_bound: u8,
}

/// Why a parameter was not scored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    Missing(Parameter),
    Stale {
        parameter: Parameter,
        age: Duration,
        limit: Duration,
    },
    Invalid {
        parameter: Parameter,
        reason: String,
    },
    /// SpO2 of 93 % or more on scale 2 with air or oxygen unknown.
    Spo2NeedsAirOrOxygen {
        percent: i64,
    },
}

impl Problem {
    /// The parameter the problem is about.
    pub fn parameter(&self) -> Parameter {
        match self {
            Problem::Missing(parameter)
            | Problem::Stale { parameter, .. }
            | Problem::Invalid { parameter, .. } => *parameter,
            Problem::Spo2NeedsAirOrOxygen { .. } => Parameter::Spo2,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "{p}: missing"),
            Problem::Stale {
                parameter,
                age,
                limit,
            } => write!(
                f,
                "{parameter}: stale (last value {} old, limit {})",
                human_duration(*age),
                human_duration(*limit)
            ),
            Problem::Invalid { parameter, reason } => write!(f, "{parameter}: invalid: {reason}"),
            Problem::Spo2NeedsAirOrOxygen { percent } => write!(
                f,
                "spo2: {percent} % cannot be scored on scale 2 without knowing whether the patient is on air or oxygen"
            ),
        }
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        _ if s.is_multiple_of(3600) => format!("{} h", s / 3600),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// The result of scoring one set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Score {
    pub scale: Scale,
    /// One assessment per parameter, in [`Parameter::ALL`] order.
    pub assessments: [Assessment; 7],
    /// Sum of the scored sub-scores: the NEWS2 total when complete, a lower bound otherwise.
    pub total: u8,
    /// The highest total the set could reach once every parameter is known.
    pub upper_bound: u8,
    /// Whether any scored parameter scores 3.
    pub single_parameter_3: bool,
    pub status: Status,
    /// The band; when incomplete, the band the lower bound already reaches if it is low–medium or
    /// above, else `None` (an incomplete set is never "low").
    pub band: Option<Band>,
    /// Why parameters were not scored, in chart order.
    pub problems: Vec<Problem>,
}

impl Score {
    /// The assessment of one parameter.
    pub fn assessment(&self, parameter: Parameter) -> &Assessment {
        &self.assessments[parameter as usize]
    }

    /// The sub-score of one parameter, when scored.
    pub fn subscore(&self, parameter: Parameter) -> Option<u8> {
        self.assessment(parameter).subscore
    }

    /// The RCP's minimum monitoring frequency for this score.
    pub fn monitoring(&self) -> &'static str {
        match self.band {
            Some(Band::High) => "continuous monitoring of vital signs",
            Some(Band::Medium | Band::LowMedium) => "minimum 1-hourly",
            Some(Band::Low) if self.total == 0 => "minimum 12-hourly",
            Some(Band::Low) => "minimum 4–6-hourly",
            None => "now: complete the observation set",
        }
    }

    /// The RCP's recommended clinical response for this score.
    pub fn response(&self) -> String {
        let text = match self.band {
            Some(Band::High) => {
                "emergency response: registered nurse to immediately inform the medical team caring for the patient (at least specialist registrar level); emergency assessment by a team with critical-care competencies, including airway management; consider transfer to a level 2 or 3 care facility (HDU or ICU); care in an environment with monitoring facilities"
            }
            Some(Band::Medium) => {
                "urgent response (key threshold): registered nurse to immediately inform the medical team caring for the patient; urgent assessment by a clinician or team with core competencies in the care of acutely ill patients; care in an environment with monitoring facilities"
            }
            Some(Band::LowMedium) => {
                "urgent ward-based response: registered nurse to inform the medical team caring for the patient, who will review and decide whether escalation of care is necessary"
            }
            Some(Band::Low) if self.total == 0 => "routine: continue routine NEWS monitoring",
            Some(Band::Low) => {
                "ward-based response: registered nurse to assess the patient and decide whether increased frequency of monitoring or escalation of care is required"
            }
            None => {
                let unknown: Vec<&str> =
                    self.problems.iter().map(|p| p.parameter().key()).collect();
                return format!(
                    "incomplete set, not a low score: record {} and rescore; NEWS2 is at least {} and could be up to {}",
                    unknown.join(", "),
                    self.total,
                    self.upper_bound
                );
            }
        };
        if self.status == Status::Complete {
            text.to_owned()
        } else {
            let unknown: Vec<&str> = self.problems.iter().map(|p| p.parameter().key()).collect();
            format!(
                "{text}; the set is incomplete (record {}): NEWS2 is at least {} and could be up to {}",
                unknown.join(", "),
                self.total,
                self.upper_bound
            )
        }
    }
}

/// Scores one set of parameters on the patient's SpO2 scale.
pub fn score(parameters: &Parameters, scale: Scale) -> Score {
    let mut problems = Vec::new();
    let mut any_invalid = false;

    // Unwraps an input into its value, recording why it is unusable otherwise.
    let mut usable = |known: Result<Charted, Problem>| match known {
        Ok(charted) => Some(charted),
        Err(problem) => {
            any_invalid |= matches!(problem, Problem::Invalid { .. });
            problems.push(problem);
            None
        }
    };

    let rr = usable(numeric(
        Parameter::RespirationRate,
        &parameters.respiration_rate,
    ));
    let spo2 = usable(numeric(Parameter::Spo2, &parameters.spo2));
    let air = usable(categorical(
        Parameter::AirOrOxygen,
        &parameters.air_or_oxygen,
        Charted::AirOrOxygen,
    ));
    let sbp = usable(numeric(Parameter::SystolicBp, &parameters.systolic_bp));
    let hr = usable(numeric(Parameter::Pulse, &parameters.pulse));
    let acvpu = usable(categorical(
        Parameter::Consciousness,
        &parameters.consciousness,
        Charted::Consciousness,
    ));
    let temp = usable(numeric(Parameter::Temperature, &parameters.temperature));

    let air_or_oxygen = match air {
        Some(Charted::AirOrOxygen(a)) => Some(a),
        _ => None,
    };
    let whole = |c: Option<Charted>| match c {
        Some(Charted::Whole(n) | Charted::Tenths(n)) => Some(n),
        _ => None,
    };

    // SpO2 on scale 2 depends on air or oxygen: (sub-score, upper bound).
    let spo2_scored = whole(spo2).map(|percent| match scale {
        Scale::One => {
            let s = spo2_scale1_subscore(percent);
            (Some(s), s)
        }
        Scale::Two => match spo2_scale2_subscore(percent, air_or_oxygen) {
            Some(s) => (Some(s), s),
            None => {
                problems.push(Problem::Spo2NeedsAirOrOxygen { percent });
                let on_oxygen = spo2_scale2_subscore(percent, Some(AirOrOxygen::Oxygen));
                (None, on_oxygen.unwrap_or(3))
            }
        },
    });

    let assess =
        |parameter: Parameter, charted: Option<Charted>, subscore: Option<u8>| Assessment {
            parameter,
            charted,
            subscore,
            upper_bound: subscore.unwrap_or(parameter.max_subscore()),
        };
    let assessments = [
        assess(
            Parameter::RespirationRate,
            rr,
            whole(rr).map(respiration_rate_subscore),
        ),
        Assessment {
            parameter: Parameter::Spo2,
            charted: spo2,
            subscore: spo2_scored.and_then(|(s, _)| s),
            upper_bound: spo2_scored.map_or(Parameter::Spo2.max_subscore(), |(_, u)| u),
        },
        assess(
            Parameter::AirOrOxygen,
            air,
            air_or_oxygen.map(air_or_oxygen_subscore),
        ),
        assess(
            Parameter::SystolicBp,
            sbp,
            whole(sbp).map(systolic_bp_subscore),
        ),
        assess(Parameter::Pulse, hr, whole(hr).map(pulse_subscore)),
        assess(
            Parameter::Consciousness,
            acvpu,
            match acvpu {
                Some(Charted::Consciousness(level)) => Some(consciousness_subscore(level)),
                _ => None,
            },
        ),
        assess(
            Parameter::Temperature,
            temp,
            whole(temp).map(temperature_subscore),
        ),
    ];

    let total: u8 = assessments.iter().filter_map(|a| a.subscore).sum();
    let upper_bound: u8 = assessments.iter().map(|a| a.upper_bound).sum();
    let single_parameter_3 = assessments.iter().any(|a| a.subscore == Some(3));
    problems.sort_by_key(Problem::parameter);

    let status = if any_invalid {
        Status::Invalid
    } else if problems.is_empty() {
        Status::Complete
    } else {
        Status::Incomplete
    };
    let reached = Band::of(total, single_parameter_3);
    let band = match status {
        Status::Complete => Some(reached),
        Status::Incomplete | Status::Invalid if reached > Band::Low => Some(reached),
        Status::Incomplete | Status::Invalid => None,
    };

    Score {
        scale,
        assessments,
        total,
        upper_bound,
        single_parameter_3,
        status,
        band,
        problems,
    }
}

/// A numeric input quantised to the chart's resolution, or why it cannot be.
fn numeric(parameter: Parameter, input: &Input<Exact>) -> Result<Charted, Problem> {
    let value = present(parameter, input)?;
    let places = decimals(parameter);
    let quantised = value
        .round_half_up(places)
        .ok_or_else(|| Problem::Invalid {
            parameter,
            reason: format!("{value} is out of any chart's range"),
        })?;
    Ok(if places == 0 {
        Charted::Whole(quantised)
    } else {
        Charted::Tenths(quantised)
    })
}

fn categorical<T: Copy>(
    parameter: Parameter,
    input: &Input<T>,
    chart: fn(T) -> Charted,
) -> Result<Charted, Problem> {
    present(parameter, input).map(|v| chart(*v))
}

fn present<T>(parameter: Parameter, input: &Input<T>) -> Result<&T, Problem> {
    match input {
        Input::Present(value) => Ok(value),
        Input::Missing => Err(Problem::Missing(parameter)),
        Input::Stale { age, limit } => Err(Problem::Stale {
            parameter,
            age: *age,
            limit: *limit,
        }),
        Input::Invalid(reason) => Err(Problem::Invalid {
            parameter,
            reason: reason.clone(),
        }),
    }
}

/// For the tests of the rules and sinks that read scores: the score, on scale 1, of a set
/// normal but for its respiration rate, pulse and temperature (`None`: missing).
#[cfg(test)]
pub(crate) fn score_of(rr: f64, hr: f64, temp: Option<f64>) -> Score {
    let n = |v: f64| Input::Present(Exact::from_f64(v).expect("a finite test value"));
    score(
        &Parameters {
            respiration_rate: n(rr),
            spo2: n(98.0),
            air_or_oxygen: Input::Present(AirOrOxygen::Air),
            systolic_bp: n(120.0),
            pulse: n(hr),
            consciousness: Input::Present(Acvpu::A),
            temperature: temp.map_or(Input::Missing, n),
        },
        Scale::One,
    )
}

#[cfg(test)]
mod tests;
