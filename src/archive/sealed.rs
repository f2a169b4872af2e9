//! The archive's text files sealed with its key: in an encrypted archive the registry's copy
//! (`_vigil/registry.csv`: patients, wards, consent) and the acknowledgements (`acks.jsonl`:
//! patients, who acknowledged, their notes) are health data as much as the Parquet files.
//! Each line is sealed on its own (AES-256-GCM, a random 96-bit nonce, the file's name as
//! associated data), so that `acks.jsonl` stays append-only: `vigil-sealed-1 ` and the base64
//! of nonce, ciphertext and tag.
//!
//! Invariants: a sealed line is read only with the key, and a changed byte, or a line moved
//! from another sealed file, is refused with its line number; a plaintext line is read as it
//! is (a registry or acknowledgements file a user gives is plaintext even beside a key).

use std::path::{Path, PathBuf};

use base64::Engine;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use thiserror::Error;

use super::ArchiveKey;

/// What a sealed line starts with.
pub const MAGIC: &str = "vigil-sealed-1 ";

/// A sealed file that cannot be read.
#[derive(Debug, Error)]
pub enum SealError {
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{}:{line}: sealed with the archive's key: give --archive-key FILE to read it",
        path.display()
    )]
    NoKey { path: PathBuf, line: usize },
    #[error(
        "{}:{line}: does not open with this key: a wrong key, or the line was changed or moved",
        path.display()
    )]
    Tampered { path: PathBuf, line: usize },
    #[error("the system's random generator failed")]
    Random,
}

fn cipher(key: &ArchiveKey) -> LessSafeKey {
    // 32 bytes always make an AES-256 key.
    let unbound = UnboundKey::new(&AES_256_GCM, key.bytes())
        .unwrap_or_else(|_| unreachable!("a 256-bit key is an AES-256-GCM key"));
    LessSafeKey::new(unbound)
}

/// `bytes` sealed for `name` (the associated data): the nonce, the ciphertext and the tag.
pub fn seal_bytes(key: &ArchiveKey, name: &str, bytes: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| SealError::Random)?;
    let mut sealed = bytes.to_vec();
    cipher(key)
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut sealed,
        )
        .map_err(|_| SealError::Random)?;
    let mut out = nonce.to_vec();
    out.extend(sealed);
    Ok(out)
}

/// What [`seal_bytes`] sealed for `name`; `None` when it does not open (a wrong key, a changed
/// byte, another name).
pub fn open_bytes(key: &ArchiveKey, name: &str, bytes: &[u8]) -> Option<Vec<u8>> {
    if bytes.len() < NONCE_LEN {
        return None;
    }
    let (nonce, sealed) = bytes.split_at(NONCE_LEN);
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut sealed = sealed.to_vec();
    let plain = cipher(key)
        .open_in_place(nonce, Aad::from(name.as_bytes()), &mut sealed)
        .ok()?;
    Some(plain.to_vec())
}

/// `line` (without its newline) sealed for the file `name`.
pub fn seal_line(key: &ArchiveKey, name: &str, line: &str) -> Result<String, SealError> {
    let bytes = seal_bytes(key, name, line.as_bytes())?;
    Ok(format!(
        "{MAGIC}{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    ))
}

/// `text` with every line sealed for the file `name`.
pub fn seal_text(key: &ArchiveKey, name: &str, text: &str) -> Result<String, SealError> {
    let mut out = String::with_capacity(text.len() * 2);
    for line in text.lines() {
        out.push_str(&seal_line(key, name, line)?);
        out.push('\n');
    }
    Ok(out)
}

/// The line, opened if it is sealed; `None` when it is sealed and opens not.
fn open_line(key: &ArchiveKey, name: &str, line: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.strip_prefix(MAGIC)?.trim())
        .ok()?;
    String::from_utf8(open_bytes(key, name, &bytes)?).ok()
}

/// The text of the file at `path`, its sealed lines opened with `key`; its name is the
/// associated data. A file that does not exist is `None`.
pub fn read_text(path: &Path, key: Option<&ArchiveKey>) -> Result<Option<String>, SealError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(SealError::Io {
                path: path.to_owned(),
                source,
            });
        }
    };
    Ok(Some(open_text(&text, path, key)?))
}

/// `text` (of the file at `path`) with its sealed lines opened.
pub fn open_text(text: &str, path: &Path, key: Option<&ArchiveKey>) -> Result<String, SealError> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if line.starts_with(MAGIC) {
            let line_no = i + 1;
            let key = key.ok_or_else(|| SealError::NoKey {
                path: path.to_owned(),
                line: line_no,
            })?;
            let open = open_line(key, name, line).ok_or_else(|| SealError::Tampered {
                path: path.to_owned(),
                line: line_no,
            })?;
            out.push_str(&open);
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> ArchiveKey {
        ArchiveKey::from_bytes([byte; 32])
    }

    #[test]
    fn a_sealed_file_opens_with_its_key_only_and_every_changed_byte_is_caught() {
        let text = "patient,ward,scale,from\nsim-00001,4A,1,\n";
        let sealed = seal_text(&key(7), "registry.csv", text).unwrap();
        // The plaintext's words, not short strings a random ciphertext can hold by chance.
        assert!(!sealed.contains("sim-00001") && !sealed.contains("patient,ward"));
        assert_eq!(sealed.lines().count(), 2);
        assert!(sealed.lines().all(|l| l.starts_with(MAGIC)));
        let path = Path::new("/archive/_vigil/registry.csv");
        assert_eq!(open_text(&sealed, path, Some(&key(7))).unwrap(), text);
        let no_key = open_text(&sealed, path, None).unwrap_err().to_string();
        assert!(no_key.contains("registry.csv:1: sealed") && no_key.contains("--archive-key"));
        let wrong = open_text(&sealed, path, Some(&key(8))).unwrap_err();
        assert!(
            matches!(wrong, SealError::Tampered { line: 1, .. }),
            "{wrong}"
        );
        // The same line in another file does not open: the name is bound in.
        let moved = open_text(&sealed, Path::new("acks.jsonl"), Some(&key(7)));
        assert!(moved.is_err());
        let second = sealed.lines().nth(1).unwrap();
        for i in MAGIC.len()..second.len() {
            let mut bytes = second.as_bytes().to_vec();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let Ok(changed) = String::from_utf8(bytes) else {
                continue;
            };
            let opened = open_text(&changed, path, Some(&key(7)));
            assert!(
                opened.is_err() || opened.as_deref().ok() == Some("sim-00001,4A,1,\n"),
                "byte {i} changed and read as other data"
            );
        }
    }

    #[test]
    fn plaintext_lines_read_as_they_are_beside_a_key() {
        let sealed = seal_line(&key(1), "acks.jsonl", "{\"b\":2}").unwrap();
        let text = format!("{{\"a\":1}}\n{sealed}\n");
        let opened = open_text(&text, Path::new("acks.jsonl"), Some(&key(1))).unwrap();
        assert_eq!(opened, "{\"a\":1}\n{\"b\":2}\n");
    }
}
