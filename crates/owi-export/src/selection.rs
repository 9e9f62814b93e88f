//! Which bytes of the export an upload carries when not all of it goes:
//! the head (prolog, `<HealthData …>`, `ExportDate`, `Me` when shared),
//! then runs of whole top-level elements, then the export's own end
//! (`</HealthData>`). Each element is taken with the whitespace before it,
//! so what goes reads as the export did, and a selection of everything is
//! the export byte for byte.
//!
//! The choice itself ([`Chooser`]) is made during the check's one read:
//! the person's filters first, then whether the server has the item from
//! us already (its identity in [`SentItems`]).

use std::collections::BTreeMap;
use std::ops::Range;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::identity::{Identities, Identity, SentItems};
use crate::model::*;
use crate::share::{PRIVATE_KINDS, Share};

/// Runs are kept at most this long (unless one element is longer), so
/// pieces can be packed from them without another read.
const RUN_MAX: u64 = 1 << 20;

/// What closes every piece of a split export.
pub(crate) const TAIL: &[u8] = b"\n</HealthData>\n";

/// A run of whole elements that go, `start..end` in the XML.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    pub start: u64,
    pub end: u64,
    /// How many items it carries (their identities are the next ones in
    /// [`Selection::identities`]).
    pub items: u32,
}

impl Run {
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.end == self.start
    }
}

/// The parts of the export that go, and the identity of every item in
/// them, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selection {
    head: Vec<(u64, u64)>,
    runs: Vec<Run>,
    /// From the end of the last top-level element to the end of the XML.
    tail: (u64, u64),
    identities: Vec<Identity>,
}

impl Selection {
    /// The head of every piece, as ranges of the XML.
    pub fn head(&self) -> &[(u64, u64)] {
        &self.head
    }

    pub fn runs(&self) -> &[Run] {
        &self.runs
    }

    /// What closes every body: the export's own end.
    pub fn tail(&self) -> (u64, u64) {
        self.tail
    }

    fn tail_len(&self) -> u64 {
        self.tail.1 - self.tail.0
    }

    /// Every item that goes, in document order.
    pub fn identities(&self) -> &[Identity] {
        &self.identities
    }

    /// Nothing but the head would go.
    pub fn is_empty(&self) -> bool {
        self.identities.is_empty()
    }

    pub fn head_len(&self) -> u64 {
        self.head.iter().map(|(s, e)| e - s).sum()
    }

    /// The bytes one body holding all of it takes.
    pub fn len(&self) -> u64 {
        self.head_len() + self.runs.iter().map(Run::len).sum::<u64>() + self.tail_len()
    }

    /// A short digest of what goes, so a resumed attempt sends exactly
    /// the bytes the interrupted one did.
    pub fn digest(&self) -> String {
        let mut hash = Xxh3::new();
        for (start, end) in &self.head {
            hash.update(&start.to_le_bytes());
            hash.update(&end.to_le_bytes());
        }
        for run in &self.runs {
            hash.update(&run.start.to_le_bytes());
            hash.update(&run.end.to_le_bytes());
        }
        hash.update(&self.tail.0.to_le_bytes());
        format!("{:016x}", hash.digest())
    }

    /// Runs packed greedily into pieces of at most `limit` bytes with the
    /// head and tail: each piece's runs, and its items' range in
    /// [`identities`](Selection::identities). `Err` with the offset of a
    /// run that cannot fit any piece, and the bytes it needs.
    pub(crate) fn pack(&self, limit: u64) -> Result<Vec<Packed>, (u64, u64)> {
        let frame = self.head_len() + self.tail_len();
        let room = limit.saturating_sub(frame);
        let mut pieces: Vec<Packed> = Vec::new();
        let mut bytes = 0u64;
        let mut item = 0usize;
        for (index, run) in self.runs.iter().enumerate() {
            if run.len() > room {
                return Err((run.start, run.len() + frame));
            }
            let items = item..item + run.items as usize;
            item = items.end;
            match pieces.last_mut() {
                Some(piece) if bytes + run.len() <= room => {
                    piece.runs.end = index + 1;
                    piece.items.end = items.end;
                    bytes += run.len();
                }
                _ => {
                    pieces.push(Packed {
                        runs: index..index + 1,
                        items,
                    });
                    bytes = run.len();
                }
            }
        }
        if pieces.is_empty() {
            pieces.push(Packed {
                runs: 0..0,
                items: 0..0,
            });
        }
        Ok(pieces)
    }
}

/// One piece of a packed selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    pub runs: Range<usize>,
    pub items: Range<usize>,
}

/// What the filters and the delta kept from going.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(default)]
pub struct LeftOut {
    /// Items of kinds not shared, by kind (clinical documents among them
    /// unless named).
    pub kinds: BTreeMap<String, u64>,
    /// Items of kinds shared that start outside the days shared.
    pub dates: u64,
    /// Items the server has from us already (the ledger).
    pub sent_before: u64,
    /// Elements that could not be read, or that this reader does not know:
    /// what they are cannot be told, so they do not go.
    pub unreadable: u64,
    /// The profile (`<Me>`) stayed home.
    pub me: bool,
    /// Items sent before that this export no longer holds (deleted on the
    /// phone): the server keeps them.
    pub gone: u64,
}

impl LeftOut {
    pub fn by_kind(&self) -> u64 {
        self.kinds.values().sum()
    }
}

/// Where the element being read stands.
#[derive(Clone, Copy)]
enum Verdict {
    /// Nothing was handed over for it: unknown, or unreadable.
    Unjudged,
    Left,
    Goes(Identity),
}

/// Decides, element by element during the check's read, what goes, and
/// builds the [`Selection`].
pub(crate) struct Chooser<'a> {
    share: &'a Share,
    sent: Option<&'a mut SentItems>,
    ids: Identities,
    kinds: FxHashMap<String, bool>,
    verdict: Verdict,
    selection: Selection,
    /// The end of the previous top-level element.
    last_end: Option<u64>,
    /// Whether the previous element went (its run can grow).
    extending: bool,
    pub left_out: LeftOut,
}

impl<'a> Chooser<'a> {
    pub fn new(share: &'a Share, sent: Option<&'a mut SentItems>) -> Self {
        Chooser {
            share,
            sent,
            ids: Identities::default(),
            kinds: FxHashMap::default(),
            verdict: Verdict::Unjudged,
            selection: Selection::default(),
            last_end: None,
            extending: false,
            left_out: LeftOut {
                me: !share.include_me,
                ..LeftOut::default()
            },
        }
    }

    pub fn record(&mut self, record: &Record<'_>) -> bool {
        let wanted = match self.kinds.get(record.kind) {
            Some(&wanted) => wanted,
            None => {
                let wanted = self.share.wants_kind(record.kind);
                self.kinds.insert(record.kind.to_string(), wanted);
                wanted
            }
        };
        if !self.kind_and_day(wanted, record.kind, record.start.local_day()) {
            return false;
        }
        let identity = self.ids.record(record);
        self.delta(identity)
    }

    pub fn workout(&mut self, workout: &Workout) -> bool {
        let wanted = self.share.wants_workout(&workout.activity_type);
        if !self.kind_and_day(wanted, &workout.activity_type, workout.start.local_day()) {
            return false;
        }
        let identity = self.ids.workout(workout);
        self.delta(identity)
    }

    pub fn correlation(&mut self, correlation: &Correlation) -> bool {
        let wanted = self.share.wants_correlation(
            &correlation.kind,
            correlation.records.iter().map(|r| r.kind.as_str()),
        );
        if !self.kind_and_day(wanted, &correlation.kind, correlation.start.local_day()) {
            return false;
        }
        let identity = self.ids.correlation(correlation);
        self.delta(identity)
    }

    pub fn activity_summary(&mut self, summary: &ActivitySummary) -> bool {
        let wanted = self.share.wants_kind("ActivitySummary");
        if !self.kind_and_day(wanted, "ActivitySummary", summary.day) {
            return false;
        }
        let identity = self.ids.activity_summary(summary);
        self.delta(identity)
    }

    pub fn element(&mut self, element: &Element) -> bool {
        let wanted = self.share.wants_kind(&element.name);
        let day = element.date().map(|d| d.local_day());
        // Undated documents cannot be said to fall in a range of days.
        let day = match (day, self.share.has_dates()) {
            (Some(day), _) => day,
            (None, false) => 0,
            (None, true) => {
                self.verdict = Verdict::Left;
                self.left_out.dates += 1;
                return false;
            }
        };
        if !self.kind_and_day(wanted, &element.name, day) {
            return false;
        }
        let identity = self.ids.element(element);
        self.delta(identity)
    }

    fn kind_and_day(&mut self, wanted: bool, kind: &str, day: i64) -> bool {
        if !wanted {
            self.verdict = Verdict::Left;
            match self.left_out.kinds.get_mut(kind) {
                Some(n) => *n += 1,
                None => {
                    self.left_out.kinds.insert(kind.to_string(), 1);
                }
            }
            return false;
        }
        if !self.share.wants_day(day) {
            self.verdict = Verdict::Left;
            self.left_out.dates += 1;
            return false;
        }
        true
    }

    fn delta(&mut self, identity: Identity) -> bool {
        if let Some(sent) = self.sent.as_deref_mut()
            && sent.take(identity)
        {
            self.verdict = Verdict::Left;
            self.left_out.sent_before += 1;
            return false;
        }
        self.verdict = Verdict::Goes(identity);
        true
    }

    /// A top-level element ended at `end`: it goes or it does not.
    pub fn extent(&mut self, name: &[u8], start: u64, end: u64) {
        let from = match self.last_end {
            Some(from) => from,
            None => {
                self.head(0, start);
                start
            }
        };
        self.last_end = Some(end);
        let verdict = std::mem::replace(&mut self.verdict, Verdict::Unjudged);
        match name {
            b"ExportDate" => self.head(from, end),
            b"Me" if self.share.include_me => self.head(from, end),
            b"Me" => {}
            _ => match verdict {
                Verdict::Goes(identity) => {
                    self.selection.identities.push(identity);
                    let runs = &mut self.selection.runs;
                    match runs.last_mut() {
                        Some(run) if self.extending && end - run.start <= RUN_MAX => {
                            run.end = end;
                            run.items += 1;
                        }
                        _ => runs.push(Run {
                            start: from,
                            end,
                            items: 1,
                        }),
                    }
                    self.extending = true;
                    return;
                }
                Verdict::Left => {}
                Verdict::Unjudged => self.left_out.unreadable += 1,
            },
        }
        self.extending = false;
    }

    fn head(&mut self, start: u64, end: u64) {
        match self.selection.head.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.selection.head.push((start, end)),
        }
    }

    /// The read ended; the XML is `xml_len` bytes.
    pub fn finish(mut self, xml_len: u64) -> (Selection, LeftOut) {
        if let Some(sent) = &self.sent {
            self.left_out.gone = sent.unseen();
        }
        let end = self.last_end.unwrap_or(xml_len).min(xml_len);
        self.selection.tail = (end, xml_len);
        (self.selection, self.left_out)
    }
}

/// Whether a kind is one of the clinical documents.
pub fn is_private(kind: &str) -> bool {
    PRIVATE_KINDS.contains(&kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: u64, end: u64, items: u32) -> Run {
        Run { start, end, items }
    }

    #[test]
    fn packing_keeps_runs_whole_and_items_with_their_runs() {
        let selection = Selection {
            head: vec![(0, 100)],
            runs: vec![run(100, 200, 2), run(300, 350, 1), run(400, 480, 3)],
            tail: (480, 495),
            identities: (0..6).collect(),
        };
        let frame = 100 + 15;
        let pieces = selection.pack(frame + 150).unwrap();
        assert_eq!(
            pieces,
            [
                Packed {
                    runs: 0..2,
                    items: 0..3
                },
                Packed {
                    runs: 2..3,
                    items: 3..6
                },
            ]
        );
        assert_eq!(selection.pack(frame + 99), Err((100, frame + 100)));
        assert_eq!(selection.pack(u64::MAX).unwrap().len(), 1);
        assert_eq!(selection.len(), 100 + 230 + 15);
    }
}
