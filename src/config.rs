//! Pipeline configuration: the TOML files under `pipelines/`, parsed and validated.
//!
//! A pipeline names its source, its time policy (tick, allowed lateness), its rolling windows, the
//! staleness limit of each NEWS2 parameter, its alert policy, an optional patient registry and its
//! sinks. [`PipelineConfig::parse`] reports *every* problem it finds with its line, not just the
//! first: each top-level section is read on its own, so a typo in `[alerts]` does not hide a bad
//! duration in `[staleness]`. Relative paths are resolved against the directory of the file.
//!
//! ```
//! use vigil::config::PipelineConfig;
//!
//! let config = PipelineConfig::parse("[source]\nkind = \"simulator\"\npatients = 5\n", None).unwrap();
//! assert_eq!(config.workers, 1);
//!
//! let err = PipelineConfig::parse("[time]\ntick = \"fast\"\n\n[alerts]\ndeescalate_after = 0\n", None)
//!     .unwrap_err();
//! assert_eq!(err.problems.len(), 3); // no source, a bad tick, K = 0
//! assert!(err.problems.iter().any(|p| p.line == Some(2)));
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;
use toml::de::DeTable;

pub use crate::component::{Dur, Problem};
use crate::component::{LineIndex, Section, deserialise as section};
use crate::news2::Parameter;

/// A whole pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct PipelineConfig {
    pub source: SourceConfig,
    pub time: TimeConfig,
    pub windows: WindowsConfig,
    pub staleness: StalenessConfig,
    pub news2: News2Config,
    pub alerts: AlertsConfig,
    pub registry: Option<RegistryConfig>,
    /// The risk model, when the pipeline scores one.
    pub risk: Option<RiskConfig>,
    /// Each rule family's section (`[glucose]`, ...).
    pub rules: crate::rules::RuleSettings,
    pub sinks: Vec<SinkConfig>,
    /// The ward board, when the pipeline serves one (`vigil run --board` overrides it).
    pub board: Option<crate::sinks::board::BoardConfig>,
    /// How the archive is kept (`vigil run --archive-key` overrides its key).
    pub archive: ArchiveConfig,
    /// Timely workers (threads) in this process.
    pub workers: usize,
    /// The pipeline file as written: an archive keeps it (see [`crate::archive::write_metadata`]).
    pub text: String,
}

/// The risk model a pipeline scores, and its alert thresholds.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RiskConfig {
    /// The model file (`models/*.json`, written by `vigil train`).
    pub model: PathBuf,
    /// Raise a risk alert at or above this probability (default: the model's own threshold).
    pub threshold: Option<f64>,
    /// Clear it once the probability falls below this (default: the model's own).
    pub clear_below: Option<f64>,
    /// Score a patient at most this often in event time (a monitor sending every second changes
    /// the features every second; a minute is what a clinician can act on). `0s`: every new
    /// observation set.
    #[serde(default = "defaults::risk_every")]
    pub every: Dur,
}

pub use crate::sources::SourceConfig;
pub use crate::sources::kafka::KafkaSourceConfig;
pub use crate::sources::physionet::DatasetConfig;
pub use crate::sources::simulator::SimulatorConfig;

/// Event time policy.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TimeConfig {
    /// The granularity of timely timestamps; within a tick records are ordered by their exact
    /// time, so the tick trades progress-tracking overhead against latency, never results.
    pub tick: Dur,
    /// How far behind its partition's clock an observation may arrive and still be processed.
    pub allowed_lateness: Dur,
    /// Each partition's clock follows its `clock_devices`-th most advanced device, so that
    /// fewer devices than this, however wrong their clocks, cannot move it.
    pub clock_devices: usize,
    /// A time further than this ahead of its partition's clock (unless `clock_devices` devices
    /// make the jump together), or behind it, is not believed: held aside and reported.
    pub max_time_jump: Dur,
    /// From a live source (Kafka), a time further than this ahead of the wall clock when it
    /// arrives is not believed either.
    pub max_clock_skew: Dur,
}

impl Default for TimeConfig {
    fn default() -> TimeConfig {
        TimeConfig {
            tick: Dur::secs(1),
            allowed_lateness: Dur::secs(60),
            clock_devices: 2,
            max_time_jump: Dur::secs(15 * 60),
            max_clock_skew: Dur::secs(5 * 60),
        }
    }
}

/// Rolling windows kept per patient and vital.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowsConfig {
    pub durations: Vec<Dur>,
    /// The finest width of the buckets windows are built from: each window is kept in buckets
    /// of this width or a whole multiple of it up to a twelfth of the window (see
    /// [`crate::windows`]), so state per vital is about 13 buckets per distinct width.
    pub resolution: Dur,
}

impl Default for WindowsConfig {
    fn default() -> WindowsConfig {
        WindowsConfig {
            durations: vec![Dur::secs(15 * 60), Dur::secs(3600), Dur::secs(4 * 3600)],
            resolution: Dur::secs(60),
        }
    }
}

/// The maximum age of each NEWS2 parameter's last value.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StalenessConfig {
    pub rr: Dur,
    pub spo2: Dur,
    pub air_oxygen: Dur,
    pub sbp: Dur,
    pub hr: Dur,
    pub acvpu: Dur,
    pub temp: Dur,
}

impl StalenessConfig {
    /// The limit of one parameter.
    pub fn limit(&self, parameter: Parameter) -> Duration {
        match parameter {
            Parameter::RespirationRate => self.rr.0,
            Parameter::Spo2 => self.spo2.0,
            Parameter::AirOrOxygen => self.air_oxygen.0,
            Parameter::SystolicBp => self.sbp.0,
            Parameter::Pulse => self.hr.0,
            Parameter::Consciousness => self.acvpu.0,
            Parameter::Temperature => self.temp.0,
        }
    }
}

impl Default for StalenessConfig {
    fn default() -> StalenessConfig {
        let h = |hours: u64| Dur::secs(hours * 3600);
        StalenessConfig {
            rr: h(1),
            spo2: h(1),
            air_oxygen: h(12),
            sbp: h(2),
            hr: h(1),
            acvpu: h(12),
            temp: h(6),
        }
    }
}

/// How NEWS2 reads continuous signals.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct News2Config {
    /// Each numeric parameter is scored at the median of its values over this last stretch of
    /// event time: the settled reading a nurse would chart, not a 1 Hz sample caught in a
    /// probe-off drop or a motion spike. A lone value is scored as it is; `0s` scores the
    /// latest sample.
    pub settle: Dur,
}

impl Default for News2Config {
    fn default() -> News2Config {
        News2Config {
            settle: Dur::secs(120),
        }
    }
}

/// The alert policy.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Consecutive lower scores needed before a raised band is lowered (K).
    pub deescalate_after: u32,
    /// Lower scores count towards K at most once per this stretch, so that a monitor sending
    /// every few seconds cannot lower a band within a minute: K lower scores span at least
    /// (K − 1) × spacing.
    pub deescalate_spacing: Dur,
    /// Reminder period while a band stays raised, by band: board state, and how long an
    /// acknowledgement pauses them.
    pub reminders: RemindersConfig,
    /// An alert of a raised band nobody acknowledged for this long pages again: a high band or a
    /// single parameter scoring 3 to the second recipient, a medium band to the ward.
    pub escalate_after: Dur,
    /// Raise data-quality alerts (missing, stale or invalid parameters).
    pub data_quality: bool,
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            deescalate_after: 3,
            deescalate_spacing: Dur::secs(5 * 60),
            reminders: RemindersConfig::default(),
            escalate_after: Dur::secs(15 * 60),
            data_quality: true,
        }
    }
}

/// Reminder periods: the band's minimum monitoring frequency (hourly for low–medium and medium;
/// "continuous" for high, reminded every 15 minutes by default).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemindersConfig {
    pub low_medium: Dur,
    pub medium: Dur,
    pub high: Dur,
}

impl Default for RemindersConfig {
    fn default() -> RemindersConfig {
        RemindersConfig {
            low_medium: Dur::secs(3600),
            medium: Dur::secs(3600),
            high: Dur::secs(15 * 60),
        }
    }
}

/// How a run's archive (`vigil run --archive DIR`) is kept.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchiveConfig {
    /// Encrypt every Parquet file of the archive with the key in this file (base64, 32 bytes;
    /// `vigil key new FILE` writes one). Relative to the pipeline file.
    pub key_file: Option<PathBuf>,
}

/// The patient registry: ward and SpO2 scale per patient, from a CSV file
/// (`patient,ward,scale,from`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    pub path: PathBuf,
}

pub use crate::sinks::SinkConfig;

/// Every problem found in a pipeline file.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
#[error("{}", self.problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ConfigError {
    pub problems: Vec<Problem>,
}

/// Reading a pipeline file failed.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {error}")]
    Invalid { path: PathBuf, error: ConfigError },
}

/// The sections that can appear at the top level, for the "unknown section" message.
const SECTIONS: &str = "source, time, windows, staleness, news2, alerts, glucose, medication, devices, registry, risk, sinks, board, archive, workers";

impl PipelineConfig {
    /// Reads and validates a pipeline file.
    pub fn load(path: &Path) -> Result<PipelineConfig, LoadError> {
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            path: path.to_owned(),
            source,
        })?;
        PipelineConfig::parse(&text, path.parent()).map_err(|error| LoadError::Invalid {
            path: path.to_owned(),
            error,
        })
    }

    /// Parses and validates pipeline TOML. Relative paths are resolved against `base`.
    pub fn parse(text: &str, base: Option<&Path>) -> Result<PipelineConfig, ConfigError> {
        let lines = LineIndex::new(text);
        let mut problems = Vec::new();
        let (document, syntax) = DeTable::parse_recoverable(text);
        for error in syntax {
            problems.push(Problem {
                line: error.span().map(|s| lines.line(s.start)),
                message: error.message().trim().to_owned(),
            });
        }

        let mut source: Option<SourceConfig> = None;
        let mut time = TimeConfig::default();
        let mut windows = WindowsConfig::default();
        let mut staleness = StalenessConfig::default();
        let mut news2 = News2Config::default();
        let mut alerts = AlertsConfig::default();
        let mut registry = None;
        let mut board: Option<crate::sinks::board::BoardConfig> = None;
        let mut archive = ArchiveConfig::default();
        let mut risk: Option<RiskConfig> = None;
        let mut rules = crate::rules::RuleSettings::default();
        let mut sinks = vec![SinkConfig::Console(Default::default())];
        let mut workers = 1usize;

        // Each section on its own, so that one error does not hide the next.
        for (key, value) in document.get_ref().iter() {
            let name: &str = key.get_ref();
            let line = lines.line(key.span().start);
            macro_rules! read {
                () => {
                    section(value.clone(), &lines, line, name, &mut problems)
                };
            }
            match name {
                "source" => source = source_section(value, &lines, line, &mut problems),
                "time" => time = read!().unwrap_or_default(),
                "windows" => windows = read!().unwrap_or_default(),
                "staleness" => staleness = read!().unwrap_or_default(),
                "news2" => news2 = read!().unwrap_or_default(),
                "alerts" => alerts = read!().unwrap_or_default(),
                "registry" => registry = read!(),
                "board" => {
                    board = read!();
                    if let Some(why) = board
                        .as_ref()
                        .and_then(crate::sinks::board::BoardConfig::refuse)
                    {
                        problems.push(Problem {
                            line: Some(line),
                            message: format!("[board]: {why}"),
                        });
                    }
                }
                "archive" => archive = read!().unwrap_or_default(),
                "risk" => risk = read!(),
                "glucose" => {
                    if let Some(glucose) = read!() {
                        let section = Section::new("glucose", line, value, &lines);
                        problems.extend(crate::rules::glucose::GlucoseConfig::validate(
                            &glucose, &section,
                        ));
                        rules.glucose = glucose;
                    }
                }
                "medication" => {
                    if let Some(medication) = read!() {
                        let section = Section::new("medication", line, value, &lines);
                        problems.extend(crate::rules::medication::MedicationConfig::validate(
                            &medication,
                            &section,
                        ));
                        rules.medication = medication;
                    }
                }
                "devices" => {
                    if let Some(devices) = read!() {
                        let section = Section::new("devices", line, value, &lines);
                        problems.extend(crate::rules::device::DevicesConfig::validate(
                            &devices, &section,
                        ));
                        rules.devices = devices;
                    }
                }
                "sinks" => sinks = sinks_section(value, &lines, line, &mut problems),
                "workers" => workers = read!().unwrap_or(1),
                other => problems.push(Problem {
                    line: Some(line),
                    message: format!("unknown section `{other}` (expected one of {SECTIONS})"),
                }),
            }
        }

        let mut problem = |key: &str, message: String| {
            let line = find_key_line(text, key);
            problems.push(Problem { line, message });
        };
        if source.is_none()
            && !document
                .get_ref()
                .iter()
                .any(|(k, _)| &**k.get_ref() == "source")
        {
            problem(
                "source",
                "missing [source] section (kind = \"simulator\", \"jsonl\", \"kafka\", \"physionet2019\", \"physionet2012\" or \"azt1d\")".into(),
            );
        }
        if time.tick.0.is_zero() {
            problem("tick", "`tick` must be longer than 0".into());
        }
        if !(1..=16).contains(&time.clock_devices) {
            problem(
                "clock_devices",
                format!(
                    "`clock_devices` must be between 1 and 16, found {}",
                    time.clock_devices
                ),
            );
        }
        if time.max_time_jump <= time.allowed_lateness {
            problem(
                "max_time_jump",
                format!(
                    "`max_time_jump` {} must be longer than `allowed_lateness` {}: a late \
                     record would be taken for a wrong clock",
                    time.max_time_jump, time.allowed_lateness
                ),
            );
        }
        if time.max_clock_skew.0.is_zero() {
            problem(
                "max_clock_skew",
                "`max_clock_skew` must be longer than 0".into(),
            );
        }
        if windows.resolution.0.is_zero() {
            problem("resolution", "`resolution` must be longer than 0".into());
        }
        if windows.durations.is_empty() {
            problem("durations", "`durations` needs at least one window".into());
        }
        for d in &windows.durations {
            if d.0 < windows.resolution.0 || d.millis() % windows.resolution.millis().max(1) != 0 {
                problem(
                    "durations",
                    format!(
                        "window {d} is not a whole number of resolution steps ({})",
                        windows.resolution
                    ),
                );
            }
        }
        if let Some(max) = windows.durations.iter().max()
            && windows.resolution.millis() > 0
            && max.millis() / windows.resolution.millis() > 100_000
        {
            problem(
                "resolution",
                format!(
                    "{max} at a resolution of {} keeps over 100,000 buckets per vital",
                    windows.resolution
                ),
            );
        }
        for parameter in Parameter::ALL {
            if staleness.limit(parameter).is_zero() {
                problem(
                    parameter.key(),
                    format!(
                        "staleness limit of `{}` must be longer than 0",
                        parameter.key()
                    ),
                );
            }
        }
        if alerts.deescalate_after == 0 {
            problem(
                "deescalate_after",
                "`deescalate_after` must be at least 1".into(),
            );
        }
        for (name, period) in [
            ("escalate_after", alerts.escalate_after),
            ("low_medium", alerts.reminders.low_medium),
            ("medium", alerts.reminders.medium),
            ("high", alerts.reminders.high),
        ] {
            if period.0.is_zero() {
                problem(name, format!("`{name}` must be longer than 0"));
            }
        }
        if let Some(r) = &risk {
            for (name, value) in [("threshold", r.threshold), ("clear_below", r.clear_below)] {
                if let Some(v) = value
                    && !(v > 0.0 && v < 1.0)
                {
                    problem(
                        name,
                        format!("`{name}` must be a probability between 0 and 1, found {v}"),
                    );
                }
            }
            if let (Some(t), Some(c)) = (r.threshold, r.clear_below)
                && c > t
            {
                problem(
                    "clear_below",
                    format!(
                        "`clear_below` {c} is above `threshold` {t}: an alert would never clear"
                    ),
                );
            }
        }
        if workers == 0 || workers > 256 {
            problem(
                "workers",
                format!("`workers` must be between 1 and 256, found {workers}"),
            );
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line.unwrap_or(usize::MAX));
            return Err(ConfigError { problems });
        }
        let mut config = PipelineConfig {
            source: source.unwrap_or(SourceConfig::Simulator(SimulatorConfig::default())),
            time,
            windows,
            staleness,
            news2,
            alerts,
            registry,
            risk,
            rules,
            sinks,
            board,
            archive,
            workers,
            text: text.to_owned(),
        };
        if let Some(base) = base {
            config.resolve_paths(base);
        }
        Ok(config)
    }

    /// The settings that shape a patient's features (`[windows]`, `[staleness]`, `[news2]`) as
    /// TOML: saved with a trained model, so that an evaluation computes the features it was
    /// trained on.
    pub fn feature_settings_toml(&self) -> String {
        let durations: Vec<String> = self
            .windows
            .durations
            .iter()
            .map(|d| format!("\"{d}\""))
            .collect();
        let mut text = format!(
            "[windows]\ndurations = [{}]\nresolution = \"{}\"\n\n[staleness]\n",
            durations.join(", "),
            self.windows.resolution
        );
        for parameter in Parameter::ALL {
            text.push_str(&format!(
                "{} = \"{}\"\n",
                parameter.key(),
                Dur(self.staleness.limit(parameter))
            ));
        }
        text.push_str(&format!("\n[news2]\nsettle = \"{}\"\n", self.news2.settle));
        text
    }

    fn resolve_paths(&mut self, base: &Path) {
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        self.source.kind_mut().resolve_paths(base);
        if let Some(registry) = &mut self.registry {
            resolve(&mut registry.path);
        }
        if let Some(risk) = &mut self.risk {
            resolve(&mut risk.model);
        }
        if let Some(key) = &mut self.archive.key_file {
            resolve(key);
        }
        if let Some(board) = &mut self.board {
            board.resolve_paths(base);
        }
        for sink in &mut self.sinks {
            sink.kind_mut().resolve_paths(base);
        }
    }
}

/// A component's table split into its `kind` and the rest, or the problem with it. `what` names
/// the section (`[source]`, `[[sinks]]`), `kinds` what `kind` may be.
fn kind_of<'a>(
    value: &Spanned<toml::de::DeValue<'a>>,
    lines: &LineIndex,
    line: usize,
    what: &str,
    kinds: &[&str],
) -> Result<(String, usize, Spanned<toml::de::DeValue<'a>>), Problem> {
    let expected = kinds
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(table) = value.get_ref().as_table() else {
        return Err(Problem::at(line, format!("{what} must be a table")));
    };
    let Some((kind_key, kind)) = table.iter().find(|(k, _)| &**k.get_ref() == "kind") else {
        return Err(Problem::at(
            line,
            format!("{what} needs `kind` (one of {expected})"),
        ));
    };
    let kind_line = lines.line(kind.span().start);
    let Some(name) = kind.get_ref().as_str().filter(|k| kinds.contains(k)) else {
        return Err(Problem::at(
            kind_line,
            format!("{what} `kind` must be one of {expected}"),
        ));
    };
    let mut rest = table.clone();
    rest.remove(kind_key);
    Ok((
        name.to_owned(),
        kind_line,
        Spanned::new(value.span(), toml::de::DeValue::Table(rest)),
    ))
}

/// Reads `[source]` by its `kind`, then the rest of the table as that kind's settings, so that an
/// error in a setting keeps its line (serde's internally tagged enums lose it).
fn source_section(
    value: &Spanned<toml::de::DeValue<'_>>,
    lines: &LineIndex,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Option<SourceConfig> {
    let (kind, _, rest) = kind_of(value, lines, line, "[source]", crate::sources::KINDS)
        .map_err(|p| problems.push(p))
        .ok()?;
    let section = Section::new("source", line, &rest, lines);
    SourceConfig::read(&kind, rest, lines, &section, problems).flatten()
}

/// Reads `[[sinks]]`, each table by its `kind` like `[source]`; `sinks = []` is no sink.
fn sinks_section(
    value: &Spanned<toml::de::DeValue<'_>>,
    lines: &LineIndex,
    line: usize,
    problems: &mut Vec<Problem>,
) -> Vec<SinkConfig> {
    let Some(array) = value.get_ref().as_array() else {
        problems.push(Problem::at(
            line,
            "`sinks` must be an array of tables ([[sinks]])",
        ));
        return Vec::new();
    };
    let mut sinks = Vec::new();
    for item in array.iter() {
        let line = lines.line(item.span().start);
        let Ok((kind, _, rest)) = kind_of(item, lines, line, "[[sinks]]", crate::sinks::KINDS)
            .map_err(|p| problems.push(p))
        else {
            continue;
        };
        let section = Section::new("sinks", line, &rest, lines);
        sinks.extend(SinkConfig::read(&kind, rest, lines, &section, problems).flatten());
    }
    sinks
}

/// The first line that assigns `key`, for semantic problems found after deserialisation.
fn find_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            l.strip_prefix(key).is_some_and(|rest| {
                rest.trim_start().starts_with('=') || (key == "source" && rest.is_empty())
            }) || l == format!("[{key}]")
        })
        .map(|i| i + 1)
}

mod defaults {
    pub fn risk_every() -> super::Dur {
        super::Dur::secs(60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The problems a config that must not parse has, as `(line, message)`.
    fn problems(text: &str) -> Vec<(Option<usize>, String)> {
        let err = PipelineConfig::parse(text, None).unwrap_err();
        err.problems
            .into_iter()
            .map(|p| (p.line, p.message))
            .collect()
    }

    #[test]
    fn durations_parse_and_print() {
        assert_eq!(Dur::parse("15m"), Ok(Dur::secs(900)));
        assert_eq!(Dur::parse("1h30m"), Ok(Dur::secs(5400)));
        assert_eq!(Dur::parse("500ms").map(Dur::millis), Ok(500));
        assert_eq!(Dur::parse("2d"), Ok(Dur::secs(172_800)));
        for bad in ["", "15", "m", "1.5h", "-1h", "1 h", "1y"] {
            assert!(Dur::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(Dur::secs(5400).to_string(), "90m");
        assert_eq!(Dur::secs(7200).to_string(), "2h");
    }

    #[test]
    fn the_archive_key_file_is_relative_to_the_pipeline_and_stays_out_of_its_copy() {
        let text = "[source]\nkind = \"simulator\"\n[archive]\nkey_file = \"keys/archive.key\"\n";
        let c = PipelineConfig::parse(text, Some(Path::new("/etc/vigil"))).unwrap();
        assert_eq!(
            c.archive.key_file.as_deref(),
            Some(Path::new("/etc/vigil/keys/archive.key"))
        );
        // A replay is given its key: the archive's copy of the pipeline does not say where
        // the key is kept.
        assert!(!crate::archive::pipeline_for_replay(text).contains("key_file"));
        let p = problems("[source]\nkind = \"simulator\"\n[archive]\nkey = \"abc\"\n");
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(p[0].1.contains("key_file"), "{p:?}");
    }

    #[test]
    fn the_board_listens_beyond_loopback_only_with_a_sign_in_and_tls() {
        let source = "[source]\nkind = \"simulator\"\n";
        let c = PipelineConfig::parse(
            &format!("{source}[board]\nlisten = \"127.0.0.1:8080\"\n"),
            None,
        )
        .unwrap();
        assert_eq!(c.board.map(|b| b.listen.port()), Some(8080));
        let p = problems(&format!("{source}[board]\nlisten = \"0.0.0.0:8080\"\n"));
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].0, Some(3));
        assert!(
            p[0].1.contains("without a sign-in (users) and TLS"),
            "{p:?}"
        );
        let p = problems(&format!("{source}[board]\nlisten = \"localhost\"\n"));
        assert!(p[0].1.contains("socket address"), "{p:?}");
        let p = problems(&format!(
            "{source}[board]\nlisten = \"127.0.0.1:8443\"\ntls_cert = \"board.crt\"\n"
        ));
        assert!(p[0].1.contains("give both tls_cert and tls_key"), "{p:?}");
        let served = format!(
            "{source}[board]\nlisten = \"0.0.0.0:8443\"\nusers = \"users\"\n\
             tls_cert = \"/etc/vigil/board.crt\"\ntls_key = \"board.key\"\n"
        );
        let c = PipelineConfig::parse(&served, Some(Path::new("/srv/vigil"))).unwrap();
        let board = c.board.unwrap();
        assert_eq!(board.users.as_deref(), Some(Path::new("/srv/vigil/users")));
        assert_eq!(
            board.tls(),
            Some((
                Path::new("/etc/vigil/board.crt"),
                Path::new("/srv/vigil/board.key")
            ))
        );
        assert!(!crate::archive::pipeline_for_replay(&served).contains("users"));
    }

    #[test]
    fn defaults_fill_what_is_left_out() {
        let c = PipelineConfig::parse(
            "[source]\nkind = \"jsonl\"\npath = \"x.jsonl\"\n",
            Some(Path::new("/p")),
        )
        .unwrap();
        assert_eq!(
            c.source,
            SourceConfig::Jsonl(crate::sources::jsonl::JsonlConfig {
                path: PathBuf::from("/p/x.jsonl"),
                format: Default::default(),
            })
        );
        assert_eq!(c.time, TimeConfig::default());
        assert_eq!(c.sinks, vec![SinkConfig::Console(Default::default())]);
        assert_eq!(
            c.staleness.limit(Parameter::Temperature),
            Duration::from_secs(6 * 3600)
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let text = "\
workers = 0

[source]
kind = \"simulator\"
patients = 10
colour = \"blue\"

[time]
tick = \"1 second\"

[staleness]
rr = \"0s\"

[alerts]
deescalate_after = 0

[bogus]
x = 1
";
        let got = problems(text);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert_eq!(got[0].0, Some(1)); // workers
        assert!(got[0].1.contains("`workers` must be between 1 and 256"));
        assert_eq!(got[1].0, Some(6)); // colour
        assert!(got[1].1.contains("colour"), "{}", got[1].1);
        assert_eq!(got[2].0, Some(9)); // tick
        assert!(
            got[2].1.contains("\"1 second\" is not a duration"),
            "{}",
            got[2].1
        );
        assert_eq!(got[3].0, Some(12)); // rr
        assert_eq!(got[4].0, Some(15)); // deescalate_after
        assert_eq!(got[5].0, Some(17)); // bogus
        assert!(got[5].1.starts_with("unknown section `bogus`"));
    }

    #[test]
    fn the_clock_settings_are_checked() {
        let c = PipelineConfig::parse("[source]\nkind = \"simulator\"\n", None).unwrap();
        assert_eq!(c.time.clock_devices, 2);
        assert_eq!(c.time.max_time_jump, Dur::secs(900));
        assert_eq!(c.time.max_clock_skew, Dur::secs(300));
        let text = "[source]\nkind = \"simulator\"\n\n[time]\nallowed_lateness = \"20m\"\n\
                    clock_devices = 0\nmax_time_jump = \"10m\"\nmax_clock_skew = \"0s\"\n";
        let got = problems(text);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0].0, Some(6));
        assert!(
            got[0]
                .1
                .contains("`clock_devices` must be between 1 and 16")
        );
        assert_eq!(got[1].0, Some(7));
        assert!(
            got[1]
                .1
                .contains("must be longer than `allowed_lateness` 20m")
        );
        assert_eq!(got[2].0, Some(8));
    }

    #[test]
    fn kafka_settings_are_checked_before_anything_connects() {
        let text = "\
[source]
kind = \"kafka\"
brokers = \"localhost\"
topic = \"vitals/ward 3\"
start = \"beginning\"
dead_letter_topic = \"vitals/ward 3\"

[source.properties]
\"group.id\" = \"other\"
\"socket.timeout.ms\" = \"soon\"
\"no.such.setting\" = \"1\"

[[sinks]]
kind = \"kafka\"
brokers = \"127.0.0.1:9092\"
topic = \"alerts\"

[sinks.properties]
\"linger.ms\" = \"-5\"

[[sinks]]
kind = \"jsonl\"
path = \"a.jsonl\"
colour = \"red\"
";
        let got = problems(text);
        let at = |line: usize, part: &str| {
            assert!(
                got.iter()
                    .any(|(l, m)| *l == Some(line) && m.contains(part)),
                "no problem at line {line} with {part:?} in {got:#?}"
            );
        };
        at(3, "\"localhost\" has no port");
        at(4, "`topic` \"vitals/ward 3\" has '/'");
        at(5, "`start` must be \"earliest\" or \"latest\"");
        at(6, "`dead_letter_topic` is the topic read");
        at(9, "`group.id` is Vigil's to set: write `group`");
        at(10, "librdkafka refuses `socket.timeout.ms` = \"soon\"");
        at(11, "librdkafka refuses `no.such.setting`");
        at(19, "librdkafka refuses `linger.ms` = \"-5\"");
        at(24, "colour");
    }

    #[test]
    fn syntax_errors_have_lines() {
        let err = PipelineConfig::parse("[source]\nkind = \"simulator\npatients = 3\n", None)
            .unwrap_err();
        assert_eq!(err.problems[0].line, Some(2), "{err}");
    }

    #[test]
    fn a_missing_source_is_a_problem() {
        let err = PipelineConfig::parse("workers = 2\n", None).unwrap_err();
        assert!(err.problems[0].message.starts_with("missing [source]"));
        let err = PipelineConfig::parse("[source]\nkind = \"kafka2\"\n", None).unwrap_err();
        assert_eq!(err.problems[0].line, Some(2), "{err}");
    }
}
