//! Attribute text: entity decoding and repair of characters XML forbids.
//!
//! Only the five predefined entities and numeric character references are
//! decoded; the prolog step has already refused any `<!ENTITY`, so anything
//! else is an error in the document. Control characters other than tab, line
//! feed and carriage return are illegal in XML 1.0 but do occur in real
//! exports (U+000B in a source name): they are dropped and counted rather
//! than failing a multi-gigabyte import.

use std::borrow::Cow;
use std::fmt;

/// Why an attribute value could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    UnknownEntity(String),
    UnterminatedReference,
}

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TextError::UnknownEntity(name) => write!(
                f,
                "undefined entity `&{name};` (only &amp; &lt; &gt; &quot; &apos; and numeric references are allowed)"
            ),
            TextError::UnterminatedReference => write!(f, "an `&` that starts no reference"),
        }
    }
}

/// Decodes raw attribute bytes into `out` (cleared first). Returns the number
/// of characters dropped because XML forbids them.
pub fn decode_into(raw: &[u8], out: &mut String) -> Result<u32, TextError> {
    out.clear();
    let mut repaired = 0;
    let mut rest = raw;
    while let Some(amp) = memchr::memchr(b'&', rest) {
        repaired += push_clean(&rest[..amp], out);
        let after = &rest[amp + 1..];
        let semi = memchr::memchr(b';', after)
            .filter(|&i| i <= 12)
            .ok_or(TextError::UnterminatedReference)?;
        let name = &after[..semi];
        match name {
            b"amp" => out.push('&'),
            b"lt" => out.push('<'),
            b"gt" => out.push('>'),
            b"quot" => out.push('"'),
            b"apos" => out.push('\''),
            [b'#', b'x' | b'X', hex @ ..] => {
                repaired += push_code(parse_radix(hex, 16), name, out)?
            }
            [b'#', dec @ ..] => repaired += push_code(parse_radix(dec, 10), name, out)?,
            _ => {
                return Err(TextError::UnknownEntity(
                    String::from_utf8_lossy(name).into_owned(),
                ));
            }
        }
        rest = &after[semi + 1..];
    }
    repaired += push_clean(rest, out);
    Ok(repaired)
}

/// Decodes raw attribute bytes, borrowing them when they need no change
/// (the common case: no reference, nothing to repair). Returns the text and
/// the number of characters dropped.
pub fn decode_cow(raw: &[u8]) -> Result<(Cow<'_, str>, u32), TextError> {
    if is_plain(raw)
        && let Ok(s) = std::str::from_utf8(raw)
    {
        return Ok((Cow::Borrowed(s), 0));
    }
    let mut out = String::with_capacity(raw.len());
    let repaired = decode_into(raw, &mut out)?;
    Ok((Cow::Owned(out), repaired))
}

/// No `&`, no control character, and nothing that could be U+FFFE/U+FFFF.
fn is_plain(raw: &[u8]) -> bool {
    raw.iter().all(|&b| b >= 0x20 && b != b'&' && b != 0xEF)
}

/// How many bytes of XML whitespace `bytes` starts with: what a
/// whitespace text event between elements holds.
pub(crate) fn whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .position(|&b| !quick_xml::utils::is_whitespace(b))
        .unwrap_or(bytes.len())
}

/// Whether a character may appear in an XML 1.0 document.
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

fn push_code(code: Option<u32>, name: &[u8], out: &mut String) -> Result<u32, TextError> {
    let c = code
        .and_then(char::from_u32)
        .ok_or_else(|| TextError::UnknownEntity(String::from_utf8_lossy(name).into_owned()))?;
    if is_xml_char(c) {
        out.push(c);
        Ok(0)
    } else {
        Ok(1)
    }
}

fn parse_radix(digits: &[u8], radix: u32) -> Option<u32> {
    if digits.is_empty() || digits.len() > 8 {
        return None;
    }
    let mut n: u32 = 0;
    for &d in digits {
        n = n
            .checked_mul(radix)?
            .checked_add(char::from(d).to_digit(radix)?)?;
    }
    Some(n)
}

/// Appends `bytes` as text, dropping characters XML forbids and replacing
/// invalid UTF-8. Returns how many characters were dropped or replaced.
fn push_clean(bytes: &[u8], out: &mut String) -> u32 {
    // The fast path: valid UTF-8 with no C0 control characters but tab/LF/CR.
    let needs_repair = bytes
        .iter()
        .any(|&b| (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r')) || b == 0xEF);
    match std::str::from_utf8(bytes) {
        Ok(s) if !needs_repair || !s.contains(['\u{FFFE}', '\u{FFFF}']) && !has_control(s) => {
            out.push_str(s);
            0
        }
        Ok(s) => push_filtered(s, out),
        Err(_) => {
            let lossy = String::from_utf8_lossy(bytes);
            let replaced = lossy.matches('\u{FFFD}').count() as u32;
            replaced + push_filtered(&lossy, out)
        }
    }
}

fn has_control(s: &str) -> bool {
    s.bytes()
        .any(|b| b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
}

fn push_filtered(s: &str, out: &mut String) -> u32 {
    let mut dropped = 0;
    for c in s.chars() {
        if is_xml_char(c) {
            out.push(c);
        } else {
            dropped += 1;
        }
    }
    dropped
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &str) -> Result<(String, u32), TextError> {
        let mut out = String::new();
        let n = decode_into(raw.as_bytes(), &mut out)?;
        Ok((out, n))
    }

    #[test]
    fn decodes_predefined_and_numeric_references() {
        assert_eq!(
            decode("&lt;&lt;HKDevice&gt;, a &amp; b &quot;q&quot; &apos;s&apos; &#8217; &#x2019;"),
            Ok(("<<HKDevice>, a & b \"q\" 's' \u{2019} \u{2019}".into(), 0))
        );
    }

    #[test]
    fn refuses_undefined_entities() {
        assert_eq!(
            decode("a &xxe; b"),
            Err(TextError::UnknownEntity("xxe".into()))
        );
        assert_eq!(decode("a & b"), Err(TextError::UnterminatedReference));
    }

    #[test]
    fn drops_and_counts_illegal_control_characters() {
        assert_eq!(
            decode("Simon\u{b}s iPhone"),
            Ok(("Simons iPhone".into(), 1))
        );
        assert_eq!(decode("a&#11;b&#x0B;c"), Ok(("abc".into(), 2)));
        assert_eq!(decode("tab\there"), Ok(("tab\there".into(), 0)));
    }

    #[test]
    fn borrows_plain_text_and_decodes_the_rest() {
        assert!(matches!(
            decode_cow(b"count/min"),
            Ok((Cow::Borrowed("count/min"), 0))
        ));
        assert!(matches!(
            decode_cow("Simon’s iPhone".as_bytes()),
            Ok((Cow::Borrowed("Simon’s iPhone"), 0))
        ));
        // U+FF33 starts with 0xEF like U+FFFE does: checked, kept, copied.
        assert!(matches!(decode_cow("Ｓ".as_bytes()), Ok((Cow::Owned(t), 0)) if t == "Ｓ"));
        let (text, n) = decode_cow(b"a&amp;b\x0b").expect("decodes");
        assert_eq!((text.as_ref(), n), ("a&b", 1));
        let (text, n) = decode_cow("x\u{FFFE}y".as_bytes()).expect("decodes");
        assert_eq!((text.as_ref(), n), ("xy", 1));
    }

    #[test]
    fn replaces_invalid_utf8() {
        let mut out = String::new();
        let n = decode_into(b"caf\xe9", &mut out);
        assert_eq!(n, Ok(1));
        assert_eq!(out, "caf\u{FFFD}");
    }
}
