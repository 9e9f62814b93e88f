//! The fast lane: a run of records read straight from the parser's input
//! buffer, without quick-xml's events.
//!
//! Nearly every byte of an export is a `Record`, self-closing or with a
//! `MetadataEntry` or two, and quick-xml spends most of its time on them
//! with events between: whitespace text, the tag scanned for its end and
//! copied out, each child the same, the end tag. Here a record is scanned
//! once, strictly; anything the lane is not sure of (another child, an
//! element not wholly in the buffer, a stray character, a comment) goes back
//! to quick-xml, which then reads it exactly as it would have.
//!
//! This is only sound where quick-xml expects markup next and has nothing of
//! its own in hand: right after a text event that ended at a `<` (its
//! `InsideMarkup` state with the `<` not consumed yet, as 0.41 leaves it;
//! the tests below fail should a release change that). The lane then
//! leaves the input at the next `<` again, so quick-xml's state stays true,
//! and keeps its own count of the bytes it took so offsets stay those of
//! the file.

use std::ops::Range;

use quick_xml::utils::is_whitespace;

use super::record::Children;
use super::*;
use crate::text::whitespace;

/// Children of one record the lane takes; more go to quick-xml.
const MAX_LANE_CHILDREN: usize = 64;
/// Attributes of one tag the lane takes (Apple writes at most nine): more
/// go to quick-xml. The bounds on attributes hold on both paths alike.
const MAX_LANE_ATTRIBUTES: usize = 64;

/// An attribute the lane read: its name and raw value, as places in the
/// element.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pair {
    name: (u32, u32),
    value: (u32, u32),
}

impl Pair {
    pub(super) fn of(self, element: &[u8]) -> (&[u8], &[u8]) {
        let at = |(start, end): (u32, u32)| &element[start as usize..end as usize];
        (at(self.name), at(self.value))
    }
}

/// A `MetadataEntry` the lane read.
#[derive(Debug)]
pub(super) struct Entry {
    /// Where its `<` is in the element.
    pub(super) at: usize,
    /// Which pairs are its attributes.
    pub(super) pairs: Range<usize>,
}

impl<R: BufRead> Parser<'_, R> {
    /// Reads the records at the front of the input, as many as it can.
    /// Call only right after a text event at the top level.
    pub(super) fn record_lane(&mut self, seen: &mut u64, tracker: &mut Tracker<'_>) -> Res<()> {
        let mut lane = std::mem::take(&mut self.record.lane);
        let read = self.record_lane_with(&mut lane, seen, tracker);
        self.record.lane = lane;
        read
    }

    fn record_lane_with(
        &mut self,
        lane: &mut Lane,
        seen: &mut u64,
        tracker: &mut Tracker<'_>,
    ) -> Res<()> {
        loop {
            let at = self.offset();
            let found = {
                // Only what is already buffered: an element across the
                // buffer's end is quick-xml's to read. The buffer still
                // holds the `<` quick-xml stopped at, so this reads nothing
                // and cannot fail; were it to, quick-xml would meet the
                // error again at its next read.
                let Ok(available) = self.xml.get_mut().fill_buf() else {
                    return Ok(());
                };
                let Some(found) = record_element(available, &mut lane.pairs, &mut lane.entries)
                else {
                    return Ok(());
                };
                lane.element.clear();
                lane.element.extend_from_slice(&available[..found.len]);
                found
            };
            // The element now, the whitespace after it once it is handed
            // over: a read failing on the way counts the bytes quick-xml
            // would have (for a record with children, all of it even when
            // an error is found in its start tag).
            self.xml.get_mut().consume(found.len);
            self.base += found.len as u64;
            depth_held(&self.path, self.depth + 1, at)?;
            if !self.header_sent {
                self.send_header()?;
            }
            let Lane {
                element,
                pairs,
                entries,
            } = &*lane;
            let attrs = pairs[found.pairs].iter().map(|p| p.of(element));
            let children = match found.empty {
                true => Children::Childless,
                false => Children::Metadata {
                    element,
                    pairs,
                    entries,
                },
            };
            self.record_from(attrs, children, at)?;
            self.stats.records += 1;
            let flow = self.visitor.extent(b"Record", at, at + found.len as u64);
            self.flow(flow)?;
            #[cfg(test)]
            tests::LANED.with(|n| n.set(n.get() + 1));
            // Checked as often, and where, quick-xml's events would be:
            // after the record, then after the whitespace text, if any.
            self.count_event(seen, tracker)?;
            let space = found.next - found.len;
            if space > 0 {
                self.xml.get_mut().consume(space);
                self.base += space as u64;
                self.count_event(seen, tracker)?;
            }
        }
    }
}

/// The lane's buffers, reused from record to record.
#[derive(Default)]
pub(super) struct Lane {
    /// The record's bytes, copied out of the input buffer.
    element: Vec<u8>,
    pairs: Vec<Pair>,
    entries: Vec<Entry>,
}

/// A record the lane can take at the front of a buffer.
#[derive(Debug, PartialEq)]
struct Found {
    /// Which pairs are its attributes.
    pairs: Range<usize>,
    /// Whether it is one self-closing tag.
    empty: bool,
    /// Its length, `<` to the last `>`.
    len: usize,
    /// Where the next `<` is, after the whitespace that follows.
    next: usize,
}

/// A `Record`, self-closing or with only self-closing `MetadataEntry`
/// children, then whitespace and `<`, at the front of `buf`; the attributes
/// go to `pairs`, the entries to `entries`. `None` for anything else: any
/// doubt sends the bytes to quick-xml.
fn record_element(buf: &[u8], pairs: &mut Vec<Pair>, entries: &mut Vec<Entry>) -> Option<Found> {
    // A tag's places are kept in u32; a buffer is far smaller.
    if buf.len() > u32::MAX as usize {
        return None;
    }
    pairs.clear();
    entries.clear();
    let record = tag(buf, 0, b"Record", pairs)?;
    let mut len = record.end;
    if !record.empty {
        loop {
            len += whitespace(&buf[len..]);
            if buf[len..].starts_with(b"</Record>") {
                len += b"</Record>".len();
                break;
            }
            if entries.len() == MAX_LANE_CHILDREN {
                return None;
            }
            let entry = tag(buf, len, b"MetadataEntry", pairs).filter(|t| t.empty)?;
            entries.push(Entry {
                at: len,
                pairs: entry.pairs,
            });
            len = entry.end;
        }
    }
    let next = len + whitespace(&buf[len..]);
    (buf.get(next) == Some(&b'<')).then_some(Found {
        pairs: record.pairs,
        empty: record.empty,
        len,
        next,
    })
}

/// A start tag read by [`tag`].
struct Tag {
    /// Which pairs are its attributes.
    pairs: Range<usize>,
    /// Just past its `>`.
    end: usize,
    /// `/>`.
    empty: bool,
}

/// `<name a="…" b='…'>` or `/>` at `buf[at..]`, strictly; its attributes
/// are added to `pairs`.
fn tag(buf: &[u8], at: usize, name: &[u8], pairs: &mut Vec<Pair>) -> Option<Tag> {
    let open = at + 1 + name.len();
    if buf.get(at) != Some(&b'<') || buf.get(at + 1..open)? != name {
        return None;
    }
    if !is_whitespace(*buf.get(open)?) {
        return None;
    }
    let first = pairs.len();
    let mut i = open;
    loop {
        let before = i;
        i += whitespace(&buf[i..]);
        match *buf.get(i)? {
            b'/' | b'>' => break,
            _ if i == before => return None, // attributes need space between them
            _ => {}
        }
        if pairs.len() - first == MAX_LANE_ATTRIBUTES {
            return None;
        }
        let name_len = buf[i..].iter().position(|&b| !NAME[usize::from(b)])?;
        if name_len == 0 {
            return None;
        }
        let name = (i as u32, (i + name_len) as u32);
        i += name_len;
        i += whitespace(&buf[i..]);
        if *buf.get(i)? != b'=' {
            return None;
        }
        i += 1;
        i += whitespace(&buf[i..]);
        let quote = *buf.get(i)?;
        if quote != b'"' && quote != b'\'' {
            return None;
        }
        let len = memchr::memchr2(quote, b'<', buf.get(i + 1..)?)?;
        if buf[i + 1 + len] != quote {
            return None;
        }
        let value = ((i + 1) as u32, (i + 1 + len) as u32);
        pairs.push(Pair { name, value });
        i += len + 2;
    }
    let (empty, end) = match buf[i] {
        b'>' => (false, i + 1),
        _ if buf.get(i + 1) == Some(&b'>') => (true, i + 2),
        _ => return None,
    };
    Some(Tag {
        pairs: first..pairs.len(),
        end,
        empty,
    })
}

/// Bytes of an attribute's name as the lane takes it: anything but
/// whitespace and control characters (a form feed is whitespace to
/// `RawAttributes`, not to XML), `=`, `/`, `<`, `>` and quotes.
const NAME: [bool; 256] = {
    let mut table = [true; 256];
    let mut i = 0;
    while i < 256 {
        let b = i as u8;
        table[i] = b > b' ' && !matches!(b, b'=' | b'/' | b'<' | b'>' | b'"' | b'\'');
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests;
