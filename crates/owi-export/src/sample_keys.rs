//! The distinct samples a server will keep, counted exactly in 4 bytes a
//! sample (duplicates too, until counted; a `Vec`'s growth may hold up
//! to twice that for a moment): its identity is a device model, a type
//! and an instant, and the first two repeat for millions of records in a
//! row. So each (model, type) pair gets a list of start seconds, sorted
//! and deduplicated once at the end; a hash set of the same keys cost four
//! times the memory and a cache miss per record. Types come as numbers the
//! caller gives each one ([`KindIds`]), so a record costs one short
//! comparison of its model.

use rustc_hash::{FxHashMap, FxHashSet};

/// A number for each type, given once a run of records of one type.
#[derive(Debug, Default)]
pub(crate) struct KindIds(FxHashMap<Box<str>, u32>);

impl KindIds {
    pub(crate) fn of(&mut self, kind: &str) -> u32 {
        if let Some(&id) = self.0.get(kind) {
            return id;
        }
        let id = self.0.len() as u32;
        self.0.insert(kind.into(), id);
        id
    }
}

#[derive(Debug, Default)]
pub(crate) struct SampleKeys {
    /// (device model, type) → its index in `starts`.
    groups: FxHashMap<(Box<str>, u32), usize>,
    /// The pair seen last and its index: records come grouped by type.
    last: Option<(Box<str>, u32, usize)>,
    /// Start seconds since 1970, by group.
    starts: Vec<Vec<u32>>,
    /// Starts outside 1970–2106 (never from Apple, possible from a broken
    /// export), kept whole.
    odd: FxHashSet<(usize, i64)>,
}

impl SampleKeys {
    pub(crate) fn insert(&mut self, model: &str, kind: u32, start: i64) {
        let group = self.group(model, kind);
        match u32::try_from(start) {
            Ok(seconds) => self.starts[group].push(seconds),
            Err(_) => {
                self.odd.insert((group, start));
            }
        }
    }

    fn group(&mut self, model: &str, kind: u32) -> usize {
        if let Some((m, k, index)) = &self.last
            && *k == kind
            && m.as_ref() == model
        {
            return *index;
        }
        let key: (Box<str>, u32) = (model.into(), kind);
        let index = match self.groups.get(&key) {
            Some(&index) => index,
            None => {
                let index = self.starts.len();
                self.starts.push(Vec::new());
                self.groups.insert(key.clone(), index);
                index
            }
        };
        self.last = Some((key.0, kind, index));
        index
    }

    /// How many distinct keys were inserted.
    pub(crate) fn count(&mut self) -> u64 {
        let mut distinct = self.odd.len() as u64;
        for starts in &mut self.starts {
            starts.sort_unstable();
            starts.dedup();
            distinct += starts.len() as u64;
        }
        distinct
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_is_counted_once_by_model_type_and_instant() {
        let mut keys = SampleKeys::default();
        let (hr, steps) = (0, 1);
        for (model, kind, start) in [
            ("Watch", hr, 100),
            ("Watch", hr, 100),
            ("Watch", hr, 50),
            ("iPhone", hr, 100),
            ("Watch", steps, 100),
            // The same pair again after another: still one group.
            ("Watch", hr, 50),
            ("Watch", hr, -5),
            ("Watch", hr, -5),
            ("Watch", hr, 1 << 40),
            ("iPhone", hr, -5),
        ] {
            keys.insert(model, kind, start);
        }
        assert_eq!(keys.count(), 7);
        assert_eq!(keys.count(), 7, "counting twice counts the same");
    }
}
