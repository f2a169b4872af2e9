//! Observations: one vital sign of one patient at one event time, as devices send them, checked
//! and converted to the units NEWS2 reads.
//!
//! An [`Observation`] is valid by construction: its identifiers follow the wire rules, its unit
//! belongs to its vital, and its value, once converted, lies in the physiologically possible range
//! for that vital. The raw value and unit are kept as sent (the archive stores them); the
//! converted [`Reading`] is exact (see [`crate::exact`]), so that quantising it later gives the
//! chart's answer.
//!
//! [`Observation::from_json`] decodes the wire format of `DESIGN.md` (version 1). It never panics:
//! every input gives an observation or a [`DecodeError`] whose message names the field, the value
//! and what would have been accepted.
//!
//! ```
//! use vigil::observation::{Observation, Reading, Vital};
//! use vigil::exact::Exact;
//!
//! let json = br#"{"patient": "p-000123", "device": "mon-07", "time": "2026-11-24T10:15:00.250Z",
//!                 "vital": "temperature", "value": 100.4, "unit": "[degF]"}"#;
//! let obs = Observation::from_json(json).unwrap();
//! assert_eq!(obs.vital(), Vital::Temperature);
//! assert_eq!(obs.reading(), Reading::Quantity(Exact::integer(38))); // °C, exactly
//!
//! let err = Observation::from_json(br#"{"patient": "p1", "time": "2026-11-24T10:15:00Z",
//!                                      "vital": "heart_rate", "value": 900, "unit": "/min"}"#)
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "`value` 900 /min is not a possible heart rate (0 to 300 /min)");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use thiserror::Error;

use crate::exact::Exact;

pub use kinds::{Code, Delivery, Detail, DetailError, DeviceStatus, Method};

/// The largest message the wire format accepts.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The longest patient or device identifier, in characters.
pub const MAX_ID_CHARS: usize = 64;

/// How much of an offending input an error message quotes.
const QUOTE_CHARS: usize = 40;

/// A vital sign Vigil understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vital {
    RespiratoryRate,
    Spo2,
    SupplementalOxygen,
    Temperature,
    SystolicBp,
    DiastolicBp,
    HeartRate,
    Consciousness,
    /// Wire format v1.1: glucose, mg/dL (CGM or meter).
    Glucose,
    /// Insulin delivered: a bolus (U) or a basal rate (U/h).
    Insulin,
    /// An insulin pump's event (suspend, occlusion, ...).
    PumpEvent,
    /// A medication dose taken or skipped.
    Medication,
    /// An inhaler puff.
    Inhaler,
    /// What a device says of itself: battery, signal, sensor session, error.
    DeviceStatus,
}

impl Vital {
    /// The bedside vitals of wire format v1, in wire-name order of `DESIGN.md`.
    pub const BEDSIDE: [Vital; 8] = [
        Vital::RespiratoryRate,
        Vital::Spo2,
        Vital::SupplementalOxygen,
        Vital::Temperature,
        Vital::SystolicBp,
        Vital::DiastolicBp,
        Vital::HeartRate,
        Vital::Consciousness,
    ];

    /// Every kind, v1's vitals then v1.1's device kinds.
    pub const ALL: [Vital; 14] = [
        Vital::RespiratoryRate,
        Vital::Spo2,
        Vital::SupplementalOxygen,
        Vital::Temperature,
        Vital::SystolicBp,
        Vital::DiastolicBp,
        Vital::HeartRate,
        Vital::Consciousness,
        Vital::Glucose,
        Vital::Insulin,
        Vital::PumpEvent,
        Vital::Medication,
        Vital::Inhaler,
        Vital::DeviceStatus,
    ];

    /// The kinds with a rolling window (numeric ones): the bedside vitals, glucose and insulin.
    pub const WINDOWED: usize = 10;

    /// Whether it is one of v1's bedside vitals.
    pub fn is_bedside(self) -> bool {
        (self as usize) < Vital::BEDSIDE.len()
    }

    /// Its window's index, if it has one.
    pub fn window(self) -> Option<usize> {
        ((self as usize) < Vital::WINDOWED).then_some(self as usize)
    }

    /// Whether its `value` is a code (a pump event, a dose, a puff).
    pub fn is_coded(self) -> bool {
        matches!(self, Vital::PumpEvent | Vital::Medication | Vital::Inhaler)
    }

    /// The name on the wire (`heart_rate`).
    pub fn wire_name(self) -> &'static str {
        match self {
            Vital::RespiratoryRate => "respiratory_rate",
            Vital::Spo2 => "spo2",
            Vital::SupplementalOxygen => "supplemental_oxygen",
            Vital::Temperature => "temperature",
            Vital::SystolicBp => "systolic_bp",
            Vital::DiastolicBp => "diastolic_bp",
            Vital::HeartRate => "heart_rate",
            Vital::Consciousness => "consciousness",
            Vital::Glucose => "glucose",
            Vital::Insulin => "insulin",
            Vital::PumpEvent => "pump_event",
            Vital::Medication => "medication",
            Vital::Inhaler => "inhaler",
            Vital::DeviceStatus => "device_status",
        }
    }

    /// The name for people (`heart rate`).
    pub fn human_name(self) -> &'static str {
        match self {
            Vital::RespiratoryRate => "respiratory rate",
            Vital::Spo2 => "SpO2",
            Vital::SupplementalOxygen => "supplemental oxygen",
            Vital::Temperature => "body temperature",
            Vital::SystolicBp => "systolic blood pressure",
            Vital::DiastolicBp => "diastolic blood pressure",
            Vital::HeartRate => "heart rate",
            Vital::Consciousness => "consciousness level",
            Vital::Glucose => "glucose",
            Vital::Insulin => "insulin dose",
            Vital::PumpEvent => "pump event",
            Vital::Medication => "medication dose",
            Vital::Inhaler => "inhaler use",
            Vital::DeviceStatus => "device status",
        }
    }

    /// The units a message may carry for this vital; empty for those without a unit
    /// (consciousness, and the coded kinds).
    pub fn accepted_units(self) -> &'static [Unit] {
        match self {
            Vital::RespiratoryRate | Vital::HeartRate => &[Unit::PerMinute],
            Vital::Spo2 => &[Unit::Percent, Unit::Fraction],
            Vital::SupplementalOxygen => &[Unit::LitresPerMinute, Unit::Percent, Unit::Fraction],
            Vital::Temperature => &[Unit::Celsius, Unit::Fahrenheit],
            Vital::SystolicBp | Vital::DiastolicBp => {
                &[Unit::MillimetresOfMercury, Unit::Kilopascal]
            }
            Vital::Glucose => &[Unit::MilligramsPerDecilitre, Unit::MillimolesPerLitre],
            Vital::Insulin => &[Unit::InsulinUnits, Unit::InsulinUnitsPerHour],
            Vital::Consciousness
            | Vital::PumpEvent
            | Vital::Medication
            | Vital::Inhaler
            | Vital::DeviceStatus => &[],
        }
    }
}

impl fmt::Display for Vital {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

impl FromStr for Vital {
    type Err = DecodeError;

    fn from_str(s: &str) -> Result<Vital, DecodeError> {
        Vital::ALL
            .into_iter()
            .find(|v| v.wire_name() == s)
            .ok_or_else(|| DecodeError::UnknownVital { value: quote(s) })
    }
}

/// A UCUM unit code accepted on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Unit {
    /// `/min`: breaths or beats per minute.
    PerMinute,
    /// `%`: SpO2 or FiO2 in percent.
    Percent,
    /// `1`: SpO2 or FiO2 as a fraction (0.97), converted to percent.
    Fraction,
    /// `Cel`: degrees Celsius.
    Celsius,
    /// `[degF]`: degrees Fahrenheit, converted to Celsius.
    Fahrenheit,
    /// `mm[Hg]`: millimetres of mercury.
    MillimetresOfMercury,
    /// `kPa`: kilopascal, converted to mm[Hg].
    Kilopascal,
    /// `L/min`: oxygen flow; 0 means room air.
    LitresPerMinute,
    /// `mg/dL`: glucose.
    MilligramsPerDecilitre,
    /// `mmol/L`: glucose, converted to mg/dL (× 18.016, glucose's molar mass over 10).
    MillimolesPerLitre,
    /// `U`: insulin units (a bolus).
    InsulinUnits,
    /// `U/h`: insulin units per hour (a basal rate).
    InsulinUnitsPerHour,
}

impl Unit {
    /// Every unit.
    pub const ALL: [Unit; 12] = [
        Unit::PerMinute,
        Unit::Percent,
        Unit::Fraction,
        Unit::Celsius,
        Unit::Fahrenheit,
        Unit::MillimetresOfMercury,
        Unit::Kilopascal,
        Unit::LitresPerMinute,
        Unit::MilligramsPerDecilitre,
        Unit::MillimolesPerLitre,
        Unit::InsulinUnits,
        Unit::InsulinUnitsPerHour,
    ];

    /// The UCUM code.
    pub fn ucum(self) -> &'static str {
        match self {
            Unit::PerMinute => "/min",
            Unit::Percent => "%",
            Unit::Fraction => "1",
            Unit::Celsius => "Cel",
            Unit::Fahrenheit => "[degF]",
            Unit::MillimetresOfMercury => "mm[Hg]",
            Unit::Kilopascal => "kPa",
            Unit::LitresPerMinute => "L/min",
            Unit::MilligramsPerDecilitre => "mg/dL",
            Unit::MillimolesPerLitre => "mmol/L",
            Unit::InsulinUnits => "U",
            Unit::InsulinUnitsPerHour => "U/h",
        }
    }

    /// The unit for a UCUM code, if Vigil accepts it.
    pub fn from_ucum(code: &str) -> Option<Unit> {
        Unit::ALL.into_iter().find(|u| u.ucum() == code)
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ucum())
    }
}

/// Level of consciousness on the ACVPU scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Acvpu {
    /// Alert.
    A,
    /// New confusion (NEWS2 counts confusion as new unless recorded otherwise).
    C,
    /// Responds to voice.
    V,
    /// Responds to pain.
    P,
    /// Unresponsive.
    U,
}

impl Acvpu {
    /// Every level, from alert to unresponsive.
    pub const ALL: [Acvpu; 5] = [Acvpu::A, Acvpu::C, Acvpu::V, Acvpu::P, Acvpu::U];

    /// The one-letter code.
    pub fn letter(self) -> &'static str {
        match self {
            Acvpu::A => "A",
            Acvpu::C => "C",
            Acvpu::V => "V",
            Acvpu::P => "P",
            Acvpu::U => "U",
        }
    }

    /// The level for a one-letter code (upper case, as charted).
    pub fn from_letter(s: &str) -> Option<Acvpu> {
        Acvpu::ALL.into_iter().find(|a| a.letter() == s)
    }
}

impl fmt::Display for Acvpu {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

/// A value as sent: a number, an ACVPU letter for consciousness, a code for the coded kinds, or
/// none (device status).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Number(f64),
    Acvpu(Acvpu),
    Code(Code),
    None,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Number(n) => write!(f, "{n}"),
            Value::Acvpu(a) => write!(f, "{a}"),
            Value::Code(c) => write!(f, "{c}"),
            Value::None => f.write_str("none"),
        }
    }
}

/// How supplemental oxygen was reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OxygenDelivery {
    /// Flow in L/min; 0 is room air.
    Flow(Exact),
    /// Inspired oxygen fraction in percent; 21 is room air.
    Fio2(Exact),
}

impl OxygenDelivery {
    /// Whether the patient is on supplemental oxygen (flow above 0, or FiO2 above 21 %).
    pub fn on_oxygen(self) -> bool {
        match self {
            OxygenDelivery::Flow(flow) => flow > Exact::integer(0),
            OxygenDelivery::Fio2(fio2) => fio2 > Exact::integer(21),
        }
    }
}

/// A validated value in the unit its rules read: /min, %, °C, mmHg, mg/dL, U or U/h.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reading {
    /// Respiratory rate or heart rate (/min), SpO2 (%), temperature (°C), blood pressure (mmHg),
    /// glucose (mg/dL), insulin (U or U/h).
    Quantity(Exact),
    /// Supplemental oxygen.
    Oxygen(OxygenDelivery),
    /// Consciousness.
    Consciousness(Acvpu),
    /// A pump event, a dose or a puff.
    Code(Code),
    /// A device's status (in the observation's detail).
    Status,
}

/// A value that is not a possible observation of its vital.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum InvalidValue {
    #[error("`value` must be a number for {vital}, found {found}")]
    ExpectedNumber { vital: Vital, found: String },
    #[error("`value` must be an ACVPU letter (A, C, V, P or U) for consciousness, found {found}")]
    ExpectedAcvpu { found: String },
    #[error("`value` {} is not a finite number", show(*value))]
    NotFinite { value: f64 },
    #[error("`unit` is required for {vital} (accepted: {})", unit_list(*vital))]
    MissingUnit { vital: Vital },
    #[error("`unit` {unit:?} is not a unit of {} (accepted: {})", vital.human_name(), unit_list(*vital))]
    WrongUnit { vital: Vital, unit: String },
    #[error("`unit` must be absent for consciousness (ACVPU has no unit), found {unit:?}")]
    UnitNotAllowed { unit: String },
    #[error("`unit` must be absent for {vital}, found {unit:?}")]
    NoUnit { vital: Vital, unit: String },
    #[error("`value` must be one of {} for {vital}, found {found}", Code::accepted(*vital))]
    UnknownCode { vital: Vital, found: String },
    #[error("`value` must be absent for device_status (its fields say it), found {found}")]
    ValueNotAllowed { found: String },
    #[error(transparent)]
    Detail(#[from] DetailError),
    #[error(
        "`value` {} {unit}{} is not a possible {} ({} to {} {})",
        show(*value), converted(*value, *unit, *canonical),
        vital.human_name(), range.0, range.1, range.2
    )]
    Impossible {
        vital: Vital,
        value: f64,
        unit: Unit,
        /// The value in the range's unit, when a conversion happened.
        canonical: Option<f64>,
        /// Lowest and highest possible value, and their unit.
        range: (i64, i64, &'static str),
    },
}

/// A number for an error message: plain when readable, scientific when huge or tiny.
fn show(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-4..1e9).contains(&magnitude) {
        format!("{value:e}")
    } else {
        value.to_string()
    }
}

/// The units accepted for `vital`, for messages (`/min`, `Cel, [degF]`; `none`).
pub(crate) fn unit_list(vital: Vital) -> String {
    let units: Vec<&str> = vital.accepted_units().iter().map(|u| u.ucum()).collect();
    if units.is_empty() {
        "none".to_owned()
    } else {
        units.join(", ")
    }
}

fn converted(value: f64, unit: Unit, canonical: Option<f64>) -> String {
    match canonical {
        Some(c) if c != value => {
            let target = match unit {
                Unit::Fahrenheit => "Cel",
                Unit::Kilopascal => "mm[Hg]",
                Unit::MillimolesPerLitre => "mg/dL",
                _ => "%",
            };
            format!(" (= {} {target})", (c * 100.0).round() / 100.0)
        }
        _ => String::new(),
    }
}

/// The physiologically possible range of a vital in its canonical unit: anything outside it is a
/// device or data-entry error (SpO2 above 100 %, a temperature of 98.6 labelled °C, a heart rate of
/// 900), never a patient.
fn possible_range(vital: Vital, unit: Unit) -> (i64, i64, &'static str) {
    match (vital, unit) {
        (Vital::RespiratoryRate, _) => (0, 100, "/min"),
        (Vital::HeartRate, _) => (0, 300, "/min"),
        (Vital::Spo2, _) => (0, 100, "%"),
        (Vital::Temperature, _) => (10, 47, "Cel"),
        (Vital::SystolicBp, _) => (10, 300, "mm[Hg]"),
        (Vital::DiastolicBp, _) => (5, 250, "mm[Hg]"),
        (Vital::SupplementalOxygen, Unit::LitresPerMinute) => (0, 80, "L/min"),
        (Vital::SupplementalOxygen, _) => (21, 100, "%"),
        (Vital::Glucose, _) => (10, 1500, "mg/dL"),
        (Vital::Insulin, Unit::InsulinUnitsPerHour) => (0, 50, "U/h"),
        (Vital::Insulin, _) => (0, 100, "U"),
        (
            Vital::Consciousness
            | Vital::PumpEvent
            | Vital::Medication
            | Vital::Inhaler
            | Vital::DeviceStatus,
            _,
        ) => (0, 0, ""),
    }
}

/// Checks a value against its vital and unit and converts it to the canonical unit, exactly.
pub fn read(vital: Vital, value: Value, unit: Option<Unit>) -> Result<Reading, InvalidValue> {
    if vital.is_coded() || vital == Vital::DeviceStatus {
        return read_unitless(vital, value, unit);
    }
    if vital == Vital::Consciousness {
        if let Some(unit) = unit {
            return Err(InvalidValue::UnitNotAllowed {
                unit: unit.ucum().to_owned(),
            });
        }
        return match value {
            Value::Acvpu(level) => Ok(Reading::Consciousness(level)),
            Value::Number(n) => Err(InvalidValue::ExpectedAcvpu { found: show(n) }),
            Value::Code(c) => Err(InvalidValue::ExpectedAcvpu {
                found: format!("{:?}", c.wire_name()),
            }),
            Value::None => Err(InvalidValue::ExpectedAcvpu {
                found: "nothing".into(),
            }),
        };
    }
    let number = match value {
        Value::Number(n) => n,
        Value::Acvpu(a) => {
            return Err(InvalidValue::ExpectedNumber {
                vital,
                found: format!("{:?}", a.letter()),
            });
        }
        Value::Code(c) => {
            return Err(InvalidValue::ExpectedNumber {
                vital,
                found: format!("{:?}", c.wire_name()),
            });
        }
        Value::None => {
            return Err(InvalidValue::ExpectedNumber {
                vital,
                found: "nothing".into(),
            });
        }
    };
    let unit = unit.ok_or(InvalidValue::MissingUnit { vital })?;
    if !vital.accepted_units().contains(&unit) {
        return Err(InvalidValue::WrongUnit {
            vital,
            unit: unit.ucum().to_owned(),
        });
    }
    let range = possible_range(vital, unit);
    let impossible = |canonical: Option<Exact>| InvalidValue::Impossible {
        vital,
        value: number,
        unit,
        canonical: canonical.map(Exact::to_f64),
        range,
    };
    // Magnitudes beyond 10^±18 cannot be held exactly and are impossible for every vital.
    let raw = Exact::from_f64(number).ok_or_else(|| {
        if number.is_finite() {
            impossible(None)
        } else {
            InvalidValue::NotFinite { value: number }
        }
    })?;
    let canonical = match unit {
        Unit::Fraction => raw.mul_ratio(100, 1),
        Unit::Fahrenheit => raw.add_integer(-32).and_then(|c| c.mul_ratio(5, 9)),
        // 1 mmHg = 101325/760 Pa, so 1 kPa = 760000/101325 mmHg.
        Unit::Kilopascal => raw.mul_ratio(760_000, 101_325),
        // Glucose, 180.16 g/mol: 1 mmol/L = 18.016 mg/dL.
        Unit::MillimolesPerLitre => raw.mul_ratio(18_016, 1000),
        _ => Some(raw),
    }
    .ok_or_else(|| impossible(None))?;
    if canonical < Exact::integer(range.0) || canonical > Exact::integer(range.1) {
        return Err(impossible(Some(canonical)));
    }
    Ok(match (vital, unit) {
        (Vital::SupplementalOxygen, Unit::LitresPerMinute) => {
            Reading::Oxygen(OxygenDelivery::Flow(canonical))
        }
        (Vital::SupplementalOxygen, _) => Reading::Oxygen(OxygenDelivery::Fio2(canonical)),
        _ => Reading::Quantity(canonical),
    })
}

/// A coded kind's value (a code of that kind, no unit), or device status (no value, no unit).
fn read_unitless(vital: Vital, value: Value, unit: Option<Unit>) -> Result<Reading, InvalidValue> {
    if let Some(unit) = unit {
        return Err(InvalidValue::NoUnit {
            vital,
            unit: unit.ucum().to_owned(),
        });
    }
    let found = || match value {
        Value::Number(n) => show(n),
        Value::Acvpu(a) => format!("{:?}", a.letter()),
        Value::Code(c) => format!("{:?}", c.wire_name()),
        Value::None => "nothing".to_owned(),
    };
    match (vital, value) {
        (Vital::DeviceStatus, Value::None) => Ok(Reading::Status),
        (Vital::DeviceStatus, _) => Err(InvalidValue::ValueNotAllowed { found: found() }),
        (_, Value::Code(code)) if code.vital() == vital => Ok(Reading::Code(code)),
        _ => Err(InvalidValue::UnknownCode {
            vital,
            found: found(),
        }),
    }
}

/// A patient or device identifier: 1–64 characters, no control characters. A pseudonym, never a
/// name.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Identifier(std::sync::Arc<str>);

impl Identifier {
    /// FNV-1a of the id: stable across runs, machines and releases (for placement and order,
    /// never for security).
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in self.as_str().bytes() {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }

    /// Checks `s` against the identifier rules.
    pub fn new(s: &str) -> Result<Identifier, IdentifierError> {
        let chars = s.chars().count();
        if chars == 0 {
            return Err(IdentifierError::Empty);
        }
        if chars > MAX_ID_CHARS {
            return Err(IdentifierError::TooLong { chars });
        }
        if let Some(c) = s.chars().find(|c| c.is_control()) {
            return Err(IdentifierError::ControlCharacter { code: c as u32 });
        }
        Ok(Identifier(s.into()))
    }

    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Identifier {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The identifiers a source has decoded, so that each patient's and device's id is allocated
/// once and shared by all its observations (a decode otherwise allocates two strings per
/// message, and every observation in flight holds its own copies).
///
/// Bounded: past [`Interner::CAPACITY`] distinct ids (a stream of ever new ids) new ones are
/// still decoded, just not remembered.
#[derive(Debug, Default)]
pub struct Interner {
    ids: std::collections::HashSet<Identifier, foldhash::fast::FixedState>,
}

impl Interner {
    /// The most ids remembered.
    pub const CAPACITY: usize = 1 << 20;

    /// The identifier `s`, shared with earlier ones of the same text.
    pub fn get(&mut self, s: &str) -> Result<Identifier, IdentifierError> {
        if let Some(id) = self.ids.get(s) {
            return Ok(id.clone());
        }
        let id = Identifier::new(s)?;
        if self.ids.len() < Self::CAPACITY {
            self.ids.insert(id.clone());
        }
        Ok(id)
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why a string is not an identifier.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum IdentifierError {
    #[error("is empty (1 to 64 characters)")]
    Empty,
    #[error("has {chars} characters (at most 64)")]
    TooLong { chars: usize },
    #[error("contains the control character U+{code:04X}")]
    ControlCharacter { code: u32 },
}

/// The form devices send, `YYYY-MM-DDTHH:MM:SS[.fraction]Z`, in microseconds; `None` for
/// anything else (offsets, leap seconds, errors), which chrono parses or names.
///
/// chrono's parser was a twentieth of a replay from a file. The same value as chrono's for
/// every string this accepts (a proptest checks it), and it accepts no string chrono rejects.
fn parse_utc(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let (head, tail) = b.split_at_checked(19)?;
    let digits = |range: std::ops::Range<usize>| {
        range.into_iter().try_fold(0i64, |n, i| {
            let c = *head.get(i)?;
            c.is_ascii_digit().then(|| n * 10 + i64::from(c - b'0'))
        })
    };
    if [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')]
        .iter()
        .any(|&(i, c)| head[i] != c)
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > month_days || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    // `.` and digits before the `Z`: microseconds are the first six, the rest truncated.
    let (&zone, fraction) = tail.split_last()?;
    if zone != b'Z' {
        return None;
    }
    let mut micros = 0;
    if let Some((&dot, fraction)) = fraction.split_first() {
        if dot != b'.' || fraction.is_empty() {
            return None;
        }
        for (k, &c) in fraction.iter().enumerate() {
            if !c.is_ascii_digit() {
                return None;
            }
            if k < 6 {
                micros += i64::from(c - b'0') * 10i64.pow(5 - k as u32);
            }
        }
    }
    // Days from the civil date (Howard Hinnant's algorithm, March-based years).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    let days = era * 146_097 + day_of_era - 719_468;
    Some(((days * 24 + hour) * 60 + minute) * 60_000_000 + second * 1_000_000 + micros)
}

/// An event time: microseconds since the Unix epoch, UTC. Digits below the microsecond are
/// truncated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EventTime(i64);

impl EventTime {
    /// The time `micros` microseconds after 1970-01-01T00:00:00Z.
    pub const fn from_micros(micros: i64) -> EventTime {
        EventTime(micros)
    }

    /// Microseconds since the Unix epoch.
    pub const fn micros(self) -> i64 {
        self.0
    }

    /// Milliseconds since the Unix epoch (rounded down).
    pub const fn millis(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Parses RFC 3339 with an offset (`2026-11-24T10:15:00.250Z`, `…+01:00`).
    pub fn parse_rfc3339(s: &str) -> Result<EventTime, DecodeError> {
        if let Some(micros) = parse_utc(s) {
            return Ok(EventTime(micros));
        }
        let bad = |reason: String| DecodeError::BadTime {
            value: quote(s),
            reason,
        };
        let parsed = DateTime::parse_from_rfc3339(s).map_err(|e| bad(e.to_string()))?;
        Ok(EventTime(parsed.with_timezone(&Utc).timestamp_micros()))
    }

    /// RFC 3339 in UTC with as many fraction digits as needed (0, 3 or 6).
    pub fn to_rfc3339(self) -> String {
        match DateTime::<Utc>::from_timestamp_micros(self.0) {
            Some(t) => t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
            None => format!("@{}us", self.0),
        }
    }
}

impl fmt::Display for EventTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// One vital-sign observation, valid by construction. (Its serde derives exist only to move it
/// between timely workers; the wire format is [`Observation::from_json`] / [`Observation::to_json`].
/// Deserializing checks it again, so that no way of making one skips the checks.)
///
/// Its [`Reading`] is not kept but derived when asked for: observations wait in the dataflow for
/// the allowed lateness, a minute of every patient's data, and the reading was 48 of 112 bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Fields")]
pub struct Observation {
    patient: Identifier,
    device: Option<Identifier>,
    time: EventTime,
    vital: Vital,
    value: Value,
    unit: Option<Unit>,
    /// The fields of a v1.1 kind beyond value and unit (shared: rarely more than a byte, and a
    /// bedside vital has none).
    detail: Option<std::sync::Arc<Detail>>,
}

/// An [`Observation`]'s fields as deserialized, before they are checked.
#[derive(Deserialize)]
struct Fields {
    patient: Identifier,
    device: Option<Identifier>,
    time: EventTime,
    vital: Vital,
    value: Value,
    unit: Option<Unit>,
    detail: Option<std::sync::Arc<Detail>>,
}

impl TryFrom<Fields> for Observation {
    type Error = InvalidValue;

    fn try_from(f: Fields) -> Result<Observation, InvalidValue> {
        let detail = f.detail.map(std::sync::Arc::unwrap_or_clone);
        Observation::with_detail(
            f.patient, f.device, f.time, f.vital, f.value, f.unit, detail,
        )
    }
}

impl Observation {
    /// Builds an observation, checking the value against the vital and unit.
    pub fn new(
        patient: Identifier,
        device: Option<Identifier>,
        time: EventTime,
        vital: Vital,
        value: Value,
        unit: Option<Unit>,
    ) -> Result<Observation, InvalidValue> {
        Observation::with_detail(patient, device, time, vital, value, unit, None)
    }

    /// Builds an observation of any kind, checking the value against the vital and unit, and
    /// the detail against the kind.
    pub fn with_detail(
        patient: Identifier,
        device: Option<Identifier>,
        time: EventTime,
        vital: Vital,
        value: Value,
        unit: Option<Unit>,
        detail: Option<Detail>,
    ) -> Result<Observation, InvalidValue> {
        read(vital, value, unit)?;
        kinds::check(vital, unit, detail.as_ref())?;
        Ok(Observation {
            patient,
            device,
            time,
            vital,
            value,
            unit,
            detail: detail.map(std::sync::Arc::new),
        })
    }

    /// An observation rebuilt from the parts of one built earlier (as its accessors gave them,
    /// with no detail), not checked again: the monitors keep the observations waiting for their
    /// tick in a compact form and rebuild them from it (`pipeline::pending`).
    pub(crate) fn rebuilt(
        patient: Identifier,
        device: Option<Identifier>,
        time: EventTime,
        vital: Vital,
        value: Value,
        unit: Option<Unit>,
    ) -> Observation {
        debug_assert!(read(vital, value, unit).is_ok());
        Observation {
            patient,
            device,
            time,
            vital,
            value,
            unit,
            detail: None,
        }
    }

    /// Decodes one wire-format message (UTF-8 JSON, at most 64 KiB). Never panics.
    pub fn from_json(bytes: &[u8]) -> Result<Observation, DecodeError> {
        Observation::decode(bytes).map_err(|r| r.error)
    }

    /// Like [`Observation::from_json`], but a rejection keeps what is known of its subject (the
    /// patient, time and vital of a message whose value is impossible), so that the patient's
    /// clinicians can be told about the bad data.
    pub fn decode(bytes: &[u8]) -> Result<Observation, Rejection> {
        let mut subject = None;
        Observation::decode_into(bytes, &mut subject, None)
            .map_err(|error| Rejection { error, subject })
    }

    /// [`Observation::decode`] for a source: ids come from (and go into) `ids`.
    pub fn decode_with(bytes: &[u8], ids: &mut Interner) -> Result<Observation, Rejection> {
        let mut subject = None;
        Observation::decode_into(bytes, &mut subject, Some(ids))
            .map_err(|error| Rejection { error, subject })
    }

    fn decode_into(
        bytes: &[u8],
        subject: &mut Option<Subject>,
        mut ids: Option<&mut Interner>,
    ) -> Result<Observation, DecodeError> {
        if bytes.len() > MAX_MESSAGE_BYTES {
            return Err(DecodeError::Oversize { bytes: bytes.len() });
        }
        let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::NotUtf8 {
            offset: e.valid_up_to(),
        })?;
        if let Some(obs) = fast::decode(text, ids.as_deref_mut()) {
            return Ok(obs);
        }
        Observation::decode_general(text, subject, ids)
    }

    /// Any message, every problem named: serde reads the fields, each is then checked in turn.
    fn decode_general(
        text: &str,
        subject: &mut Option<Subject>,
        mut ids: Option<&mut Interner>,
    ) -> Result<Observation, DecodeError> {
        let wire: WireFields<'_> =
            serde_json::from_str(text).map_err(|e| DecodeError::NotJson {
                reason: e.to_string(),
            })?;

        let patient = required(wire.patient, "patient")?;
        let patient = identifier(
            &string_field(patient, "patient")?,
            "patient",
            ids.as_deref_mut(),
        )?;
        let device = match wire.device.filter(|raw| raw.get() != "null") {
            Some(raw) => Some(identifier(&string_field(raw, "device")?, "device", ids)?),
            None => None,
        };
        let time = EventTime::parse_rfc3339(&string_field(required(wire.time, "time")?, "time")?)?;
        let vital: Vital = string_field(required(wire.vital, "vital")?, "vital")?.parse()?;
        *subject = Some(Subject {
            patient: patient.clone(),
            time,
            vital,
        });

        if !vital.is_bedside() {
            return Observation::decode_device(patient, device, time, vital, &wire);
        }
        let raw_value = required(wire.value, "value")?;
        let value = match json_kind(raw_value) {
            "a number" => number_value(raw_value)?,
            "a string" if vital == Vital::Consciousness => {
                let letter = string_field(raw_value, "value")?;
                Value::Acvpu(Acvpu::from_letter(&letter).ok_or_else(|| {
                    InvalidValue::ExpectedAcvpu {
                        found: format!("{:?}", quote(&letter)),
                    }
                })?)
            }
            found => {
                return Err(if vital == Vital::Consciousness {
                    InvalidValue::ExpectedAcvpu {
                        found: found.to_owned(),
                    }
                } else {
                    InvalidValue::ExpectedNumber {
                        vital,
                        found: found.to_owned(),
                    }
                }
                .into());
            }
        };

        let unit = match wire.unit.filter(|raw| raw.get() != "null") {
            Some(raw) => {
                let code = string_field(raw, "unit")?;
                match Unit::from_ucum(&code) {
                    Some(unit) => Some(unit),
                    None if vital == Vital::Consciousness => {
                        return Err(InvalidValue::UnitNotAllowed { unit: quote(&code) }.into());
                    }
                    None => {
                        return Err(InvalidValue::WrongUnit {
                            vital,
                            unit: quote(&code),
                        }
                        .into());
                    }
                }
            }
            None => None,
        };

        Ok(Observation::new(patient, device, time, vital, value, unit)?)
    }

    /// The rest of a v1.1 device kind's message: its value (a number, a code or none), its unit
    /// and its detail.
    fn decode_device(
        patient: Identifier,
        device: Option<Identifier>,
        time: EventTime,
        vital: Vital,
        wire: &WireFields<'_>,
    ) -> Result<Observation, DecodeError> {
        let value = match wire.value.filter(|raw| raw.get() != "null") {
            None if vital == Vital::DeviceStatus => Value::None,
            None => return Err(DecodeError::MissingField { field: "value" }),
            Some(raw) => match json_kind(raw) {
                "a number" => number_value(raw)?,
                "a string" if vital.is_coded() => {
                    let code = string_field(raw, "value")?;
                    Value::Code(Code::parse(vital, &code).ok_or_else(|| {
                        InvalidValue::UnknownCode {
                            vital,
                            found: format!("{:?}", quote(&code)),
                        }
                    })?)
                }
                found if vital.is_coded() => {
                    return Err(InvalidValue::UnknownCode {
                        vital,
                        found: found.to_owned(),
                    }
                    .into());
                }
                found if vital == Vital::DeviceStatus => {
                    return Err(InvalidValue::ValueNotAllowed {
                        found: found.to_owned(),
                    }
                    .into());
                }
                found => {
                    return Err(InvalidValue::ExpectedNumber {
                        vital,
                        found: found.to_owned(),
                    }
                    .into());
                }
            },
        };
        let unit = match wire.unit.filter(|raw| raw.get() != "null") {
            Some(raw) => {
                let code = string_field(raw, "unit")?;
                match Unit::from_ucum(&code) {
                    Some(unit) if vital.accepted_units().contains(&unit) => Some(unit),
                    _ if vital.accepted_units().is_empty() => {
                        return Err(InvalidValue::NoUnit {
                            vital,
                            unit: quote(&code),
                        }
                        .into());
                    }
                    _ => {
                        return Err(InvalidValue::WrongUnit {
                            vital,
                            unit: quote(&code),
                        }
                        .into());
                    }
                }
            }
            None => None,
        };
        // The value first, then the kind's fields: the error a sender sees is the value's.
        read(vital, value, unit)?;
        let raw = wire.detail()?;
        // `kinds::detail` builds only details that fit their kind and unit (what
        // `with_detail` would check again).
        let detail = kinds::detail(vital, unit, &raw).map_err(InvalidValue::from)?;
        Ok(Observation {
            patient,
            device,
            time,
            vital,
            value,
            unit,
            detail: detail.map(std::sync::Arc::new),
        })
    }

    /// A device kind's detail from the JSON object of its fields (as the archive keeps them).
    pub fn detail_from_json(
        vital: Vital,
        unit: Option<Unit>,
        json: &str,
    ) -> Result<Detail, DecodeError> {
        let wire: WireFields<'_> =
            serde_json::from_str(json).map_err(|e| DecodeError::NotJson {
                reason: e.to_string(),
            })?;
        let raw = wire.detail()?;
        kinds::detail(vital, unit, &raw)
            .map_err(InvalidValue::from)?
            .ok_or(DecodeError::Value(InvalidValue::Detail(
                DetailError::Absent { vital },
            )))
    }

    /// Encodes the observation in the wire format (one line of JSON, no trailing newline).
    pub fn to_json(&self) -> String {
        if let Some(detail) = &self.detail {
            return self.to_json_with(detail);
        }
        let wire = WireOut {
            patient: self.patient.as_str(),
            device: self.device.as_ref().map(Identifier::as_str),
            time: self.time.to_rfc3339(),
            vital: self.vital,
            value: match self.value {
                Value::Number(n) => WireValue::Number(n),
                Value::Acvpu(a) => WireValue::Letter(a.letter()),
                Value::Code(c) => WireValue::Letter(c.wire_name()),
                Value::None => WireValue::Letter(""),
            },
            unit: self.unit.map(Unit::ucum),
        };
        // Serialising plain strings and finite numbers cannot fail.
        serde_json::to_string(&wire).unwrap_or_default()
    }

    /// The wire format of a device kind: the v1 fields, then its detail's.
    fn to_json_with(&self, detail: &Detail) -> String {
        use serde_json::Value as J;
        let mut m = serde_json::Map::new();
        m.insert("patient".into(), J::from(self.patient.as_str()));
        if let Some(d) = &self.device {
            m.insert("device".into(), J::from(d.as_str()));
        }
        m.insert("time".into(), J::from(self.time.to_rfc3339()));
        m.insert("vital".into(), J::from(self.vital.wire_name()));
        match self.value {
            Value::Number(n) => {
                m.insert("value".into(), J::from(n));
            }
            Value::Code(c) => {
                m.insert("value".into(), J::from(c.wire_name()));
            }
            Value::Acvpu(a) => {
                m.insert("value".into(), J::from(a.letter()));
            }
            Value::None => {}
        }
        if let Some(u) = self.unit {
            m.insert("unit".into(), J::from(u.ucum()));
        }
        m.extend(detail.to_json_members());
        J::Object(m).to_string()
    }

    pub fn patient(&self) -> &Identifier {
        &self.patient
    }

    pub fn device(&self) -> Option<&Identifier> {
        self.device.as_ref()
    }

    pub fn time(&self) -> EventTime {
        self.time
    }

    pub fn vital(&self) -> Vital {
        self.vital
    }

    /// The value as sent.
    pub fn value(&self) -> Value {
        self.value
    }

    /// The unit as sent.
    pub fn unit(&self) -> Option<Unit> {
        self.unit
    }

    /// A v1.1 kind's fields beyond value and unit.
    pub fn detail(&self) -> Option<&Detail> {
        self.detail.as_deref()
    }

    /// What tells apart two events of one device at one instant (its code, and a dose's
    /// medication): `None` for measurements, of which there is one per instant.
    pub fn distinct_key(&self) -> Option<(u8, &str)> {
        let Value::Code(code) = self.value else {
            return None;
        };
        let medication = match self.detail() {
            Some(Detail::Medication { medication, .. }) => medication.as_str(),
            _ => "",
        };
        Some((code as u8, medication))
    }

    /// The value converted to the unit NEWS2 reads, exactly.
    pub fn reading(&self) -> Reading {
        // Every way of making an observation checked these with `read`, which is pure: the
        // same fields read the same again.
        read(self.vital, self.value, self.unit).expect("an observation is checked when made")
    }
}

/// Who and what a rejected message was about, when that much could be read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub patient: Identifier,
    pub time: EventTime,
    pub vital: Vital,
}

/// A message that is not an observation: why, and what it was about if known.
#[derive(Clone, Debug, PartialEq)]
pub struct Rejection {
    pub error: DecodeError,
    pub subject: Option<Subject>,
}

/// Why a message is not an observation. The message names the field and what is accepted.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DecodeError {
    #[error("message is {bytes} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes")]
    Oversize { bytes: usize },
    #[error("message is not UTF-8 (invalid byte at offset {offset})")]
    NotUtf8 { offset: usize },
    #[error("message is not a JSON object: {reason}")]
    NotJson { reason: String },
    #[error("missing required field `{field}`")]
    MissingField { field: &'static str },
    #[error("`{field}` must be {expected}, found {found}")]
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("`{field}` {value:?} {reason}")]
    BadIdentifier {
        field: &'static str,
        value: String,
        reason: IdentifierError,
    },
    #[error(
        "`time` {value:?} is not RFC 3339 with an offset (like 2026-11-24T10:15:00.250Z): {reason}"
    )]
    BadTime { value: String, reason: String },
    #[error(
        "`vital` {value:?} is not a known vital (one of respiratory_rate, spo2, supplemental_oxygen, temperature, systolic_bp, diastolic_bp, heart_rate, consciousness, glucose, insulin, pump_event, medication, inhaler, device_status)"
    )]
    UnknownVital { value: String },
    #[error(transparent)]
    Value(#[from] InvalidValue),
}

impl DecodeError {
    /// The wire field at fault, if one is: for dead-letter headers and metrics.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            DecodeError::Oversize { .. }
            | DecodeError::NotUtf8 { .. }
            | DecodeError::NotJson { .. } => None,
            DecodeError::MissingField { field }
            | DecodeError::WrongType { field, .. }
            | DecodeError::BadIdentifier { field, .. } => Some(field),
            DecodeError::BadTime { .. } => Some("time"),
            DecodeError::UnknownVital { .. } => Some("vital"),
            DecodeError::Value(
                InvalidValue::MissingUnit { .. }
                | InvalidValue::WrongUnit { .. }
                | InvalidValue::UnitNotAllowed { .. }
                | InvalidValue::NoUnit { .. },
            ) => Some("unit"),
            DecodeError::Value(InvalidValue::Detail(d)) => Some(d.field()),
            DecodeError::Value(_) => Some("value"),
        }
    }
}

/// The fields of a wire message, each kept as raw JSON so that a wrong type can be reported with
/// the field's name. Unknown fields are ignored (forward compatibility); a repeated field is not
/// JSON Vigil accepts.
#[derive(Deserialize)]
#[serde(expecting = "a JSON object")]
struct WireFields<'a> {
    #[serde(borrow)]
    patient: Option<&'a RawValue>,
    #[serde(borrow)]
    device: Option<&'a RawValue>,
    #[serde(borrow)]
    time: Option<&'a RawValue>,
    #[serde(borrow)]
    vital: Option<&'a RawValue>,
    #[serde(borrow)]
    value: Option<&'a RawValue>,
    #[serde(borrow)]
    unit: Option<&'a RawValue>,
    // v1.1 device kinds' fields.
    #[serde(borrow)]
    method: Option<&'a RawValue>,
    #[serde(borrow)]
    delivery: Option<&'a RawValue>,
    #[serde(borrow)]
    medication: Option<&'a RawValue>,
    #[serde(borrow)]
    schedule: Option<&'a RawValue>,
    #[serde(borrow)]
    puffs: Option<&'a RawValue>,
    #[serde(borrow)]
    battery: Option<&'a RawValue>,
    #[serde(borrow)]
    signal: Option<&'a RawValue>,
    #[serde(borrow)]
    sensor_start: Option<&'a RawValue>,
    #[serde(borrow)]
    sensor_expires: Option<&'a RawValue>,
    #[serde(borrow)]
    error: Option<&'a RawValue>,
}

impl<'a> WireFields<'a> {
    /// The device kinds' fields, each of the JSON type it must have.
    fn detail(&self) -> Result<kinds::RawDetail, DecodeError> {
        fn text(
            raw: Option<&RawValue>,
            field: &'static str,
        ) -> Result<Option<String>, DecodeError> {
            raw.filter(|r| r.get() != "null")
                .map(|r| string_field(r, field).map(Cow::into_owned))
                .transpose()
        }
        fn number(raw: Option<&RawValue>, field: &'static str) -> Result<Option<f64>, DecodeError> {
            match raw.filter(|r| r.get() != "null") {
                None => Ok(None),
                Some(r) if json_kind(r) == "a number" => serde_json::from_str(r.get())
                    .map(Some)
                    .map_err(|_| DecodeError::WrongType {
                        field,
                        expected: "a finite number",
                        found: quote(r.get()),
                    }),
                Some(r) => Err(DecodeError::WrongType {
                    field,
                    expected: "a number",
                    found: json_kind(r).to_owned(),
                }),
            }
        }
        Ok(kinds::RawDetail {
            method: text(self.method, "method")?,
            delivery: text(self.delivery, "delivery")?,
            medication: text(self.medication, "medication")?,
            schedule: text(self.schedule, "schedule")?,
            puffs: number(self.puffs, "puffs")?,
            battery: number(self.battery, "battery")?,
            signal: number(self.signal, "signal")?,
            sensor_start: text(self.sensor_start, "sensor_start")?,
            sensor_expires: text(self.sensor_expires, "sensor_expires")?,
            error: text(self.error, "error")?,
        })
    }
}

#[derive(Serialize)]
struct WireOut<'a> {
    patient: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    time: String,
    vital: Vital,
    value: WireValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    unit: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum WireValue {
    Number(f64),
    Letter(&'static str),
}

/// A numeric `value`, as serde reads it (the fast path reads it the same way).
fn number_value(raw: &RawValue) -> Result<Value, DecodeError> {
    serde_json::from_str(raw.get())
        .map(Value::Number)
        .map_err(|_| DecodeError::WrongType {
            field: "value",
            expected: "a finite number",
            found: quote(raw.get()),
        })
}

fn required<'a>(
    raw: Option<&'a RawValue>,
    field: &'static str,
) -> Result<&'a RawValue, DecodeError> {
    raw.filter(|raw| raw.get() != "null")
        .ok_or(DecodeError::MissingField { field })
}

fn string_field<'a>(raw: &'a RawValue, field: &'static str) -> Result<Cow<'a, str>, DecodeError> {
    match json_kind(raw) {
        "a string" => {
            serde_json::from_str::<Cow<'a, str>>(raw.get()).map_err(|e| DecodeError::WrongType {
                field,
                expected: "a string",
                found: e.to_string(),
            })
        }
        found => Err(DecodeError::WrongType {
            field,
            expected: "a string",
            found: found.to_owned(),
        }),
    }
}

fn identifier(
    s: &str,
    field: &'static str,
    ids: Option<&mut Interner>,
) -> Result<Identifier, DecodeError> {
    match ids {
        Some(ids) => ids.get(s),
        None => Identifier::new(s),
    }
    .map_err(|reason| DecodeError::BadIdentifier {
        field,
        value: quote(s),
        reason,
    })
}

/// The JSON type of a raw value, for error messages.
fn json_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'"') => "a string",
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

/// At most [`QUOTE_CHARS`] characters of an input, for an error message.
fn quote(s: &str) -> String {
    match s.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

mod fast;
pub mod kinds;
#[cfg(test)]
mod tests;
