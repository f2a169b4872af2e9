//! Files of FHIR or HL7 v2 messages, cut into messages as they are read, in bounded memory.
//!
//! - FHIR: JSON documents one after another: NDJSON (a resource a line, as Bulk Data writes it),
//!   pretty-printed documents, or both. A document ends where its outer brace closes; a line of
//!   something else ends at its line break. Its position is the line it starts on.
//! - HL7 v2: messages one after another, segments ended by `\r`, `\n` or `\r\n`, each message
//!   starting at an MSH segment, or MLLP frames (`0x0B … 0x1C 0x0D`). Batch envelopes (FHS, BHS,
//!   BTS, FTS) are skipped. Its position is the message's number in the file.
//!
//! A document or message over the format's limit is not kept in memory: it comes out as
//! [`Frame::Oversize`], and reading goes on after it.

use std::collections::VecDeque;
use std::io::BufRead;

use super::hl7v2::{MLLP_END, MLLP_START};
use super::{InputFormat, MAX_FHIR_BYTES, MAX_HL7_BYTES};

/// One message of a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Frame {
    /// Its bytes and position (FHIR: its first line; HL7: its number).
    Message { at: u64, bytes: Vec<u8> },
    /// A message over the limit, skipped: its position and size.
    Oversize { at: u64, bytes: u64 },
}

/// Cuts a file into messages of `format` (FHIR or HL7 v2).
pub struct Framer {
    format: InputFormat,
    ready: VecDeque<Frame>,
    /// The message being gathered, its position, and how many bytes past the limit were dropped.
    current: Vec<u8>,
    start: u64,
    dropped: u64,
    /// FHIR: lines read; the document's nesting depth and string state.
    line_no: u64,
    depth: u32,
    in_string: bool,
    escaped: bool,
    /// HL7: messages begun, and the segment being read.
    messages: u64,
    segment: Vec<u8>,
    pub bytes_read: u64,
    done: bool,
}

/// How much is read at a time.
const CHUNK: usize = 64 << 10;

impl Framer {
    pub fn new(format: InputFormat) -> Framer {
        Framer {
            format,
            ready: VecDeque::new(),
            current: Vec::new(),
            start: 0,
            dropped: 0,
            line_no: 1,
            depth: 0,
            in_string: false,
            escaped: false,
            messages: 0,
            segment: Vec::new(),
            bytes_read: 0,
            done: false,
        }
    }

    fn limit(&self) -> usize {
        match self.format {
            InputFormat::Fhir => MAX_FHIR_BYTES,
            _ => MAX_HL7_BYTES,
        }
    }

    /// The next message, `None` at the end of the file.
    pub fn next(&mut self, reader: &mut dyn BufRead) -> std::io::Result<Option<Frame>> {
        while self.ready.is_empty() && !self.done {
            let available = reader.fill_buf()?;
            if available.is_empty() {
                self.done = true;
                self.end_of_file();
                break;
            }
            // Scanned where it lies in the reader's buffer, then consumed.
            let n = available.len().min(CHUNK);
            match self.format {
                InputFormat::Fhir => self.fhir(&available[..n]),
                _ => self.hl7(&available[..n]),
            }
            reader.consume(n);
            self.bytes_read += n as u64;
        }
        Ok(self.ready.pop_front())
    }

    fn end_of_file(&mut self) {
        if self.format != InputFormat::Fhir {
            let segment = std::mem::take(&mut self.segment);
            self.hl7_segment(&segment);
        }
        if !self.current.iter().all(u8::is_ascii_whitespace) || self.dropped > 0 {
            self.emit();
        }
    }

    /// The gathered message (or its oversize marker) is ready; start afresh.
    fn emit(&mut self) {
        // The next message is about as long: no reallocation while it is gathered.
        let next = Vec::with_capacity(self.current.len().next_power_of_two());
        let frame = match self.dropped {
            0 => Frame::Message {
                at: self.start,
                bytes: std::mem::replace(&mut self.current, next),
            },
            n => Frame::Oversize {
                at: self.start,
                bytes: n + self.current.len() as u64,
            },
        };
        self.ready.push_back(frame);
        self.current.clear();
        self.dropped = 0;
        self.depth = 0;
        self.in_string = false;
        self.escaped = false;
    }

    fn keep(&mut self, bytes: &[u8]) {
        if self.dropped > 0 || self.current.len() + bytes.len() > self.limit() {
            self.dropped += (self.current.len() + bytes.len()) as u64;
            self.current.clear();
        } else {
            self.current.extend_from_slice(bytes);
        }
    }

    fn gathering(&self) -> bool {
        !self.current.is_empty() || self.dropped > 0
    }

    /// JSON documents: depth counting outside strings.
    fn fhir(&mut self, chunk: &[u8]) {
        let mut from = 0;
        for (i, &b) in chunk.iter().enumerate() {
            let outside = !self.gathering() && self.depth == 0 && from == i;
            if outside && b.is_ascii_whitespace() {
                from = i + 1;
                if b == b'\n' {
                    self.line_no += 1;
                }
                continue;
            }
            if outside {
                self.start = self.line_no;
            }
            if b == b'\n' {
                self.line_no += 1;
            }
            if self.in_string {
                match (self.escaped, b) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    _ => {}
                }
                continue;
            }
            let ends = match b {
                b'"' => {
                    self.in_string = true;
                    false
                }
                b'{' | b'[' => {
                    self.depth += 1;
                    false
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.depth == 0
                }
                // Something that is not a document ends at its line's end.
                b'\n' => self.depth == 0,
                _ => false,
            };
            if ends {
                self.keep(&chunk[from..=i]);
                from = i + 1;
                self.emit();
            }
        }
        if from < chunk.len() {
            self.keep(&chunk[from..]);
        }
    }

    /// HL7: gathers segments; an MSH segment or an MLLP end closes the message before it.
    fn hl7(&mut self, chunk: &[u8]) {
        let boundary = |b: &u8| matches!(*b, b'\r' | b'\n' | MLLP_END | MLLP_START);
        let mut rest = chunk;
        while let Some(i) = rest.iter().position(boundary) {
            self.extend_segment(&rest[..i]);
            let mut segment = std::mem::take(&mut self.segment);
            self.hl7_segment(&segment);
            // The segment's buffer is kept for the next one.
            segment.clear();
            self.segment = segment;
            if rest[i] == MLLP_END && self.gathering() {
                self.emit();
            }
            rest = &rest[i + 1..];
        }
        self.extend_segment(rest);
    }

    /// A segment is kept whole only up to the limit; the rest is counted.
    fn extend_segment(&mut self, bytes: &[u8]) {
        let room = (self.limit() + 1).saturating_sub(self.segment.len());
        let kept = bytes.len().min(room);
        self.segment.extend_from_slice(&bytes[..kept]);
        self.dropped += (bytes.len() - kept) as u64;
    }

    fn hl7_segment(&mut self, segment: &[u8]) {
        if segment.iter().all(u8::is_ascii_whitespace) && self.dropped == 0 {
            return;
        }
        let envelope = [b"FHS", b"BHS", b"BTS", b"FTS"]
            .iter()
            .any(|h| segment.starts_with(*h));
        if envelope {
            return;
        }
        if segment.starts_with(b"MSH") && self.gathering() {
            self.emit();
        }
        if !self.gathering() {
            self.messages += 1;
            self.start = self.messages;
        }
        self.keep(segment);
        self.keep(b"\r");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(format: InputFormat, text: &[u8], capacity: usize) -> Vec<Frame> {
        let mut reader = std::io::BufReader::with_capacity(capacity, text);
        let mut framer = Framer::new(format);
        let mut out = Vec::new();
        while let Some(f) = framer.next(&mut reader).unwrap() {
            out.push(f);
        }
        out
    }

    fn message(at: u64, s: &str) -> Frame {
        Frame::Message {
            at,
            bytes: s.as_bytes().to_vec(),
        }
    }

    #[test]
    fn fhir_documents_are_cut_whatever_their_layout() {
        let text = "{\"a\": 1}\n\n{\n  \"b\": \"}{\\\"\",\n  \"c\": [1, {\"d\": 2}]\n}\n{\"e\":3}{\"f\":4}\nnot json\n{\"g\": ";
        for capacity in [1, 3, 7, 1 << 16] {
            assert_eq!(
                frames(InputFormat::Fhir, text.as_bytes(), capacity),
                vec![
                    message(1, "{\"a\": 1}"),
                    message(3, "{\n  \"b\": \"}{\\\"\",\n  \"c\": [1, {\"d\": 2}]\n}"),
                    message(7, "{\"e\":3}"),
                    message(7, "{\"f\":4}"),
                    message(8, "not json\n"),
                    message(9, "{\"g\": "),
                ],
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn hl7_messages_are_cut_at_msh_and_mllp_frames_with_any_line_ends() {
        let text = b"MSH|a\rPID|1\rOBX|1\rMSH|b\r\nPID|2\n\x0bMSH|c\rPID|3\r\x1c\r\x0bMSH|d\r\x1c\rBHS|x\rMSH|e\rPID|5";
        for capacity in [1, 5, 1 << 16] {
            assert_eq!(
                frames(InputFormat::Hl7v2, text, capacity),
                vec![
                    message(1, "MSH|a\rPID|1\rOBX|1\r"),
                    message(2, "MSH|b\rPID|2\r"),
                    message(3, "MSH|c\rPID|3\r"),
                    message(4, "MSH|d\r"),
                    message(5, "MSH|e\rPID|5\r"),
                ],
                "capacity {capacity}"
            );
        }
    }

    #[test]
    fn an_oversize_message_is_skipped_and_reading_goes_on() {
        let mut text = b"MSH|a\rOBX|".to_vec();
        text.extend(std::iter::repeat_n(b'9', MAX_HL7_BYTES + 10));
        text.extend(b"\rMSH|b\r");
        let out = frames(InputFormat::Hl7v2, &text, 1 << 16);
        assert!(matches!(out[0], Frame::Oversize { at: 1, bytes } if bytes > MAX_HL7_BYTES as u64));
        assert_eq!(out[1], message(2, "MSH|b\r"));
        assert_eq!(out.len(), 2);
    }
}
