//! A file of observations: wire-format JSON lines (the same format as a Kafka message), or with
//! `format = "fhir"` FHIR R4 documents (NDJSON or pretty-printed), or with `format = "hl7v2"`
//! HL7 v2 messages (bare or MLLP-framed). Empty lines are skipped; every other line (document,
//! message) gives observations or rejections that name where they were: `line 17`,
//! `line 4 entry[2].resource.valueQuantity.unit`, `message 3 segment 7 (OBX-6)`.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{
    BuildContext, Built, Position, Progress, Rejected, Source, SourceError, SourceItem, SourceKind,
};
use crate::formats::frame::{Frame, Framer};
use crate::formats::{self, Decoded, InputFormat};
use crate::observation::{Interner, MAX_MESSAGE_BYTES, Observation};

/// The `[source]` of a file of wire-format JSON lines.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    /// The file; `-` is standard input.
    pub path: PathBuf,
    /// How it is written: `wire` (the default), `fhir` or `hl7v2`.
    #[serde(default)]
    pub format: InputFormat,
}

impl SourceKind for JsonlConfig {
    fn name(&self) -> String {
        let path = &self.path;
        format!(
            "jsonl:{}",
            path.file_name().map_or_else(
                || path.display().to_string(),
                |f| f.to_string_lossy().into_owned()
            )
        )
    }

    fn resolve_paths(&mut self, base: &Path) {
        if self.path.is_relative() && self.path != Path::new("-") {
            self.path = base.join(&self.path);
        }
    }

    fn format(&self) -> Option<InputFormat> {
        Some(self.format)
    }

    fn build(&self, _cx: &BuildContext) -> Result<Built, SourceError> {
        Ok(match self.format {
            InputFormat::Wire => Built::One(Box::new(JsonLines::open(&self.path)?)),
            format => Built::One(Box::new(Messages::open(&self.path, format)?)),
        })
    }
}

/// Reads observations from JSON lines.
pub struct JsonLines {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    line: u64,
    bytes_read: u64,
    total_bytes: Option<u64>,
    buffer: Vec<u8>,
    ids: Interner,
}

impl JsonLines {
    /// Opens a file; `-` reads standard input.
    pub fn open(path: &Path) -> Result<JsonLines, SourceError> {
        let (reader, total) = open_reader(path)?;
        Ok(JsonLines::from_reader(path, reader, total))
    }

    /// Reads from any buffered reader (tests, pipes).
    pub fn from_reader(
        path: &Path,
        reader: Box<dyn BufRead + Send>,
        total_bytes: Option<u64>,
    ) -> JsonLines {
        JsonLines {
            path: path.to_owned(),
            reader,
            line: 0,
            bytes_read: 0,
            ids: Interner::default(),
            total_bytes,
            buffer: Vec::new(),
        }
    }
}

impl Source for JsonLines {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        // At most one byte past the limit is read, so a huge line cannot exhaust memory.
        let limit = (MAX_MESSAGE_BYTES + 2) as u64;
        for _ in 0..max {
            // The common case: the whole line is in the reader's buffer, and is decoded where it
            // lies rather than copied out first.
            let io = |source| SourceError::Io {
                path: self.path.clone(),
                source,
            };
            let available = self.reader.fill_buf().map_err(io)?;
            if available.is_empty() {
                return Ok(false);
            }
            if let Some(end) = memchr::memchr(b'\n', available).filter(|&e| (e as u64) < limit) {
                self.line += 1;
                self.bytes_read += end as u64 + 1;
                push_line(trim_line(&available[..=end]), self.line, &mut self.ids, out);
                self.reader.consume(end + 1);
                continue;
            }
            self.buffer.clear();
            let n = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
                .map_err(io)?;
            if n == 0 {
                return Ok(false);
            }
            self.line += 1;
            self.bytes_read += n as u64;
            let oversize = !self.buffer.ends_with(b"\n") && n as u64 == limit;
            if oversize {
                // Skip the rest of the line.
                let mut skipped = Vec::new();
                let rest = self.reader.read_until(b'\n', &mut skipped).unwrap_or(0);
                self.bytes_read += rest as u64;
                out.push(SourceItem::Rejected(Rejected {
                    position: format!("line {}", self.line),
                    at: Some(Position::line(self.line)),
                    reason: format!(
                        "message is {} bytes, over the limit of {MAX_MESSAGE_BYTES} bytes",
                        n + rest
                    ),
                    field: None,
                    subject: None,
                    raw: None,
                }));
                continue;
            }
            push_line(trim_line(&self.buffer), self.line, &mut self.ids, out);
        }
        Ok(true)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.bytes_read,
            total: self.total_bytes,
        }
    }
}

/// Decodes line number `line` (without its line break) into `out`; a blank line gives nothing.
fn push_line(text: &[u8], line: u64, ids: &mut Interner, out: &mut Vec<SourceItem>) {
    if text.iter().all(u8::is_ascii_whitespace) {
        return;
    }
    match Observation::decode_with(text, ids) {
        Ok(obs) => out.push(SourceItem::Observation(obs, Some(Position::line(line)))),
        Err(rejection) => out.push(SourceItem::Rejected(Rejected::from_rejection(
            format!("line {line}"),
            Some(Position::line(line)),
            rejection,
            Some(String::from_utf8_lossy(text).into_owned()),
        ))),
    }
}

/// Opens a file (or standard input) for reading, with its length when known.
fn open_reader(path: &Path) -> Result<(Box<dyn BufRead + Send>, Option<u64>), SourceError> {
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    if path == Path::new("-") {
        return Ok((Box::new(BufReader::new(std::io::stdin())), None));
    }
    let file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    Ok((Box::new(BufReader::with_capacity(1 << 20, file)), Some(len)))
}

/// Reads FHIR documents or HL7 v2 messages from a file, each giving any number of observations.
pub struct Messages {
    path: PathBuf,
    format: InputFormat,
    reader: Box<dyn BufRead + Send>,
    framer: Framer,
    total_bytes: Option<u64>,
    ids: Interner,
    decoded: Vec<Decoded>,
}

impl Messages {
    /// Opens a file of `format`; `-` reads standard input.
    pub fn open(path: &Path, format: InputFormat) -> Result<Messages, SourceError> {
        let (reader, total_bytes) = open_reader(path)?;
        Ok(Messages::from_reader(path, format, reader, total_bytes))
    }

    /// Reads from any buffered reader (tests, pipes).
    pub fn from_reader(
        path: &Path,
        format: InputFormat,
        reader: Box<dyn BufRead + Send>,
        total_bytes: Option<u64>,
    ) -> Messages {
        Messages {
            path: path.to_owned(),
            format,
            reader,
            framer: Framer::new(format),
            total_bytes,
            ids: Interner::default(),
            decoded: Vec::new(),
        }
    }

    /// How a position in this file is named: a FHIR document by its first line, an HL7 v2
    /// message by its number.
    fn label(&self, at: u64) -> String {
        match self.format {
            InputFormat::Hl7v2 => format!("message {at}"),
            _ => format!("line {at}"),
        }
    }
}

impl Source for Messages {
    fn fill(&mut self, max: usize, out: &mut Vec<SourceItem>) -> Result<bool, SourceError> {
        let start = out.len();
        while out.len() - start < max {
            let frame = self
                .framer
                .next(&mut self.reader)
                .map_err(|source| SourceError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            let Some(frame) = frame else {
                return Ok(false);
            };
            match frame {
                Frame::Message { at, bytes } => {
                    let label = self.label(at);
                    self.decoded.clear();
                    formats::decode(self.format, &bytes, &mut self.ids, &mut self.decoded);
                    let position = Position::line(at);
                    super::push_decoded(&label, position, &bytes, self.decoded.drain(..), out);
                }
                Frame::Oversize { at, bytes } => out.push(SourceItem::Rejected(Rejected {
                    position: self.label(at),
                    at: Some(Position::line(at)),
                    reason: format!(
                        "{} is {bytes} bytes, over the limit of {} bytes",
                        match self.format {
                            InputFormat::Hl7v2 => "message",
                            _ => "document",
                        },
                        match self.format {
                            InputFormat::Hl7v2 => formats::MAX_HL7_BYTES,
                            _ => formats::MAX_FHIR_BYTES,
                        }
                    ),
                    field: None,
                    subject: None,
                    raw: None,
                })),
            }
        }
        Ok(true)
    }

    fn progress(&self) -> Progress {
        Progress {
            done: self.framer.bytes_read,
            total: self.total_bytes,
        }
    }
}

fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_observations_and_names_the_line_of_each_rejection() {
        let text = "{\"patient\":\"p1\",\"time\":\"2026-01-01T00:00:00Z\",\"vital\":\"heart_rate\",\"value\":80,\"unit\":\"/min\"}\n\
                    \n\
                    not json\r\n\
                    {\"patient\":\"p1\",\"time\":\"2026-01-01T00:00:01Z\",\"vital\":\"heart_rate\",\"value\":900,\"unit\":\"/min\"}";
        let mut source = JsonLines::from_reader(Path::new("t"), Box::new(text.as_bytes()), None);
        let mut out = Vec::new();
        while source.fill(2, &mut out).unwrap() {}
        assert_eq!(out.len(), 3);
        assert!(matches!(out[0], SourceItem::Observation(_, Some(p)) if p == Position::line(1)));
        let SourceItem::Rejected(r) = &out[1] else {
            panic!()
        };
        assert_eq!(r.position, "line 3");
        assert_eq!(r.raw.as_deref(), Some("not json"));
        let SourceItem::Rejected(r) = &out[2] else {
            panic!()
        };
        assert_eq!(r.position, "line 4");
        assert_eq!(r.field, Some("value"));
        assert_eq!(r.subject.as_ref().map(|s| s.patient.as_str()), Some("p1"));
    }

    #[test]
    fn lines_across_the_read_buffer_give_what_whole_lines_give() {
        let line = |s: u32| {
            format!(
                "{{\"patient\":\"p{s}\",\"time\":\"2026-01-01T00:00:{:02}Z\",\"vital\":\"heart_rate\",\"value\":{},\"unit\":\"/min\"}}",
                s % 60,
                60 + s
            )
        };
        let mut text = String::new();
        for s in 0..40 {
            text.push_str(&line(s));
            text.push_str(if s % 3 == 0 { "\r\n" } else { "\n" });
            if s % 7 == 0 {
                text.push_str("{\"patient\":\"p1\",\"vital\":\"nope\"}\n\n");
            }
        }
        text.push_str(&line(99)); // no final line break
        let read = |capacity: usize| {
            let reader =
                std::io::BufReader::with_capacity(capacity, std::io::Cursor::new(text.clone()));
            let mut source = JsonLines::from_reader(Path::new("t"), Box::new(reader), None);
            let mut out = Vec::new();
            while source.fill(5, &mut out).unwrap() {}
            (out, source.progress().done)
        };
        let (whole, bytes) = read(1 << 16);
        assert_eq!(whole.len(), 40 + 6 + 1);
        assert_eq!(bytes, text.len() as u64);
        // A buffer shorter than a line: every line is read across it.
        for capacity in [7, 64, 150, 1000] {
            assert_eq!(
                read(capacity),
                (whole.clone(), bytes),
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn an_oversize_line_is_rejected_without_reading_it_into_memory() {
        let big = format!("{}\n{{}}\n", "x".repeat(3 * MAX_MESSAGE_BYTES));
        let mut source = JsonLines::from_reader(
            Path::new("t"),
            Box::new(std::io::Cursor::new(big.into_bytes())),
            None,
        );
        let mut out = Vec::new();
        while source.fill(10, &mut out).unwrap() {}
        assert_eq!(out.len(), 2);
        let SourceItem::Rejected(r) = &out[0] else {
            panic!()
        };
        assert!(
            r.reason.starts_with("message is 196609 bytes"),
            "{}",
            r.reason
        );
        let SourceItem::Rejected(r) = &out[1] else {
            panic!()
        };
        assert_eq!(r.position, "line 2");
    }
}
