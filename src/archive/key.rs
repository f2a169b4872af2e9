//! Encryption at rest: every Parquet file of an archive written with Parquet modular encryption
//! in uniform mode, one 256-bit key for the footer and every column, AES-GCM (`AES_GCM_V1`),
//! which DuckDB, pyarrow and Spark read given the key.
//!
//! The key comes from a [`KeyProvider`]: [`KeyFile`] reads it from a file holding it in base64
//! (`vigil key new FILE` writes one); a key-management service implements the same trait. The
//! key is never written to the archive, a log or an error message.
//!
//! # Invariants
//!
//! - With a key, a file that is not encrypted is refused, not read: a plaintext file in an
//!   encrypted archive was not written by Vigil, and reading it would let anyone who can write
//!   to the directory feed replay whatever they like.
//! - Without a key, an encrypted file is refused with an error naming `--archive-key`.
//! - AES-GCM authenticates every module (footer, page headers, pages), each bound to its file,
//!   row group, column and page, so a changed byte, a wrong key or a page moved from elsewhere
//!   fails to decrypt: it is never read as data.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine;
use parquet::encryption::decrypt::FileDecryptionProperties;
use parquet::encryption::encrypt::FileEncryptionProperties;
use parquet::errors::ParquetError;
use thiserror::Error;

/// The length of an archive key: AES-256.
pub const KEY_BYTES: usize = 32;

/// The key an archive is encrypted with. Its `Debug` shows nothing of it, and it is wiped
/// when dropped.
#[derive(Clone)]
pub struct ArchiveKey([u8; KEY_BYTES]);

impl std::fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArchiveKey(..)")
    }
}

impl Drop for ArchiveKey {
    fn drop(&mut self) {
        for byte in &mut self.0 {
            // SAFETY: `byte` is a valid, aligned, exclusive reference; the volatile write only
            // keeps the compiler from dropping a store to memory about to be freed.
            unsafe { std::ptr::write_volatile(byte, 0) };
        }
    }
}

impl ArchiveKey {
    /// A key from its bytes.
    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> ArchiveKey {
        ArchiveKey(bytes)
    }

    /// A key from its base64 text (standard alphabet, padding optional, surrounding whitespace
    /// ignored). The error says what is wrong without repeating the text.
    pub fn from_base64(text: &str) -> Result<ArchiveKey, KeyProblem> {
        let text = text.trim();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text)
            .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(text))
            .map_err(|_| KeyProblem::NotBase64)?;
        let bytes: [u8; KEY_BYTES] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| KeyProblem::Length(bytes.len()))?;
        Ok(ArchiveKey(bytes))
    }

    /// The key's bytes, for a keyed hash (see [`crate::pseudonym`]).
    pub(crate) fn bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// The key in base64, as a key file holds it.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// A new random key, from the operating system's generator.
    pub fn generate() -> Result<ArchiveKey, std::io::Error> {
        let mut bytes = [0u8; KEY_BYTES];
        File::open("/dev/urandom")?.read_exact(&mut bytes)?;
        Ok(ArchiveKey(bytes))
    }

    /// How a file is encrypted with this key: uniform mode, footer encrypted.
    pub(crate) fn encryption(&self) -> Result<Arc<FileEncryptionProperties>, ParquetError> {
        FileEncryptionProperties::builder(self.0.to_vec()).build()
    }

    /// How a file encrypted with this key is read.
    pub(crate) fn decryption(&self) -> Result<Arc<FileDecryptionProperties>, ParquetError> {
        FileDecryptionProperties::builder(self.0.to_vec()).build()
    }
}

/// What is wrong with a key's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Error)]
pub enum KeyProblem {
    #[error("it is not base64")]
    NotBase64,
    #[error(
        "it holds {0} bytes; an archive key is {KEY_BYTES} bytes (256 bits) in base64 \
         (`vigil key new FILE` writes one)"
    )]
    Length(usize),
}

/// A key that cannot be had.
#[derive(Debug, Error)]
pub enum KeyError {
    #[error("the archive key file {path}: {source}")]
    Unreadable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the archive key file {path}: {problem}")]
    Invalid { path: PathBuf, problem: KeyProblem },
    #[error("the archive key from {provider}: {reason}")]
    Provider { provider: String, reason: String },
}

/// Where an archive's key comes from: a file here, a key-management service elsewhere. Asked
/// once per command, before any file is read or written.
pub trait KeyProvider: Send + Sync {
    /// The key.
    fn archive_key(&self) -> Result<ArchiveKey, KeyError>;
}

/// A key kept in a file, in base64: `--archive-key FILE`, `[archive] key_file`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyFile(pub PathBuf);

impl KeyProvider for KeyFile {
    fn archive_key(&self) -> Result<ArchiveKey, KeyError> {
        let path = &self.0;
        let text = std::fs::read_to_string(path).map_err(|source| KeyError::Unreadable {
            path: path.clone(),
            source,
        })?;
        ArchiveKey::from_base64(&text).map_err(|problem| KeyError::Invalid {
            path: path.clone(),
            problem,
        })
    }
}

/// Whether the Parquet file at `path` is encrypted with an encrypted footer (it ends in `PARE`,
/// not `PAR1`); `None` when it is neither (torn, or not Parquet).
pub(crate) fn is_encrypted(file: &mut File) -> std::io::Result<Option<bool>> {
    let mut magic = [0u8; 4];
    let len = file.seek(SeekFrom::End(0))?;
    if len < 12 {
        return Ok(None);
    }
    file.seek(SeekFrom::End(-4))?;
    file.read_exact(&mut magic)?;
    let mut head = [0u8; 4];
    file.seek(SeekFrom::Start(0))?;
    file.read_exact(&mut head)?;
    file.seek(SeekFrom::Start(0))?;
    Ok(match (&head, &magic) {
        (b"PARE", b"PARE") => Some(true),
        (b"PAR1", b"PAR1") => Some(false),
        _ => None,
    })
}

/// Why an archive file cannot be read with the key given, or without one.
pub(crate) fn refusal(path: &Path, encrypted: Option<bool>, key: bool) -> Option<String> {
    match (encrypted, key) {
        (None, _) => Some(format!(
            "{} is not a whole Parquet file (its first or last four bytes are not PAR1 or PARE)",
            path.display()
        )),
        (Some(true), false) => {
            Some("the archive is encrypted: give its key with --archive-key FILE".to_owned())
        }
        (Some(false), true) => Some(
            "not encrypted, in an archive read with a key: Vigil did not write this file, or \
             the archive was written without --archive-key"
                .to_owned(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_32_bytes_of_base64_and_errors_never_repeat_it() {
        let key = ArchiveKey::from_bytes([7; KEY_BYTES]);
        let text = key.to_base64();
        let back = ArchiveKey::from_base64(&format!("  {text}\n")).unwrap();
        assert_eq!(back.0, key.0);
        assert_eq!(
            ArchiveKey::from_base64(text.trim_end_matches('='))
                .unwrap()
                .0,
            key.0
        );
        assert_eq!(
            ArchiveKey::from_base64("c2hvcnQ=").unwrap_err(),
            KeyProblem::Length(5)
        );
        let bad = "not base64 at all!";
        let err = ArchiveKey::from_base64(bad).unwrap_err();
        assert_eq!(err, KeyProblem::NotBase64);
        assert!(!err.to_string().contains(bad));
        assert_eq!(format!("{key:?}"), "ArchiveKey(..)");
    }

    #[test]
    fn a_key_file_that_is_missing_or_wrong_is_a_clear_error() {
        let dir = std::env::temp_dir().join(format!("vigil-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = KeyFile(dir.join("missing"));
        assert!(matches!(
            missing.archive_key(),
            Err(KeyError::Unreadable { .. })
        ));
        let short = dir.join("short");
        std::fs::write(&short, "QUJD\n").unwrap();
        let err = KeyFile(short.clone())
            .archive_key()
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds 3 bytes"), "{err}");
        assert!(!err.contains("QUJD"), "{err}");
        let good = dir.join("good");
        let key = ArchiveKey::generate().unwrap();
        std::fs::write(&good, key.to_base64()).unwrap();
        assert_eq!(KeyFile(good).archive_key().unwrap().0, key.0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
