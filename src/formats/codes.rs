//! The one mapping table between the codes hospitals and devices send and Vigil's vitals and
//! units: LOINC, IEEE 11073-10101 (MDC) and SNOMED CT observation codes, UCUM and MDC unit codes,
//! SNOMED CT answers for ACVPU.
//!
//! The table is data, `codes.csv` beside this file (documented in the README), compiled in. Every
//! row names the sources that vouch for it (the keys of
//! `datasets/interop/codes/sources.csv`; `VIGIL` is Vigil's own wire format). FHIR and
//! HL7 v2 decoding read codes only through [`table`], and FHIR output codes its resources from
//! the same rows, so a code is added in one place.
//!
//! Invariants, checked by the tests: each (system, code) appears once; every `vital` row maps to a
//! vital and every `unit` row to a unit Vigil accepts; each vital that can be written out has a
//! first LOINC row (the code FHIR output uses).
//!
//! Two traps the sources warn of are handled here rather than at each caller: several MDC codes
//! map to one LOINC code (147842, 149530 and 149546 are all heart rate), so the table is only
//! ever read from code to vital, never back, except for the first row per vital; and one MDC
//! number has two reference ids (147842 is both MDC_ECG_HEART_RATE and MDC_ECG_CARD_BEAT_RATE),
//! so codes are matched on the number alone. UCUM annotations (`{beat}/min`) carry no meaning
//! (UCUM §4.6) and are dropped before a unit is looked up.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::observation::{Acvpu, Method, Unit, Vital};

/// The table's text, compiled in.
pub const CSV: &str = include_str!("codes.csv");

/// A code system.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum System {
    Loinc,
    /// IEEE 11073-10101 nomenclature: observation codes and unit (dimension) codes.
    Mdc,
    Snomed,
    Ucum,
}

impl System {
    /// The FHIR `system` URI.
    pub fn fhir_uri(self) -> &'static str {
        match self {
            System::Loinc => "http://loinc.org",
            System::Mdc => "urn:iso:std:iso:11073:10101",
            System::Snomed => "http://snomed.info/sct",
            System::Ucum => "http://unitsofmeasure.org",
        }
    }

    /// The system of a FHIR `system` URI.
    pub fn from_fhir_uri(uri: &str) -> Option<System> {
        [System::Loinc, System::Mdc, System::Snomed, System::Ucum]
            .into_iter()
            .find(|s| s.fhir_uri() == uri)
    }

    /// The system an HL7 v2 coded element names in its coding-system component (table 0396).
    pub fn from_hl7(name: &str) -> Option<System> {
        match name {
            "MDC" => Some(System::Mdc),
            "LN" | "LOINC" => Some(System::Loinc),
            "SCT" | "SNOMED-CT" | "SNOMED CT" | "SNM" => Some(System::Snomed),
            "UCUM" => Some(System::Ucum),
            _ => None,
        }
    }

    /// The HL7 v2 coding-system name.
    pub fn hl7_name(self) -> &'static str {
        match self {
            System::Loinc => "LN",
            System::Mdc => "MDC",
            System::Snomed => "SCT",
            System::Ucum => "UCUM",
        }
    }

    fn parse(s: &str) -> Option<System> {
        match s {
            "loinc" => Some(System::Loinc),
            "mdc" => Some(System::Mdc),
            "snomed" => Some(System::Snomed),
            "ucum" => Some(System::Ucum),
            _ => None,
        }
    }

    /// Its name for people.
    pub fn label(self) -> &'static str {
        match self {
            System::Loinc => "LOINC",
            System::Mdc => "MDC",
            System::Snomed => "SNOMED CT",
            System::Ucum => "UCUM",
        }
    }
}

/// What an observation code means to Vigil.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Concept {
    /// A vital Vigil reads; glucose codes also say how it was measured.
    Vital {
        vital: Vital,
        method: Option<Method>,
    },
    /// A panel (blood pressure, vital signs) whose values are in its components or members.
    Panel,
    /// A code Vigil knows and does not read, and why (mean pressure, GCS).
    Unread { why: &'static str },
}

/// A code Vigil reads: a vital (glucose codes also say how it was measured), or a panel of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    Vital(Vital, Option<Method>),
    Panel,
}

impl Concept {
    /// What Vigil reads of a code; why not, for a code it knows and does not read.
    pub fn read(self) -> Result<Read, &'static str> {
        match self {
            Concept::Vital { vital, method } => Ok(Read::Vital(vital, method)),
            Concept::Panel => Ok(Read::Panel),
            Concept::Unread { why } => Err(why),
        }
    }
}

/// One row of the table, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    /// The line in `codes.csv` (1 is the header).
    pub line: usize,
    pub kind: &'static str,
    pub system: System,
    pub code: &'static str,
    pub name: &'static str,
    pub maps_to: &'static str,
    pub qualifier: &'static str,
    pub sources: &'static str,
    pub note: &'static str,
}

/// The table, indexed for decoding.
#[derive(Debug)]
pub struct Table {
    pub rows: Vec<Row>,
    concepts: ByCode<(Concept, usize)>,
    units: ByCode<Unit>,
    answers: ByCode<Acvpu>,
}

/// Codes by system, then by code (looked up without allocating; hashed with foldhash, as the
/// short keys made SipHash a visible part of a decode).
type ByCode<V> = HashMap<System, HashMap<&'static str, V, Fold>, Fold>;
type Fold = foldhash::fast::FixedState;

fn get<V: Copy>(map: &ByCode<V>, system: System, code: &str) -> Option<V> {
    map.get(&system)?.get(code).copied()
}

/// A code found in the table: what it means and its row.
#[derive(Clone, Copy, Debug)]
pub struct Found<'a> {
    pub concept: Concept,
    pub row: &'a Row,
}

impl Table {
    /// What an observation code means, if the table has it.
    pub fn concept(&self, system: System, code: &str) -> Option<Found<'_>> {
        get(&self.concepts, system, code).map(|(concept, i)| Found {
            concept,
            row: &self.rows[i],
        })
    }

    /// The Vigil unit of a unit code (UCUM annotations dropped), if Vigil reads it.
    pub fn unit(&self, system: System, code: &str) -> Option<Unit> {
        match system {
            System::Ucum if code.contains('{') => {
                get(&self.units, system, &strip_annotations(code))
            }
            _ => get(&self.units, system, code),
        }
    }

    /// The ACVPU level of a coded answer.
    pub fn answer(&self, system: System, code: &str) -> Option<Acvpu> {
        get(&self.answers, system, code)
    }

    /// The first row of `system` for `vital` (and glucose `method`): the code FHIR output uses.
    pub fn code_of(&self, system: System, vital: Vital, method: Option<Method>) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.kind == "vital"
                && r.system == system
                && matches!(
                    self.concept(system, r.code),
                    Some(Found { concept: Concept::Vital { vital: v, method: m }, .. })
                        if v == vital && (method.is_none() || m == method)
                )
        })
    }

    /// The first answer row of `system` for an ACVPU level.
    pub fn answer_of(&self, system: System, level: Acvpu) -> Option<&Row> {
        self.rows.iter().find(|r| {
            r.kind == "answer" && r.system == system && self.answer(system, r.code) == Some(level)
        })
    }
}

/// UCUM without its `{annotations}`: `{beat}/min` is `/min`. A lone annotation is the unit 1.
pub fn strip_annotations(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut depth = 0u32;
    for c in code.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    if out.is_empty() && !code.is_empty() {
        out.push('1');
    }
    // `{beat}/min` leaves `/min`; `{score}` leaves `1`; `10*3{cells}` leaves `10*3`.
    out
}

/// The table, parsed once.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    // The text is compiled in and a unit test parses it: this cannot fail at run time unless
    // that test failed.
    TABLE.get_or_init(|| parse(CSV).expect("codes.csv is checked by the tests"))
}

/// Parses the table's text; an error names the line.
pub fn parse(text: &'static str) -> Result<Table, String> {
    let mut table = Table {
        rows: Vec::new(),
        concepts: HashMap::default(),
        units: HashMap::default(),
        answers: HashMap::default(),
    };
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let row = parse_row(i + 1, line)?;
        index(&mut table, &row)?;
        table.rows.push(row);
    }
    Ok(table)
}

/// One line: eight comma-separated cells, the last (a note) may hold commas.
fn parse_row(line: usize, text: &'static str) -> Result<Row, String> {
    let cells: Vec<&'static str> = text.splitn(8, ',').collect();
    let [kind, system, code, name, maps_to, qualifier, sources, note] = cells[..] else {
        return Err(format!("codes.csv line {line}: expected 8 cells"));
    };
    let system = System::parse(system)
        .ok_or_else(|| format!("codes.csv line {line}: unknown system {system:?}"))?;
    if code.is_empty() || sources.is_empty() {
        return Err(format!("codes.csv line {line}: a code needs its sources"));
    }
    Ok(Row {
        line,
        kind,
        system,
        code,
        name,
        maps_to,
        qualifier,
        sources,
        note,
    })
}

fn index(table: &mut Table, row: &Row) -> Result<(), String> {
    let at = |what: &str| format!("codes.csv line {}: {what}", row.line);
    let duplicate = get(&table.concepts, row.system, row.code).is_some()
        || get(&table.units, row.system, row.code).is_some()
        || get(&table.answers, row.system, row.code).is_some();
    let (system, code) = (row.system, row.code);
    if duplicate {
        return Err(at(&format!(
            "{} {} appears twice",
            row.system.label(),
            row.code
        )));
    }
    let n = table.rows.len();
    match row.kind {
        "vital" => {
            let vital: Vital = row
                .maps_to
                .parse()
                .map_err(|_| at(&format!("unknown vital {:?}", row.maps_to)))?;
            let method = match row.qualifier {
                "" => None,
                "method=cgm" => Some(Method::Cgm),
                "method=meter" => Some(Method::Meter),
                q => return Err(at(&format!("unknown qualifier {q:?}"))),
            };
            insert(
                &mut table.concepts,
                system,
                code,
                (Concept::Vital { vital, method }, n),
            );
        }
        "panel" => {
            insert(&mut table.concepts, system, code, (Concept::Panel, n));
        }
        "unread" => {
            let unread = (Concept::Unread { why: row.note }, n);
            insert(&mut table.concepts, system, code, unread);
        }
        "unit" => {
            let unit = Unit::from_ucum(row.maps_to)
                .ok_or_else(|| at(&format!("{:?} is not a unit Vigil reads", row.maps_to)))?;
            insert(&mut table.units, system, code, unit);
        }
        "answer" => {
            let level = Acvpu::from_letter(row.maps_to)
                .ok_or_else(|| at(&format!("{:?} is not an ACVPU letter", row.maps_to)))?;
            insert(&mut table.answers, system, code, level);
        }
        other => return Err(at(&format!("unknown kind {other:?}"))),
    }
    Ok(())
}

fn insert<V>(map: &mut ByCode<V>, system: System, code: &'static str, value: V) {
    map.entry(system).or_default().insert(code, value);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_parses_and_each_code_appears_once() {
        let table = parse(CSV).unwrap();
        assert!(table.rows.len() > 80, "{} rows", table.rows.len());
    }

    #[test]
    fn the_codes_the_issue_names_map_to_their_vitals() {
        let t = table();
        let vital = |system, code| match t.concept(system, code).map(|f| f.concept) {
            Some(Concept::Vital { vital, .. }) => Some(vital),
            _ => None,
        };
        use System::*;
        for (system, code, expected) in [
            (Loinc, "8867-4", Vital::HeartRate),
            (Mdc, "147842", Vital::HeartRate),
            (Mdc, "149530", Vital::HeartRate),
            (Loinc, "9279-1", Vital::RespiratoryRate),
            (Mdc, "151562", Vital::RespiratoryRate),
            (Loinc, "59408-5", Vital::Spo2),
            (Loinc, "2708-6", Vital::Spo2),
            (Mdc, "150456", Vital::Spo2),
            (Loinc, "8310-5", Vital::Temperature),
            (Mdc, "150344", Vital::Temperature),
            (Loinc, "8480-6", Vital::SystolicBp),
            (Loinc, "8462-4", Vital::DiastolicBp),
            (Mdc, "150021", Vital::SystolicBp),
            (Mdc, "150022", Vital::DiastolicBp),
            (Mdc, "150033", Vital::SystolicBp),
            (Loinc, "3150-0", Vital::SupplementalOxygen),
            (Loinc, "3151-8", Vital::SupplementalOxygen),
            (Loinc, "99504-3", Vital::Glucose),
            (Loinc, "105272-9", Vital::Glucose),
            (Mdc, "160212", Vital::Glucose),
            (Snomed, "1104441000000107", Vital::Consciousness),
            (Loinc, "11454-6", Vital::Consciousness),
        ] {
            assert_eq!(vital(system, code), Some(expected), "{system:?} {code}");
        }
        assert_eq!(
            t.concept(Loinc, "85354-9").map(|f| f.concept),
            Some(Concept::Panel)
        );
        assert!(matches!(
            t.concept(Loinc, "9269-2").map(|f| f.concept),
            Some(Concept::Unread { .. })
        ));
        // A CGM code says so; a meter's says so.
        assert!(matches!(
            t.concept(Loinc, "99504-3").map(|f| f.concept),
            Some(Concept::Vital {
                method: Some(Method::Cgm),
                ..
            })
        ));
        assert!(matches!(
            t.concept(Mdc, "160184").map(|f| f.concept),
            Some(Concept::Vital {
                method: Some(Method::Meter),
                ..
            })
        ));
    }

    #[test]
    fn units_map_with_annotations_dropped() {
        let t = table();
        assert_eq!(t.unit(System::Ucum, "{beat}/min"), Some(Unit::PerMinute));
        assert_eq!(t.unit(System::Ucum, "/min"), Some(Unit::PerMinute));
        assert_eq!(t.unit(System::Mdc, "266560"), Some(Unit::Fahrenheit));
        assert_eq!(t.unit(System::Mdc, "264928"), Some(Unit::PerMinute));
        assert_eq!(
            t.unit(System::Ucum, "mmol/L"),
            Some(Unit::MillimolesPerLitre)
        );
        // The PHD example's typo is not a unit.
        assert_eq!(t.unit(System::Ucum, "{beat}/min}"), None);
        assert_eq!(t.unit(System::Ucum, "beats"), None);
        assert_eq!(strip_annotations("{score}"), "1");
    }

    #[test]
    fn every_vital_the_wire_format_scores_has_a_loinc_code_to_write() {
        let t = table();
        for vital in Vital::BEDSIDE.into_iter().chain([Vital::Glucose]) {
            let row = t.code_of(System::Loinc, vital, None);
            let row = row.or_else(|| t.code_of(System::Snomed, vital, None));
            assert!(row.is_some(), "{vital}");
        }
        assert_eq!(
            t.code_of(System::Loinc, Vital::HeartRate, None)
                .map(|r| r.code),
            Some("8867-4")
        );
        assert_eq!(
            t.code_of(System::Loinc, Vital::Glucose, Some(Method::Cgm))
                .map(|r| r.code),
            Some("99504-3")
        );
        for level in Acvpu::ALL {
            assert!(t.answer_of(System::Snomed, level).is_some(), "{level}");
        }
    }

    /// Each row cites sources; the codes of the shared, checked table are the same codes with
    /// the same meaning (its `concept` column names the vital in words).
    #[test]
    fn every_row_agrees_with_the_checked_codes_table_where_that_table_has_it() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/datasets/interop/codes/vital-signs-mdc-loinc.csv"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let shared = text.to_lowercase();
        let known_sources = [
            "R4", "POCD", "PHD", "CGM", "HDDT", "ISIK", "MDPNP", "IHE", "IPF", "CHEMS", "SYN",
            "YHCR", "PACIO", "VIGIL",
        ];
        for row in &table().rows {
            for s in row.sources.split(';') {
                assert!(known_sources.contains(&s), "line {}: source {s}", row.line);
            }
            // Codes outside the shared table come from the notes of its rows or from the
            // messages in ../shared/datasets/interop/hl7v2 (149522, 150033, ...).
            if row.system == System::Ucum || row.sources == "MDPNP" || row.sources == "IPF" {
                continue;
            }
            assert!(
                shared.contains(&row.code.to_lowercase()),
                "line {}: {} {} is not in the checked table",
                row.line,
                row.system.label(),
                row.code
            );
        }
    }
}
