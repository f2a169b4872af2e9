//! The device rule: the health of every device a patient wears or uses, so that nobody is
//! unmonitored without anyone knowing.
//!
//! * **Offline** (`offline`, warning): a device silent for longer than its kind's expected
//!   interval (`[devices]`: a CGM or pump 1 h, a pill bottle or inhaler 26 h, a bedside monitor
//!   off), at the instant it is due, naming the patient and what of theirs is no longer watched.
//!   Once per silence.
//! * **Recovered** (`recovered`, info): an offline device reports again.
//! * **Low battery** (`low_battery`, warning): a device's status at or below `low_battery`
//!   (20 %); again only once it was charged above it.
//! * **Sensor expiring** (`sensor_expiring`, warning): a sensor session ending within
//!   `sensor_expiring` (24 h), at the instant it comes within it, once per session.
//!
//! A device's kind is what it first reported (glucose: a CGM; insulin or pump events: a pump;
//! doses: a pill bottle; puffs: an inhaler; a bedside vital: a monitor); one that has only sent
//! its status has no expected interval yet. These are alerts of their own kind, `device`, so
//! acknowledging one never silences a glucose, pump or medication alarm.

use serde_json::json;

use super::{Change, Context, Rule};
use crate::alerting::{Alert, AlertEvent, AlertKind, Head, Severity};
use crate::monitor::events::span;
use crate::observation::{Detail, EventTime, Identifier, Observation, Vital};

mod config;

pub use config::DevicesConfig;

/// What kind of device, by what it reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Class {
    Monitor,
    Cgm,
    Pump,
    PillBottle,
    Inhaler,
}

impl Class {
    fn of(vital: Vital) -> Option<Class> {
        Some(match vital {
            Vital::Glucose => Class::Cgm,
            Vital::Insulin | Vital::PumpEvent => Class::Pump,
            Vital::Medication => Class::PillBottle,
            Vital::Inhaler => Class::Inhaler,
            Vital::DeviceStatus => return None,
            _ => Class::Monitor,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Class::Monitor => "bedside monitor",
            Class::Cgm => "CGM",
            Class::Pump => "insulin pump",
            Class::PillBottle => "pill bottle",
            Class::Inhaler => "inhaler",
        }
    }

    /// What of the patient's is unwatched while it is silent.
    fn watches(self) -> &'static str {
        match self {
            Class::Monitor => "vital signs are",
            Class::Cgm => "glucose is",
            Class::Pump => "insulin delivery is",
            Class::PillBottle => "doses are",
            Class::Inhaler => "inhaler use is",
        }
    }

    fn interval_us(self, config: &DevicesConfig) -> Option<i64> {
        let d = match self {
            Class::Monitor => config.monitor,
            Class::Cgm => config.cgm,
            Class::Pump => config.pump,
            Class::PillBottle => config.pill_bottle,
            Class::Inhaler => config.inhaler,
        };
        d.on().map(|d| d.0.as_micros() as i64)
    }
}

/// One patient's devices (a patient without device ids allocates nothing).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Devices {
    devices: Vec<Device>,
}

#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct Device {
    id: Identifier,
    class: Option<Class>,
    last_us: i64,
    offline: bool,
    battery_low: bool,
    /// The sensor session's end, and whether its nearing was alerted.
    expires_us: Option<i64>,
    expiring_alerted: bool,
    /// Its next timer: offline or expiring, whichever is first.
    due_us: Option<i64>,
}

impl Device {
    /// When it goes offline, if it stays silent.
    fn offline_due(&self, config: &DevicesConfig) -> Option<i64> {
        let interval = self.class?.interval_us(config)?;
        (!self.offline).then(|| self.last_us.saturating_add(interval))
    }

    /// When its sensor comes within the expiring horizon.
    fn expiring_due(&self, config: &DevicesConfig) -> Option<i64> {
        let horizon = config.sensor_expiring.on()?.0.as_micros() as i64;
        let expires = self.expires_us.filter(|_| !self.expiring_alerted)?;
        Some(expires - horizon)
    }

    /// How alerts name it: `CGM g7-1`.
    fn label(&self) -> String {
        format!("{} {}", self.class.map_or("device", Class::name), self.id)
    }

    fn rearm(&mut self, config: &DevicesConfig) {
        self.due_us = [self.offline_due(config), self.expiring_due(config)]
            .into_iter()
            .flatten()
            .min();
    }
}

impl Devices {
    fn heard(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        let Some(id) = obs.device() else {
            return;
        };
        let now = obs.time().micros();
        let devices = &mut self.devices;
        let i = match devices.iter().position(|d| d.id == *id) {
            Some(i) => i,
            None => {
                devices.push(Device {
                    id: id.clone(),
                    class: None,
                    last_us: now,
                    offline: false,
                    battery_low: false,
                    expires_us: None,
                    expiring_alerted: false,
                    due_us: None,
                });
                devices.len() - 1
            }
        };
        let device = &mut devices[i];
        device.class = device.class.or(Class::of(obs.vital()));
        if device.offline {
            device.offline = false;
            let silent = span((now - device.last_us).max(0) as u64);
            let summary = format!("{} reports again after {silent} of silence", device.label());
            out.push(device_alert(
                cx,
                now,
                AlertEvent::Recovered,
                Severity::Info,
                summary,
                "none: the device reports again",
                device,
            ));
        }
        device.last_us = device.last_us.max(now);
        if let Some(Detail::Status(status)) = obs.detail() {
            Self::status(cx, now, device, status, out);
        }
        device.rearm(&cx.rules.devices);
    }

    fn status(
        cx: Context<'_>,
        now: i64,
        device: &mut Device,
        status: &crate::observation::DeviceStatus,
        out: &mut Vec<Alert>,
    ) {
        let config = &cx.rules.devices;
        if let (Some(battery), Some(limit)) = (status.battery, config.low_battery.on()) {
            if battery > limit {
                device.battery_low = false;
            } else if !device.battery_low {
                device.battery_low = true;
                let summary = format!("{}: battery at {battery} %", device.label());
                out.push(device_alert(
                    cx,
                    now,
                    AlertEvent::LowBattery,
                    Severity::Warning,
                    summary,
                    "charge or change the device's battery before it stops",
                    device,
                ));
            }
        }
        if let Some(expires) = status.sensor_expires.map(EventTime::micros)
            && device.expires_us != Some(expires)
        {
            device.expires_us = Some(expires);
            device.expiring_alerted = false;
            if device.expiring_due(config).is_some_and(|due| due <= now) {
                Self::expiring(cx, now, device, out);
            }
        }
    }

    fn expiring(cx: Context<'_>, now: i64, device: &mut Device, out: &mut Vec<Alert>) {
        let Some(expires) = device.expires_us else {
            return;
        };
        device.expiring_alerted = true;
        let left = span((expires - now).max(0) as u64);
        let summary = format!(
            "{}: the sensor session ends in {left}, at {}",
            device.label(),
            EventTime::from_micros(expires).to_rfc3339()
        );
        out.push(device_alert(
            cx,
            now,
            AlertEvent::SensorExpiring,
            Severity::Warning,
            summary,
            "have a new sensor ready and change it before the session ends",
            device,
        ));
    }
}

impl Rule for Devices {
    fn on_change(&mut self, _: Context<'_>, _: &Change<'_>, _: &mut Vec<Alert>) {}

    fn on_observation(&mut self, cx: Context<'_>, obs: &Observation, out: &mut Vec<Alert>) {
        // Every observation comes here: a bedside monitor is not watched unless asked for.
        if obs.vital().is_bedside() && cx.rules.devices.monitor.on().is_none() {
            return;
        }
        self.heard(cx, obs, out);
    }

    fn next_due(&self) -> Option<i64> {
        self.devices.iter().filter_map(|d| d.due_us).min()
    }

    fn on_timer(&mut self, cx: Context<'_>, due: i64, out: &mut Vec<Alert>) {
        let devices = &mut self.devices;
        let config = &cx.rules.devices;
        for device in devices
            .iter_mut()
            .filter(|d| d.due_us.is_some_and(|t| t <= due))
        {
            // (A device is due offline only once its kind is known.)
            if let (Some(at), Some(class)) = (
                device.offline_due(config).filter(|&t| t <= due),
                device.class,
            ) {
                device.offline = true;
                let summary = format!(
                    "{} silent for {}: {}'s {} no longer monitored",
                    device.label(),
                    span((at - device.last_us).max(0) as u64),
                    cx.picture.patient(),
                    class.watches()
                );
                out.push(device_alert(cx, at, AlertEvent::Offline, Severity::Warning, summary, "check the device: charged, worn, in range of its hub or phone, paired; until it reports, watch the patient another way", device));
            }
            if let Some(at) = device.expiring_due(config).filter(|&t| t <= due) {
                Self::expiring(cx, at, device, out);
            }
            device.rearm(config);
        }
    }

    fn heap_bytes(&self) -> usize {
        self.devices.capacity() * std::mem::size_of::<Device>()
    }
}

fn device_alert(
    cx: Context<'_>,
    time_us: i64,
    event: AlertEvent,
    severity: Severity,
    summary: String,
    response: &str,
    device: &Device,
) -> Alert {
    let facts = json!({
        "device": device.id.as_str(),
        "device_kind": device.class.map(Class::name),
        "last_heard": EventTime::from_micros(device.last_us).to_rfc3339(),
    });
    let head = Head {
        patient: cx.picture.patient(),
        time_us,
        kind: AlertKind::Device,
        event,
        severity,
    };
    Alert::of_facts(head, summary, response, facts)
}

#[cfg(test)]
mod tests;
