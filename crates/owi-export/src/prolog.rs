//! Everything before the root element, handled without an XML parser.
//!
//! The DTD internal subset is opaque text to us: real exports ship one that
//! strict parsers reject (iOS 16), and none of it matters to the data. It is
//! skipped by finding its closing `]>`; the only thing looked for inside is
//! `<!ENTITY`, which is refused, so no entity is ever expanded or fetched.

use std::io::{self, BufRead, Read};

/// What the start of a file looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sniff {
    HealthData,
    OtherXml(String),
    NotXml,
}

/// The prolog of an export, as found in the stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prolog {
    /// Bytes from the start of the file to the root element's `<`.
    pub root_offset: u64,
    /// The XML declaration as written (`<?xml version="1.0" encoding="UTF-8"?>`).
    pub declaration: Option<String>,
    /// The byte range of the whole `<!DOCTYPE …>` declaration.
    pub doctype: Option<(u64, u64)>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum PrologError {
    Io(String),
    Entity { offset: u64 },
    Unterminated { what: &'static str, offset: u64 },
    NotHealthData(Sniff),
    TooLong,
}

impl From<io::Error> for PrologError {
    fn from(e: io::Error) -> Self {
        PrologError::Io(e.to_string())
    }
}

/// Prologs longer than this are not exports (Apple's DTD is about 10 KB).
pub const MAX_PROLOG: usize = 4 << 20;

/// Tells whether `head` starts an Apple Health export.
pub fn sniff(head: &[u8]) -> Sniff {
    match scan(head, true) {
        Ok(Scan::Root { name, .. }) | Ok(Scan::DoctypeName(name)) => {
            if name == "HealthData" {
                Sniff::HealthData
            } else {
                Sniff::OtherXml(name)
            }
        }
        Ok(Scan::NeedMore) => Sniff::NotXml,
        Err(_) => Sniff::NotXml,
    }
}

/// Reads the prolog from `input`, leaving it positioned at the root element,
/// and returns what it found with the bytes consumed (to be replayed to the
/// parser, which must see the root element from its `<`).
pub fn read_prolog(input: &mut impl BufRead) -> Result<(Prolog, Vec<u8>), PrologError> {
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        match scan(&buf, false)? {
            Scan::Root {
                offset,
                name,
                declaration,
                doctype,
            } => {
                if name != "HealthData" {
                    return Err(PrologError::NotHealthData(Sniff::OtherXml(name)));
                }
                let prolog = Prolog {
                    root_offset: offset as u64,
                    declaration,
                    doctype,
                };
                return Ok((prolog, buf));
            }
            Scan::DoctypeName(_) | Scan::NeedMore => {
                if buf.len() >= MAX_PROLOG {
                    return Err(PrologError::TooLong);
                }
                let n = input.by_ref().take(64 * 1024).read_to_end(&mut buf)?;
                if n == 0 {
                    return Err(match scan(&buf, false)? {
                        Scan::NeedMore if buf.iter().all(u8::is_ascii_whitespace) => {
                            PrologError::NotHealthData(Sniff::NotXml)
                        }
                        _ => PrologError::Unterminated {
                            what: "prolog",
                            offset: buf.len() as u64,
                        },
                    });
                }
            }
        }
    }
}

enum Scan {
    /// The root element starts at `offset`.
    Root {
        offset: usize,
        name: String,
        declaration: Option<String>,
        doctype: Option<(u64, u64)>,
    },
    /// Only when sniffing: the DOCTYPE names the root.
    DoctypeName(String),
    NeedMore,
}

fn scan(buf: &[u8], sniffing: bool) -> Result<Scan, PrologError> {
    let mut pos = if buf.starts_with(b"\xEF\xBB\xBF") {
        3
    } else {
        0
    };
    let mut declaration = None;
    let mut doctype = None;
    loop {
        while pos < buf.len() && buf[pos].is_ascii_whitespace() {
            pos += 1;
        }
        let rest = &buf[pos..];
        if rest.len() < 2 {
            return Ok(Scan::NeedMore);
        }
        if rest[0] != b'<' {
            return Err(PrologError::NotHealthData(Sniff::NotXml));
        }
        if rest.starts_with(b"<?") {
            let Some(end) = find(rest, b"?>") else {
                return more_or(rest, "processing instruction", pos);
            };
            if rest.starts_with(b"<?xml") && declaration.is_none() {
                declaration = Some(String::from_utf8_lossy(&rest[..end + 2]).into_owned());
            }
            pos += end + 2;
        } else if rest.starts_with(b"<!--") {
            let Some(end) = find(rest, b"-->") else {
                return more_or(rest, "comment", pos);
            };
            pos += end + 3;
        } else if rest.starts_with(b"<!DOCTYPE") {
            if sniffing {
                let name: String = rest[9..]
                    .iter()
                    .skip_while(|b| b.is_ascii_whitespace())
                    .take_while(|&&b| is_name_byte(b))
                    .map(|&b| char::from(b))
                    .collect();
                if !name.is_empty() && rest.len() > 9 + name.len() + 1 {
                    return Ok(Scan::DoctypeName(name));
                }
            }
            let Some(len) = doctype_len(rest, pos)? else {
                return more_or(rest, "DOCTYPE", pos);
            };
            doctype = Some((pos as u64, (pos + len) as u64));
            pos += len;
        } else if rest.len() > 1
            && (rest[1].is_ascii_alphabetic() || rest[1] == b'_' || rest[1] >= 0x80)
        {
            let name_len = rest[1..].iter().take_while(|&&b| is_name_byte(b)).count();
            if 1 + name_len == rest.len() {
                return Ok(Scan::NeedMore);
            }
            let name = String::from_utf8_lossy(&rest[1..1 + name_len]).into_owned();
            return Ok(Scan::Root {
                offset: pos,
                name,
                declaration,
                doctype,
            });
        } else if rest.len() < 9 {
            return Ok(Scan::NeedMore);
        } else {
            return Err(PrologError::NotHealthData(Sniff::NotXml));
        }
    }
}

/// Length of a `<!DOCTYPE …>` at the start of `s`, or `None` if incomplete.
/// The internal subset ends at the first `]` followed by optional whitespace
/// and `>`; nothing inside it is interpreted but `<!ENTITY`.
fn doctype_len(s: &[u8], base: usize) -> Result<Option<usize>, PrologError> {
    let Some(open) = s.iter().position(|&b| b == b'[' || b == b'>') else {
        return Ok(None);
    };
    if s[open] == b'>' {
        return Ok(Some(open + 1));
    }
    let mut i = open + 1;
    loop {
        let Some(close) = s[i..].iter().position(|&b| b == b']') else {
            check_entities(&s[open..], base + open)?;
            return Ok(None);
        };
        let mut j = i + close + 1;
        while j < s.len() && s[j].is_ascii_whitespace() {
            j += 1;
        }
        if j == s.len() {
            check_entities(&s[open..], base + open)?;
            return Ok(None);
        }
        if s[j] == b'>' {
            check_entities(&s[open..j], base + open)?;
            return Ok(Some(j + 1));
        }
        i = j;
    }
}

fn check_entities(subset: &[u8], base: usize) -> Result<(), PrologError> {
    match find(subset, b"<!ENTITY") {
        Some(at) => Err(PrologError::Entity {
            offset: (base + at) as u64,
        }),
        None => Ok(()),
    }
}

fn more_or(rest: &[u8], what: &'static str, pos: usize) -> Result<Scan, PrologError> {
    if rest.len() >= MAX_PROLOG {
        Err(PrologError::Unterminated {
            what,
            offset: pos as u64,
        })
    } else {
        Ok(Scan::NeedMore)
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':') || b >= 0x80
}

/// The `<!-- HealthKit Export Version: N -->` a DTD carries.
pub fn export_version(dtd: &[u8]) -> Option<u32> {
    const MARK: &[u8] = b"HealthKit Export Version:";
    let at = memchr::memmem::find(dtd, MARK)? + MARK.len();
    let digits: Vec<u8> = dtd[at..]
        .iter()
        .skip_while(|b| **b == b' ')
        .take_while(|b| b.is_ascii_digit())
        .copied()
        .collect();
    std::str::from_utf8(&digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_content() {
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">"),
            Sniff::HealthData
        );
        assert_eq!(
            sniff(b"\xEF\xBB\xBF<!DOCTYPE HealthData [\n<!ELEMENT"),
            Sniff::HealthData
        );
        assert_eq!(sniff(b"<HealthData>"), Sniff::HealthData);
        assert_eq!(
            sniff(b"<?xml version=\"1.0\"?><!-- x --><svg xmlns=\"\">"),
            Sniff::OtherXml("svg".into())
        );
        assert_eq!(sniff(b"%PDF-1.7"), Sniff::NotXml);
        assert_eq!(sniff(b""), Sniff::NotXml);
    }

    #[test]
    fn skips_a_dtd_without_interpreting_it() {
        // Unbalanced quotes and brackets inside the subset do not matter.
        let doc = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ATTLIST Workout x CDATA \"unterminated >\n<!ELEMENT Oops (a|b>\n]>\n<HealthData locale=\"en\">";
        let (prolog, buf) = read_prolog(&mut &doc[..]).expect("prolog");
        let root = prolog.root_offset as usize;
        assert!(buf[root..].starts_with(b"<HealthData"));
        assert_eq!(
            prolog.declaration.as_deref(),
            Some("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
        );
        let (start, end) = prolog.doctype.expect("doctype");
        assert!(doc[start as usize..end as usize].starts_with(b"<!DOCTYPE"));
        assert!(doc[..end as usize].ends_with(b"]>"));
    }

    #[test]
    fn refuses_entity_declarations() {
        let doc = b"<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData [\n<!ENTITY xxe SYSTEM \"file:///etc/passwd\">\n]>\n<HealthData>&xxe;</HealthData>";
        let err = read_prolog(&mut &doc[..]).expect_err("entity");
        let at = memchr::memmem::find(doc, b"<!ENTITY").map(|i| i as u64);
        assert_eq!(Some(err), at.map(|offset| PrologError::Entity { offset }));
    }

    #[test]
    fn a_prolog_cut_short_is_an_error_not_a_hang() {
        let doc = b"<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData";
        assert!(matches!(
            read_prolog(&mut &doc[..]),
            Err(PrologError::Unterminated { .. })
        ));
    }

    #[test]
    fn reads_a_prolog_split_across_many_small_reads() {
        let doc = b"<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (Record*)>\n]>\n<HealthData locale=\"fr_FR\"><Record/></HealthData>";
        let mut slow = io::BufReader::with_capacity(1, &doc[..]);
        let (prolog, buf) = read_prolog(&mut slow).expect("prolog");
        assert!(buf[prolog.root_offset as usize..].starts_with(b"<HealthData"));
    }

    #[test]
    fn the_export_version_is_read_from_the_dtd() {
        let dtd = b"<!DOCTYPE HealthData [\n<!-- HealthKit Export Version: 12 -->\n]>";
        assert_eq!(super::export_version(dtd), Some(12));
        assert_eq!(super::export_version(b"<!DOCTYPE HealthData []>"), None);
    }
}
