//! The live preview: glimpses of the summary and the workouts while an
//! export is read, computed by the final summary's own query, so the last
//! one is what the finished preview says.

use std::sync::Mutex;

use owi_progress::CancelToken;
use owi_sample::SampleSpec;
use owi_store::{ExportState, Glimpse, IngestOptions, Store, Summary, WorkoutFilter, WorkoutSort};

use crate::util::{Res, table_counts};

fn sample(dir: &std::path::Path, records: u64, workouts: u64) -> std::path::PathBuf {
    let spec = SampleSpec {
        records,
        workouts,
        seed: 14,
        ..SampleSpec::default()
    };
    owi_sample::generate(&spec, dir)
        .unwrap_or_else(|e| panic!("a sample of {records} records: {e}"))
        .xml_path
}

fn ingest_with_glimpses(store: &mut Store, path: &std::path::Path) -> Res<(i64, Vec<Glimpse>)> {
    let glimpses = Mutex::new(Vec::new());
    let sink = |g: Glimpse| {
        if let Ok(mut all) = glimpses.lock() {
            all.push(g);
        }
    };
    let outcome = store.ingest(
        path,
        IngestOptions {
            force: true,
            glimpses: Some(&sink),
            ..IngestOptions::default()
        },
    )?;
    let glimpses = glimpses.into_inner().map_err(|_| "a glimpse panicked")?;
    Ok((outcome.export_id, glimpses))
}

/// The summary without what only the finished export has (its fingerprint,
/// state, timing).
fn counts_of(summary: &Summary) -> String {
    let mut s = summary.clone();
    s.export.fingerprint = None;
    s.export.state = ExportState::Reading;
    s.export.started_at = 0;
    s.export.seconds = 0.0;
    format!("{s:?}")
}

#[test]
fn glimpses_grow_while_reading_and_the_last_is_the_finished_summary() {
    let dir = tempfile::tempdir().unwrap();
    // More records than one batch: the first glimpse comes before the end.
    let path = sample(&dir.path().join("export"), 60_000, 40);
    let mut store = Store::open(&dir.path().join("owi.sqlite")).unwrap();
    let (export_id, glimpses) = ingest_with_glimpses(&mut store, &path).unwrap();
    let summary = store.summary(export_id).unwrap();

    assert!(glimpses.len() >= 2, "a first glimpse and the last one");
    let first = &glimpses[0].summary;
    assert!(
        first.records_stored > 0 && first.records_stored < summary.records_stored,
        "the first glimpse shows part of the export: {} of {}",
        first.records_stored,
        summary.records_stored
    );
    for g in &glimpses {
        assert_eq!(g.summary.export.state, ExportState::Reading);
        assert_eq!(g.summary.export.id, export_id);
    }
    for pair in glimpses.windows(2) {
        let (a, b) = (&pair[0].summary, &pair[1].summary);
        assert!(a.records <= b.records && a.records_stored <= b.records_stored);
        assert!(a.export.xml_bytes <= b.export.xml_bytes);
        // The date range only widens.
        if let (Some(a0), Some(b0)) = (&a.first_record_start, &b.first_record_start) {
            assert!(b0 <= a0, "{b0} after {a0}");
        }
        for t in &a.record_types {
            let later = b.record_types.iter().find(|u| u.kind == t.kind);
            assert!(
                later.is_some_and(|u| u.count >= t.count),
                "{} shrank",
                t.kind
            );
        }
    }

    let last = glimpses.last().unwrap();
    assert_eq!(
        counts_of(&last.summary),
        counts_of(&summary),
        "the last glimpse is the finished summary"
    );

    // Every workout arrives once, in the order read, as the table shows it.
    let live: Vec<_> = glimpses.iter().flat_map(|g| g.workouts.clone()).collect();
    let stored = store
        .workouts(
            export_id,
            &WorkoutFilter {
                sort: WorkoutSort::Start,
                ..WorkoutFilter::default()
            },
        )
        .unwrap();
    assert_eq!(live.len(), stored.len());
    assert!(live.windows(2).all(|w| w[0].id < w[1].id));
    let mut by_id = stored.clone();
    by_id.sort_by_key(|w| w.id);
    assert_eq!(format!("{live:?}"), format!("{by_id:?}"));
}

#[test]
fn an_export_already_read_shows_no_glimpse_and_a_cancelled_read_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = sample(&dir.path().join("export"), 40_000, 10);
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db).unwrap();

    let glimpses = Mutex::new(0usize);
    let count = |_: Glimpse| *glimpses.lock().unwrap() += 1;
    let first = store
        .ingest(
            &path,
            IngestOptions {
                glimpses: Some(&count),
                ..IngestOptions::default()
            },
        )
        .unwrap();
    let shown = *glimpses.lock().unwrap();
    assert!(shown >= 1);
    let again = store
        .ingest(
            &path,
            IngestOptions {
                glimpses: Some(&count),
                ..IngestOptions::default()
            },
        )
        .unwrap();
    assert!(again.reused);
    assert_eq!(
        *glimpses.lock().unwrap(),
        shown,
        "nothing read, nothing shown"
    );

    // A read cancelled at its first glimpse: the rows the glimpse wrote
    // roll back with the rest.
    let before = table_counts(&db).unwrap();
    let token = CancelToken::new();
    let cancel = |_: Glimpse| token.cancel();
    let cancelled = store.ingest(
        &path,
        IngestOptions {
            force: true,
            cancel: Some(&token),
            glimpses: Some(&cancel),
            ..IngestOptions::default()
        },
    );
    assert!(cancelled.is_err(), "a cancelled read is an error");
    assert_eq!(table_counts(&db).unwrap(), before);
    assert_eq!(store.exports().unwrap().len(), 1);
    assert_eq!(
        store.summary(first.export_id).unwrap().export.id,
        first.export_id
    );
}
