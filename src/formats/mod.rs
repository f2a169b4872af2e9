//! Other ways in: FHIR R4 and HL7 v2, beside Vigil's own wire format.
//!
//! A message of these formats holds any number of observations (a Bundle's entries, a blood
//! pressure panel's components, the OBX segments of an ORU^R01), so decoding one gives a list of
//! [`Decoded`] parts: each an observation with its place in the message, or a [`Problem`] that
//! names that place (`entry[3].resource.valueQuantity.unit`, `segment 7 (OBX-6)`) and why it is
//! not one. A message never decodes to nothing silently: what carries no value at all (an HL7
//! device-containment row, a Bundle's Patient entry) is context, and everything else is an
//! observation or a problem.
//!
//! Decoding is pure (bytes in, parts out) and never panics; codes and units are read only through
//! the one mapping table, [`codes`]. Framing a file into messages is in [`frame`].

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::observation::{Interner, Observation, Subject};

pub mod codes;
pub mod fhir;
pub mod frame;
pub mod hl7v2;

/// The largest FHIR document (a resource or a Bundle, one NDJSON line or a whole file) read.
pub const MAX_FHIR_BYTES: usize = 16 << 20;

/// The largest HL7 v2 message read.
pub const MAX_HL7_BYTES: usize = 256 << 10;

/// How a source's messages are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// Vigil's wire format (`DESIGN.md`): one JSON observation a line or message.
    #[default]
    Wire,
    /// FHIR R4 JSON: `Observation` resources and `Bundle`s (transaction, batch, collection), one
    /// document after another (NDJSON, as Bulk Data writes it, or pretty-printed).
    Fhir,
    /// HL7 v2 ORU^R01 (2.3 to 2.6, IHE PCD-01), one message after another, bare or MLLP-framed.
    Hl7v2,
}

impl InputFormat {
    pub const ALL: [InputFormat; 3] = [InputFormat::Wire, InputFormat::Fhir, InputFormat::Hl7v2];

    /// Its name in pipelines, on the command line and in the archive's `format` column.
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Wire => "wire",
            InputFormat::Fhir => "fhir",
            InputFormat::Hl7v2 => "hl7v2",
        }
    }
}

impl fmt::Display for InputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for InputFormat {
    type Err = String;

    fn from_str(s: &str) -> Result<InputFormat, String> {
        InputFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown input format {s:?} (wire, fhir or hl7v2)"))
    }
}

/// An observation decoded from a message, and which part of the message it came from (a
/// Bundle's entry index, an OBX segment's number; none for a message that is one observation).
#[derive(Clone, Debug, PartialEq)]
pub struct Part {
    pub obs: Observation,
    pub entry: Option<u32>,
}

/// A part of a message that is not an observation.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    /// Where in the message: a JSON path (`entry[3].resource.valueQuantity.unit`) or a segment
    /// and field (`segment 7 (OBX-6)`); empty for the message as a whole.
    pub path: String,
    /// Why, in words a sender can act on.
    pub reason: String,
    /// The patient, time and vital when only the value was wrong: their clinicians are told.
    pub subject: Option<Subject>,
    /// The part of the message, as [`Part::entry`].
    pub entry: Option<u32>,
}

impl Problem {
    pub(crate) fn at(path: impl Into<String>, reason: impl Into<String>) -> Problem {
        Problem {
            path: path.into(),
            reason: reason.into(),
            subject: None,
            entry: None,
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.is_empty() {
            true => f.write_str(&self.reason),
            false => write!(f, "{}: {}", self.path, self.reason),
        }
    }
}

/// One part of a message, decoded.
pub type Decoded = Result<Part, Problem>;

/// Decodes one FHIR or HL7 v2 message (a Kafka record, a document or message of a file) into
/// `out`. The wire format is decoded by [`Observation::decode_with`], which names wire fields.
pub fn decode(format: InputFormat, bytes: &[u8], ids: &mut Interner, out: &mut Vec<Decoded>) {
    match format {
        InputFormat::Wire => out.push(
            Observation::decode_with(bytes, ids)
                .map(|obs| Part { obs, entry: None })
                .map_err(|r| Problem {
                    path: String::new(),
                    reason: r.error.to_string(),
                    subject: r.subject,
                    entry: None,
                }),
        ),
        InputFormat::Fhir => fhir::decode(bytes, ids, out),
        InputFormat::Hl7v2 => hl7v2::decode(bytes, ids, out),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use proptest::prelude::*;

    use super::*;

    /// The contents of the files of `datasets/interop/<dir>`, sorted.
    pub(crate) fn fixtures(dir: &str) -> Vec<Vec<u8>> {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/datasets/interop/");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(format!("{root}{dir}")).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                out.push(std::fs::read(path).unwrap());
            }
        }
        out.sort();
        out
    }

    /// A real message with bytes replaced, cut or inserted at random places.
    fn mutated(corpus: Vec<Vec<u8>>) -> impl Strategy<Value = Vec<u8>> {
        let n = corpus.len();
        (
            0..n,
            prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        )
            .prop_map(move |(i, edits)| {
                let mut bytes = corpus[i].clone();
                for (at, byte, kind) in edits {
                    if bytes.is_empty() {
                        break;
                    }
                    let at = at.index(bytes.len());
                    match kind {
                        0 => bytes[at] = byte,
                        1 => bytes.truncate(at),
                        _ => bytes.insert(at, byte),
                    }
                }
                bytes
            })
    }

    /// Whatever the bytes, decoding gives parts or problems: it never panics, and every
    /// observation it gives is one (checked again by its constructor).
    fn decodes_without_panic(format: InputFormat, bytes: &[u8]) {
        let mut out = Vec::new();
        decode(format, bytes, &mut Interner::default(), &mut out);
        for part in out.iter().flatten() {
            let obs = &part.obs;
            let again = Observation::with_detail(
                obs.patient().clone(),
                obs.device().cloned(),
                obs.time(),
                obs.vital(),
                obs.value(),
                obs.unit(),
                obs.detail().cloned(),
            );
            assert_eq!(again.as_ref(), Ok(obs));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn mutated_fhir_never_crashes(bytes in mutated(
            [fixtures("fhir/examples"), fixtures("fhir/bundles"), fixtures("fhir/phd-ig-examples")].concat()
        )) {
            decodes_without_panic(InputFormat::Fhir, &bytes);
        }

        #[test]
        fn mutated_hl7_never_crashes(bytes in mutated(
            [fixtures("hl7v2/pcd01"), fixtures("hl7v2/other-oru"), fixtures("hl7v2/malformed"), fixtures("hl7v2/malformed/nhapi-fuzz")].concat()
        )) {
            decodes_without_panic(InputFormat::Hl7v2, &bytes);
        }

        #[test]
        fn arbitrary_bytes_never_crash(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            decodes_without_panic(InputFormat::Fhir, &bytes);
            decodes_without_panic(InputFormat::Hl7v2, &bytes);
            let mut framer = frame::Framer::new(InputFormat::Hl7v2);
            let mut reader = std::io::BufReader::with_capacity(7, bytes.as_slice());
            while framer.next(&mut reader).unwrap().is_some() {}
            let mut framer = frame::Framer::new(InputFormat::Fhir);
            let mut reader = std::io::BufReader::with_capacity(7, bytes.as_slice());
            while framer.next(&mut reader).unwrap().is_some() {}
        }
    }

    #[test]
    fn a_one_megabyte_segment_is_refused_whole() {
        let mut msg =
            b"MSH|^~\\&|A||||20260105100000+0000||ORU^R01|1|P|2.6\rPID|||p\rOBX|1|ST|x||".to_vec();
        msg.extend(std::iter::repeat_n(b'a', 1 << 20));
        let mut out = Vec::new();
        decode(InputFormat::Hl7v2, &msg, &mut Interner::default(), &mut out);
        let problem = out[0].as_ref().unwrap_err();
        assert!(
            problem.reason.contains("over the limit of 262144 bytes"),
            "{problem}"
        );
        assert_eq!(out.len(), 1);
    }
}
