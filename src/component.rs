//! What every configurable part of a pipeline shares: durations as written (`15m`), problems
//! with their line, and a section of the pipeline file with the line of each of its keys, so that
//! a source's or sink's config can say where a value it rejects was written.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

/// A duration written as `500ms`, `30s`, `15m`, `4h`, `1d` or a combination (`1h30m`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl Dur {
    pub const fn secs(s: u64) -> Dur {
        Dur(Duration::from_secs(s))
    }

    /// Milliseconds.
    pub fn millis(self) -> u64 {
        self.0.as_millis() as u64
    }

    /// Parses `1h30m`, `15m`, `500ms`, …
    pub fn parse(text: &str) -> Result<Dur, String> {
        let bad = || {
            format!(
                "{text:?} is not a duration (write a number and a unit: 500ms, 30s, 15m, 4h, 1d, or 1h30m)"
            )
        };
        let mut total: u64 = 0;
        let mut rest = text.trim();
        if rest.is_empty() {
            return Err(bad());
        }
        while !rest.is_empty() {
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            if digits == 0 {
                return Err(bad());
            }
            let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
            rest = &rest[digits..];
            let unit_len = rest
                .find(|c: char| c.is_ascii_digit())
                .unwrap_or(rest.len());
            let ms = match &rest[..unit_len] {
                "ms" => 1,
                "s" => 1000,
                "m" | "min" => 60_000,
                "h" => 3_600_000,
                "d" => 86_400_000,
                _ => return Err(bad()),
            };
            total = n
                .checked_mul(ms)
                .and_then(|x| total.checked_add(x))
                .ok_or_else(bad)?;
            rest = &rest[unit_len..];
        }
        Ok(Dur(Duration::from_millis(total)))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.millis();
        match ms {
            0 => f.write_str("0s"),
            _ if ms.is_multiple_of(3_600_000) => write!(f, "{}h", ms / 3_600_000),
            _ if ms.is_multiple_of(60_000) => write!(f, "{}m", ms / 60_000),
            _ if ms.is_multiple_of(1000) => write!(f, "{}s", ms / 1000),
            _ => write!(f, "{ms}ms"),
        }
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        let text = String::deserialize(deserializer)?;
        Dur::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// One problem in a pipeline file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line, when known.
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl Problem {
    pub fn at(line: usize, message: impl Into<String>) -> Problem {
        Problem {
            line: Some(line),
            message: message.into(),
        }
    }
}

/// A section of the pipeline file (`[source]`, one `[[sinks]]`): its name, its line, and the
/// line of each key in it (a nested table's keys as `table.key`).
#[derive(Clone, Debug)]
pub struct Section {
    name: String,
    line: usize,
    keys: Vec<(String, usize)>,
}

impl Section {
    /// The section `name` at `line`, whose table is `value`.
    pub fn new(
        name: &str,
        line: usize,
        value: &Spanned<DeValue<'_>>,
        lines: &LineIndex,
    ) -> Section {
        let mut keys = Vec::new();
        collect_keys("", value, lines, &mut keys);
        Section {
            name: name.to_owned(),
            line,
            keys,
        }
    }

    /// The section's own line.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The line where `key` is written (`properties.sasl.mechanisms` for a nested one), or the
    /// section's own line when it is not written.
    pub fn line_of(&self, key: &str) -> usize {
        self.keys
            .iter()
            .find(|(k, _)| k == key)
            .map_or(self.line, |(_, line)| *line)
    }

    /// A problem with `key`, at its line, naming the section.
    pub fn problem(&self, key: &str, message: impl fmt::Display) -> Problem {
        Problem::at(self.line_of(key), format!("[{}] {message}", self.name))
    }
}

fn collect_keys(
    prefix: &str,
    value: &Spanned<DeValue<'_>>,
    lines: &LineIndex,
    out: &mut Vec<(String, usize)>,
) {
    let Some(table) = value.get_ref().as_table() else {
        return;
    };
    for (key, value) in table.iter() {
        let name = format!("{prefix}{}", key.get_ref());
        out.push((name.clone(), lines.line(key.span().start)));
        collect_keys(&format!("{name}."), value, lines, out);
    }
}

/// Deserialises one top-level section, recording a problem with its line on failure.
pub fn deserialise<T: DeserializeOwned>(
    value: Spanned<DeValue<'_>>,
    lines: &LineIndex,
    line: usize,
    name: &str,
    problems: &mut Vec<Problem>,
) -> Option<T> {
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            problems.push(Problem {
                line: Some(e.span().map_or(line, |s| lines.line(s.start))),
                message: format!("[{name}] {}", e.message().trim()),
            });
            None
        }
    }
}

/// Byte offset → line number.
pub struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    pub fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// Declares the kinds of a component (the sources, the sinks), each by the `kind` a pipeline
/// file names it with and the config type that reads it, which implements the component's kind
/// trait (`validate`, `resolve_paths`, `build`): the enum of them, the list of kinds, and reading
/// a section by its kind, with every problem at its line.
macro_rules! components {
    (
        $(#[$enum_doc:meta])*
        $config:ident: dyn $kind_trait:ident, in $section:literal, kinds $kinds:ident {
            $($(#[$doc:meta])* $kind:literal => $variant:ident($ty:ty),)*
        }
    ) => {
        $(#[$enum_doc])*
        #[derive(Clone, Debug, PartialEq)]
        pub enum $config {
            $($(#[$doc])* $variant($ty),)*
        }

        /// Every `kind` the section may have.
        pub const $kinds: &[&str] = &[$($kind),*];

        impl $config {
            /// Reads a section of kind `kind` (its table without `kind`); `None` when no kind
            /// has that name. Every problem goes to `problems`, with its line.
            pub fn read(
                kind: &str,
                table: toml::Spanned<toml::de::DeValue<'_>>,
                lines: &$crate::component::LineIndex,
                section: &$crate::component::Section,
                problems: &mut Vec<$crate::component::Problem>,
            ) -> Option<Option<$config>> {
                match kind {
                    $($kind => Some(
                        $crate::component::deserialise::<$ty>(
                            table,
                            lines,
                            section.line(),
                            $section,
                            problems,
                        )
                        .map(|config| {
                            problems.extend($kind_trait::validate(&config, section));
                            $config::$variant(config)
                        }),
                    ),)*
                    _ => None,
                }
            }

            /// Its kind.
            pub fn kind(&self) -> &dyn $kind_trait {
                match self {
                    $($config::$variant(config) => config,)*
                }
            }

            /// Its kind, to resolve its paths.
            pub fn kind_mut(&mut self) -> &mut dyn $kind_trait {
                match self {
                    $($config::$variant(config) => config,)*
                }
            }
        }
    };
}

pub(crate) use components;
