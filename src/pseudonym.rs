//! Pseudonyms: a patient's id replaced by a keyed HMAC-SHA256 of it, and a per-patient date
//! shift derived the same way, for research exports and diagnostics.
//!
//! Without the key a pseudonym cannot be linked back to an id, even by trying every id a
//! hospital could issue; with it, the same id always gives the same pseudonym and the same
//! shift, so exports made at different times join. The key is 256 bits in base64, like an
//! archive's, kept apart from the archive (`vigil key new FILE`).
//!
//! Invariants: a pseudonym is `r-` and 24 hex digits (96 bits of the HMAC); a shift is a whole
//! number of days between 100 and 200 years forward, the same for every record of a patient, so
//! time of day and every interval are kept and no shifted date is a true one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::archive::ArchiveKey;

/// Microseconds in a day.
const DAY_US: i64 = 86_400_000_000;

/// The shortest shift: 100 years (of 365.25 days), so that no shifted date falls in a
/// plausible true range.
pub const MIN_SHIFT_DAYS: i64 = 36_525;

/// Pseudonyms and shifts under one key.
#[derive(Clone)]
pub struct Pseudonyms {
    mac: Hmac<Sha256>,
}

impl std::fmt::Debug for Pseudonyms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pseudonyms(..)")
    }
}

impl Pseudonyms {
    /// Pseudonyms under `key`.
    pub fn new(key: &ArchiveKey) -> Pseudonyms {
        // HMAC takes a key of any length: this cannot fail.
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(key.bytes())
            .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
        Pseudonyms { mac }
    }

    fn digest(&self, purpose: &[u8], id: &str) -> [u8; 32] {
        let mut mac = self.mac.clone();
        mac.update(purpose);
        mac.update(id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The patient's pseudonym: `r-` and 24 hex digits.
    pub fn pseudonym(&self, patient: &str) -> String {
        let digest = self.digest(b"vigil/pseudonym/v1\0", patient);
        let mut out = String::with_capacity(26);
        out.push_str("r-");
        for byte in &digest[..12] {
            out.push_str(&format!("{byte:02x}"));
        }
        out
    }

    /// How far the patient's times are moved (µs): whole days, 100 to 200 years forward.
    pub fn shift_us(&self, patient: &str) -> i64 {
        let digest = self.digest(b"vigil/date-shift/v1\0", patient);
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        let days = MIN_SHIFT_DAYS + (u64::from_le_bytes(first) % MIN_SHIFT_DAYS as u64) as i64;
        days * DAY_US
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn pseudonyms(byte: u8) -> Pseudonyms {
        Pseudonyms::new(&ArchiveKey::from_bytes([byte; 32]))
    }

    #[test]
    fn a_pseudonym_is_stable_under_one_key_and_unlinkable_across_keys() {
        let (a, b) = (pseudonyms(1), pseudonyms(2));
        let p = a.pseudonym("sim-00001");
        assert_eq!(p, a.pseudonym("sim-00001"));
        assert_eq!(p.len(), 26);
        assert!(p.starts_with("r-") && !p.contains("00001"));
        assert_ne!(p, a.pseudonym("sim-00002"));
        assert_ne!(p, b.pseudonym("sim-00001"));
        assert_ne!(a.shift_us("sim-00001"), b.shift_us("sim-00001"));
        assert_eq!(format!("{a:?}"), "Pseudonyms(..)");
    }

    proptest! {
        #[test]
        fn a_shift_is_whole_days_between_100_and_200_years(id in "[a-z0-9-]{1,32}", key in any::<u8>()) {
            let shift = pseudonyms(key).shift_us(&id);
            prop_assert_eq!(shift % DAY_US, 0);
            prop_assert!(shift >= MIN_SHIFT_DAYS * DAY_US);
            prop_assert!(shift < 2 * MIN_SHIFT_DAYS * DAY_US);
        }
    }
}
