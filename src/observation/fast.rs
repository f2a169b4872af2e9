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
        // The device kinds of v1.1 have fields of their own: the general decoder reads them.
        Token::Str(s) => s.parse().ok().filter(|v: &Vital| v.is_bedside())?,
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
    let close = string_end(b, start)?;
    // `text` is UTF-8 and a quote never occurs inside a multi-byte character, so both ends are
    // character boundaries.
    (b[close] == b'"').then(|| (&text[start..close], close + 1))
}

/// The index of the first byte from `start` on that ends a simple string: a quote, a backslash
/// or a control character.
///
/// Eight bytes at a time (a string's bytes were a sixth of all the work of a replay from a
/// file). For a word `w`, `(w - 0x01…01 · n) & !w & 0x80…80` flags every byte below `n`, exactly
/// up to the first one: a false flag needs a borrow, which only a flagged byte below it makes.
/// So the lowest flag of the three tests (equal to `"`, equal to `\`, below 0x20) is the first
/// special byte.
fn string_end(b: &[u8], start: usize) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below = |w: u64, n: u8| w.wrapping_sub(ONES * u64::from(n)) & !w & HIGH;
    let mut i = start;
    while let Some(chunk) = b.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*chunk);
        let flags = below(w ^ (ONES * u64::from(b'"')), 1)
            | below(w ^ (ONES * u64::from(b'\\')), 1)
            | below(w, 0x20);
        if flags != 0 {
            return Some(i + (flags.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    b.get(i..)?
        .iter()
        .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
        .map(|k| i + k)
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

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        /// The word-at-a-time scan finds what a byte-at-a-time scan finds, from any start.
        #[test]
        fn string_end_is_the_first_special_byte(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'"'), Just(b'\\'), 0u8..0x20, 0x20u8..=0xff, 0x5bu8..0x5e],
                0..40,
            ),
            start in 0usize..42,
        ) {
            let expected = bytes
                .get(start..)
                .and_then(|rest| rest.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20))
                .map(|k| start + k);
            prop_assert_eq!(super::string_end(&bytes, start), expected);
        }
    }
}
