//! `vigil score`: NEWS2 for one set from flags, or for every row of a CSV file.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde::Serialize;

use vigil::exact::Exact;
use vigil::news2::{self, AirOrOxygen, Band, Input, Parameter, Parameters, Scale, Score, Status};
use vigil::observation::{self, Acvpu, Reading, Unit, Value, Vital};

const EXAMPLES: &str = "\
Examples:
  vigil score --rr 24 --spo2 95 --oxygen air --sbp 105 --hr 112 --acvpu A --temp 38.5
  vigil score --rr 18 --spo2 90 --scale 2 --oxygen oxygen --sbp 120 --hr 80 --acvpu A --temp 100.4 --temp-unit F --json
  vigil score --input sets.csv > scores.jsonl

A parameter left out is missing: the set is then incomplete, reported as a lower bound (the sum of
what was scored) and the total it could reach, and never as low risk. Values are rounded half-up to
the chart's resolution (8.5 -> 9, 35.05 -> 35.1 C) after unit conversion. Physiologically
impossible values (SpO2 101, temperature 98.6 C, heart rate 900) are not scored: the status is
\"invalid\" and the problem says why.

CSV input: a header naming the columns rr, spo2, oxygen, sbp, hr, acvpu, temp (each required;
an empty cell is a missing value) and optionally scale and temp-unit; other columns are ignored.
One JSON line is written per row, in row order.";

/// Score one NEWS2 observation set (RCP 2017), or a CSV file of sets.
#[derive(Debug, Args)]
#[command(after_long_help = EXAMPLES)]
pub struct ScoreArgs {
    /// Respiration rate, breaths/min.
    #[arg(long, value_name = "PER_MIN", value_parser = number, allow_negative_numbers = true)]
    pub rr: Option<f64>,

    /// SpO2, percent.
    #[arg(long, value_name = "PERCENT", value_parser = number, allow_negative_numbers = true)]
    pub spo2: Option<f64>,

    /// SpO2 scale: 2 only when prescribed for hypercapnic respiratory failure (target 88-92 %).
    #[arg(long, value_enum, default_value = "1")]
    pub scale: ScaleArg,

    /// Breathing room air or supplemental oxygen.
    #[arg(long, value_enum)]
    pub oxygen: Option<OxygenArg>,

    /// Systolic blood pressure, mmHg.
    #[arg(long, value_name = "MMHG", value_parser = number, allow_negative_numbers = true)]
    pub sbp: Option<f64>,

    /// Pulse (heart rate), beats/min.
    #[arg(long, value_name = "PER_MIN", value_parser = number, allow_negative_numbers = true)]
    pub hr: Option<f64>,

    /// Consciousness: Alert, new Confusion, Voice, Pain, Unresponsive.
    #[arg(long, value_enum, ignore_case = true)]
    pub acvpu: Option<AcvpuArg>,

    /// Temperature, in the unit of --temp-unit.
    #[arg(long, value_name = "DEGREES", value_parser = number, allow_negative_numbers = true)]
    pub temp: Option<f64>,

    /// Unit of --temp: C (Celsius) or F (Fahrenheit, converted to Celsius before rounding).
    #[arg(
        long = "temp-unit",
        value_enum,
        default_value = "C",
        ignore_case = true
    )]
    pub temp_unit: TempUnitArg,

    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    pub json: bool,

    /// Score every row of this CSV file ('-' for standard input) and write one JSON line per row.
    #[arg(
        long,
        value_name = "FILE.csv",
        conflicts_with_all = ["rr", "spo2", "scale", "oxygen", "sbp", "hr", "acvpu", "temp", "temp_unit"]
    )]
    pub input: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ScaleArg {
    #[value(name = "1")]
    One,
    #[value(name = "2")]
    Two,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OxygenArg {
    Air,
    Oxygen,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum AcvpuArg {
    #[value(name = "A")]
    A,
    #[value(name = "C")]
    C,
    #[value(name = "V")]
    V,
    #[value(name = "P")]
    P,
    #[value(name = "U")]
    U,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum TempUnitArg {
    #[value(name = "C")]
    C,
    #[value(name = "F")]
    F,
}

/// A finite number, for clap.
fn number(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        Ok(_) => Err(format!("'{text}' is not a finite number")),
        Err(_) => Err(format!("'{text}' is not a number")),
    }
}

/// One set as given: numbers in the flag's unit, not yet checked.
#[derive(Clone, Copy, Debug, Default)]
struct RawSet {
    rr: Option<f64>,
    spo2: Option<f64>,
    scale: Scale,
    oxygen: Option<AirOrOxygen>,
    sbp: Option<f64>,
    hr: Option<f64>,
    acvpu: Option<Acvpu>,
    temp: Option<f64>,
    temp_unit: Option<Unit>,
}

impl RawSet {
    fn from_args(args: &ScoreArgs) -> RawSet {
        RawSet {
            rr: args.rr,
            spo2: args.spo2,
            scale: match args.scale {
                ScaleArg::One => Scale::One,
                ScaleArg::Two => Scale::Two,
            },
            oxygen: args.oxygen.map(|o| match o {
                OxygenArg::Air => AirOrOxygen::Air,
                OxygenArg::Oxygen => AirOrOxygen::Oxygen,
            }),
            sbp: args.sbp,
            hr: args.hr,
            acvpu: args.acvpu.map(|a| match a {
                AcvpuArg::A => Acvpu::A,
                AcvpuArg::C => Acvpu::C,
                AcvpuArg::V => Acvpu::V,
                AcvpuArg::P => Acvpu::P,
                AcvpuArg::U => Acvpu::U,
            }),
            temp: args.temp,
            temp_unit: Some(match args.temp_unit {
                TempUnitArg::C => Unit::Celsius,
                TempUnitArg::F => Unit::Fahrenheit,
            }),
        }
    }

    /// Checks each number with the same rules as the wire format and converts it exactly.
    fn parameters(&self) -> Parameters {
        let numeric = |vital: Vital, value: Option<f64>, unit: Unit| -> Input<Exact> {
            match value.map(|v| observation::read(vital, Value::Number(v), Some(unit))) {
                None => Input::Missing,
                Some(Ok(Reading::Quantity(q))) => Input::Present(q),
                Some(Ok(other)) => Input::Invalid(format!("unexpected reading {other:?}")),
                Some(Err(e)) => Input::Invalid(e.to_string()),
            }
        };
        Parameters {
            respiration_rate: numeric(Vital::RespiratoryRate, self.rr, Unit::PerMinute),
            spo2: numeric(Vital::Spo2, self.spo2, Unit::Percent),
            air_or_oxygen: self.oxygen.map_or(Input::Missing, Input::Present),
            systolic_bp: numeric(Vital::SystolicBp, self.sbp, Unit::MillimetresOfMercury),
            pulse: numeric(Vital::HeartRate, self.hr, Unit::PerMinute),
            consciousness: self.acvpu.map_or(Input::Missing, Input::Present),
            temperature: numeric(
                Vital::Temperature,
                self.temp,
                self.temp_unit.unwrap_or(Unit::Celsius),
            ),
        }
    }

    fn score(&self) -> Score {
        news2::score(&self.parameters(), self.scale)
    }
}

pub fn run(args: &ScoreArgs) -> anyhow::Result<ExitCode> {
    let stdout = io::stdout();
    let mut out = BufWriter::new(stdout.lock());
    if let Some(path) = &args.input {
        let sets = read_csv(path)?;
        for set in &sets {
            serde_json::to_writer(&mut out, &ScoreJson::new(&set.score()))?;
            out.write_all(b"\n")?;
        }
    } else {
        let score = RawSet::from_args(args).score();
        if args.json {
            serde_json::to_writer(&mut out, &ScoreJson::new(&score))?;
            out.write_all(b"\n")?;
        } else {
            out.write_all(human(&score).as_bytes())?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// CSV input

const REQUIRED_COLUMNS: [&str; 7] = ["rr", "spo2", "oxygen", "sbp", "hr", "acvpu", "temp"];

fn read_csv(path: &Path) -> anyhow::Result<Vec<RawSet>> {
    let name = path.display().to_string();
    let mut text = String::new();
    if name == "-" {
        io::stdin()
            .read_to_string(&mut text)
            .context("cannot read standard input")?;
    } else {
        File::open(path)
            .and_then(|mut f| f.read_to_string(&mut text))
            .with_context(|| format!("cannot read {name}"))?;
    }
    parse_csv(&text).map_err(|e| anyhow::anyhow!("{name}: {e}"))
}

/// Parses CSV text into sets. Errors name the line and the column.
fn parse_csv(text: &str) -> anyhow::Result<Vec<RawSet>> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .context("cannot read the header line")?
        .clone();
    if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
        bail!(
            "empty file: expected a header line naming {}",
            REQUIRED_COLUMNS.join(", ")
        );
    }
    let mut columns: HashMap<String, usize> = HashMap::new();
    for (i, name) in headers.iter().enumerate() {
        let key = name.to_ascii_lowercase().replace('_', "-");
        if columns.insert(key, i).is_some() {
            bail!("line 1: column `{name}` appears twice");
        }
    }
    if let Some(missing) = REQUIRED_COLUMNS.iter().find(|c| !columns.contains_key(**c)) {
        bail!(
            "missing column `{missing}` (the header must name {}; scale and temp-unit are optional)",
            REQUIRED_COLUMNS.join(", ")
        );
    }

    let mut sets = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| match e.position() {
            Some(p) => anyhow::anyhow!("line {}: {}", p.line(), csv_reason(&e)),
            None => anyhow::anyhow!("{}", csv_reason(&e)),
        })?;
        let line = record.position().map_or(0, |p| p.line());
        let cell = |column: &str| -> &str {
            columns
                .get(column)
                .and_then(|&i| record.get(i))
                .unwrap_or("")
        };
        let bad =
            |column: &str, why: String| anyhow::anyhow!("line {line}, column `{column}`: {why}");
        let num = |column: &str| -> anyhow::Result<Option<f64>> {
            match cell(column) {
                "" => Ok(None),
                text => number(text).map(Some).map_err(|why| bad(column, why)),
            }
        };
        let choice = |column: &str, accepted: &[&str]| -> anyhow::Result<Option<usize>> {
            match cell(column) {
                "" => Ok(None),
                text => accepted
                    .iter()
                    .position(|a| a.eq_ignore_ascii_case(text))
                    .map(Some)
                    .ok_or_else(|| {
                        bad(
                            column,
                            format!("'{text}' is not one of {}", accepted.join(", ")),
                        )
                    }),
            }
        };
        sets.push(RawSet {
            rr: num("rr")?,
            spo2: num("spo2")?,
            scale: match choice("scale", &["1", "2"])? {
                Some(1) => Scale::Two,
                _ => Scale::One,
            },
            oxygen: choice("oxygen", &["air", "oxygen"])?.map(|i| {
                if i == 0 {
                    AirOrOxygen::Air
                } else {
                    AirOrOxygen::Oxygen
                }
            }),
            sbp: num("sbp")?,
            hr: num("hr")?,
            acvpu: choice("acvpu", &["A", "C", "V", "P", "U"])?.map(|i| Acvpu::ALL[i]),
            temp: num("temp")?,
            temp_unit: Some(match choice("temp-unit", &["C", "F"])? {
                Some(1) => Unit::Fahrenheit,
                _ => Unit::Celsius,
            }),
        });
    }
    Ok(sets)
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("found {len} fields, expected {expected_len} like the header"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => e.to_string().replace('\n', " "),
    }
}

// ---------------------------------------------------------------------------------------------
// Output

/// The JSON form of a score (documented in the README).
#[derive(Serialize)]
struct ScoreJson {
    status: Status,
    subscores: Subscores,
    total: u8,
    total_upper_bound: u8,
    single_parameter_3: bool,
    band: Option<Band>,
    monitoring: &'static str,
    response: String,
    problems: Vec<String>,
}

#[derive(Serialize)]
struct Subscores {
    rr: Option<u8>,
    spo2: Option<u8>,
    air_oxygen: Option<u8>,
    sbp: Option<u8>,
    hr: Option<u8>,
    acvpu: Option<u8>,
    temp: Option<u8>,
}

impl ScoreJson {
    fn new(score: &Score) -> ScoreJson {
        ScoreJson {
            status: score.status,
            subscores: Subscores {
                rr: score.subscore(Parameter::RespirationRate),
                spo2: score.subscore(Parameter::Spo2),
                air_oxygen: score.subscore(Parameter::AirOrOxygen),
                sbp: score.subscore(Parameter::SystolicBp),
                hr: score.subscore(Parameter::Pulse),
                acvpu: score.subscore(Parameter::Consciousness),
                temp: score.subscore(Parameter::Temperature),
            },
            total: score.total,
            total_upper_bound: score.upper_bound,
            single_parameter_3: score.single_parameter_3,
            band: score.band,
            monitoring: score.monitoring(),
            response: score.response(),
            problems: score.problems.iter().map(ToString::to_string).collect(),
        }
    }
}

/// The summary for a person at a terminal.
fn human(score: &Score) -> String {
    let mut s = String::new();
    let scale = match score.scale {
        Scale::One => "SpO2 scale 1",
        Scale::Two => "SpO2 scale 2",
    };
    let band = score
        .band
        .map_or("band unknown".to_owned(), |b| format!("{b} risk"));
    let _ = match score.status {
        Status::Complete => writeln!(s, "NEWS2 {}: {band} ({scale})", score.total),
        Status::Incomplete | Status::Invalid => writeln!(
            s,
            "NEWS2 at least {}, up to {}: {band}, {} set, not a low score ({scale})",
            score.total, score.upper_bound, score.status
        ),
    };
    let _ = writeln!(s);
    for a in &score.assessments {
        let unit = match a.parameter {
            Parameter::RespirationRate | Parameter::Pulse => " /min",
            Parameter::Spo2 => " %",
            Parameter::SystolicBp => " mmHg",
            Parameter::Temperature => " °C",
            Parameter::AirOrOxygen | Parameter::Consciousness => "",
        };
        let value = a.charted.map_or("-".to_owned(), |c| format!("{c}{unit}"));
        let points = a.subscore.map_or("?".to_owned(), |p| p.to_string());
        let _ = writeln!(
            s,
            "  {:<18}{:>11}  {:>2}",
            a.parameter.human_name(),
            value,
            points
        );
    }
    if !score.problems.is_empty() {
        let _ = writeln!(s, "\nNot scored:");
        for p in &score.problems {
            let _ = writeln!(s, "  {p}");
        }
    }
    let _ = writeln!(s, "\nMonitoring: {}", score.monitoring());
    let _ = writeln!(s, "Response:   {}", score.response());
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_columns_are_matched_by_name_in_any_order() {
        let sets =
            parse_csv("temp,acvpu,hr,sbp,oxygen,spo2,rr,id\n37,A,70,120,air,98,16,x\n").unwrap();
        let score = sets[0].score();
        assert_eq!((score.status, score.total), (Status::Complete, 0));
    }

    #[test]
    fn csv_errors_name_the_line_and_column() {
        let header = "rr,spo2,oxygen,sbp,hr,acvpu,temp\n";
        let err = parse_csv(&format!(
            "{header}16,98,air,120,70,A,37\nabc,98,air,120,70,A,37\n"
        ))
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3, column `rr`: 'abc' is not a number"
        );
        let err = parse_csv(&format!("{header}16,98,air,120,70,X,37\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2, column `acvpu`: 'X' is not one of A, C, V, P, U"
        );
        let err = parse_csv(&format!("{header}16,98,air\n")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 2: found 3 fields, expected 7 like the header"
        );
        let err = parse_csv("rr,spo2\n").unwrap_err();
        assert!(
            err.to_string().starts_with("missing column `oxygen`"),
            "{err}"
        );
        let err = parse_csv("").unwrap_err();
        assert!(err.to_string().starts_with("empty file"), "{err}");
    }
}
