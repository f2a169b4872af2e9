//! The device kinds of wire format v1.1, beyond the bedside vitals: glucose (CGM or meter),
//! insulin (bolus or basal rate), pump events, medication doses, inhaler puffs and device status.
//!
//! Each kind's fields beyond `value` and `unit` are its [`Detail`], checked here: a message of a
//! kind is an observation only with the fields that kind needs, each in its range, and every
//! problem is a [`DetailError`] naming the field and what it accepts. Fields of other kinds are
//! ignored, as unknown fields are.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::{EventTime, Identifier, Unit, Vital};

/// A coded `value`: a pump event, a medication dose or an inhaler use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Code {
    /// Pump events, as Tidepool's device-event types name them.
    Suspend,
    Resume,
    Occlusion,
    NoDelivery,
    LowReservoir,
    LowBattery,
    /// A medication dose was taken (a pill bottle opened at a dose, a dose confirmed).
    Taken,
    /// A dose was declined: recorded, and not a dose.
    Skipped,
    /// An inhaler puff: the daily controller, or a rescue (reliever) inhaler.
    Controller,
    Rescue,
}

impl Code {
    pub const ALL: [Code; 10] = [
        Code::Suspend,
        Code::Resume,
        Code::Occlusion,
        Code::NoDelivery,
        Code::LowReservoir,
        Code::LowBattery,
        Code::Taken,
        Code::Skipped,
        Code::Controller,
        Code::Rescue,
    ];

    /// The name on the wire.
    pub fn wire_name(self) -> &'static str {
        match self {
            Code::Suspend => "suspend",
            Code::Resume => "resume",
            Code::Occlusion => "occlusion",
            Code::NoDelivery => "no_delivery",
            Code::LowReservoir => "low_reservoir",
            Code::LowBattery => "low_battery",
            Code::Taken => "taken",
            Code::Skipped => "skipped",
            Code::Controller => "controller",
            Code::Rescue => "rescue",
        }
    }

    /// The kind whose `value` it is.
    pub fn vital(self) -> Vital {
        match self {
            Code::Suspend
            | Code::Resume
            | Code::Occlusion
            | Code::NoDelivery
            | Code::LowReservoir
            | Code::LowBattery => Vital::PumpEvent,
            Code::Taken | Code::Skipped => Vital::Medication,
            Code::Controller | Code::Rescue => Vital::Inhaler,
        }
    }

    /// The code of `vital` named `s`.
    pub fn parse(vital: Vital, s: &str) -> Option<Code> {
        Code::ALL
            .into_iter()
            .find(|c| c.vital() == vital && c.wire_name() == s)
    }

    /// The codes a kind accepts, for error messages.
    pub fn accepted(vital: Vital) -> String {
        let names: Vec<&str> = Code::ALL
            .into_iter()
            .filter(|c| c.vital() == vital)
            .map(Code::wire_name)
            .collect();
        names.join(", ")
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.wire_name())
    }
}

/// How a glucose value was measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Method {
    /// A continuous glucose monitor (interstitial, every few minutes): the default.
    Cgm,
    /// A fingerstick meter (capillary blood).
    Meter,
}

impl Method {
    pub fn wire_name(self) -> &'static str {
        match self {
            Method::Cgm => "cgm",
            Method::Meter => "meter",
        }
    }
}

/// How insulin was delivered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Delivery {
    /// A dose, in units (`U`).
    Bolus,
    /// A basal rate from this time on, in units per hour (`U/h`).
    Basal,
}

impl Delivery {
    pub fn wire_name(self) -> &'static str {
        match self {
            Delivery::Bolus => "bolus",
            Delivery::Basal => "basal",
        }
    }

    /// The unit a value of this delivery is in.
    pub fn unit(self) -> Unit {
        match self {
            Delivery::Bolus => Unit::InsulinUnits,
            Delivery::Basal => Unit::InsulinUnitsPerHour,
        }
    }
}

/// What a device says of itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Battery charge, percent.
    pub battery: Option<u8>,
    /// Signal strength, percent.
    pub signal: Option<u8>,
    /// When the sensor session started (a new CGM sensor warms up from then on).
    pub sensor_start: Option<EventTime>,
    /// When the sensor session ends.
    pub sensor_expires: Option<EventTime>,
    /// The device's error code, as it names it.
    pub error: Option<Identifier>,
}

/// A kind's fields beyond `value` and `unit`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Detail {
    Glucose {
        method: Method,
    },
    Insulin {
        delivery: Delivery,
    },
    Medication {
        /// The medication's code (RxNorm, ATC or the registry's own), as the schedule names it.
        medication: Identifier,
        /// The schedule slot the device credits the dose to (`am`), if it knows.
        schedule: Option<Identifier>,
    },
    Inhaler {
        puffs: u8,
    },
    Status(DeviceStatus),
}

impl Detail {
    /// The extra wire fields, as a JSON object's members (`"method":"cgm"`), for the wire
    /// format and the archive.
    pub fn to_json_members(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::Value as J;
        let mut m = serde_json::Map::new();
        let mut put = |k: &str, v: J| {
            m.insert(k.to_owned(), v);
        };
        match self {
            Detail::Glucose { method } => put("method", J::from(method.wire_name())),
            Detail::Insulin { delivery } => put("delivery", J::from(delivery.wire_name())),
            Detail::Medication {
                medication,
                schedule,
            } => {
                put("medication", J::from(medication.as_str()));
                if let Some(s) = schedule {
                    put("schedule", J::from(s.as_str()));
                }
            }
            Detail::Inhaler { puffs } => put("puffs", J::from(*puffs)),
            Detail::Status(s) => {
                if let Some(b) = s.battery {
                    put("battery", J::from(b));
                }
                if let Some(v) = s.signal {
                    put("signal", J::from(v));
                }
                if let Some(t) = s.sensor_start {
                    put("sensor_start", J::from(t.to_rfc3339()));
                }
                if let Some(t) = s.sensor_expires {
                    put("sensor_expires", J::from(t.to_rfc3339()));
                }
                if let Some(e) = &s.error {
                    put("error", J::from(e.as_str()));
                }
            }
        }
        m
    }
}

/// The extra fields of a message as read, before they are checked against the kind.
#[derive(Clone, Debug, Default)]
pub struct RawDetail {
    pub method: Option<String>,
    pub delivery: Option<String>,
    pub medication: Option<String>,
    pub schedule: Option<String>,
    pub puffs: Option<f64>,
    pub battery: Option<f64>,
    pub signal: Option<f64>,
    pub sensor_start: Option<String>,
    pub sensor_expires: Option<String>,
    pub error: Option<String>,
}

/// Why a kind's fields are not right.
#[derive(Clone, Debug, PartialEq, Error)]
pub enum DetailError {
    #[error("`{field}` is required for {vital} ({accepted})")]
    Missing {
        field: &'static str,
        vital: Vital,
        accepted: &'static str,
    },
    #[error("`{field}` must be one of {accepted}, found {found:?}")]
    UnknownChoice {
        field: &'static str,
        found: String,
        accepted: &'static str,
    },
    #[error(
        "`unit` {unit} does not fit `delivery` {delivery}: a bolus is in U, a basal rate in U/h"
    )]
    DeliveryUnit { delivery: &'static str, unit: Unit },
    #[error("`{field}` must be a whole number from {low} to {high}, found {found}")]
    OutOfRange {
        field: &'static str,
        found: f64,
        low: u8,
        high: u8,
    },
    #[error("`{field}` {reason}")]
    BadField { field: &'static str, reason: String },
    #[error(
        "device_status needs at least one of `battery`, `signal`, `sensor_start`, `sensor_expires`, `error`"
    )]
    NoStatus,
    #[error("{vital} needs its fields (see the wire format)")]
    Absent { vital: Vital },
}

impl DetailError {
    /// The wire field at fault.
    pub fn field(&self) -> &'static str {
        match self {
            DetailError::Missing { field, .. }
            | DetailError::UnknownChoice { field, .. }
            | DetailError::OutOfRange { field, .. }
            | DetailError::BadField { field, .. } => field,
            DetailError::DeliveryUnit { .. } => "unit",
            DetailError::NoStatus | DetailError::Absent { .. } => "vital",
        }
    }
}

/// The detail of a message of `vital` with `unit`, from its raw fields; `None` for kinds that
/// have none.
pub fn detail(
    vital: Vital,
    unit: Option<Unit>,
    raw: &RawDetail,
) -> Result<Option<Detail>, DetailError> {
    Ok(Some(match vital {
        Vital::Glucose => Detail::Glucose {
            method: match raw.method.as_deref() {
                None => Method::Cgm,
                Some("cgm") => Method::Cgm,
                Some("meter") => Method::Meter,
                Some(other) => return Err(choice("method", other, "cgm, meter")),
            },
        },
        Vital::Insulin => {
            let delivery = match raw.delivery.as_deref() {
                None => {
                    return Err(DetailError::Missing {
                        field: "delivery",
                        vital,
                        accepted: "bolus or basal",
                    });
                }
                Some("bolus") => Delivery::Bolus,
                Some("basal") => Delivery::Basal,
                Some(other) => return Err(choice("delivery", other, "bolus, basal")),
            };
            if let Some(unit) = unit
                && unit != delivery.unit()
            {
                return Err(DetailError::DeliveryUnit {
                    delivery: delivery.wire_name(),
                    unit,
                });
            }
            Detail::Insulin { delivery }
        }
        Vital::Medication => Detail::Medication {
            medication: match raw.medication.as_deref() {
                Some(m) => id("medication", m)?,
                None => {
                    return Err(DetailError::Missing {
                        field: "medication",
                        vital,
                        accepted: "the medication's code, as its schedule names it",
                    });
                }
            },
            schedule: raw
                .schedule
                .as_deref()
                .map(|s| id("schedule", s))
                .transpose()?,
        },
        Vital::Inhaler => Detail::Inhaler {
            puffs: match raw.puffs {
                None => 1,
                Some(p) => whole("puffs", p, 1, 20)?,
            },
        },
        Vital::DeviceStatus => Detail::Status(status(raw)?),
        _ => return Ok(None),
    }))
}

fn status(raw: &RawDetail) -> Result<DeviceStatus, DetailError> {
    let time = |field: &'static str, s: Option<&str>| {
        s.map(|s| {
            EventTime::parse_rfc3339(s).map_err(|e| DetailError::BadField {
                field,
                reason: e.to_string().replacen("`time` ", "", 1),
            })
        })
        .transpose()
    };
    let status = DeviceStatus {
        battery: raw
            .battery
            .map(|b| whole("battery", b, 0, 100))
            .transpose()?,
        signal: raw.signal.map(|b| whole("signal", b, 0, 100)).transpose()?,
        sensor_start: time("sensor_start", raw.sensor_start.as_deref())?,
        sensor_expires: time("sensor_expires", raw.sensor_expires.as_deref())?,
        error: raw.error.as_deref().map(|e| id("error", e)).transpose()?,
    };
    if status == DeviceStatus::default() {
        return Err(DetailError::NoStatus);
    }
    Ok(status)
}

/// Checks a detail made in code (a source, a replay) against its kind and unit.
pub fn check(vital: Vital, unit: Option<Unit>, detail: Option<&Detail>) -> Result<(), DetailError> {
    let fits = match (vital, detail) {
        (Vital::Glucose, None | Some(Detail::Glucose { .. }))
        | (Vital::Inhaler, None | Some(Detail::Inhaler { .. }))
        | (Vital::PumpEvent, None)
        | (Vital::Medication, Some(Detail::Medication { .. })) => true,
        (Vital::Insulin, Some(Detail::Insulin { delivery })) => {
            if let Some(unit) = unit
                && unit != delivery.unit()
            {
                return Err(DetailError::DeliveryUnit {
                    delivery: delivery.wire_name(),
                    unit,
                });
            }
            true
        }
        (Vital::DeviceStatus, Some(Detail::Status(s))) => *s != DeviceStatus::default(),
        (v, None) => v.is_bedside(),
        _ => false,
    };
    if fits {
        Ok(())
    } else {
        Err(DetailError::Absent { vital })
    }
}

fn choice(field: &'static str, found: &str, accepted: &'static str) -> DetailError {
    DetailError::UnknownChoice {
        field,
        found: super::quote(found),
        accepted,
    }
}

fn id(field: &'static str, s: &str) -> Result<Identifier, DetailError> {
    Identifier::new(s).map_err(|e| DetailError::BadField {
        field,
        reason: format!("{:?} {e}", super::quote(s)),
    })
}

fn whole(field: &'static str, v: f64, low: u8, high: u8) -> Result<u8, DetailError> {
    if v.fract() == 0.0 && v >= f64::from(low) && v <= f64::from(high) {
        Ok(v as u8)
    } else {
        Err(DetailError::OutOfRange {
            field,
            found: v,
            low,
            high,
        })
    }
}
