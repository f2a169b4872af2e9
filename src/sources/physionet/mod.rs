//! Replays of the PhysioNet/Computing in Cardiology challenge datasets as observation streams.
//!
//! * **2019** (sepsis): one pipe-separated file per patient, one row per ICU hour, `NaN` for
//!   missing. Vitals used: HR, O2Sat, Temp, SBP, DBP, Resp, FiO2 (a fraction, as supplemental
//!   oxygen). Row `ICULOS = h` is observed at `start + h` hours.
//! * **2012** (mortality): long `Time,Parameter,Value` files, times `HH:MM` since admission.
//!   Vitals used: HR, NISysABP/SysABP, NIDiasABP/DiasABP, Temp, RespRate, FiO2, and GCS mapped
//!   to ACVPU (15 → A, 13–14 → C, 9–12 → V, 6–8 → P, 3–5 → U; an approximation, since GCS is not
//!   ACVPU).
//!
//! Every stay is admitted at the configured `start`, so the replay runs all stays side by side.
//! Records are emitted in event-time order (then patient, then vital). Values outside the
//! physiologically possible range are rejected with their file and line, never dropped.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BuildContext, Built, Progress, Rejected, Source, SourceError, SourceItem, SourceKind};
use crate::component::{Problem, Section};
use crate::observation::{Acvpu, EventTime, Identifier, Observation, Subject, Unit, Value, Vital};

/// A dataset replay: the directory, how many stays, and when their ICU admission was.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatasetConfig {
    pub path: PathBuf,
    /// Read at most this many patients (files, in name order); all when absent.
    pub limit: Option<usize>,
    /// RFC 3339 time given to ICU admission (hour 0) of every stay.
    #[serde(default = "DatasetConfig::default_start")]
    pub start: String,
}

impl DatasetConfig {
    /// The admission time given to every stay when a pipeline does not say.
    pub fn default_start() -> String {
        "2026-01-05T00:00:00Z".to_owned()
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        match EventTime::parse_rfc3339(&self.start) {
            Ok(_) => Vec::new(),
            Err(_) => vec![section.problem(
                "start",
                format!("`start` {:?} is not an RFC 3339 time", self.start),
            )],
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }
}

/// The `[source]` of a PhysioNet/CinC challenge replay of `YEAR` (2019 or 2012).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(transparent)]
pub struct Physionet<const YEAR: u16>(pub DatasetConfig);

/// PhysioNet/CinC 2019: hourly `.psv` files, one per patient.
pub type Physionet2019 = Physionet<2019>;

/// PhysioNet/CinC 2012: long-format `Time,Parameter,Value` files, one per stay.
pub type Physionet2012 = Physionet<2012>;

impl<const YEAR: u16> SourceKind for Physionet<YEAR> {
    fn name(&self) -> String {
        format!("physionet{YEAR}")
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        self.0.validate(section)
    }

    fn resolve_paths(&mut self, base: &Path) {
        self.0.resolve_paths(base);
    }

    fn build(&self, _cx: &BuildContext) -> Result<Built, SourceError> {
        let replay = match YEAR {
            2012 => Replay::physionet2012(&self.0)?,
            _ => Replay::physionet2019(&self.0)?,
        };
        Ok(Built::One(Box::new(replay)))
    }
}

const HOUR_US: i64 = 3_600_000_000;

/// One value of one stay, before validation.
#[derive(Clone, Copy, Debug)]
struct Record {
    time_us: i64,
    patient: u32,
    vital: Vital,
    value: f64,
    device: u8,
    /// Line in the patient's file, for rejections.
    line: u32,
}

/// A dataset loaded into compact records, replayed in event-time order.
pub struct Replay {
    patients: Vec<(Identifier, String)>,
    devices: &'static [&'static str],
    records: Vec<Record>,
    /// PhysioNet 2019: every row of every stay, (patient, time, SepsisLabel), in file order.
    rows: Vec<(u32, i64, bool)>,
    next: usize,
}

/// One hourly row of a PhysioNet 2019 stay, with its label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabelledRow {
    pub patient: Identifier,
    pub time: EventTime,
    /// `SepsisLabel`: 1 from 6 hours before the Sepsis-3 onset on (the challenge's definition).
    pub label: bool,
}

impl Replay {
    /// Loads a PhysioNet 2019 directory (`*.psv`).
    pub fn physionet2019(config: &DatasetConfig) -> Result<Replay, SourceError> {
        let start = start_of(config)?;
        let files = list(&config.path, "psv", config.limit)?;
        let mut replay = Replay {
            patients: Vec::with_capacity(files.len()),
            devices: &["physionet2019"],
            records: Vec::new(),
            rows: Vec::new(),
            next: 0,
        };
        for path in files {
            let text = read(&path)?;
            let index = replay.add_patient(&path)?;
            let mut lines = text.lines();
            let header: Vec<&str> = lines.next().unwrap_or("").split('|').collect();
            let column = |name: &str| header.iter().position(|h| h.trim() == name);
            let format = |reason: String| SourceError::Format {
                path: path.clone(),
                reason,
            };
            let hour_col = column("ICULOS").ok_or_else(|| format("no ICULOS column".into()))?;
            let label_col = column("SepsisLabel");
            let vitals = [
                ("HR", Vital::HeartRate),
                ("O2Sat", Vital::Spo2),
                ("Temp", Vital::Temperature),
                ("SBP", Vital::SystolicBp),
                ("DBP", Vital::DiastolicBp),
                ("Resp", Vital::RespiratoryRate),
                ("FiO2", Vital::SupplementalOxygen),
            ]
            .map(|(name, vital)| (column(name), vital));
            for (i, line) in lines.enumerate() {
                let cells: Vec<&str> = line.split('|').collect();
                let Some(hour) = cells
                    .get(hour_col)
                    .and_then(|c| c.trim().parse::<f64>().ok())
                else {
                    return Err(format(format!("line {}: ICULOS is not a number", i + 2)));
                };
                let time_us = start + (hour * HOUR_US as f64) as i64;
                if let Some(c) = label_col {
                    let label = match cells.get(c).map(|c| c.trim()) {
                        Some("1") => true,
                        Some("0") => false,
                        other => {
                            return Err(format(format!(
                                "line {}: SepsisLabel is {:?}, not 0 or 1",
                                i + 2,
                                other.unwrap_or("")
                            )));
                        }
                    };
                    replay.rows.push((index, time_us, label));
                }
                for (col, vital) in vitals {
                    let Some(value) = col
                        .and_then(|c| cells.get(c))
                        .and_then(|c| c.trim().parse::<f64>().ok())
                    else {
                        continue;
                    };
                    if value.is_nan() {
                        continue;
                    }
                    replay.records.push(Record {
                        time_us,
                        patient: index,
                        vital,
                        value,
                        device: 0,
                        line: (i + 2) as u32,
                    });
                }
            }
        }
        replay.sort();
        Ok(replay)
    }

    /// Loads a PhysioNet 2012 directory (`*.txt`, or its `set-a/` subdirectory).
    pub fn physionet2012(config: &DatasetConfig) -> Result<Replay, SourceError> {
        let start = start_of(config)?;
        let dir = if config.path.join("set-a").is_dir() {
            config.path.join("set-a")
        } else {
            config.path.clone()
        };
        let files = list(&dir, "txt", config.limit)?;
        let mut replay = Replay {
            patients: Vec::with_capacity(files.len()),
            devices: &["physionet2012", "nibp", "arterial-line"],
            records: Vec::new(),
            rows: Vec::new(),
            next: 0,
        };
        for path in files {
            let text = read(&path)?;
            let index = replay.add_patient(&path)?;
            for (i, line) in text.lines().enumerate().skip(1) {
                let mut cells = line.split(',');
                let (Some(time), Some(parameter), Some(value)) =
                    (cells.next(), cells.next(), cells.next())
                else {
                    continue;
                };
                let Some(minutes) = time.split_once(':').and_then(|(h, m)| {
                    Some(h.trim().parse::<i64>().ok()? * 60 + m.trim().parse::<i64>().ok()?)
                }) else {
                    continue;
                };
                let Ok(value) = value.trim().parse::<f64>() else {
                    continue;
                };
                let (vital, device, value) = match parameter.trim() {
                    "HR" => (Vital::HeartRate, 0, value),
                    "NISysABP" => (Vital::SystolicBp, 1, value),
                    "SysABP" => (Vital::SystolicBp, 2, value),
                    "NIDiasABP" => (Vital::DiastolicBp, 1, value),
                    "DiasABP" => (Vital::DiastolicBp, 2, value),
                    "Temp" => (Vital::Temperature, 0, value),
                    "RespRate" => (Vital::RespiratoryRate, 0, value),
                    "FiO2" => (Vital::SupplementalOxygen, 0, value),
                    "GCS" => (Vital::Consciousness, 0, value),
                    _ => continue,
                };
                replay.records.push(Record {
                    time_us: start + minutes * 60_000_000,
                    patient: index,
                    vital,
                    value,
                    device,
                    line: (i + 1) as u32,
                });
            }
        }
        replay.sort();
        Ok(replay)
    }

    fn add_patient(&mut self, path: &Path) -> Result<u32, SourceError> {
        let file = path
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let stem = path
            .file_stem()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let id = Identifier::new(&stem).map_err(|e| SourceError::Format {
            path: path.to_owned(),
            reason: format!("file name is not a patient id: {e}"),
        })?;
        self.patients.push((id, file));
        Ok((self.patients.len() - 1) as u32)
    }

    fn sort(&mut self) {
        self.records
            .sort_by_key(|r| (r.time_us, r.patient, r.vital, r.device, r.line));
    }

    /// Every row of every PhysioNet 2019 stay with its label, stay by stay in time order (none
    /// for a dataset without labels).
    pub fn labelled_rows(&self) -> Vec<LabelledRow> {
        self.rows
            .iter()
            .map(|&(patient, time_us, label)| LabelledRow {
                patient: self.patients[patient as usize].0.clone(),
                time: EventTime::from_micros(time_us),
                label,
            })
            .collect()
    }

    /// Number of stays.
    pub fn patients(&self) -> usize {
        self.patients.len()
    }

    /// Number of values to replay.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether there is nothing to replay.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

impl Source for Replay {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let end = (self.next + max).min(self.records.len());
        for r in &self.records[self.next..end] {
            let (patient, file) = &self.patients[r.patient as usize];
            let (value, unit) = match r.vital {
                Vital::SupplementalOxygen => (Value::Number(r.value), Some(Unit::Fraction)),
                Vital::Consciousness => match acvpu_of_gcs(r.value) {
                    Some(level) => (Value::Acvpu(level), None),
                    None => (Value::Number(r.value), None),
                },
                Vital::HeartRate | Vital::RespiratoryRate => {
                    (Value::Number(r.value), Some(Unit::PerMinute))
                }
                Vital::Spo2 => (Value::Number(r.value), Some(Unit::Percent)),
                Vital::Temperature => (Value::Number(r.value), Some(Unit::Celsius)),
                Vital::SystolicBp | Vital::DiastolicBp => {
                    (Value::Number(r.value), Some(Unit::MillimetresOfMercury))
                }
                // PhysioNet's columns are bedside vitals only.
                _ => {
                    continue;
                }
            };
            let time = EventTime::from_micros(r.time_us);
            let device = Identifier::new(self.devices[r.device as usize]).ok();
            match Observation::new(patient.clone(), device, time, r.vital, value, unit) {
                Ok(obs) => out.push(SourceItem::Observation(obs, None)),
                Err(e) => out.push(SourceItem::Rejected(Rejected {
                    position: format!("{file} line {}", r.line),
                    at: None,
                    field: Some("value"),
                    reason: e.to_string(),
                    subject: Some(Subject {
                        patient: patient.clone(),
                        time,
                        vital: r.vital,
                    }),
                    raw: None,
                })),
            }
        }
        self.next = end;
        Ok(self.next < self.records.len())
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.next as u64,
            total: Some(self.records.len() as u64),
        }
    }

    /// Records are sorted by event time when the dataset is loaded.
    fn time_ordered(&self) -> bool {
        true
    }
}

/// ACVPU from a Glasgow Coma Scale total (an approximation; see the module docs).
fn acvpu_of_gcs(gcs: f64) -> Option<Acvpu> {
    match gcs.round() as i64 {
        15 => Some(Acvpu::A),
        13..=14 => Some(Acvpu::C),
        9..=12 => Some(Acvpu::V),
        6..=8 => Some(Acvpu::P),
        3..=5 => Some(Acvpu::U),
        _ => None,
    }
}

fn start_of(config: &DatasetConfig) -> Result<i64, SourceError> {
    EventTime::parse_rfc3339(&config.start)
        .map(EventTime::micros)
        .map_err(|e| SourceError::Format {
            path: config.path.clone(),
            reason: e.to_string(),
        })
}

/// The files with extension `ext` in `dir`, sorted by name, at most `limit`.
fn list(dir: &Path, ext: &str, limit: Option<usize>) -> Result<Vec<PathBuf>, SourceError> {
    let entries = fs::read_dir(dir).map_err(|source| SourceError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    files.sort();
    if let Some(limit) = limit {
        files.truncate(limit);
    }
    if files.is_empty() {
        return Err(SourceError::Format {
            path: dir.to_owned(),
            reason: format!("no .{ext} files"),
        });
    }
    Ok(files)
}

fn read(path: &Path) -> Result<String, SourceError> {
    fs::read_to_string(path).map_err(|source| SourceError::Io {
        path: path.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dataset(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/datasets")
            .join(name)
    }

    fn drain(source: &mut dyn Source) -> Vec<SourceItem> {
        let mut out = Vec::new();
        while source.fill(1000, &mut out).unwrap() {}
        out
    }

    #[test]
    fn replays_physionet_2019_in_event_time_order() {
        let config = DatasetConfig {
            path: dataset("physionet2019-setB-dev"),
            limit: Some(20),
            start: "2026-01-05T00:00:00Z".into(),
        };
        let mut replay = Replay::physionet2019(&config).unwrap();
        assert_eq!(replay.patients(), 20);
        let items = drain(&mut replay);
        assert_eq!(items.len(), replay.len());
        let times: Vec<i64> = items.iter().map(|i| i.time_us().unwrap()).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        // p100006's first row: ICULOS 6, HR 84.
        let first = items.iter().find_map(|i| match i {
            SourceItem::Observation(o, _)
                if o.patient().as_str() == "p100006" && o.vital() == Vital::HeartRate =>
            {
                Some(o)
            }
            _ => None,
        });
        let first = first.unwrap();
        assert_eq!(first.time().to_rfc3339(), "2026-01-05T06:00:00Z");
        assert_eq!(first.value(), Value::Number(84.0));
    }

    #[test]
    fn replays_physionet_2012_with_gcs_as_acvpu() {
        let config = DatasetConfig {
            path: dataset("physionet2012"),
            limit: Some(5),
            start: "2026-01-05T00:00:00Z".into(),
        };
        let mut replay = Replay::physionet2012(&config).unwrap();
        let items = drain(&mut replay);
        assert!(items.iter().any(
            |i| matches!(i, SourceItem::Observation(o, _) if o.vital() == Vital::Consciousness)
        ));
        // 132539: GCS 15 at 00:07 is alert.
        let gcs = items.iter().find_map(|i| match i {
            SourceItem::Observation(o, _)
                if o.patient().as_str() == "132539" && o.vital() == Vital::Consciousness =>
            {
                Some(o)
            }
            _ => None,
        });
        assert_eq!(gcs.unwrap().value(), Value::Acvpu(Acvpu::A));
        assert_eq!(gcs.unwrap().time().to_rfc3339(), "2026-01-05T00:07:00Z");
    }

    #[test]
    fn a_missing_directory_is_a_clear_error() {
        let config = DatasetConfig {
            path: PathBuf::from("/nonexistent"),
            limit: None,
            start: "2026-01-05T00:00:00Z".into(),
        };
        let err = Replay::physionet2019(&config).err().unwrap();
        assert!(
            err.to_string().starts_with("cannot read /nonexistent"),
            "{err}"
        );
    }
}
