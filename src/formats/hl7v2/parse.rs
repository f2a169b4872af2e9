//! HL7 v2 ER7 ("pipe and hat") syntax: segments, fields, repetitions, components,
//! subcomponents and escape sequences, with the delimiters each message declares in MSH-1 and
//! MSH-2. Pure and bounded: it never panics, whatever the bytes, and every error names the
//! segment (by its number in the message) and field.

use std::borrow::Cow;

/// A message's delimiters, from MSH-1 and MSH-2.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delimiters {
    pub field: char,
    pub component: char,
    pub repetition: char,
    pub escape: Option<char>,
    pub subcomponent: Option<char>,
}

impl Delimiters {
    /// The delimiters HL7 recommends: `|^~\&`.
    pub const STANDARD: Delimiters = Delimiters {
        field: '|',
        component: '^',
        repetition: '~',
        escape: Some('\\'),
        subcomponent: Some('&'),
    };
}

/// One segment: its name, its number in the message (1 for MSH) and its fields as sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment<'a> {
    pub number: usize,
    pub name: &'a str,
    /// `fields[n]` is field `n` (`fields[0]` is the name; for MSH, `fields[1]` is the field
    /// separator and `fields[2]` the encoding characters, as the standard numbers them).
    fields: Vec<&'a str>,
}

/// A parsed message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message<'a> {
    pub delimiters: Delimiters,
    pub segments: Vec<Segment<'a>>,
}

/// Where a message is wrong, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// `segment 3 (OBX-5)`, or `segment 1 (MSH-2)`, or empty for the whole message.
    pub at: String,
    pub reason: String,
}

impl SyntaxError {
    pub fn new(at: impl Into<String>, reason: impl Into<String>) -> SyntaxError {
        SyntaxError {
            at: at.into(),
            reason: reason.into(),
        }
    }
}

/// `segment N (NAM-F)`.
pub fn place(segment: &Segment, field: usize) -> String {
    format!("segment {} ({}-{field})", segment.number, segment.name)
}

impl<'a> Segment<'a> {
    /// Field `n` as sent (escapes and all); empty when absent.
    pub fn raw(&self, n: usize) -> &'a str {
        self.fields.get(n).copied().unwrap_or("")
    }

    /// Component `c` (1-based) of repetition `r` (0-based) of field `n`, unescaped; empty when
    /// absent.
    pub fn component(
        &self,
        d: &Delimiters,
        n: usize,
        r: usize,
        c: usize,
    ) -> Result<Cow<'a, str>, SyntaxError> {
        let raw = self.raw(n);
        let rep = piece(raw, d.repetition, r);
        let comp = piece(rep, d.component, c.saturating_sub(1));
        // A subcomponent delimiter inside is kept: the first subcomponent is what is read.
        let comp = match d.subcomponent {
            Some(s) => piece(comp, s, 0),
            None => comp,
        };
        unescape(comp, d).map_err(|reason| SyntaxError::new(place(self, n), reason))
    }

    /// How many repetitions field `n` has (0 when empty).
    pub fn repetitions(&self, d: &Delimiters, n: usize) -> usize {
        match self.raw(n) {
            "" => 0,
            raw => raw.matches(d.repetition).count() + 1,
        }
    }
}

/// Piece `n` (0-based) of `s` split at `sep`, or `""`; delimiters are ASCII in practice, and
/// then found a word at a time.
fn piece(s: &str, sep: char, n: usize) -> &str {
    if !sep.is_ascii() {
        return s.split(sep).nth(n).unwrap_or("");
    }
    let mut start = 0;
    let mut seen = 0;
    for at in memchr::memchr_iter(sep as u8, s.as_bytes()) {
        if seen == n {
            return &s[start..at];
        }
        seen += 1;
        start = at + 1;
    }
    if seen == n { &s[start..] } else { "" }
}

/// `s` cut at every `sep` (ASCII: a word at a time).
fn pieces(s: &str, sep: char) -> Vec<&str> {
    if !sep.is_ascii() {
        return s.split(sep).collect();
    }
    let mut out = Vec::with_capacity(24);
    let mut start = 0;
    for at in memchr::memchr_iter(sep as u8, s.as_bytes()) {
        out.push(&s[start..at]);
        start = at + 1;
    }
    out.push(&s[start..]);
    out
}

/// Parses a message: segments split at `\r`, `\n` or `\r\n`, the first one MSH.
pub fn parse(text: &str) -> Result<Message<'_>, SyntaxError> {
    let mut start = 0;
    let mut lines = memchr::memchr2_iter(b'\r', b'\n', text.as_bytes())
        .chain([text.len()])
        .map(move |end| {
            let line = &text[start..end];
            start = end + 1;
            line
        })
        .filter(|s| !s.trim().is_empty())
        .peekable();
    let first = lines.peek().copied().unwrap_or("");
    if !first.starts_with("MSH") {
        let name: String = first.chars().take(3).collect();
        return Err(SyntaxError::new(
            "segment 1",
            format!("the first segment is {name:?}, not MSH"),
        ));
    }
    let delimiters = delimiters(first)?;
    let mut segments = Vec::new();
    for (i, line) in lines.enumerate() {
        segments.push(segment(i + 1, line, &delimiters)?);
    }
    Ok(Message {
        delimiters,
        segments,
    })
}

/// MSH-1 and MSH-2: the field separator and 2 to 5 encoding characters, all distinct.
fn delimiters(msh: &str) -> Result<Delimiters, SyntaxError> {
    let mut chars = msh.chars().skip(3);
    let field = chars
        .next()
        .ok_or_else(|| SyntaxError::new("segment 1 (MSH-1)", "missing field separator"))?;
    let encoding: Vec<char> = chars.take_while(|&c| c != field).collect();
    let bad = |reason: String| SyntaxError::new("segment 1 (MSH-2)", reason);
    if field.is_alphanumeric() || field.is_whitespace() {
        return Err(SyntaxError::new(
            "segment 1 (MSH-1)",
            format!("{field:?} cannot be the field separator"),
        ));
    }
    if !(2..=5).contains(&encoding.len()) {
        return Err(bad(format!(
            "{} encoding characters (2 to 5: component, repetition, escape, subcomponent)",
            encoding.len()
        )));
    }
    for (i, &c) in encoding.iter().enumerate() {
        if c.is_alphanumeric() || c.is_whitespace() || c == field || encoding[..i].contains(&c) {
            return Err(bad(format!(
                "encoding character {c:?} is repeated or cannot be a delimiter"
            )));
        }
    }
    Ok(Delimiters {
        field,
        component: encoding[0],
        repetition: encoding[1],
        escape: encoding.get(2).copied(),
        subcomponent: encoding.get(3).copied(),
    })
}

fn segment<'a>(number: usize, line: &'a str, d: &Delimiters) -> Result<Segment<'a>, SyntaxError> {
    let mut fields = pieces(line, d.field);
    let name = fields.first().copied().unwrap_or("");
    let valid = name.len() == 3
        && name.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if !valid {
        let shown: String = name.chars().take(12).collect();
        return Err(SyntaxError::new(
            format!("segment {number}"),
            format!("{shown:?} is not a segment name (three capitals or digits)"),
        ));
    }
    if name == "MSH" {
        // MSH-1 is the separator itself: fields[1] is "|", the encoding characters fields[2].
        fields.insert(1, "|");
    }
    Ok(Segment {
        number,
        name,
        fields,
    })
}

/// Replaces escape sequences: `\F\ \S\ \T\ \R\ \E\` (delimiters), `\Xhh…\` (bytes, as UTF-8),
/// `\.br\` (a line break); highlighting (`\H\ \N\`), other formatting (`\.sp\`, …) and character
/// set switches (`\C…\ \M…\`) carry no value and are dropped. Anything else, or an escape not
/// closed, is an error.
pub fn unescape<'a>(s: &'a str, d: &Delimiters) -> Result<Cow<'a, str>, String> {
    let Some(esc) = d.escape.filter(|e| s.contains(*e)) else {
        return Ok(Cow::Borrowed(s));
    };
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(esc) {
        out.push_str(&rest[..at]);
        let after = &rest[at + esc.len_utf8()..];
        let end = after
            .find(esc)
            .ok_or_else(|| format!("escape sequence not closed: {:?}", quote(&rest[at..])))?;
        let seq = &after[..end];
        match seq {
            "F" => out.push(d.field),
            "S" => out.push(d.component),
            "R" => out.push(d.repetition),
            "E" => out.push(esc),
            "T" => out.extend(d.subcomponent),
            "H" | "N" => {}
            ".br" => out.push('\n'),
            _ if seq.starts_with('.') || seq.starts_with('C') || seq.starts_with('M') => {}
            _ if seq.starts_with('X') => out.push_str(&hex(&seq[1..])?),
            _ => {
                return Err(format!(
                    "unknown escape sequence {:?}",
                    quote(&rest[at..at + end + 2 * esc.len_utf8()])
                ));
            }
        }
        rest = &after[end + esc.len_utf8()..];
    }
    out.push_str(rest);
    Ok(Cow::Owned(out))
}

fn hex(digits: &str) -> Result<String, String> {
    let bad = || format!("\\X{}\\ is not hexadecimal bytes", quote(digits));
    if !digits.len().is_multiple_of(2) || digits.is_empty() {
        return Err(bad());
    }
    let bytes: Option<Vec<u8>> = (0..digits.len())
        .step_by(2)
        .map(|i| {
            digits
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    String::from_utf8(bytes.ok_or_else(bad)?).map_err(|_| bad())
}

fn quote(s: &str) -> String {
    s.chars().take(40).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_repetitions_and_components_are_numbered_as_the_standard_numbers_them() {
        let m = parse("MSH|^~\\&|APP|FAC|||20260101000000+0000||ORU^R01^ORU_R01|1|P|2.6\rPID|||p-1^^^H^MR~other^^^X||Doe^J\nOBX|1|NM|150456^MDC_PULS_OXIM_SAT_O2^MDC||97").unwrap();
        let d = m.delimiters;
        assert_eq!(d, Delimiters::STANDARD);
        let msh = &m.segments[0];
        assert_eq!(msh.raw(1), "|");
        assert_eq!(msh.raw(2), "^~\\&");
        assert_eq!(msh.component(&d, 9, 0, 2).unwrap(), "R01");
        assert_eq!(msh.component(&d, 12, 0, 1).unwrap(), "2.6");
        let pid = &m.segments[1];
        assert_eq!((pid.number, pid.name), (2, "PID"));
        assert_eq!(pid.component(&d, 3, 0, 1).unwrap(), "p-1");
        assert_eq!(pid.component(&d, 3, 1, 1).unwrap(), "other");
        assert_eq!(pid.repetitions(&d, 3), 2);
        assert_eq!(pid.component(&d, 40, 0, 1).unwrap(), "");
        let obx = &m.segments[2];
        assert_eq!(obx.component(&d, 3, 0, 3).unwrap(), "MDC");
    }

    #[test]
    fn escapes_are_replaced_and_a_bad_one_is_named() {
        let d = Delimiters::STANDARD;
        assert_eq!(
            unescape("a\\F\\b\\S\\c\\T\\d\\R\\e\\E\\f", &d).unwrap(),
            "a|b^c&d~e\\f"
        );
        assert_eq!(
            unescape("\\H\\bold\\N\\ line\\.br\\two", &d).unwrap(),
            "bold line\ntwo"
        );
        assert_eq!(unescape("\\X41C3A9\\", &d).unwrap(), "Aé");
        assert!(
            unescape("a\\Q\\b", &d)
                .unwrap_err()
                .contains("unknown escape")
        );
        assert!(unescape("a\\F", &d).unwrap_err().contains("not closed"));
        assert!(unescape("\\XZZ\\", &d).unwrap_err().contains("hexadecimal"));
        assert!(unescape("\\XFF\\", &d).is_err());
    }

    #[test]
    fn bad_headers_are_refused_with_the_field() {
        let e = parse("PID|||1").unwrap_err();
        assert_eq!(e.at, "segment 1");
        assert!(parse("MSH||APP").unwrap_err().reason.contains("0 encoding"));
        assert!(
            parse("MSH|^~\\&^#!|A")
                .unwrap_err()
                .reason
                .contains("7 encoding")
        );
        assert!(
            parse("MSH|^^\\&|A")
                .unwrap_err()
                .reason
                .contains("repeated")
        );
        let e = parse("MSH|^~\\&|A\rpid|1").unwrap_err();
        assert_eq!(e.at, "segment 2");
    }

    #[test]
    fn other_delimiters_are_read_as_declared() {
        let m = parse("MSH#*!/$#A#B\rPID###p-9*x").unwrap();
        let pid = &m.segments[1];
        assert_eq!(pid.component(&m.delimiters, 3, 0, 1).unwrap(), "p-9");
        assert_eq!(pid.component(&m.delimiters, 3, 0, 2).unwrap(), "x");
    }
}
