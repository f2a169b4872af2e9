//! Alerts as JSON lines in a file, one object per line in the deterministic order; also the
//! writer of the dead-letter and late files.
//!
//! A run that resumes over its archive goes on from what the earlier run wrote: a last line a
//! crash tore (no newline) is cut off, and the alerts not yet delivered are appended, so the file
//! is whole and holds each delivered alert (one delivered just before a crash may come twice,
//! with the same `id`). A fresh run starts the file anew.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{AlertSink, SinkContext, SinkError, SinkKind, with_path};
use crate::alerting::Alert;

/// The `[[sinks]]` of a JSON lines file.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonlConfig {
    pub path: PathBuf,
}

impl SinkKind for JsonlConfig {
    fn resolve_paths(&mut self, base: &Path) {
        if self.path.is_relative() {
            self.path = base.join(&self.path);
        }
    }

    fn build(&self, cx: &SinkContext) -> Result<Box<dyn AlertSink>, SinkError> {
        let file = match cx.resume {
            true => JsonLines::resume(&self.path),
            false => JsonLines::create(&self.path),
        };
        file.map(|f| Box::new(f) as Box<dyn AlertSink>)
            .map_err(|source| SinkError {
                sink: format!("alerts file {}", self.path.display()),
                source,
            })
    }
}

/// One JSON object per line in a file.
pub struct JsonLines {
    path: PathBuf,
    out: BufWriter<File>,
}

impl JsonLines {
    /// Creates (or truncates) `path`, creating its directory if needed.
    pub fn create(path: &Path) -> io::Result<JsonLines> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| with_path(e, dir))?;
        }
        let file = File::create(path).map_err(|e| with_path(e, path))?;
        Ok(JsonLines {
            path: path.to_owned(),
            out: BufWriter::new(file),
        })
    }

    /// Opens `path` to go on from what it holds: a torn last line is cut off first. A file that
    /// does not exist is created.
    pub fn resume(path: &Path) -> io::Result<JsonLines> {
        if !path.exists() {
            return JsonLines::create(path);
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(|e| with_path(e, path))?;
        let whole = whole_lines_len(&mut file).map_err(|e| with_path(e, path))?;
        file.set_len(whole).map_err(|e| with_path(e, path))?;
        Ok(JsonLines {
            path: path.to_owned(),
            out: BufWriter::new(file),
        })
    }

    /// Writes one record as a JSON line.
    pub fn write_record<T: Serialize>(&mut self, record: &T) -> io::Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The length of a file up to and including its last newline.
fn whole_lines_len(file: &mut File) -> io::Result<u64> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut end = len;
    let mut block = vec![0u8; 64 * 1024];
    while end > 0 {
        let start = end.saturating_sub(block.len() as u64);
        let n = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut block[..n])?;
        if let Some(i) = block[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

impl AlertSink for JsonLines {
    fn write(&mut self, alerts: &[Alert]) -> io::Result<()> {
        for alert in alerts {
            self.write_record(alert)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()?;
        self.out.get_ref().sync_data()
    }

    fn describe(&self) -> String {
        format!("alerts file {}", self.path.display())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_file_loses_its_torn_last_line_and_goes_on() {
        let dir = std::env::temp_dir().join(format!("vigil-jsonl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("alerts.jsonl");
        std::fs::write(&path, "{\"a\":1}\n{\"a\":2}\n{\"a\":3,\"tor").unwrap();
        let mut file = JsonLines::resume(&path).unwrap();
        file.write_record(&serde_json::json!({"a": 3})).unwrap();
        AlertSink::flush(&mut file).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"a\":1}\n{\"a\":2}\n{\"a\":3}\n");
        // A whole file is kept whole; a missing one is created.
        drop(file);
        JsonLines::resume(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        std::fs::remove_file(&path).unwrap();
        let mut fresh = JsonLines::resume(&path).unwrap();
        AlertSink::flush(&mut fresh).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
