//! Bodies made of a [`Selection`]: the head, the runs that go, and the
//! closing tag — each piece a valid export holding whole elements only.

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

use owi_progress::Part;

use super::stream::Shared;
use super::{Cleaning, HEAD_CACHE_MAX, Outgoing, Segment, doctype};
use crate::error::{Error, Result};
use crate::selection::Selection;
use crate::source::ExportSource;

/// One body of a selection, and which of its items it carries.
#[derive(Debug, Clone)]
pub struct SelectedPiece {
    pub body: Outgoing,
    /// Its items' range in [`Selection::identities`].
    pub items: Range<usize>,
}

impl Outgoing {
    /// The selection as bodies of at most `limit` bytes each (one when it
    /// fits). Nothing but the prolog is read. Fails on an element too large
    /// for a piece with the head.
    pub fn selected(
        source: Arc<ExportSource>,
        cleaning: Cleaning,
        selection: &Selection,
        limit: u64,
    ) -> Result<Vec<SelectedPiece>> {
        let packed = selection
            .pack(limit)
            .map_err(|(offset, needed)| Error::TooLargeToSplit {
                path: source.path().to_path_buf(),
                offset,
                element: "an element".into(),
                needed,
                limit,
            })?;
        let doctype = doctype(&source, cleaning)?;
        let shared = Arc::new(Shared::new(source, cleaning, doctype));
        let head = head_segments(&shared, selection)?;
        let (tail_start, tail_end) = selection.tail();
        let count = u32::try_from(packed.len()).unwrap_or(u32::MAX);
        Ok(packed
            .into_iter()
            .zip(1..)
            .map(|(piece, index)| {
                let mut segments: Vec<Segment> = head.iter().map(Segment::share).collect();
                let runs = selection.runs()[piece.runs].iter();
                for (start, end) in runs
                    .map(|run| (run.start, run.end))
                    .chain([(tail_start, tail_end)])
                {
                    // Runs that touch are one stretch: a reader crosses
                    // them without a fresh stream (everything going is one).
                    match segments.last_mut() {
                        Some(Segment::Source { end: last, .. }) if *last == start => *last = end,
                        _ => segments.push(Segment::Source { start, end }),
                    }
                }
                let segments: Arc<[Segment]> = segments.into();
                SelectedPiece {
                    body: Outgoing {
                        shared: shared.clone(),
                        len: segments.iter().map(Segment::len).sum(),
                        segments,
                        piece: (count > 1).then_some(Part { index, count }),
                    },
                    items: piece.items,
                }
            })
            .collect())
    }
}

/// The head once in memory (cleaned), unless it is unusually large.
fn head_segments(shared: &Arc<Shared>, selection: &Selection) -> Result<Vec<Segment>> {
    let sources: Vec<Segment> = selection
        .head()
        .iter()
        .map(|&(start, end)| Segment::Source { start, end })
        .collect();
    if selection.head_len() > HEAD_CACHE_MAX {
        return Ok(sources);
    }
    let head = Outgoing {
        shared: shared.clone(),
        len: selection.head_len(),
        segments: sources.into(),
        piece: None,
    };
    let mut bytes = Vec::new();
    head.reader_at(0)?
        .read_to_end(&mut bytes)
        .map_err(|e| Error::io(shared.source.path(), e))?;
    Ok(vec![Segment::Bytes(bytes.into())])
}
