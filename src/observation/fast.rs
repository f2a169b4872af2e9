//! The common case of the wire format, decoded in one pass: a flat object whose strings hold no
//! escapes and whose values are strings, numbers or null. Anything else (an escape, a nested
//! value, a duplicate field, a value Vigil refuses) makes it give up, and the general decoder,
//! which names every problem precisely, decodes the message instead.
//!
//! Invariant: when it returns an observation, the general decoder returns the same one (a
//! property test checks it on valid and on mutated messages). It never returns an error of its
//! own: errors are the general decoder's alone.

use super::{Acvpu, EventTime, Interner, Observation, Unit, Value, Vital, identifier};

/// A field's value as it appears.
#[derive(Clone, Copy)]
enum Token<'a> {
    /// A string's content: no escapes, no control characters.
    Str(&'a str),
    /// A number, as written (JSON number grammar checked).
    Num(&'a str),
    Null,
}

/// Decodes `text`, or `None` when the general decoder must.
pub(super) fn decode(text: &str, mut ids: Option<&mut Interner>) -> Option<Observation> {
    let [patient, device, time, vital, value, unit] = fields(text)?;
    let patient = match patient? {
        Token::Str(s) => identifier(s, "patient", ids.as_deref_mut()).ok()?,
        _ => return None,
    };
    let device = match device {
        None | Some(Token::Null) => None,
        Some(Token::Str(s)) => Some(identifier(s, "device", ids).ok()?),
        Some(Token::Num(_)) => return None,
    };
    let time = match time? {
        Token::Str(s) => EventTime::parse_rfc3339(s).ok()?,
        _ => return None,
    };
    let vital: Vital = match vital? {
        Token::Str(s) => s.parse().ok()?,
        _ => return None,
    };
    let value = match value? {
        // The general decoder's number parser, so that the same text gives the same double.
        Token::Num(n) => Value::Number(serde_json::from_str(n).ok()?),
        Token::Str(s) if vital == Vital::Consciousness => Value::Acvpu(Acvpu::from_letter(s)?),
        _ => return None,
    };
    let unit = match unit {
        None | Some(Token::Null) => None,
        Some(Token::Str(s)) => Some(Unit::from_ucum(s)?),
        Some(Token::Num(_)) => return None,
    };
    Observation::new(patient, device, time, vital, value, unit).ok()
}

/// The six fields of a flat object (patient, device, time, vital, value, unit), unknown fields
/// with simple values skipped as the general decoder skips them.
fn fields(text: &str) -> Option<[Option<Token<'_>>; 6]> {
    let b = text.as_bytes();
    let mut out: [Option<Token<'_>>; 6] = [None; 6];
    let mut i = ws(b, 0);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i = ws(b, i + 1);
    if b.get(i) == Some(&b'}') {
        return end(b, i + 1).then_some(out);
    }
    loop {
        let (key, next) = string(b, text, i)?;
        i = ws(b, next);
        if b.get(i) != Some(&b':') {
            return None;
        }
        i = ws(b, i + 1);
        let (token, next) = match b.get(i)? {
            b'"' => {
                let (s, next) = string(b, text, i)?;
                (Token::Str(s), next)
            }
            b'n' if b[i..].starts_with(b"null") => (Token::Null, i + 4),
            b'-' | b'0'..=b'9' => {
                let next = number(b, i)?;
                (Token::Num(&text[i..next]), next)
            }
            _ => return None,
        };
        let slot = match key {
            "patient" => Some(0),
            "device" => Some(1),
            "time" => Some(2),
            "vital" => Some(3),
            "value" => Some(4),
            "unit" => Some(5),
            _ => None,
        };
        if let Some(slot) = slot {
            // A repeated field is an error for the general decoder.
            if out[slot].replace(token).is_some() {
                return None;
            }
        }
        i = ws(b, next);
        match b.get(i)? {
            b',' => i = ws(b, i + 1),
            b'}' => return end(b, i + 1).then_some(out),
            _ => return None,
        }
    }
}

/// Whether only whitespace follows `i`.
fn end(b: &[u8], i: usize) -> bool {
    ws(b, i) == b.len()
}

fn ws(b: &[u8], mut i: usize) -> usize {
    while matches!(b.get(i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        i += 1;
    }
    i
}

/// The content of the string opening at `i` and the index after it; `None` for an escape or a
/// control character (the general decoder handles or rejects them).
fn string<'a>(b: &[u8], text: &'a str, i: usize) -> Option<(&'a str, usize)> {
    if b.get(i) != Some(&b'"') {
        return None;
    }
    let start = i + 1;
    let len = b[start..]
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)?;
    let close = start + len;
    // `text` is UTF-8 and a quote never occurs inside a multi-byte character, so both ends are
    // character boundaries.
    (b[close] == b'"').then(|| (&text[start..close], close + 1))
}

/// The end of the JSON number starting at `i`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number(b: &[u8], mut i: usize) -> Option<usize> {
    let digits = |b: &[u8], mut i: usize| {
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        (i > start).then_some(i)
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    i = match b.get(i)? {
        b'0' => i + 1,
        b'1'..=b'9' => digits(b, i)?,
        _ => return None,
    };
    if b.get(i) == Some(&b'.') {
        i = digits(b, i + 1)?;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        i = digits(b, i)?;
    }
    // A number ends at a delimiter; anything else ("1x", "01") is for the general decoder.
    match b.get(i) {
        Some(b',' | b'}' | b' ' | b'\t' | b'\n' | b'\r') => Some(i),
        _ => None,
    }
}
