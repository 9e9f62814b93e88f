//! The cleaning rules as one pass over a buffer that may end in the middle
//! of a pattern.
//!
//! Every pattern starts with a byte that cannot occur inside another one
//! (`&`, `0xEF`, a C0 control), so where the patterns are does not depend
//! on where a pass starts: a pass started [`LOOK_BEHIND`] bytes early finds
//! the same ones as a pass over the whole document.

/// The longest character reference blanked, `&` to `;`. Only padding zeros
/// make one longer, and blanking those would need an unbounded look-ahead.
pub(super) const MAX_REF: usize = 32;

/// How far before an offset a fresh stream starts, so that a pattern
/// covering the offset is seen from its first byte.
pub(super) const LOOK_BEHIND: u64 = MAX_REF as u64;

/// Bytes that may start a pattern.
const STARTS: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        table[b] = !matches!(b, 0x09 | 0x0A | 0x0D);
        b += 1;
    }
    table[b'&' as usize] = true;
    table[0xEF] = true;
    table
};

/// Overwrites every XML-illegal character in `buf[from..]` with spaces and
/// returns how far `buf` is final. A pattern cut by the end of `buf` is left
/// for a later call with more bytes after it, unless `eof`.
pub(super) fn blank_illegal(buf: &mut [u8], from: usize, eof: bool) -> usize {
    let mut i = from;
    while i < buf.len() {
        // Most of an export is plain text and named references (every
        // device description holds four `&lt;`/`&gt;`): skip it a block,
        // then a word, at a time.
        if let Some(window) = buf.get(i..).and_then(<[u8]>::first_chunk::<WINDOW>) {
            let block = &window[..BLOCK];
            if is_plain(window) {
                i += BLOCK;
                continue;
            }
            #[cfg(test)]
            tests::SLOW_BLOCKS.with(|n| n.set(n.get() + 1));
            // Only `&`: references, most of them legal at a glance.
            if !has_other_start(block) {
                let end = i + BLOCK;
                let mut j = i;
                while let Some(at) = buf.get(j..end).and_then(|rest| memchr::memchr(b'&', rest)) {
                    let p = j + at;
                    match char_ref(&buf[p..], eof) {
                        Ref::Illegal(len) => {
                            buf[p..p + len].fill(b' ');
                            j = p + len;
                        }
                        Ref::NeedMore => return p,
                        Ref::Legal => j = p + 1,
                    }
                }
                i = end.max(j);
                continue;
            }
        }
        if let Some(word) = buf.get(i..i + 8)
            && !may_start(u64::from_le_bytes(word.try_into().unwrap_or_default()))
        {
            i += 8;
            continue;
        }
        let b = buf[i];
        if !STARTS[usize::from(b)] {
            i += 1;
            continue;
        }
        let len = match b {
            b'&' => match char_ref(&buf[i..], eof) {
                Ref::Illegal(len) => len,
                Ref::NeedMore => return i,
                Ref::Legal => 0,
            },
            // U+FFFE and U+FFFF.
            0xEF => match (buf.get(i + 1), buf.get(i + 2)) {
                (Some(0xBF), Some(0xBE | 0xBF)) => 3,
                (None, _) | (Some(0xBF), None) if !eof => return i,
                _ => 0,
            },
            _ => 1,
        };
        if len == 0 {
            i += 1;
        } else {
            buf[i..i + len].fill(b' ');
            i += len;
        }
    }
    buf.len()
}

/// Bytes [`is_plain`] looks at together.
const BLOCK: usize = 64;
/// A block and the byte after it.
const WINDOW: usize = BLOCK + 1;

/// Whether no byte of a block, `window` but its last byte, starts a
/// pattern: no control character but line feeds, no 0xEF, no `&#` (only
/// character references can name a forbidden character; the last byte
/// shows whether a `&` ending the block starts one). Tabs and carriage
/// returns, rare in exports, send the block to the slower path. A fold
/// without early exit, so the compiler compares many bytes at once.
fn is_plain(window: &[u8; WINDOW]) -> bool {
    let (block, next) = (&window[..BLOCK], &window[1..]);
    !block.iter().zip(next).fold(false, |found, (&b, &n)| {
        found | ((b < 0x20) & (b != b'\n')) | (b == 0xEF) | ((b == b'&') & (n == b'#'))
    })
}

/// Whether `block` holds a pattern's start other than `&` (or a tab or a
/// carriage return, which the slower path checks one by one).
fn has_other_start(block: &[u8]) -> bool {
    block.iter().fold(false, |found, &b| {
        found | ((b < 0x20) & (b != b'\n')) | (b == 0xEF)
    })
}

/// Whether any of the eight bytes of `word` may start a pattern: a byte
/// below 0x20 (tab and line ends included: they are checked one by one),
/// `&` or 0xEF. Bit tricks for "has a byte less than n" and "has a byte
/// equal to c".
fn may_start(word: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    let below = |n: u64| word.wrapping_sub(ONES * n) & !word & HIGHS;
    let equal = |c: u64| {
        let x = word ^ (ONES * c);
        x.wrapping_sub(ONES) & !x & HIGHS
    };
    below(0x20) | equal(u64::from(b'&')) | equal(0xEF) != 0
}

/// Watches a stream, chunk by chunk as it is read, for anything
/// [`blank_illegal`] could blank: a complete read that saw nothing lets an
/// upload of the same XML skip the scan. It errs one way only, on a byte
/// pair that may start a pattern (a legal `&#…;`, U+FFC0–U+FFFD).
#[derive(Debug, Default)]
pub(crate) struct PatternWatch {
    /// The last byte fed, whose pair ends in the next chunk.
    last: Option<u8>,
    seen: bool,
}

impl PatternWatch {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        let Some(&first) = chunk.first() else {
            return;
        };
        if self.seen || self.last.is_some_and(|last| may_blank(last, first)) {
            self.seen = true;
            return;
        }
        let mut i = 0;
        while let Some(window) = chunk.get(i..).and_then(<[u8]>::first_chunk::<WINDOW>) {
            if block_may_blank(window) {
                self.seen = true;
                return;
            }
            i += BLOCK;
        }
        self.seen = chunk[i..]
            .windows(2)
            .any(|pair| may_blank(pair[0], pair[1]));
        self.last = chunk.last().copied();
    }

    /// At the stream's end: whether nothing in it could be blanked.
    pub(crate) fn nothing_seen(&self) -> bool {
        !self.seen && !self.last.is_some_and(|last| may_blank(last, b' '))
    }
}

/// Whether byte `b`, followed by `n`, may start a pattern: a control
/// character but TAB, LF and CR, U+FFxx's `0xEF 0xBF`, or `&#`.
fn may_blank(b: u8, n: u8) -> bool {
    (b < 0x20 && !matches!(b, b'\t' | b'\n' | b'\r'))
        || (b == 0xEF && n == 0xBF)
        || (b == b'&' && n == b'#')
}

/// [`may_blank`] for each byte of a block, `window` but its last byte,
/// as a fold without early exit (the compiler compares many at once).
fn block_may_blank(window: &[u8; WINDOW]) -> bool {
    let (block, next) = (&window[..BLOCK], &window[1..]);
    block.iter().zip(next).fold(false, |found, (&b, &n)| {
        let control = (b < 0x20) & (b != b'\t') & (b != b'\n') & (b != b'\r');
        found | control | ((b == 0xEF) & (n == 0xBF)) | ((b == b'&') & (n == b'#'))
    })
}

/// Blanks the part of `range` (source offsets) that falls in `buf`, whose
/// first byte is at source offset `at`.
pub(super) fn blank_range(buf: &mut [u8], at: u64, range: (u64, u64)) {
    let end = at + buf.len() as u64;
    let (from, to) = (range.0.max(at), range.1.min(end));
    if from < to {
        // Both lie within `buf`, so they fit a usize.
        let (from, to) = ((from - at) as usize, (to - at) as usize);
        buf[from..to].fill(b' ');
    }
}

enum Ref {
    /// A reference to a character XML forbids, this many bytes long.
    Illegal(usize),
    /// A legal reference, or no reference at all.
    Legal,
    NeedMore,
}

/// Reads the reference `s` starts with (`s[0]` is `&`).
fn char_ref(s: &[u8], eof: bool) -> Ref {
    let more = if eof { Ref::Legal } else { Ref::NeedMore };
    match s.get(1) {
        None => return more,
        Some(b'#') => {}
        Some(_) => return Ref::Legal,
    }
    let (radix, first) = match s.get(2) {
        None => return more,
        Some(b'x') => (16, 3),
        Some(_) => (10, 2),
    };
    let mut value: u32 = 0;
    let mut j = first;
    while j < MAX_REF {
        let Some(&c) = s.get(j) else {
            return more;
        };
        if c == b';' && j > first {
            return if is_xml_char(value) {
                Ref::Legal
            } else {
                Ref::Illegal(j + 1)
            };
        }
        let Some(digit) = char::from(c).to_digit(radix) else {
            return Ref::Legal;
        };
        value = value.saturating_mul(radix).saturating_add(digit);
        j += 1;
    }
    Ref::Legal
}

/// XML 1.0's `Char` production.
fn is_xml_char(c: u32) -> bool {
    matches!(c, 0x9 | 0xA | 0xD | 0x20..=0xD7FF | 0xE000..=0xFFFD | 0x10000..=0x10FFFF)
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        /// Blocks that left the fast path on this thread.
        pub(super) static SLOW_BLOCKS: Cell<u64> = const { Cell::new(0) };
    }

    #[test]
    fn records_with_named_references_take_the_fast_path() {
        let record = "<Record type=\"HKQuantityTypeIdentifierHeartRate\" sourceName=\"Watch\" \
                      device=\"&lt;&lt;HKDevice: 0x3012772a0&gt;, name:Apple Watch&gt;\" \
                      value=\"61\"/>\n ";
        let mut doc = record.repeat(200).into_bytes();
        let copy = doc.clone();
        SLOW_BLOCKS.with(|n| n.set(0));
        assert_eq!(blank_illegal(&mut doc, 0, true), doc.len());
        assert_eq!(doc, copy);
        assert_eq!(SLOW_BLOCKS.with(Cell::get), 0);
        // A forbidden reference sends its block the slow way.
        let mut doc = format!("{}&#11;{}", record.repeat(3), record.repeat(3)).into_bytes();
        blank_illegal(&mut doc, 0, true);
        assert!(!doc.windows(5).any(|w| w == b"&#11;"));
        assert_eq!(SLOW_BLOCKS.with(Cell::get), 1);
    }

    fn clean(s: &[u8]) -> Vec<u8> {
        let mut buf = s.to_vec();
        let ready = blank_illegal(&mut buf, 0, true);
        assert_eq!(ready, buf.len(), "at the end everything is final");
        buf
    }

    #[test]
    fn the_block_test_never_misses_a_pattern() {
        let mut rng = fastrand::Rng::with_seed(11);
        let edges = [
            0x00, 0x08, 0x09, 0x0A, 0x0B, 0x0D, 0x1F, 0x20, b'&', b'#', b'a', 0xEE, 0xEF, 0xFF,
        ];
        for _ in 0..50_000 {
            // A block and the byte after it.
            let mut window = [b'x'; WINDOW];
            for _ in 0..rng.usize(0..4) {
                window[rng.usize(..=BLOCK)] = edges[rng.usize(..edges.len())];
            }
            if rng.bool() {
                // Often a `&` right before a block's end.
                window[BLOCK - 1] = b'&';
            }
            // Plain only when no byte of the block starts a pattern but a
            // named reference; tabs and carriage returns may be sent to the
            // slower path.
            let block = &window[..BLOCK];
            let starts = block
                .iter()
                .zip(&window[1..])
                .any(|(&b, &n)| STARTS[usize::from(b)] && (b != b'&' || n == b'#'));
            let odd = block.iter().any(|b| matches!(b, b'\t' | b'\r'));
            assert_eq!(is_plain(&window), !starts && !odd, "{window:?}");
        }
        assert!(!is_plain(&window_of(b"&#11;")) && is_plain(&window_of(b"&lt;")));
        // A last block without the byte after it is never skipped whole: a
        // `&` ending it may start a reference that the next bytes finish.
        let mut last = [b'x'; BLOCK];
        last[BLOCK - 1] = b'&';
        assert_eq!(blank_illegal(&mut last, 0, false), BLOCK - 1);
    }

    fn window_of(s: &[u8]) -> [u8; WINDOW] {
        let mut window = [b'x'; WINDOW];
        window[BLOCK - 1..][..s.len().min(2)].copy_from_slice(&s[..s.len().min(2)]);
        window
    }

    #[test]
    fn the_word_test_agrees_with_the_byte_test() {
        let naive = |w: [u8; 8]| w.iter().any(|b| *b < 0x20 || *b == b'&' || *b == 0xEF);
        let mut rng = fastrand::Rng::with_seed(7);
        // Random words, biased towards the bytes around the edges.
        let edges = [
            0x00, 0x1F, 0x20, 0x21, b'&', b'%', b'\'', 0xEE, 0xEF, 0xF0, 0x7F, 0x80, 0xFF,
        ];
        for _ in 0..200_000 {
            let mut w = [0u8; 8];
            for b in &mut w {
                *b = if rng.bool() {
                    edges[rng.usize(..edges.len())]
                } else {
                    rng.u8(..)
                };
            }
            assert_eq!(may_start(u64::from_le_bytes(w)), naive(w), "{w:?}");
        }
    }

    #[test]
    fn blanks_illegal_characters_and_references_only() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\x0Bb", b"a b"),
            (b"\x00\x01\x1F\t\n\r", b"   \t\n\r"),
            (b"x&#11;y", b"x     y"),
            (b"x&#xB;y&#x0000b;z", b"x     y         z"),
            (
                b"&#xFFFE;&#65535;&#xD800;&#x110000;&#99999999999999999999;",
                &[b' '; 57],
            ),
            (
                b"&#9;&#10;&#13;&#32;&#x10FFFF;&#xFFFD;",
                b"&#9;&#10;&#13;&#32;&#x10FFFF;&#xFFFD;",
            ),
            (
                b"a\xEF\xBF\xBEb\xEF\xBF\xBFc\xEF\xBF\xBDd",
                b"a   b   c\xEF\xBF\xBDd",
            ),
            // Not references: left for the server to judge.
            (
                b"&#; &#x; &#X0B; &amp; &#1a; &",
                b"&#; &#x; &#X0B; &amp; &#1a; &",
            ),
            (b"\x7F\xC2\x85", b"\x7F\xC2\x85"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                clean(input),
                expected.to_vec(),
                "cleaning {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    /// The rules one byte at a time, without the block and word shortcuts.
    fn clean_bytewise(s: &[u8]) -> Vec<u8> {
        let mut buf = s.to_vec();
        let mut i = 0;
        while i < buf.len() {
            let len = match buf[i] {
                b'&' => match char_ref(&buf[i..], true) {
                    Ref::Illegal(len) => len,
                    _ => 0,
                },
                0xEF => match (buf.get(i + 1), buf.get(i + 2)) {
                    (Some(0xBF), Some(0xBE | 0xBF)) => 3,
                    _ => 0,
                },
                b if STARTS[usize::from(b)] => 1,
                _ => 0,
            };
            buf[i..i + len].fill(b' ');
            i += len.max(1);
        }
        buf
    }

    #[test]
    fn long_documents_clean_as_byte_by_byte_whatever_the_splits() {
        let mut rng = fastrand::Rng::with_seed(5);
        let pieces: &[&[u8]] = &[
            b"<Record type=\"HKQuantityTypeIdentifierHeartRate\" value=\"61\"/>\n ",
            b"device=\"&lt;&lt;HKDevice: 0x3012772a0&gt;, name:Apple Watch&gt;\" ",
            b"&amp;",
            b"&#11;",
            b"&#x0000b;",
            b"&#9;",
            b"&#65535;",
            b"&#",
            b"&",
            b"\x0B",
            b"\t",
            b"\r\n",
            b"\xEF\xBF\xBE",
            b"\xEF\xBF\xBD",
            b"plain text that goes on for a while, plain text that goes on",
        ];
        for _ in 0..400 {
            let mut doc = Vec::new();
            for _ in 0..rng.usize(1..60) {
                doc.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            let expected = clean_bytewise(&doc);
            assert_eq!(clean(&doc), expected, "{:?}", String::from_utf8_lossy(&doc));
            let cut = rng.usize(..=doc.len());
            let mut buf = doc[..cut].to_vec();
            let ready = blank_illegal(&mut buf, 0, false);
            buf.extend_from_slice(&doc[cut..]);
            assert_eq!(blank_illegal(&mut buf, ready, true), doc.len());
            assert_eq!(buf, expected, "cut at {cut}");
        }
    }

    /// Fed in random chunks: a watch that saw nothing means cleaning
    /// changes nothing; and text as Apple writes it, named references,
    /// tabs, carriage returns and other three-byte characters included, is
    /// seen as such.
    #[test]
    fn the_pattern_watch_never_misses_what_cleaning_blanks() {
        let mut rng = fastrand::Rng::with_seed(17);
        let plain: &[&[u8]] = &[
            b"<Record type=\"HKQuantityTypeIdentifierHeartRate\" value=\"61\"/>\n ",
            b"device=\"&lt;&lt;HKDevice: 0x3012772a0&gt;, name:Apple Watch&gt;\" ",
            b"&amp;",
            b"&",
            b"#",
            b"\t",
            b"\r\n",
            "Gerät（テスト）é".as_bytes(),
            b"\xEF",
            b"\xBF",
        ];
        let odd: &[&[u8]] = &[
            b"&#11;",
            b"&#9;",
            b"\x0B",
            b"\x00",
            b"\xEF\xBF\xBE",
            b"\xEF\xBF\xBD",
        ];
        let (mut clean_docs, mut seen_docs) = (0, 0);
        for _ in 0..3000 {
            let mut doc = Vec::new();
            let with_odd = rng.bool();
            for _ in 0..rng.usize(1..80) {
                let pieces = if with_odd && rng.u8(..) < 16 {
                    odd
                } else {
                    plain
                };
                doc.extend_from_slice(pieces[rng.usize(..pieces.len())]);
            }
            let mut watch = PatternWatch::default();
            let mut at = 0;
            while at < doc.len() {
                let len = match rng.u8(..4) {
                    0 => rng.usize(0..3),
                    1 => rng.usize(0..=WINDOW + 2),
                    _ => rng.usize(0..=doc.len()),
                };
                let end = (at + len).min(doc.len());
                watch.feed(&doc[at..end]);
                at = end;
            }
            let unchanged = clean_bytewise(&doc) == doc;
            if watch.nothing_seen() {
                assert!(
                    unchanged,
                    "missed a pattern: {:?}",
                    String::from_utf8_lossy(&doc)
                );
                clean_docs += 1;
            } else {
                seen_docs += 1;
            }
            // Only a pair that only looks like a pattern is seen in plain text.
            let pairs = doc
                .windows(2)
                .any(|w| (w[0] == b'&' && w[1] == b'#') || (w[0] == 0xEF && w[1] == 0xBF));
            if !with_odd && !pairs {
                assert!(watch.nothing_seen(), "{:?}", String::from_utf8_lossy(&doc));
            }
        }
        assert!(
            clean_docs > 500 && seen_docs > 500,
            "{clean_docs} / {seen_docs}"
        );
        let mut watch = PatternWatch::default();
        watch.feed(b"ends in a control\x01");
        assert!(!watch.nothing_seen(), "the last byte counts too");
    }

    #[test]
    fn a_reference_longer_than_the_cap_is_left_alone() {
        let long = format!("&#x{}b;", "0".repeat(MAX_REF));
        assert_eq!(clean(long.as_bytes()), long.as_bytes());
        let longest = format!("&#x{}b;", "0".repeat(MAX_REF - 5));
        assert_eq!(longest.len(), MAX_REF);
        assert_eq!(clean(longest.as_bytes()), vec![b' '; MAX_REF]);
    }

    #[test]
    fn a_pattern_cut_by_the_buffer_end_waits_for_more() {
        for s in [
            &b"ab&"[..],
            b"ab&#",
            b"ab&#x",
            b"ab&#x0",
            b"ab\xEF",
            b"ab\xEF\xBF",
        ] {
            let mut buf = s.to_vec();
            assert_eq!(blank_illegal(&mut buf, 0, false), 2, "{s:?}");
            assert_eq!(blank_illegal(&mut buf, 2, true), s.len(), "{s:?} at eof");
            assert_eq!(buf, s, "{s:?}: an unfinished pattern at eof is kept");
        }
    }

    #[test]
    fn any_split_of_the_input_gives_the_same_bytes() {
        let doc: &[u8] =
            b"<a b=\"x&#11;y\xEF\xBF\xBEz\x0B\" c=\"&#x0000b;&amp;&#9;\">\x01&#65535;</a>";
        let whole = clean(doc);
        for cut in 0..doc.len() {
            let mut buf = doc[..cut].to_vec();
            let ready = blank_illegal(&mut buf, 0, false);
            buf.extend_from_slice(&doc[cut..]);
            let done = blank_illegal(&mut buf, ready, true);
            assert_eq!(done, doc.len());
            assert_eq!(buf, whole, "cut at {cut}");
        }
    }

    #[test]
    fn blank_range_clips_to_the_buffer() {
        let mut buf = *b"0123456789";
        blank_range(&mut buf, 100, (95, 103));
        assert_eq!(&buf, b"   3456789");
        blank_range(&mut buf, 100, (108, 200));
        assert_eq!(&buf, b"   34567  ");
        blank_range(&mut buf, 100, (0, 50));
        assert_eq!(&buf, b"   34567  ");
    }
}
