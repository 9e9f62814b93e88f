//! What an item *is*, as a 63-bit hash, so an export can be compared with
//! what a server already has from us without keeping either in full.
//!
//! An item is a top-level element of the export. Its identity is what
//! stays the same from one export to the next when the item is the same:
//! a record's type, source, start, end, value and unit; a workout's
//! activity type, source, start and end; a correlation's type, source,
//! start, end and the values of its records; an activity summary's day and
//! figures; a clinical document's name, attributes and text. Instants are
//! UTC, so an export written in another time zone (the phone travelled)
//! names the same items. Dates alone cannot tell what is new: a watch that
//! syncs late writes samples with old dates into the next export.
//!
//! 63 bits leave the top bit to [`SentItems`] for "seen in this export".
//! Two distinct items of a 3-million-item export collide with a
//! probability of about 5 × 10⁻⁷.

use xxhash_rust::xxh3::xxh3_64;

use crate::model::*;
use crate::time::Timestamp;

/// An item's identity: the low 63 bits of a hash of what it is.
pub type Identity = u64;

const SEEN: u64 = 1 << 63;

/// Builds identities in a reused buffer: one hash call per item.
#[derive(Debug, Default)]
pub struct Identities {
    buf: Vec<u8>,
}

impl Identities {
    pub fn record(&mut self, record: &Record<'_>) -> Identity {
        self.begin(b'R');
        self.text(record.kind);
        self.text(record.source_name);
        self.times(record.start, record.end);
        match record.value {
            Value::None => self.buf.push(0),
            Value::Number(n) => self.number(n),
            Value::Text(t) => {
                self.buf.push(2);
                self.text(t);
            }
        }
        self.text(record.unit.unwrap_or(""));
        self.finish()
    }

    pub fn workout(&mut self, workout: &Workout) -> Identity {
        self.begin(b'W');
        self.text(&workout.activity_type);
        self.text(&workout.source_name);
        self.times(workout.start, workout.end);
        self.finish()
    }

    pub fn correlation(&mut self, correlation: &Correlation) -> Identity {
        self.begin(b'C');
        self.text(&correlation.kind);
        self.text(&correlation.source_name);
        self.times(correlation.start, correlation.end);
        for nested in &correlation.records {
            self.text(&nested.kind);
            self.text(nested.value.as_deref().unwrap_or(""));
            self.text(nested.unit.as_deref().unwrap_or(""));
        }
        self.finish()
    }

    /// A summary's figures change during its day: today's, exported again
    /// tomorrow, is a new item.
    pub fn activity_summary(&mut self, summary: &ActivitySummary) -> Identity {
        self.begin(b'A');
        self.buf.extend_from_slice(&summary.day.to_le_bytes());
        for figure in [
            summary.active_energy,
            summary.active_energy_goal,
            summary.move_minutes,
            summary.move_minutes_goal,
            summary.exercise_minutes,
            summary.exercise_minutes_goal,
            summary.stand_hours,
            summary.stand_hours_goal,
        ] {
            match figure {
                Some(n) => self.number(n),
                None => self.buf.push(0),
            }
        }
        self.finish()
    }

    pub fn element(&mut self, element: &Element) -> Identity {
        self.begin(b'E');
        self.tree(element);
        self.finish()
    }

    fn tree(&mut self, element: &Element) {
        self.text(&element.name);
        for (key, value) in &element.attributes {
            self.text(key);
            self.text(value);
        }
        self.text(&element.text);
        self.buf.push(b'{');
        for child in &element.children {
            self.tree(child);
        }
        self.buf.push(b'}');
    }

    fn begin(&mut self, tag: u8) {
        self.buf.clear();
        self.buf.push(tag);
    }

    /// Length-prefixed, so no two lists of strings hash the same bytes.
    fn text(&mut self, text: &str) {
        self.buf
            .extend_from_slice(&(text.len() as u32).to_le_bytes());
        self.buf.extend_from_slice(text.as_bytes());
    }

    fn number(&mut self, n: f64) {
        self.buf.push(1);
        // "61" and "61.0" are the same value; -0 and 0 too.
        let n = if n == 0.0 { 0.0 } else { n };
        self.buf.extend_from_slice(&n.to_bits().to_le_bytes());
    }

    fn times(&mut self, start: Timestamp, end: Timestamp) {
        self.buf.extend_from_slice(&start.utc.to_le_bytes());
        self.buf.extend_from_slice(&end.utc.to_le_bytes());
    }

    fn finish(&self) -> Identity {
        xxh3_64(&self.buf) & !SEEN
    }
}

/// The identities a server already has from us, each marked when this
/// export holds it too: what is left unmarked was deleted on the phone.
///
/// An open-addressed table of bare `u64`s (0 is an empty slot), filled at
/// most three quarters: 32 MB for 3 million. A lookup is one cache line
/// (the neighbours linear probing visits share it), where a table with
/// control bytes apart costs two; it is the delta check's hot spot, one
/// lookup an item. The mark is each identity's top bit.
#[derive(Clone)]
pub struct SentItems {
    slots: Vec<u64>,
    len: u64,
    seen: u64,
    /// Identity 0 is the empty slot's value, so it is kept here: `None`,
    /// or whether this export holds it.
    zero: Option<bool>,
}

impl SentItems {
    pub fn with_capacity(items: usize) -> SentItems {
        SentItems::with_slots(items.saturating_mul(4) / 3)
    }

    /// Any number of slots: an index is a multiply, not a mask, so the
    /// table need not round up to a power of two (and twice the memory).
    fn with_slots(slots: usize) -> SentItems {
        SentItems {
            slots: vec![0; slots.max(8)],
            len: 0,
            seen: 0,
            zero: None,
        }
    }

    /// The slot `identity` is in, or the empty one where it would go.
    fn slot(&self, identity: Identity) -> usize {
        let n = self.slots.len();
        // The identities are hashes already: a multiply spreads their 63
        // bits over 64, whose share of `n` is the first slot to look at.
        let spread = identity.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut i = ((u128::from(spread) * n as u128) >> 64) as usize;
        loop {
            let v = self.slots[i];
            if v == 0 || v & !SEEN == identity {
                return i;
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
    }

    /// Adds an identity; one already there is not added twice.
    pub fn insert(&mut self, identity: Identity) {
        let identity = identity & !SEEN;
        if identity == 0 {
            if self.zero.is_none() {
                self.zero = Some(false);
                self.len += 1;
            }
            return;
        }
        if self.slots[self.slot(identity)] == 0 {
            if (self.len as usize + 1) * 4 > self.slots.len() * 3 {
                self.grow();
            }
            let i = self.slot(identity);
            self.slots[i] = identity;
            self.len += 1;
        }
    }

    /// Twice the slots, every identity (and its mark) moved over.
    fn grow(&mut self) {
        let mut bigger = SentItems::with_slots(self.slots.len() * 2);
        for &v in self.slots.iter().filter(|&&v| v != 0) {
            let i = bigger.slot(v & !SEEN);
            bigger.slots[i] = v;
        }
        bigger.len = self.len;
        bigger.seen = self.seen;
        bigger.zero = self.zero;
        *self = bigger;
    }

    /// Whether the server has this item from us; marks it seen.
    pub fn take(&mut self, identity: Identity) -> bool {
        let identity = identity & !SEEN;
        let first = if identity == 0 {
            match &mut self.zero {
                Some(seen) => !std::mem::replace(seen, true),
                None => return false,
            }
        } else {
            let i = self.slot(identity);
            let v = &mut self.slots[i];
            if *v == 0 {
                return false;
            }
            let first = *v & SEEN == 0;
            *v |= SEEN;
            first
        };
        self.seen += u64::from(first);
        true
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Items sent before that this export does not hold (so far).
    pub fn unseen(&self) -> u64 {
        self.len - self.seen
    }

    /// Every identity, unmarked, in no order.
    pub fn iter(&self) -> impl Iterator<Item = Identity> + '_ {
        let zero = self.zero.map(|_| 0);
        self.slots
            .iter()
            .filter(|&&v| v != 0)
            .map(|&v| v & !SEEN)
            .chain(zero)
    }
}

impl FromIterator<Identity> for SentItems {
    fn from_iter<I: IntoIterator<Item = Identity>>(iter: I) -> Self {
        let iter = iter.into_iter();
        let mut items = SentItems::with_capacity(iter.size_hint().0);
        for identity in iter {
            items.insert(identity);
        }
        items
    }
}

impl std::fmt::Debug for SentItems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentItems")
            .field("len", &self.len())
            .field("seen", &self.seen)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(utc: i64, offset_min: i16) -> Timestamp {
        Timestamp { utc, offset_min }
    }

    fn heart_rate<'a>(value: Value<'a>, start: Timestamp) -> Record<'a> {
        Record {
            kind: "HKQuantityTypeIdentifierHeartRate",
            source_name: "Watch",
            source_version: Some("10.1"),
            device: None,
            unit: Some("count/min"),
            created: None,
            start,
            end: start,
            value,
            metadata: &[],
            beats: &[],
            offset: 0,
        }
    }

    #[test]
    fn an_item_is_what_it_holds_not_where_or_in_which_time_zone() {
        let mut ids = Identities::default();
        let here = ids.record(&heart_rate(Value::Number(61.0), at(1_000, 60)));
        let mut moved = heart_rate(Value::Number(61.0), at(1_000, -300));
        moved.offset = 9_999;
        moved.source_version = Some("11.0");
        assert_eq!(
            ids.record(&moved),
            here,
            "same instant, other zone, other place"
        );
        assert_ne!(
            ids.record(&heart_rate(Value::Number(62.0), at(1_000, 60))),
            here
        );
        assert_ne!(
            ids.record(&heart_rate(Value::Number(61.0), at(1_001, 60))),
            here
        );
        assert_ne!(ids.record(&heart_rate(Value::None, at(1_000, 60))), here);
        assert_eq!(here & SEEN, 0);
    }

    #[test]
    fn sent_items_mark_what_the_export_still_holds() {
        let mut sent: SentItems = [1, 2, 3, 3].into_iter().collect();
        assert_eq!(sent.len(), 3);
        assert!(sent.take(2));
        assert!(sent.take(2), "a repeat is still sent before");
        assert!(!sent.take(4));
        assert_eq!(sent.unseen(), 2);
        let mut all: Vec<_> = sent.iter().collect();
        all.sort_unstable();
        assert_eq!(all, [1, 2, 3]);
    }

    /// The table against a set, through growth from a table too small (with
    /// marks already set), with identity 0 (the empty slot's value) and a
    /// marked identity among them.
    #[test]
    fn sent_items_agree_with_a_set_whatever_their_number() {
        use std::collections::{BTreeSet, HashSet};
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Small ones too, so some repeat.
            if state.is_multiple_of(5) {
                state % 64
            } else {
                state
            }
        };
        let (mut sent, mut set) = (SentItems::with_capacity(10), HashSet::new());
        let mut marked = HashSet::new();
        for round in 0..4 {
            let ledger: Vec<u64> = (0..5_000).map(|_| next()).chain([0, SEEN | 7]).collect();
            for &id in &ledger {
                sent.insert(id);
                set.insert(id & !SEEN);
            }
            assert_eq!(sent.len(), set.len() as u64, "round {round}");
            let taken = (0..5_000)
                .map(|_| next())
                .chain(ledger.iter().step_by(3).copied());
            for id in taken.chain([0, 7]) {
                let id = id & !SEEN;
                assert_eq!(sent.take(id), set.contains(&id), "{id}");
                if set.contains(&id) {
                    marked.insert(id);
                }
            }
            assert_eq!(sent.unseen(), (set.len() - marked.len()) as u64);
        }
        assert!(sent.slots.len() > 20_000, "the table grew");
        let all: BTreeSet<u64> = sent.iter().collect();
        assert_eq!(all, set.iter().copied().collect());
    }

    /// Identities that all want the last slot go on at the first.
    #[test]
    fn sent_items_probe_past_the_end_of_the_table() {
        // The multiplier's inverse, by Newton's iteration modulo 2^64.
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut inverse = K;
        for _ in 0..6 {
            inverse = inverse.wrapping_mul(2u64.wrapping_sub(K.wrapping_mul(inverse)));
        }
        let mut sent = SentItems::with_capacity(6);
        assert_eq!(sent.slots.len(), 8);
        // Spread to the top eighth (the last slot of 8), top bit clear.
        let last: Vec<u64> = (1u64..)
            .map(|j| ((7 << 61) | j).wrapping_mul(inverse))
            .filter(|id| id & SEEN == 0)
            .take(4)
            .collect();
        for &id in &last[..3] {
            sent.insert(id);
        }
        let slots: Vec<usize> = last[..3].iter().map(|&id| sent.slot(id)).collect();
        assert_eq!(slots, [7, 0, 1]);
        assert!(last[..3].iter().all(|&id| sent.take(id)));
        assert!(!sent.take(last[3]), "not there: the probe stops at slot 2");
        assert_eq!(sent.unseen(), 0);
    }
}
