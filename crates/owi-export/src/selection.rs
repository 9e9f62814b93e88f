//! Which bytes of the export an upload carries when not all of it goes:
//! the head (prolog, `<HealthData …>`, `ExportDate`, `Me` when shared),
//! then runs of whole top-level elements, then the export's own end
//! (`</HealthData>`). Each element is taken with the whitespace before it,
//! so what goes reads as the export did, and a selection of everything is
//! the export byte for byte.
//!
//! The choice itself (`chooser.rs`) is made during the check's one read.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use crate::identity::Identity;
use crate::kept::KeptLog;

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
    pub(crate) head: Vec<(u64, u64)>,
    pub(crate) runs: Vec<Run>,
    /// From the end of the last top-level element to the end of the XML.
    pub(crate) tail: (u64, u64),
    pub(crate) identities: GoingIdentities,
}

/// The identities of the items that go: listed, or still in the log of
/// the kept check they were chosen from (everything, for a user with
/// nothing from us), so an export previewed starts sending without a
/// pass over its log: the ledger takes them out beside the upload.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum GoingIdentities {
    Listed(Vec<Identity>),
    Logged(Arc<KeptLog>),
}

impl Default for GoingIdentities {
    fn default() -> Self {
        GoingIdentities::Listed(Vec::new())
    }
}

impl From<Vec<Identity>> for GoingIdentities {
    fn from(listed: Vec<Identity>) -> Self {
        GoingIdentities::Listed(listed)
    }
}

impl std::fmt::Debug for GoingIdentities {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            GoingIdentities::Listed(listed) => write!(f, "Listed({} identities)", listed.len()),
            GoingIdentities::Logged(log) => write!(f, "Logged({} identities)", log.went()),
        }
    }
}

/// Runs are kept at most this long (unless one element is longer), so
/// pieces can be packed from them without another read.
pub(crate) const RUN_MAX: u64 = 1 << 20;

impl Selection {
    /// An item that goes, at `from..end`, with its identity unless those
    /// are kept elsewhere: it joins the last run when it follows the item
    /// before it (`adjacent`) and the run stays within [`RUN_MAX`], else
    /// starts one.
    pub(crate) fn push_item(
        &mut self,
        identity: Option<u64>,
        (from, end): (u64, u64),
        adjacent: bool,
    ) {
        if let (Some(identity), GoingIdentities::Listed(listed)) = (identity, &mut self.identities)
        {
            listed.push(identity);
        }
        match self.runs.last_mut() {
            Some(run) if adjacent && end - run.start <= RUN_MAX => {
                run.end = end;
                run.items += 1;
            }
            _ => self.runs.push(Run {
                start: from,
                end,
                items: 1,
            }),
        }
    }

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

    /// The identity of every item that goes, in document order, taken
    /// out of the kept log they are still in (a pass over it); `None`
    /// when that log is damaged.
    pub fn identities(&self) -> Option<Cow<'_, [Identity]>> {
        match &self.identities {
            GoingIdentities::Listed(listed) => Some(Cow::Borrowed(listed)),
            GoingIdentities::Logged(log) => log.went_identities().map(Cow::Owned),
        }
    }

    /// Whether its identities are still in the log of the kept check it
    /// was chosen from: all that the log says went, and only those.
    pub fn in_kept_log(&self) -> bool {
        matches!(self.identities, GoingIdentities::Logged(_))
    }

    /// Whether [`identities`](Selection::identities) can be taken out: a
    /// pass over the kept log they are in, which finds damage without
    /// keeping them.
    pub fn identities_whole(&self) -> bool {
        match &self.identities {
            GoingIdentities::Listed(_) => true,
            GoingIdentities::Logged(log) => log.is_whole(),
        }
    }

    /// How many items go.
    pub fn items(&self) -> u64 {
        self.runs.iter().map(|run| u64::from(run.items)).sum()
    }

    /// Nothing but the head would go.
    pub fn is_empty(&self) -> bool {
        self.items() == 0
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
    /// One more item of `kind` not shared.
    pub(crate) fn left_kind(&mut self, kind: &str) {
        match self.kinds.get_mut(kind) {
            Some(n) => *n += 1,
            None => {
                self.kinds.insert(kind.to_string(), 1);
            }
        }
    }

    pub fn by_kind(&self) -> u64 {
        self.kinds.values().sum()
    }
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
            identities: (0..6).collect::<Vec<_>>().into(),
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
