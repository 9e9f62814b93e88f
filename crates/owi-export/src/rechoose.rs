//! An upload of a previewed export, chosen from the log the ingest kept
//! (`judged.rs`) rather than from another read of the whole export: the
//! person's filters and the ledger judge each logged item in the order the
//! chooser met them, the runs are rebuilt as the chooser builds them, and
//! only the bytes that go are read, to say what the server will make of
//! them. For an export sent a few weeks before, or a few categories of
//! it, that is a small part of it.

use std::sync::Arc;

use crate::chooser::{Cells, Chooser, WORKOUTS_GROUP};
use crate::error::Error;
use crate::identity::SentItems;
use crate::judged::{JudgedItem, LogReader};
use crate::kept::{KeptCheck, KeptLog};
use crate::outgoing::{Cleaning, Outgoing};
use crate::preflight::{AsCheck, Check, Choice, Preflight, conclude};
use crate::read::{ReadOptions, read_xml_stream};
use crate::selection::{LeftOut, Selection};
use crate::share::Share;
use crate::source::ExportSource;

impl KeptCheck {
    /// What [`preflight_choosing`](crate::preflight_choosing) finds with
    /// `choice`, without reading the export whole; `sent` comes back with
    /// what this export holds marked. `None` when no log was kept or it is
    /// damaged (and `sent` untouched): the export must be read. Everything,
    /// for a user with nothing from us, is what was kept, its identities
    /// still in the log: damage there shows when they are taken out
    /// ([`Selection::identities`](crate::Selection::identities) is `None`).
    pub fn choose(
        self,
        source: Arc<ExportSource>,
        choice: Choice<'_>,
        options: ReadOptions<'_>,
    ) -> Result<Option<Preflight>, Error> {
        let Choice {
            share,
            mut sent,
            tally,
        } = choice;
        let ledger_items = sent.as_deref().map(SentItems::len);
        // Everything for a user who has nothing from us: what was kept,
        // the identities left in the log until the ledger asks for them.
        if *share == Share::default() && sent.as_deref().is_none_or(SentItems::is_empty) {
            let mut preflight = self.into_logged();
            preflight.ledger_items = ledger_items;
            if !tally {
                preflight.tally = None;
            }
            return Ok(Some(preflight));
        }
        // A pass over the log first: `sent` is not touched unless it is whole.
        let (Some(log), Some(kept)) = (self.whole_log(), self.preflight.selection.as_ref()) else {
            return Ok(None);
        };
        let replayed = Replay {
            log,
            share,
            sent: sent.as_deref_mut(),
            tally: tally && self.preflight.tally.is_some(),
        };
        let Some((selection, mut left_out, cells)) = replayed.run(kept, &self.preflight) else {
            return Ok(None);
        };
        let preflight = self.preflight;
        left_out.gone = sent.as_deref().map_or(0, SentItems::unseen);
        let mut outcome = if selection.is_empty() {
            conclude(Check::new(None), Default::default())
        } else {
            what_goes(source, share, &selection, options)?
        };
        outcome.fingerprint = preflight.fingerprint;
        outcome.stats = preflight.stats;
        outcome.selection = Some(selection);
        outcome.left_out = left_out;
        outcome.ledger_items = ledger_items;
        outcome.tally = preflight
            .tally
            .zip(cells)
            .map(|(kept, cells)| cells.into_tally(kept.frame_bytes, kept.profile_bytes));
        Ok(Some(outcome))
    }
}

/// The chooser's decisions again, item by item.
struct Replay<'a> {
    log: &'a KeptLog,
    share: &'a Share,
    sent: Option<&'a mut SentItems>,
    tally: bool,
}

impl Replay<'_> {
    /// The selection, what stayed home and the tally's cells; `None` for
    /// a damaged log.
    fn run(
        mut self,
        kept: &Selection,
        preflight: &Preflight,
    ) -> Option<(Selection, LeftOut, Option<Cells>)> {
        let mut selection = Selection {
            head: self.head(&kept.head),
            runs: Vec::new(),
            tail: kept.tail,
            identities: Vec::new().into(),
        };
        let mut left_out = LeftOut {
            unreadable: preflight.left_out.unreadable,
            me: !self.share.include_me,
            ..LeftOut::default()
        };
        let mut cells = self.tally.then(Cells::default);
        let mut wants = Wants::new(self.share, &self.log.kinds);
        // The end of the previous judged item, when it went.
        let mut extending: Option<u64> = None;
        for item in LogReader::new(self.log.log()) {
            let item = item.ok()?;
            let sent_before = (self.sent.as_deref_mut()).is_some_and(|s| s.take(item.identity));
            if let Some(cells) = &mut cells {
                cells.count(item.group, item.day, item.end - item.from, !sent_before);
            }
            // In the chooser's order: kind, then day, then the ledger.
            let left = if !wants.item(&item)? {
                left_out.left_kind(self.log.kinds.get(item.kind as usize)?);
                true
            } else if !self.share.wants_start(item.day) {
                left_out.dates += 1;
                true
            } else if sent_before {
                left_out.sent_before += 1;
                true
            } else {
                false
            };
            if left {
                extending = None;
                continue;
            }
            let adjacent = extending == Some(item.from);
            selection.push_item(Some(item.identity), (item.from, item.end), adjacent);
            extending = Some(item.end);
        }
        Some((selection, left_out, cells))
    }

    /// The kept head (prolog, `ExportDate`), with the profile when it
    /// goes, touching ranges joined as the chooser joins them.
    fn head(&self, kept: &[(u64, u64)]) -> Vec<(u64, u64)> {
        let mut ranges = kept.to_vec();
        if self.share.include_me {
            ranges.extend_from_slice(&self.log.profile);
            ranges.sort_unstable();
        }
        let mut head: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (start, end) in ranges {
            match head.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => head.push((start, end)),
            }
        }
        head
    }
}

/// The person's filters asked once for each kind the log names.
struct Wants<'a> {
    share: &'a Share,
    kinds: &'a [String],
    /// By kind index: as a record's or element's kind, as a workout's.
    as_kind: Vec<Option<bool>>,
    as_workout: Vec<Option<bool>>,
}

impl<'a> Wants<'a> {
    fn new(share: &'a Share, kinds: &'a [String]) -> Self {
        Wants {
            share,
            kinds,
            as_kind: vec![None; kinds.len()],
            as_workout: vec![None; kinds.len()],
        }
    }

    /// Whether the filters let `item` go by what it is; `None` for a kind
    /// the log does not name.
    fn item(&mut self, item: &JudgedItem) -> Option<bool> {
        let at = item.kind as usize;
        let kind = self.kinds.get(at)?;
        if let Some(nested) = &item.nested {
            let nested = (nested.iter())
                .map(|&i| self.kinds.get(i as usize).map(String::as_str))
                .collect::<Option<Vec<_>>>()?;
            return Some(self.share.wants_correlation(kind, nested));
        }
        let (cache, workout) = match item.group {
            WORKOUTS_GROUP => (&mut self.as_workout, true),
            _ => (&mut self.as_kind, false),
        };
        let known = cache.get_mut(at)?;
        Some(*known.get_or_insert_with(|| match workout {
            true => self.share.wants_workout(kind),
            false => self.share.wants_kind(kind),
        }))
    }
}

/// The check of the bytes that go alone: every item in them passes the
/// filters and the ledger, so its figures are those of what goes.
fn what_goes(
    source: Arc<ExportSource>,
    share: &Share,
    selection: &Selection,
    options: ReadOptions<'_>,
) -> Result<Preflight, Error> {
    let path = source.path().to_path_buf();
    let mut pieces = Outgoing::selected(source, Cleaning::Off, selection, u64::MAX)?;
    let body = match pieces.pop() {
        Some(piece) if pieces.is_empty() => piece.body,
        _ => {
            return Err(Error::io(
                &path,
                std::io::Error::other("one body was expected"),
            ));
        }
    };
    let mut check = Check::new(Some(Chooser::new(share, None, false)));
    let relabel = AsCheck(options.progress);
    let options = ReadOptions {
        read_routes: false,
        progress: &relabel,
        ..options
    };
    let report = read_xml_stream(body.reader_at(0)?, &path, &mut check, options)
        .map_err(|failure| failure.error)?;
    Ok(conclude(check, report))
}
