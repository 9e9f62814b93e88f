//! An upload to a user who has part of a previewed export already, chosen
//! from the log the ingest kept (`judged.rs`) rather than from another read
//! of the whole export: the ledger takes items away in the order the
//! chooser met them, the runs are rebuilt as the chooser builds them, and
//! only the bytes that go are read, to say what the server will make of
//! them. For an export sent a few weeks before, that is a few percent of it.

use std::sync::Arc;

use crate::chooser::{Cells, Chooser, RUN_MAX};
use crate::error::Error;
use crate::identity::SentItems;
use crate::judged::LogReader;
use crate::kept::KeptCheck;
use crate::outgoing::Outgoing;
use crate::preflight::{AsCheck, Check, Preflight, conclude};
use crate::read::{ReadOptions, read_xml_stream};
use crate::selection::{LeftOut, Run, Selection};
use crate::share::Share;
use crate::source::ExportSource;

impl KeptCheck {
    /// What [`preflight_choosing`](crate::preflight_choosing) of
    /// everything (no filters, with a tally when one was kept) finds for a
    /// user whose ledger is `sent`, which comes back with what this export
    /// holds marked. `None` when no log was kept or it is damaged (and
    /// `sent` untouched): the export must be read.
    pub fn for_ledger(
        self,
        source: Arc<ExportSource>,
        sent: &mut SentItems,
        options: ReadOptions<'_>,
    ) -> Result<Option<Preflight>, Error> {
        // A pass over the log first: `sent` is not touched unless it is whole.
        let (Some(log), Some(kept)) = (self.whole_log(), self.preflight.selection.as_ref()) else {
            return Ok(None);
        };
        let ledger_items = sent.len();
        let Some((selection, mut left_out, cells)) = replay(log, kept, sent, &self.preflight)
        else {
            return Ok(None);
        };
        let preflight = self.preflight;
        left_out.gone = sent.unseen();
        let mut outcome = if selection.is_empty() {
            conclude(Check::new(None), Default::default())
        } else {
            what_goes(source, &selection, options)?
        };
        outcome.fingerprint = preflight.fingerprint;
        outcome.stats = preflight.stats;
        outcome.selection = Some(selection);
        outcome.left_out = left_out;
        outcome.ledger_items = Some(ledger_items);
        outcome.tally = preflight
            .tally
            .zip(cells)
            .map(|(kept, cells)| cells.into_tally(kept.frame_bytes, kept.profile_bytes));
        Ok(Some(outcome))
    }
}

/// The chooser's decisions again, the ledger consulted for every judged
/// item as the chooser does; `None` for a damaged log.
fn replay(
    log: &[u8],
    kept: &Selection,
    sent: &mut SentItems,
    preflight: &Preflight,
) -> Option<(Selection, LeftOut, Option<Cells>)> {
    let mut selection = Selection {
        head: kept.head.clone(),
        runs: Vec::new(),
        tail: kept.tail,
        identities: Vec::new(),
    };
    let mut left_out = LeftOut {
        sent_before: 0,
        gone: 0,
        ..preflight.left_out.clone()
    };
    let mut cells = preflight.tally.as_ref().map(|_| Cells::default());
    // The end of the previous judged item, when it went.
    let mut extending: Option<u64> = None;
    for item in LogReader::new(log) {
        let item = item.ok()?;
        let sent_before = sent.take(item.identity);
        if let Some(cells) = &mut cells {
            cells.count(item.group, item.day, item.end - item.from, !sent_before);
        }
        if !item.went || sent_before {
            left_out.sent_before += u64::from(item.went);
            extending = None;
            continue;
        }
        selection.identities.push(item.identity);
        match selection.runs.last_mut() {
            Some(run) if extending == Some(item.from) && item.end - run.start <= RUN_MAX => {
                run.end = item.end;
                run.items += 1;
            }
            _ => selection.runs.push(Run {
                start: item.from,
                end: item.end,
                items: 1,
            }),
        }
        extending = Some(item.end);
    }
    Some((selection, left_out, cells))
}

/// The check of the bytes that go alone: every item in them goes, so its
/// figures are those of what goes.
fn what_goes(
    source: Arc<ExportSource>,
    selection: &Selection,
    options: ReadOptions<'_>,
) -> Result<Preflight, Error> {
    let path = source.path().to_path_buf();
    let mut pieces = Outgoing::selected(source, false, selection, u64::MAX)?;
    let body = match pieces.pop() {
        Some(piece) if pieces.is_empty() => piece.body,
        _ => {
            return Err(Error::io(
                &path,
                std::io::Error::other("one body was expected"),
            ));
        }
    };
    let everything = Share::default();
    let mut check = Check::new(Some(Chooser::new(&everything, None, false)));
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
