//! The log of every item a kept check judged, in document order: its
//! identity, its bytes in the XML, whether it went, its kind (and a
//! correlation's nested kinds), and the group and day a tally counts it
//! under: all any filter and the ledger look at. From it an upload with
//! other filters, or to a user who already has some of the export, is
//! chosen again (`rechoose.rs`) without reading the export.
//!
//! About 14 bytes an item (42 MB for a 1 GB export): the identity as 8
//! little-endian bytes, then varints of the gap since the previous item's
//! end and of the item's length, a tag byte (went, undated, nested, group),
//! a varint of the kind's index among the log's [`KindNames`] (then, for a
//! correlation, the count and indices of its nested kinds), and the day as
//! a zigzag varint of its change since the previous dated item.

use rustc_hash::FxHashMap;

use crate::identity::Identity;
use crate::names::Category;

/// The groups a tally counts items under, by their index in the log.
const GROUPS: [&str; Category::ALL.len() + 2] = groups();

const fn groups() -> [&'static str; Category::ALL.len() + 2] {
    let mut groups = [""; Category::ALL.len() + 2];
    let mut i = 0;
    while i < Category::ALL.len() {
        groups[i] = Category::ALL[i].key();
        i += 1;
    }
    groups[i] = crate::chooser::WORKOUTS_GROUP;
    groups[i + 1] = crate::chooser::CLINICAL_GROUP;
    groups
}

const WENT: u8 = 0x80;
const UNDATED: u8 = 0x40;
const NESTED: u8 = 0x20;
const GROUP: u8 = 0x1F;
const _: () = assert!(GROUPS.len() <= GROUP as usize + 1);

/// One judged item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JudgedItem {
    pub identity: Identity,
    /// `from..end` in the XML: the element with the whitespace before it.
    pub from: u64,
    pub end: u64,
    pub went: bool,
    pub group: &'static str,
    pub day: Option<i64>,
    /// Its kind, by index in the log's [`KindNames`]: a record's type, a
    /// workout's activity, an element's name.
    pub kind: u32,
    /// A correlation's: the kinds of the records in it, sorted, once each.
    pub nested: Option<Vec<u32>>,
}

/// The kinds a log names, each once, by index.
#[derive(Debug, Default)]
pub(crate) struct KindNames {
    index: FxHashMap<Box<str>, u32>,
    names: Vec<String>,
}

impl KindNames {
    /// The index of `name`, given one on first sight.
    pub fn of(&mut self, name: &str) -> u32 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.index.insert(name.into(), i);
        self.names.push(name.to_string());
        i
    }

    pub fn into_names(self) -> Vec<String> {
        self.names
    }
}

/// Turns items into log bytes; each item is written after the one before.
#[derive(Debug, Default)]
pub(crate) struct LogWriter {
    last_end: u64,
    last_day: i64,
}

impl LogWriter {
    /// Appends `item` to `out`; `None` (and nothing written) for an item
    /// out of document order or of a group no tally counts.
    pub fn encode(&mut self, item: &JudgedItem, out: &mut Vec<u8>) -> Option<()> {
        let gap = item.from.checked_sub(self.last_end)?;
        let len = item.end.checked_sub(item.from)?;
        let group = GROUPS.iter().position(|g| *g == item.group)? as u8;
        out.extend_from_slice(&item.identity.to_le_bytes());
        put_varint(out, gap);
        put_varint(out, len);
        let mut tag = group;
        if item.went {
            tag |= WENT;
        }
        if item.nested.is_some() {
            tag |= NESTED;
        }
        if item.day.is_none() {
            tag |= UNDATED;
        }
        out.push(tag);
        put_varint(out, item.kind.into());
        if let Some(nested) = &item.nested {
            put_varint(out, nested.len() as u64);
            for &kind in nested {
                put_varint(out, kind.into());
            }
        }
        if let Some(day) = item.day {
            let change = day.wrapping_sub(self.last_day);
            put_varint(out, ((change << 1) ^ (change >> 63)) as u64);
            self.last_day = day;
        }
        self.last_end = item.end;
        Some(())
    }
}

/// Reads a log back, item by item; `Some(Err(()))` for damaged bytes.
pub(crate) struct LogReader<'a> {
    bytes: &'a [u8],
    last_end: u64,
    last_day: i64,
}

impl<'a> LogReader<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        LogReader {
            bytes,
            last_end: 0,
            last_day: 0,
        }
    }

    fn item(&mut self) -> Option<JudgedItem> {
        let (identity, rest) = self.bytes.split_first_chunk::<8>()?;
        self.bytes = rest;
        let from = self.last_end.checked_add(self.varint()?)?;
        let end = from.checked_add(self.varint()?)?;
        let (&tag, rest) = self.bytes.split_first()?;
        self.bytes = rest;
        let group = *GROUPS.get(usize::from(tag & GROUP))?;
        let kind = u32::try_from(self.varint()?).ok()?;
        let nested = match tag & NESTED {
            0 => None,
            _ => {
                let count = usize::try_from(self.varint()?).ok()?;
                // Each kind takes a byte at least: a count beyond the rest is damage.
                if count > self.bytes.len() {
                    return None;
                }
                let kinds = (0..count).map(|_| u32::try_from(self.varint()?).ok());
                Some(kinds.collect::<Option<Vec<_>>>()?)
            }
        };
        let day = match tag & UNDATED {
            0 => {
                let zigzag = self.varint()?;
                let change = (zigzag >> 1) as i64 ^ -((zigzag & 1) as i64);
                self.last_day = self.last_day.wrapping_add(change);
                Some(self.last_day)
            }
            _ => None,
        };
        self.last_end = end;
        Some(JudgedItem {
            identity: u64::from_le_bytes(*identity),
            from,
            end,
            went: tag & WENT != 0,
            group,
            day,
            kind,
            nested,
        })
    }

    fn varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for (i, &byte) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7F) << (7 * i);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[i + 1..];
                return Some(value);
            }
        }
        None
    }
}

impl Iterator for LogReader<'_> {
    type Item = Result<JudgedItem, ()>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.bytes.is_empty() {
            return None;
        }
        match self.item() {
            Some(item) => Some(Ok(item)),
            None => {
                // Nothing after damage can be trusted.
                self.bytes = &[];
                Some(Err(()))
            }
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(from: u64, end: u64, went: bool, group: &'static str, day: Option<i64>) -> JudgedItem {
        JudgedItem {
            identity: from.wrapping_mul(0x9E37_79B9_7F4A_7C15),
            from,
            end,
            went,
            group,
            day,
            kind: (from % 300) as u32,
            nested: None,
        }
    }

    #[test]
    fn items_come_back_as_written() {
        let items = [
            item(300, 520, true, "heart", Some(19_000)),
            item(520, 700, false, "clinical", None),
            item(705, 1 << 40, true, "workouts", Some(-4)),
            item(1 << 40, (1 << 40) + 90, true, "other", Some(i64::MAX)),
            item(
                (1 << 40) + 95,
                (1 << 40) + 99,
                false,
                "activity",
                Some(i64::MIN),
            ),
            JudgedItem {
                nested: Some(vec![0, 7, u32::MAX]),
                ..item((1 << 40) + 99, u64::MAX, true, "vitals", None)
            },
        ];
        let mut log = Vec::new();
        let mut writer = LogWriter::default();
        for item in &items {
            assert_eq!(writer.encode(item, &mut log), Some(()));
        }
        let back: Result<Vec<_>, ()> = LogReader::new(&log).collect();
        assert_eq!(back, Ok(items.to_vec()));
        let mut names = KindNames::default();
        let indices: Vec<u32> = ["HeartRate", "Steps", "HeartRate"]
            .iter()
            .map(|n| names.of(n))
            .collect();
        assert_eq!(indices, [0, 1, 0]);
        assert_eq!(names.into_names(), ["HeartRate", "Steps"]);
        for cut in 1..log.len() {
            let read: Vec<_> = LogReader::new(&log[..cut]).collect();
            assert!(
                read.last() == Some(&Err(())) || read.len() < items.len(),
                "a cut at {cut} is damage or fewer items"
            );
        }
    }

    #[test]
    fn an_item_out_of_order_or_group_is_refused() {
        let mut writer = LogWriter::default();
        let mut log = Vec::new();
        assert_eq!(
            writer.encode(&item(10, 20, true, "heart", None), &mut log),
            Some(())
        );
        let written = log.len();
        assert_eq!(
            writer.encode(&item(15, 30, true, "heart", None), &mut log),
            None
        );
        assert_eq!(
            writer.encode(&item(20, 19, true, "heart", None), &mut log),
            None
        );
        assert_eq!(
            writer.encode(&item(20, 30, true, "nowhere", None), &mut log),
            None
        );
        assert_eq!(log.len(), written, "nothing of a refused item is written");
    }
}
