//! Values whose serde form is shaped for JSON (untagged enums, fields left out when empty,
//! free-form facts), carried between the processes of a cluster.
//!
//! Timely encodes what crosses processes with bincode, which cannot read such forms back (it
//! is not self-describing), and a JSON round trip is not exact for every float. [`Carried`]
//! encodes its value as MessagePack with named fields instead: self-describing, and floats as
//! their 8 bytes. Within a process nothing is encoded, so it costs nothing there.

use serde::de::{DeserializeOwned, Error as _};
use serde::ser::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A value that crosses processes as MessagePack.
#[derive(Clone, Debug, PartialEq)]
pub struct Carried<T>(pub T);

impl<T: Serialize> Serialize for Carried<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let bytes = rmp_serde::to_vec_named(&self.0).map_err(S::Error::custom)?;
        serializer.serialize_bytes(&bytes)
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Carried<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Carried<T>, D::Error> {
        let bytes = serde_bytes_vec(deserializer)?;
        rmp_serde::from_slice(&bytes)
            .map(Carried)
            .map_err(D::Error::custom)
    }
}

/// The bytes [`Carried::serialize`] wrote, from any format that keeps bytes.
fn serde_bytes_vec<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl<'de> serde::de::Visitor<'de> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
        fn visit_byte_buf<E: serde::de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
            Ok(v)
        }
        fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element()? {
                out.push(b);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_byte_buf(Bytes)
}

#[cfg(test)]
mod tests {
    use super::Carried;
    use crate::alerting::Alert;

    /// What timely does to data that crosses processes.
    fn through_timely<T: serde::Serialize + serde::de::DeserializeOwned>(value: &T) -> T {
        let bytes = bincode::serialize(value).expect("encodes");
        bincode::deserialize(&bytes).expect("decodes")
    }

    #[test]
    fn every_golden_alert_crosses_processes_unchanged() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
        let mut seen = 0;
        for entry in std::fs::read_dir(dir).expect("the golden files") {
            let path = entry.expect("an entry").path();
            if path.extension().is_none_or(|e| e != "jsonl") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("reads");
            for line in text.lines() {
                let alert: Alert = serde_json::from_str(line).expect("an alert");
                let carried = through_timely(&Carried(alert.clone()));
                assert_eq!(carried.0, alert);
                // Written out the same (floats and all; parsing the golden line itself may
                // round a float's last digit, which is why alerts do not cross as JSON).
                assert_eq!(
                    serde_json::to_string(&carried.0).unwrap(),
                    serde_json::to_string(&alert).unwrap()
                );
                seen += 1;
            }
        }
        assert!(seen > 100, "only {seen} golden alerts");
    }
}
