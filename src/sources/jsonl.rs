//! A file of wire-format observations, one JSON object per line (the same format as a Kafka
//! message). Empty lines are skipped; every other line is an observation or a rejection that
//! names its line number.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use super::{Position, Progress, Rejected, Source, SourceError, SourceItem};
use crate::observation::{Interner, MAX_MESSAGE_BYTES, Observation};

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
        let io = |source| SourceError::Io {
            path: path.to_owned(),
            source,
        };
        let (reader, total): (Box<dyn BufRead + Send>, Option<u64>) = if path == Path::new("-") {
            (Box::new(BufReader::new(std::io::stdin())), None)
        } else {
            let file = File::open(path).map_err(io)?;
            let len = file.metadata().map_err(io)?.len();
            (Box::new(BufReader::with_capacity(1 << 20, file)), Some(len))
        };
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
        for _ in 0..max {
            self.buffer.clear();
            // Read at most one byte past the limit, so a huge line cannot exhaust memory.
            let limit = (MAX_MESSAGE_BYTES + 2) as u64;
            let n = (&mut self.reader)
                .take(limit)
                .read_until(b'\n', &mut self.buffer)
                .map_err(|source| SourceError::Io {
                    path: self.path.clone(),
                    source,
                })?;
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
            let text = trim_line(&self.buffer);
            if text.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            match Observation::decode_with(text, &mut self.ids) {
                Ok(obs) => out.push(SourceItem::Observation(
                    obs,
                    Some(Position::line(self.line)),
                )),
                Err(rejection) => out.push(SourceItem::Rejected(Rejected::from_rejection(
                    format!("line {}", self.line),
                    Some(Position::line(self.line)),
                    rejection,
                    Some(String::from_utf8_lossy(text).into_owned()),
                ))),
            }
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
