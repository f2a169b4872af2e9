//! The MLLP listener's intake log: every message received, appended and fsynced before it is
//! acknowledged, so that an `AA` means the message survives a crash; and how far the pipeline
//! has committed, so that a restart reads on from there.
//!
//! The log is a file of records: a 4-byte little-endian length, a 4-byte FNV-1a checksum of the
//! bytes, the message. A crash while appending leaves a torn last record, which was never
//! acknowledged; opening the log cuts it off. A whole record that does not check is a failed
//! disk: the log is refused rather than cut. A record's number (0-based) is its offset in the
//! archive (partition 0), and `<log>.committed` holds the number of the first record not yet
//! committed, written atomically.

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// The intake log, open for appending.
pub struct IntakeLog {
    path: PathBuf,
    file: File,
    /// Records in the log.
    records: u64,
}

/// One record's header: length and checksum.
const HEADER: usize = 8;

fn checksum(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

impl IntakeLog {
    /// Opens (or creates) the log at `path`, cutting off a torn last record; its directory is
    /// created if needed.
    pub fn open(path: &Path) -> std::io::Result<IntakeLog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir)?;
        }
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let (records, good) = scan(&mut file)?;
        if good < file.metadata()?.len() {
            file.set_len(good)?;
            file.sync_all()?;
        }
        Ok(IntakeLog {
            path: path.to_owned(),
            file,
            records,
        })
    }

    /// Records in the log.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends a message and makes it durable; returns its record number.
    pub fn append(&mut self, message: &[u8]) -> std::io::Result<u64> {
        let mut record = Vec::with_capacity(HEADER + message.len());
        record.extend_from_slice(&(message.len() as u32).to_le_bytes());
        record.extend_from_slice(&checksum(message).to_le_bytes());
        record.extend_from_slice(message);
        self.file.write_all(&record)?;
        self.file.sync_data()?;
        self.records += 1;
        Ok(self.records - 1)
    }

    /// The log's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// What reading a record found.
enum Read1 {
    Record(Vec<u8>),
    /// The clean end of the log.
    End,
    /// The log ends inside a record: a crash while appending.
    Torn,
    /// A whole record whose checksum or length is wrong: the disk has failed.
    Corrupt,
}

/// Counts the whole records of a log; returns (records, bytes they take). A torn last record is
/// left out; a corrupt one is an error, as the records after it cannot be trusted to be found.
fn scan(file: &mut File) -> std::io::Result<(u64, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let (mut records, mut good) = (0u64, 0u64);
    loop {
        match read_record(&mut reader)? {
            Read1::Record(message) => {
                records += 1;
                good += (HEADER + message.len()) as u64;
            }
            Read1::End | Read1::Torn => return Ok((records, good)),
            Read1::Corrupt => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!(
                        "record {records} (at byte {good}) is corrupt: its checksum or length is wrong"
                    ),
                ));
            }
        }
    }
}

fn read_record(reader: &mut impl Read) -> std::io::Result<Read1> {
    let mut header = [0u8; HEADER];
    match read_full(reader, &mut header)? {
        0 => return Ok(Read1::End),
        n if n < HEADER => return Ok(Read1::Torn),
        _ => {}
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let sum = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > crate::formats::MAX_HL7_BYTES * 2 {
        return Ok(Read1::Corrupt);
    }
    let mut message = vec![0u8; len];
    if read_full(reader, &mut message)? < len {
        return Ok(Read1::Torn);
    }
    Ok(match checksum(&message) == sum {
        true => Read1::Record(message),
        false => Read1::Corrupt,
    })
}

/// Fills `buf` as far as the input goes; how many bytes it got.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// The records of a log from number `from` up to (not including) `to`, in order.
pub fn read_range(path: &Path, from: u64, to: u64) -> std::io::Result<Vec<Vec<u8>>> {
    let mut reader = BufReader::new(File::open(path)?);
    let mut out = Vec::new();
    let mut n = 0;
    while n < to {
        let Read1::Record(message) = read_record(&mut reader)? else {
            break;
        };
        if n >= from {
            out.push(message);
        }
        n += 1;
    }
    Ok(out)
}

/// Where the committed record number of a log is kept.
fn committed_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".committed");
    PathBuf::from(name)
}

/// The first record not yet committed (0 for a new log).
pub fn committed(log: &Path) -> std::io::Result<u64> {
    match fs::read_to_string(committed_path(log)) {
        Ok(text) => text.trim().parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "{} does not hold a record number",
                    committed_path(log).display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
        Err(e) => Err(e),
    }
}

/// Records that everything before record `next` is committed (written whole, then renamed).
pub fn commit(log: &Path, next: u64) -> std::io::Result<()> {
    let path = committed_path(log);
    let tmp = path.with_extension("committed.tmp");
    let mut file = File::create(&tmp)?;
    file.write_all(format!("{next}\n").as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_survive_reopening_and_a_torn_tail_is_cut_off() {
        let dir = std::env::temp_dir().join(format!("vigil-intake-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        let path = dir.join("in.log");
        let mut log = IntakeLog::open(&path).unwrap();
        assert_eq!(log.append(b"MSH|one").unwrap(), 0);
        assert_eq!(log.append(b"MSH|two").unwrap(), 1);
        drop(log);
        // A crash mid-append: half a record at the end.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[9, 0, 0, 0, 1, 2]).unwrap();
        drop(f);
        let mut log = IntakeLog::open(&path).unwrap();
        assert_eq!(log.records(), 2);
        assert_eq!(log.append(b"MSH|three").unwrap(), 2);
        assert_eq!(
            read_range(&path, 1, 3).unwrap(),
            vec![b"MSH|two".to_vec(), b"MSH|three".to_vec()]
        );
        assert_eq!(committed(&path).unwrap(), 0);
        commit(&path, 2).unwrap();
        assert_eq!(committed(&path).unwrap(), 2);
        // A flipped byte is a failed disk, not a torn tail: refused, never cut off.
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER + 2] ^= 1;
        fs::write(&path, bytes).unwrap();
        let e = IntakeLog::open(&path).err().unwrap();
        assert!(
            e.to_string().contains("record 0 (at byte 0) is corrupt"),
            "{e}"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
