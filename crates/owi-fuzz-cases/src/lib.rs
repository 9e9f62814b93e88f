//! The fuzz targets' bodies. `fuzz/fuzz_targets/*.rs` (cargo-fuzz, nightly)
//! and `tests/replay.rs` (stable `cargo test`) call these same functions, so
//! a crash found by one is replayed by the other. Each takes arbitrary bytes
//! and must never panic, hang or grow memory with its input; an error from
//! the code under test is a normal outcome.

use std::cell::RefCell;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use owi_export::{
    Choice, Cleaning, Correlation, ExportSource, Outgoing, ReadOptions, Record, Share, Visitor,
    Workout, preflight_choosing, read_export,
};
use owi_progress::{CancelToken, Silent};

#[cfg(feature = "server")]
mod server;
#[cfg(feature = "server")]
pub use server::server_requests;

/// A target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its corpus directory and fuzz binary.
pub const TARGETS: &[(&str, Target)] = &[
    ("export_xml", export_xml),
    ("export_zip", export_zip),
    ("outgoing", outgoing),
    #[cfg(feature = "server")]
    ("server_requests", server_requests),
];

thread_local! {
    // One scratch directory per thread: the export API reads files by path.
    static SCRATCH: RefCell<Option<tempfile::TempDir>> = const { RefCell::new(None) };
}

/// Writes `data` to a scratch file named `name` and returns its path.
fn scratch_file(name: &str, data: &[u8]) -> PathBuf {
    SCRATCH.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(tempfile::tempdir().unwrap_or_else(|e| panic!("scratch dir: {e}")));
        }
        let dir = slot
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        let path = dir.join(name);
        std::fs::write(&path, data).unwrap_or_else(|e| panic!("scratch file: {e}"));
        path
    })
}

/// Checks what the reader hands over as it goes: extents in order, inside
/// the document.
#[derive(Default)]
struct Checking {
    last_end: u64,
    items: u64,
}

impl Visitor for Checking {
    fn record(&mut self, record: &Record<'_>) -> ControlFlow<()> {
        assert!(
            record.offset >= self.last_end,
            "record before the last extent"
        );
        self.items += 1 + record.metadata.len() as u64 + record.beats.len() as u64;
        ControlFlow::Continue(())
    }
    fn correlation(&mut self, c: &Correlation) -> ControlFlow<()> {
        self.items += 1 + c.records.len() as u64;
        ControlFlow::Continue(())
    }
    fn workout(&mut self, w: &Workout) -> ControlFlow<()> {
        self.items += 1 + w.route_points.len() as u64;
        ControlFlow::Continue(())
    }
    fn extent(&mut self, _name: &[u8], start: u64, end: u64) -> ControlFlow<()> {
        assert!(start < end, "empty extent {start}..{end}");
        assert!(start >= self.last_end, "extents out of order");
        self.last_end = end;
        ControlFlow::Continue(())
    }
}

fn read_all(path: &std::path::Path) {
    let Ok(source) = ExportSource::open(path) else {
        return;
    };
    let mut visitor = Checking::default();
    if let Ok(report) = read_export(&source, &mut visitor, ReadOptions::default()) {
        assert_eq!(
            report.stats.bytes,
            source.xml_size(),
            "read short of its size"
        );
        assert!(
            visitor.last_end <= report.stats.bytes,
            "extent past the end"
        );
    }
}

/// (a) The XML reader: the bytes as an `export.xml`.
pub fn export_xml(data: &[u8]) {
    read_all(&scratch_file("export.xml", data));
}

/// (b) The zip opener: the bytes as an `export.zip`, opened and read.
pub fn export_zip(data: &[u8]) {
    read_all(&scratch_file("export.zip", data));
}

/// (c) The outgoing cleaner and splitter: the bytes as an export, cut into
/// pieces (by size, and by a choosing read's selection), each read whole.
pub fn outgoing(data: &[u8]) {
    let path = scratch_file("export.xml", data);
    let Ok(source) = ExportSource::open(&path) else {
        return;
    };
    let source = Arc::new(source);
    let size = source.xml_size();
    for (clean, limit) in [(true, size / 2), (false, 300)] {
        let Ok(pieces) = Outgoing::split(
            source.clone(),
            clean.into(),
            limit,
            &Silent,
            &CancelToken::new(),
        ) else {
            continue;
        };
        for piece in &pieces {
            read_body(piece);
        }
    }
    let share = Share::default();
    let choice = Choice {
        share: &share,
        sent: None,
        tally: true,
    };
    let Ok(check) = preflight_choosing(&source, ReadOptions::default(), choice) else {
        return;
    };
    // A read that saw nothing to blank lets cleaning skip its scan: the
    // bytes must be the scan's all the same.
    let unscanned = check.stats.no_forbidden_chars;
    if unscanned {
        let split = |cleaning| {
            Outgoing::split(
                source.clone(),
                cleaning,
                size / 2,
                &Silent,
                &CancelToken::new(),
            )
            .map(|pieces| pieces.iter().map(body_bytes).collect::<Vec<_>>())
            .ok()
        };
        assert_eq!(
            split(Cleaning::Full),
            split(Cleaning::DoctypeOnly),
            "cleaning without the scan sends what the scan does"
        );
    }
    let Some(selection) = check.selection else {
        return;
    };
    let selected = |cleaning| Outgoing::selected(source.clone(), cleaning, &selection, 400);
    if let Ok(pieces) = selected(Cleaning::Full) {
        for piece in &pieces {
            read_body(&piece.body);
        }
        if unscanned && let Ok(spared) = selected(Cleaning::DoctypeOnly) {
            let bytes = |pieces: &[owi_export::outgoing::SelectedPiece]| {
                pieces
                    .iter()
                    .map(|p| body_bytes(&p.body))
                    .collect::<Vec<_>>()
            };
            assert_eq!(bytes(&pieces), bytes(&spared), "a selection's bytes too");
        }
    }
}

/// A body's bytes, `None` if reading them failed.
fn body_bytes(body: &Outgoing) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    body.reader_at(0).ok()?.read_to_end(&mut bytes).ok()?;
    Some(bytes)
}

/// Reads a body whole and from its middle; both must hold what `len` says.
fn read_body(body: &Outgoing) {
    let len = body.len();
    for at in [0, len / 2] {
        let Ok(mut reader) = body.reader_at(at) else {
            return;
        };
        let mut bytes = Vec::new();
        if reader.read_to_end(&mut bytes).is_ok() {
            assert_eq!(
                bytes.len() as u64,
                len - at,
                "a body's length is its promise"
            );
        }
    }
}
