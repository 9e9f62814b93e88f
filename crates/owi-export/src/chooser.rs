//! The choice of what goes, element by element during the check's one
//! read: the person's filters first (kind, then day), then whether the
//! server has the item from us already (its identity in [`SentItems`]).
//!
//! For a dry run it also keeps a [`Tally`]: every item, whatever the
//! filters say, counted by group (a preview category, workouts, clinical
//! documents) and local day, with its bytes and whether it is new — what
//! the app needs to say at once what any choice of categories and days
//! would send.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::identity::{Identities, Identity, SentItems};
use crate::judged::JudgedItem;
use crate::model::*;
use crate::names::{Category, category_of};
use crate::selection::{LeftOut, Selection};
use crate::share::{PRIVATE_KINDS, Share};
use crate::spill::Spill;

/// The groups a tally counts by, beyond the categories.
pub(crate) const WORKOUTS_GROUP: &str = "workouts";
pub(crate) const CLINICAL_GROUP: &str = "clinical";

/// What a dry run counts: items and bytes by group and local day, all of
/// them and those the server does not have from us.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Tally {
    pub rows: Vec<TallyRow>,
    /// The bytes every body has whatever goes: prolog, `ExportDate`, end.
    pub frame_bytes: u64,
    /// The profile's bytes, when it goes.
    pub profile_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TallyRow {
    /// A category's key (`heart`, `sleep`, …), `workouts` or `clinical`.
    pub group: String,
    /// Days since 1970-01-01 of the local day the items start on; `None`
    /// for undated documents (they go only when no days are chosen).
    pub day: Option<i64>,
    pub items: u64,
    pub bytes: u64,
    /// Of those, the ones not in the ledger.
    pub new_items: u64,
    pub new_bytes: u64,
}

/// The group an item is counted in.
fn group_of_kind(kind: &str) -> &'static str {
    if PRIVATE_KINDS.contains(&kind) {
        CLINICAL_GROUP
    } else {
        category_of(kind).key()
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

/// Decides, element by element, what goes, and builds the [`Selection`].
pub(crate) struct Chooser<'a> {
    share: &'a Share,
    sent: Option<&'a mut SentItems>,
    ids: Identities,
    /// Whether a record type is shared, its group, and its index among
    /// the spill's kinds.
    kinds: FxHashMap<String, (bool, &'static str, u32)>,
    verdict: Verdict,
    selection: Selection,
    /// The end of the previous top-level element.
    last_end: Option<u64>,
    /// Whether the previous element went (its run can grow).
    extending: bool,
    pub left_out: LeftOut,
    /// `Some` for a dry run; the element being read's group, day,
    /// newness and identity wait in `counted`.
    tally: Option<Cells>,
    counted: Option<Counted>,
    head_bytes: u64,
    profile_bytes: u64,
    /// Where every judged item goes, its identity no longer held in the
    /// selection, when set (for a dry run only: it needs `counted`).
    spill: Option<Spill>,
}

/// The element being read, as a dry run counts it.
struct Counted {
    group: &'static str,
    day: Option<i64>,
    new: bool,
    identity: Identity,
    kind: u32,
    nested: Option<Vec<u32>>,
}

impl<'a> Chooser<'a> {
    pub fn new(share: &'a Share, sent: Option<&'a mut SentItems>, tally: bool) -> Self {
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
            tally: tally.then(Cells::default),
            counted: None,
            head_bytes: 0,
            profile_bytes: 0,
            spill: None,
        }
    }

    /// Writes every item judged to `spill` (`judged.rs`), the identities
    /// of those that go no longer kept in the selection. A dry run's only:
    /// without a tally nothing is spilled.
    pub fn spill_to(&mut self, spill: Spill) {
        if self.tally.is_some() {
            self.spill = Some(spill);
            // Indices among the spill's kinds are given from now on.
            self.kinds.clear();
        }
    }

    pub fn take_spill(&mut self) -> Option<Spill> {
        self.spill.take()
    }

    /// The index of a kind among the spill's (0 when nothing is spilled).
    fn kind_index(&mut self, kind: &str) -> u32 {
        self.spill.as_mut().map_or(0, |spill| spill.kind(kind))
    }

    pub fn record(&mut self, record: &Record<'_>) -> bool {
        let (wanted, group, index) = match self.kinds.get(record.kind) {
            Some(&known) => known,
            None => {
                let known = (
                    self.share.wants_kind(record.kind),
                    group_of_kind(record.kind),
                    self.kind_index(record.kind),
                );
                self.kinds.insert(record.kind.to_string(), known);
                known
            }
        };
        let item = Item {
            wanted,
            kind: record.kind,
            day: Some(record.start.local_day()),
            group,
            index,
            nested: None,
        };
        self.decide(item, |ids| ids.record(record))
    }

    pub fn workout(&mut self, workout: &Workout) -> bool {
        let item = Item {
            wanted: self.share.wants_workout(&workout.activity_type),
            kind: &workout.activity_type,
            day: Some(workout.start.local_day()),
            group: WORKOUTS_GROUP,
            index: self.kind_index(&workout.activity_type),
            nested: None,
        };
        self.decide(item, |ids| ids.workout(workout))
    }

    pub fn correlation(&mut self, correlation: &Correlation) -> bool {
        let wanted = self.share.wants_correlation(
            &correlation.kind,
            correlation.records.iter().map(|r| r.kind.as_str()),
        );
        // What any other filter would ask of it, for the spill.
        let nested = self.spill.is_some().then(|| {
            let mut kinds: Vec<u32> = (correlation.records.iter())
                .map(|r| self.kind_index(&r.kind))
                .collect();
            kinds.sort_unstable();
            kinds.dedup();
            kinds
        });
        let item = Item {
            wanted,
            kind: &correlation.kind,
            day: Some(correlation.start.local_day()),
            group: group_of_kind(&correlation.kind),
            index: self.kind_index(&correlation.kind),
            nested,
        };
        self.decide(item, |ids| ids.correlation(correlation))
    }

    pub fn activity_summary(&mut self, summary: &ActivitySummary) -> bool {
        let item = Item {
            wanted: self.share.wants_kind("ActivitySummary"),
            kind: "ActivitySummary",
            day: Some(summary.day),
            group: Category::Activity.key(),
            index: self.kind_index("ActivitySummary"),
            nested: None,
        };
        self.decide(item, |ids| ids.activity_summary(summary))
    }

    pub fn element(&mut self, element: &Element) -> bool {
        let item = Item {
            wanted: self.share.wants_kind(&element.name),
            kind: &element.name,
            day: element.date().map(|d| d.local_day()),
            group: group_of_kind(&element.name),
            index: self.kind_index(&element.name),
            nested: None,
        };
        self.decide(item, |ids| ids.element(element))
    }

    /// Filters, then the ledger. Identities are made only for what passes
    /// the filters, unless a tally counts everything.
    fn decide(
        &mut self,
        mut item: Item<'_>,
        identity: impl FnOnce(&mut Identities) -> Identity,
    ) -> bool {
        if self.tally.is_none() {
            if !self.kind_and_day(&item) {
                // Left out, but still in the export: not gone from it.
                if let Some(sent) = self.sent.as_deref_mut() {
                    sent.take(identity(&mut self.ids));
                }
                return false;
            }
            let identity = identity(&mut self.ids);
            return self.unless_sent(identity, None);
        }
        let identity = identity(&mut self.ids);
        let sent_before = self.sent.as_deref_mut().is_some_and(|s| s.take(identity));
        self.counted = Some(Counted {
            group: item.group,
            day: item.day,
            new: !sent_before,
            identity,
            kind: item.index,
            nested: item.nested.take(),
        });
        if !self.kind_and_day(&item) {
            return false;
        }
        self.unless_sent(identity, Some(sent_before))
    }

    fn kind_and_day(&mut self, item: &Item<'_>) -> bool {
        if !item.wanted {
            self.verdict = Verdict::Left;
            self.left_out.left_kind(item.kind);
            return false;
        }
        if !self.share.wants_start(item.day) {
            self.verdict = Verdict::Left;
            self.left_out.dates += 1;
            return false;
        }
        true
    }

    fn unless_sent(&mut self, identity: Identity, known: Option<bool>) -> bool {
        let sent_before =
            known.unwrap_or_else(|| self.sent.as_deref_mut().is_some_and(|s| s.take(identity)));
        if sent_before {
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
        if let (Some(tally), Some(counted)) = (&mut self.tally, self.counted.take()) {
            tally.count(counted.group, counted.day, end - from, counted.new);
            if let Some(spill) = &mut self.spill {
                spill.push(&JudgedItem {
                    identity: counted.identity,
                    from,
                    end,
                    went: matches!(verdict, Verdict::Goes(_)),
                    group: counted.group,
                    day: counted.day,
                    kind: counted.kind,
                    nested: counted.nested,
                });
            }
        }
        match name {
            b"ExportDate" => self.head(from, end),
            b"Me" => {
                self.profile_bytes += end - from;
                if let Some(spill) = &mut self.spill {
                    spill.profile(from, end);
                }
                if self.share.include_me {
                    self.head(from, end);
                }
            }
            _ => match verdict {
                Verdict::Goes(identity) => {
                    // A spilled item's identity is in the log.
                    let identity = self.spill.is_none().then_some(identity);
                    (self.selection).push_item(identity, (from, end), self.extending);
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
        self.head_bytes += end - start;
        match self.selection.head.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => self.selection.head.push((start, end)),
        }
    }

    /// The read ended; the XML is `xml_len` bytes.
    pub fn finish(mut self, xml_len: u64) -> (Selection, LeftOut, Option<Tally>) {
        if let Some(sent) = &self.sent {
            self.left_out.gone = sent.unseen();
        }
        let end = self.last_end.unwrap_or(xml_len).min(xml_len);
        self.selection.tail = (end, xml_len);
        let profile = if self.share.include_me {
            self.profile_bytes
        } else {
            0
        };
        let tally = self.tally.map(|cells| {
            cells.into_tally(
                self.head_bytes - profile + (xml_len - end),
                self.profile_bytes,
            )
        });
        (self.selection, self.left_out, tally)
    }
}

/// A tally being counted: each group's day.
#[derive(Default)]
pub(crate) struct Cells(FxHashMap<(&'static str, Option<i64>), Cell>);

impl Cells {
    pub fn count(&mut self, group: &'static str, day: Option<i64>, bytes: u64, new: bool) {
        let row = self.0.entry((group, day)).or_default();
        row.items += 1;
        row.bytes += bytes;
        if new {
            row.new_items += 1;
            row.new_bytes += bytes;
        }
    }

    pub fn into_tally(self, frame_bytes: u64, profile_bytes: u64) -> Tally {
        let sorted: BTreeMap<_, _> = self.0.into_iter().collect();
        Tally {
            rows: sorted
                .into_iter()
                .map(|((group, day), c): ((&str, _), Cell)| TallyRow {
                    group: group.to_string(),
                    day,
                    items: c.items,
                    bytes: c.bytes,
                    new_items: c.new_items,
                    new_bytes: c.new_bytes,
                })
                .collect(),
            frame_bytes,
            profile_bytes,
        }
    }
}

/// One group's day, as it is counted.
#[derive(Default)]
struct Cell {
    items: u64,
    bytes: u64,
    new_items: u64,
    new_bytes: u64,
}

/// What the filters look at, and what a spill keeps of it.
struct Item<'a> {
    wanted: bool,
    kind: &'a str,
    day: Option<i64>,
    group: &'static str,
    index: u32,
    nested: Option<Vec<u32>>,
}
