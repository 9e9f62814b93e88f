//! The check an upload would make, fed by another reader of the export —
//! the local store's ingest — so that what it finds is kept for a later
//! upload (`kept.rs`) instead of read again.

use std::collections::BTreeSet;

use crate::chooser::Chooser;
use crate::error::Error;
use crate::kept::KeptOutcome;
use crate::preflight::{Check, conclude};
use crate::read::{Report, Visitor};
use crate::share::{Kinds, Share};
use crate::spill::Spill;

/// A check fed by another reader of the export (the local store's ingest,
/// which replays what it stored), so that what it finds can be kept for a
/// later upload: the check of an upload of everything (no filters) to a
/// server that has nothing from us, with its tally. Always everything:
/// other filters and ledgers are chosen from it ([`KeptCheck::choose`](crate::KeptCheck::choose)),
/// which takes it to have seen no filters.
///
/// What it reads of each item, and so what a feeder must hand over: a
/// record's type, source, device, unit, value, start (with its offset) and
/// end; the other items whole; and for each top-level element its extent,
/// named (`ExportDate` and `Me` are told apart). A record's metadata,
/// heartbeats, creation date and byte offset are not read.
pub struct Checking<'a> {
    check: Check<'a>,
}

impl std::fmt::Debug for Checking<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checking").finish_non_exhaustive()
    }
}

/// No filters: what a kept check is of.
static EVERYTHING: Share = Share {
    only: None,
    except: Kinds {
        kinds: BTreeSet::new(),
        categories: BTreeSet::new(),
    },
    from: None,
    to: None,
    include_me: false,
};

impl Checking<'static> {
    pub fn new() -> Self {
        Checking {
            check: Check::new(Some(Chooser::new(&EVERYTHING, None, true))),
        }
    }
}

impl Default for Checking<'static> {
    fn default() -> Self {
        Self::new()
    }
}

impl<'a> Checking<'a> {
    /// Writes every item judged to `file` (an unnamed file in `dir`) as it
    /// is found, the identities of what goes no longer held in memory: the
    /// log [`KeptCheck::choose`](crate::KeptCheck::choose) chooses
    /// from.
    pub fn spill_to(&mut self, file: std::fs::File, dir: &std::path::Path) {
        if let Some(chooser) = &mut self.check.chooser {
            chooser.spill_to(Spill::new(file, dir));
        }
    }

    /// The visitor to hand every element of the read to.
    pub fn visitor(&mut self) -> &mut (dyn Visitor + 'a) {
        &mut self.check
    }

    /// What [`preflight_choosing`](crate::preflight_choosing) would have found, from the read's
    /// report, ready to keep; an error when the spill file failed.
    pub fn finish(mut self, report: Report) -> Result<KeptOutcome, Error> {
        let spill = self.check.chooser.as_mut().and_then(Chooser::take_spill);
        KeptOutcome::new(conclude(self.check, report), spill)
    }
}
