//! A replay of AZT1D's continuous glucose traces (`Subject N.csv`: `timestamp,glucose_value_mg_dl`,
//! local time without an offset; see `datasets/azt1d-dev/README.md`) as CGM readings.
//!
//! Subject `N` is patient `azt1d-N` with CGM `g6-N`; times are read at the configured `offset`
//! (Arizona keeps −07:00 all year). Every subject is loaded and the readings replayed in event
//! time order across subjects (then subject, then line). Rows that repeat a timestamp with the
//! same value are duplicates; with another value (the export collapsed some falls onto one
//! timestamp: Subject 8 reads 57.2, 46.4, then 40 at 2024-01-24 23:07) each is a reading. A row
//! that is not a reading is rejected with its file and line, never dropped.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{BuildContext, Built, Progress, Rejected, Source, SourceError, SourceItem, SourceKind};
use crate::component::{Problem, Section};
use crate::observation::{
    Detail, EventTime, Identifier, Method, Observation, Subject, Unit, Value, Vital,
};

/// The `[source]` of an AZT1D replay.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Azt1dConfig {
    /// The directory of `Subject N.csv` files.
    pub path: PathBuf,
    /// The subjects to read (their `N`); all when absent.
    pub subjects: Option<Vec<u32>>,
    /// The UTC offset of the local timestamps.
    #[serde(default = "Azt1dConfig::default_offset")]
    pub offset: String,
}

impl Azt1dConfig {
    fn default_offset() -> String {
        "-07:00".to_owned()
    }

    fn time(&self, local: &str) -> Option<EventTime> {
        let (date, time) = local.trim().split_once(' ')?;
        EventTime::parse_rfc3339(&format!("{date}T{time}{}", self.offset)).ok()
    }
}

impl SourceKind for Azt1dConfig {
    fn name(&self) -> String {
        "azt1d".to_owned()
    }

    fn validate(&self, section: &Section) -> Vec<Problem> {
        let mut problems = Vec::new();
        if self.time("2024-01-01 00:00:00").is_none() {
            problems.push(section.problem(
                "offset",
                format!("`offset` {:?} is not a UTC offset like -07:00", self.offset),
            ));
        }
        if self.subjects.as_ref().is_some_and(Vec::is_empty) {
            problems.push(section.problem(
                "subjects",
                "`subjects` is empty: name at least one, or leave it out for all",
            ));
        }
        problems
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }

    fn build(&self, _cx: &BuildContext) -> Result<Built, SourceError> {
        Ok(Built::One(Box::new(Azt1d::load(self)?)))
    }
}

/// One row, before it is checked.
struct Row {
    time_us: i64,
    subject: u32,
    line: u32,
    value: f64,
}

/// The loaded traces, replayed in event-time order.
pub struct Azt1d {
    /// Per subject: its number, patient id and CGM id.
    subjects: Vec<(u32, Identifier, Identifier)>,
    rows: Vec<Row>,
    rejected: Vec<Rejected>,
    next: usize,
}

impl Azt1d {
    pub fn load(config: &Azt1dConfig) -> Result<Azt1d, SourceError> {
        let mut replay = Azt1d {
            subjects: Vec::new(),
            rows: Vec::new(),
            rejected: Vec::new(),
            next: 0,
        };
        for (n, path) in subject_files(&config.path, config.subjects.as_deref())? {
            let text = fs::read_to_string(&path).map_err(|source| SourceError::Io {
                path: path.clone(),
                source,
            })?;
            let id = |prefix: &str| Identifier::new(&format!("{prefix}-{n}")).ok();
            let (Some(patient), Some(device)) = (id("azt1d"), id("g6")) else {
                continue;
            };
            let index = replay.subjects.len() as u32;
            replay.subjects.push((n, patient.clone(), device));
            let file = path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            replay.read_rows(config, &text, index, &file, &patient);
        }
        replay.rows.sort_by_key(|r| (r.time_us, r.subject, r.line));
        Ok(replay)
    }

    fn read_rows(
        &mut self,
        config: &Azt1dConfig,
        text: &str,
        index: u32,
        file: &str,
        patient: &Identifier,
    ) {
        for (i, line) in text.lines().enumerate().skip(1) {
            let number = i + 1;
            let (stamp, value) = line.split_once(',').unwrap_or((line, ""));
            let time = config.time(stamp);
            let value = value.trim().parse::<f64>().ok().filter(|v| v.is_finite());
            match (time, value) {
                (Some(t), Some(value)) => self.rows.push(Row {
                    time_us: t.micros(),
                    subject: index,
                    line: number as u32,
                    value,
                }),
                (time, _) => self.rejected.push(Rejected {
                    position: format!("{file} line {number}"),
                    at: None,
                    reason: if time.is_none() {
                        format!(
                            "`timestamp` {stamp:?} is not a local time like 2023-12-08 00:04:00"
                        )
                    } else {
                        format!(
                            "`glucose_value_mg_dl` {:?} is not a number",
                            line.split_once(',').map_or("", |(_, v)| v)
                        )
                    },
                    field: Some(if time.is_none() { "time" } else { "value" }),
                    subject: time.map(|time| Subject {
                        patient: patient.clone(),
                        time,
                        vital: Vital::Glucose,
                    }),
                    raw: Some(line.to_owned()),
                }),
            }
        }
    }

    /// Readings to replay.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl Source for Azt1d {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        // Rows that are not readings first: they have no place in event time.
        out.extend(self.rejected.drain(..).map(SourceItem::Rejected));
        let end = (self.next + max).min(self.rows.len());
        for r in &self.rows[self.next..end] {
            let (n, patient, device) = &self.subjects[r.subject as usize];
            let obs = Observation::with_detail(
                patient.clone(),
                Some(device.clone()),
                EventTime::from_micros(r.time_us),
                Vital::Glucose,
                Value::Number(r.value),
                Some(Unit::MilligramsPerDecilitre),
                Some(Detail::Glucose {
                    method: Method::Cgm,
                }),
            );
            out.push(match obs {
                Ok(obs) => SourceItem::Observation(obs, None),
                Err(e) => SourceItem::Rejected(Rejected {
                    position: format!("Subject {n}.csv line {}", r.line),
                    at: None,
                    reason: e.to_string(),
                    field: Some("value"),
                    subject: Some(Subject {
                        patient: patient.clone(),
                        time: EventTime::from_micros(r.time_us),
                        vital: Vital::Glucose,
                    }),
                    raw: None,
                }),
            });
        }
        self.next = end;
        Ok(self.next < self.rows.len())
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.next as u64,
            total: Some(self.rows.len() as u64),
        }
    }

    /// Rows are sorted by event time when the traces are loaded.
    fn time_ordered(&self) -> bool {
        true
    }
}

/// The `Subject N.csv` files of `dir`, by `N`; only `wanted` when given (each must exist).
fn subject_files(dir: &Path, wanted: Option<&[u32]>) -> Result<Vec<(u32, PathBuf)>, SourceError> {
    let entries = fs::read_dir(dir).map_err(|source| SourceError::Io {
        path: dir.to_owned(),
        source,
    })?;
    let mut files: Vec<(u32, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name
                .strip_prefix("Subject ")?
                .strip_suffix(".csv")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    files.sort();
    if let Some(wanted) = wanted {
        if let Some(missing) = wanted.iter().find(|n| !files.iter().any(|(f, _)| f == *n)) {
            return Err(SourceError::Format {
                path: dir.to_owned(),
                reason: format!("no `Subject {missing}.csv`"),
            });
        }
        files.retain(|(n, _)| wanted.contains(n));
    }
    if files.is_empty() {
        return Err(SourceError::Format {
            path: dir.to_owned(),
            reason: "no `Subject N.csv` files (AZT1D's layout)".into(),
        });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(subjects: Option<Vec<u32>>) -> Azt1dConfig {
        Azt1dConfig {
            path: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/datasets/azt1d-dev"),
            subjects,
            offset: Azt1dConfig::default_offset(),
        }
    }

    #[test]
    fn reads_a_subject_at_arizona_time_in_event_time_order() {
        let c = config(Some(vec![1]));
        if !c.path.is_dir() {
            assert!(
                std::env::var_os("VIGIL_TEST_REQUIRE").is_none(),
                "the AZT1D traces are missing"
            );
            return;
        }
        let mut replay = Azt1d::load(&c).unwrap();
        let mut out = Vec::new();
        while replay.fill(4096, &mut out).unwrap() {}
        let SourceItem::Observation(first, _) = &out[0] else {
            panic!("{:?}", out[0])
        };
        // The file's first row: 2023-12-08 00:04:00,151 in Arizona.
        assert_eq!(first.patient().as_str(), "azt1d-1");
        assert_eq!(first.time().to_rfc3339(), "2023-12-08T07:04:00Z");
        assert_eq!(first.value(), Value::Number(151.0));
        let times: Vec<i64> = out.iter().filter_map(SourceItem::time_us).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(out.len(), 10449);
    }

    #[test]
    fn a_missing_subject_or_a_bad_offset_is_named() {
        let c = config(Some(vec![99]));
        if c.path.is_dir() {
            let err = Azt1d::load(&c).err().unwrap().to_string();
            assert!(err.contains("no `Subject 99.csv`"), "{err}");
        }
        let bad = Azt1dConfig {
            offset: "Arizona".into(),
            ..config(None)
        };
        assert!(bad.time("2024-01-01 00:00:00").is_none());
    }
}
