//! Observations as HL7 v2.6 ORU^R01 messages in the IHE PCD-01 style (for `vigil simulate
//! --format hl7v2`): MDC codes and UCUM units from the mapping table, so that [`super::decode`]
//! reads each message back to the same observations. Segments end in `\r`, as the standard
//! says; a message holds the observations of one patient.

use crate::formats::codes::{self, System};
use crate::formats::fhir::encode::{Unwritable, codings_of};
use crate::observation::{EventTime, Observation, Value};

/// Escapes the delimiters `|^~\&` in a value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\F\\"),
            '^' => out.push_str("\\S\\"),
            '~' => out.push_str("\\R\\"),
            '\\' => out.push_str("\\E\\"),
            '&' => out.push_str("\\T\\"),
            '\r' | '\n' => out.push_str("\\.br\\"),
            c => out.push(c),
        }
    }
    out
}

/// An HL7 DTM in UTC: `YYYYMMDDHHMMSS[.ffffff]+0000`, with only the fraction digits needed.
pub fn dtm(time: EventTime) -> String {
    let rfc = time.to_rfc3339();
    // `2026-01-05T00:00:00.25Z` → digits and fraction.
    let (whole, fraction) = match rfc.trim_end_matches('Z').split_once('.') {
        Some((w, f)) => (w.to_owned(), format!(".{}", f.trim_end_matches('0'))),
        None => (rfc.trim_end_matches('Z').to_owned(), String::new()),
    };
    let digits: String = whole.chars().filter(char::is_ascii_digit).collect();
    let fraction = if fraction == "." {
        String::new()
    } else {
        fraction
    };
    format!("{digits}{fraction}+0000")
}

/// One ORU^R01 message for `observations` (all of one patient), numbered `control_id`.
pub fn message(control_id: u64, observations: &[&Observation]) -> Result<String, Unwritable> {
    let Some(first) = observations.first() else {
        return Ok(String::new());
    };
    let time = dtm(first.time());
    let mut m = format!(
        "MSH|^~\\&|VIGIL^^|VIGIL|||{time}||ORU^R01^ORU_R01|{control_id}|P|2.6|||NE|AL||UNICODE UTF-8|||IHE_PCD_001^IHE PCD^1.3.6.1.4.1.19376.1.6.1.1.1^ISO\r\
         PID|||{}^^^VIGIL^PI\r\
         OBR|1|||182777000^monitoring of patient^SCT|||{time}\r",
        escape(first.patient().as_str())
    );
    for (i, obs) in observations.iter().enumerate() {
        m.push_str(&obx(i + 1, obs)?);
    }
    Ok(m)
}

fn obx(set_id: usize, obs: &Observation) -> Result<String, Unwritable> {
    let rows = codings_of(obs)?;
    // MDC first, as devices send it, with the LOINC code as the alternate.
    let code = match rows.as_slice() {
        [loinc, mdc] => format!(
            "{}^{}^{}^{}^{}^{}",
            mdc.code,
            escape(mdc.name),
            mdc.system.hl7_name(),
            loinc.code,
            escape(loinc.name),
            loinc.system.hl7_name()
        ),
        [only, ..] => format!(
            "{}^{}^{}",
            only.code,
            escape(only.name),
            only.system.hl7_name()
        ),
        [] => return Err(Unwritable { vital: obs.vital() }),
    };
    let (kind, value, unit) = match (obs.value(), obs.unit()) {
        (Value::Number(n), Some(unit)) => (
            "NM",
            format!("{n}"),
            format!("{0}^{0}^UCUM", escape(unit.ucum())),
        ),
        (Value::Acvpu(level), _) => {
            let answer = codes::table().answer_of(System::Snomed, level);
            let value = match answer {
                Some(r) => format!("{}^{}^SCT", r.code, escape(r.name)),
                None => level.letter().to_owned(),
            };
            ("CWE", value, String::new())
        }
        _ => return Err(Unwritable { vital: obs.vital() }),
    };
    let device = obs.device().map(|d| escape(d.as_str())).unwrap_or_default();
    Ok(format!(
        "OBX|{set_id}|{kind}|{code}|1.0.0.{set_id}|{value}|{unit}|||||R|||{}||||{device}\r",
        dtm(obs.time())
    ))
}
