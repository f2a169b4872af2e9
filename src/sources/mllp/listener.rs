//! The MLLP listener's threads: one accepts connections, one per connection reads frames,
//! logs each message durably, hands it to the pipeline and answers with an ACK.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::intake::IntakeLog;
use crate::formats::hl7v2::encode::escape;
use crate::formats::hl7v2::{MLLP_END, MLLP_START, parse};
use crate::formats::{self, InputFormat, MAX_HL7_BYTES};
use crate::observation::Interner;

/// What a connection shares: the log (one writer at a time: record order is channel order),
/// where messages go, and when to stop.
struct Shared {
    log: Mutex<IntakeLog>,
    to_pipeline: SyncSender<(u64, Vec<u8>)>,
    stops: [Arc<AtomicBool>; 2],
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stops.iter().any(|s| s.load(Ordering::Relaxed))
    }
}

/// Starts accepting connections on `socket`.
pub(super) fn spawn(
    socket: TcpListener,
    log: IntakeLog,
    to_pipeline: SyncSender<(u64, Vec<u8>)>,
    run_stop: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
) -> std::io::Result<JoinHandle<()>> {
    socket.set_nonblocking(true)?;
    let shared = Arc::new(Shared {
        log: Mutex::new(log),
        to_pipeline,
        stops: [run_stop, stop],
    });
    std::thread::Builder::new()
        .name("mllp-accept".into())
        .spawn(move || accept(&socket, &shared))
}

fn accept(socket: &TcpListener, shared: &Arc<Shared>) {
    let mut connections = Vec::new();
    while !shared.stopping() {
        match socket.accept() {
            Ok((stream, _)) => {
                let shared = Arc::clone(shared);
                let spawned = std::thread::Builder::new()
                    .name("mllp-connection".into())
                    .spawn(move || serve(stream, &shared));
                connections.extend(spawned.ok());
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
        connections.retain(|c: &JoinHandle<()>| !c.is_finished());
    }
    for c in connections {
        let _ = c.join();
    }
}

/// One connection: frames in, ACKs out, until the sender closes or the run stops. A frame not
/// finished when the connection ends was never acknowledged, and is dropped.
fn serve(mut stream: TcpStream, shared: &Shared) {
    if stream.set_nonblocking(false).is_err()
        || stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .is_err()
    {
        return;
    }
    let mut frames = Frames::default();
    let mut buf = vec![0u8; 64 << 10];
    while !shared.stopping() {
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        };
        for frame in frames.push(&buf[..n]) {
            let ack = match frame {
                Ok(message) => receive(&message, shared),
                Err(bytes) => ack(
                    &[],
                    "AR",
                    &format!("message over the limit of {MAX_HL7_BYTES} bytes ({bytes} bytes)"),
                ),
            };
            let mut framed = vec![MLLP_START];
            framed.extend_from_slice(ack.as_bytes());
            framed.extend_from_slice(&[MLLP_END, b'\r']);
            if stream.write_all(&framed).is_err() {
                return;
            }
        }
    }
}

/// Logs a message (durably), hands it on, and says how it was read.
fn receive(message: &[u8], shared: &Shared) -> String {
    let mut decoded = Vec::new();
    formats::decode(
        InputFormat::Hl7v2,
        message,
        &mut Interner::default(),
        &mut decoded,
    );
    let whole = decoded
        .iter()
        .find_map(|d| d.as_ref().err().filter(|p| p.entry.is_none()));
    let parts: Vec<String> = decoded
        .iter()
        .filter_map(|d| d.as_ref().err())
        .map(ToString::to_string)
        .collect();
    let logged = match shared.log.lock() {
        Ok(mut log) => log.append(message).map(|record| {
            // Sent under the lock: the pipeline gets records in log order.
            let _ = shared.to_pipeline.send((record, message.to_vec()));
        }),
        Err(_) => Err(std::io::Error::other("the intake log's lock is poisoned")),
    };
    match (logged, whole) {
        (Err(e), _) => ack(message, "AE", &format!("not stored, send again: {e}")),
        (Ok(()), Some(problem)) => ack(message, "AR", &problem.to_string()),
        (Ok(()), None) if !parts.is_empty() => ack(message, "AE", &parts.join("; ")),
        (Ok(()), None) => ack(message, "AA", ""),
    }
}

/// An HL7 ACK for `message` (whatever of its header can be read).
pub(super) fn ack(message: &[u8], code: &str, text: &str) -> String {
    let text_of = String::from_utf8_lossy(message);
    let parsed = parse::parse(&text_of).ok();
    let field = |n: usize, c: usize| {
        parsed
            .as_ref()
            .and_then(|m| {
                let msh = m.segments.first()?;
                msh.component(&m.delimiters, n, 0, c)
                    .ok()
                    .map(|s| escape(&s))
            })
            .unwrap_or_default()
    };
    let version = match field(12, 1) {
        v if v.is_empty() => "2.6".to_owned(),
        v => v,
    };
    // To the second: HL7's DTM carries at most four fraction digits.
    let now = crate::formats::hl7v2::encode::dtm(crate::observation::EventTime::from_micros(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64 * 1_000_000),
    ));
    let control = field(10, 1);
    let text: String = escape(text).chars().take(2000).collect();
    let mut out = format!(
        "MSH|^~\\&|VIGIL|VIGIL|{}|{}|{now}||ACK^{}^ACK|ACK{control}|P|{version}\rMSA|{code}|{control}|{text}\r",
        field(3, 1),
        field(4, 1),
        field(9, 2),
    );
    if code != "AA" {
        // HL7 table 0357, by what went wrong.
        let error = match (code, text.as_str()) {
            (_, t) if t.starts_with("not stored") => "207^Application internal error^HL70357",
            (_, t) if t.contains("(MSH-9)") => "200^Unsupported message type^HL70357",
            (_, t) if t.contains("(MSH-12)") => "203^Unsupported version id^HL70357",
            ("AR", _) => "100^Segment sequence error^HL70357",
            _ => "102^Data type error^HL70357",
        };
        out.push_str(&format!("ERR|||{error}|E||||{text}\r"));
    }
    out
}

/// Cuts a connection's bytes into MLLP frames.
#[derive(Default)]
struct Frames {
    current: Vec<u8>,
    in_frame: bool,
    /// Bytes of an oversize frame, dropped.
    dropped: usize,
}

impl Frames {
    /// The frames `bytes` completes: each message, or the size of one over the limit.
    fn push(&mut self, bytes: &[u8]) -> Vec<Result<Vec<u8>, usize>> {
        let mut out = Vec::new();
        for &b in bytes {
            match (self.in_frame, b) {
                (_, MLLP_START) => {
                    // A new start block abandons a frame never ended.
                    self.current.clear();
                    self.dropped = 0;
                    self.in_frame = true;
                }
                (true, MLLP_END) => {
                    self.in_frame = false;
                    out.push(match self.dropped {
                        0 => Ok(std::mem::take(&mut self.current)),
                        n => Err(n),
                    });
                    self.dropped = 0;
                }
                (true, b) if self.current.len() < MAX_HL7_BYTES => self.current.push(b),
                (true, _) => {
                    self.dropped += self.current.len() + 1;
                    self.current.clear();
                }
                // Outside a frame: the carriage return after an end block, or noise.
                (false, _) => {}
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_cut_whatever_the_reads_and_noise_between_them_is_ignored() {
        let stream = b"junk\x0bMSH|a\rPID|1\r\x1c\r\x0bMSH|b\x1c\r\x0bMSH|never ended";
        for size in [1, 3, 100] {
            let mut frames = Frames::default();
            let mut got = Vec::new();
            for chunk in stream.chunks(size) {
                got.extend(frames.push(chunk));
            }
            assert_eq!(
                got,
                vec![Ok(b"MSH|a\rPID|1\r".to_vec()), Ok(b"MSH|b".to_vec())],
                "{size}"
            );
        }
    }

    #[test]
    fn an_ack_names_the_message_it_answers_and_why() {
        let msg = b"MSH|^~\\&|GW|WARD|||20260105100000+0000||ORU^R01^ORU_R01|M-17|P|2.6\rPID|||p";
        let aa = ack(msg, "AA", "");
        assert!(aa.starts_with("MSH|^~\\&|VIGIL|VIGIL|GW|WARD|"), "{aa}");
        assert!(
            aa.contains("||ACK^R01^ACK|ACKM-17|P|2.6\rMSA|AA|M-17|\r"),
            "{aa}"
        );
        let ae = ack(msg, "AE", "segment 4 (OBX-6): missing | unit");
        assert!(
            ae.contains("MSA|AE|M-17|segment 4 (OBX-6): missing \\F\\ unit\r"),
            "{ae}"
        );
        assert!(
            ae.contains("\rERR|||102^Data type error^HL70357|E||||segment 4"),
            "{ae}"
        );
        // A message whose header cannot be read still gets an answer.
        assert!(ack(b"garbage", "AR", "bad").contains("MSA|AR||bad"));
    }
}
