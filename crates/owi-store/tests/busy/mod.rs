//! An ingest holds one write transaction for its whole run. Meanwhile the
//! preview must read and the upload history, the multipart journal and the
//! ledger must write — an upload may be under way — without waiting for it
//! to end: the store is in WAL mode, and what was sent where lives in a file
//! of its own (`journal_path`) that the ingest's connection never touches.

use std::sync::Mutex;
use std::time::Duration;

use crossbeam_channel::unbounded;
use owi_progress::{Phase, Progress};
use owi_sample::SampleSpec;
use owi_store::{Carried, IngestOptions, NewUpload, Outcome, Store};

fn sample(dir: &std::path::Path, records: u64, seed: u64) -> std::path::PathBuf {
    let spec = SampleSpec {
        records,
        workouts: 10,
        seed,
        ..SampleSpec::default()
    };
    owi_sample::generate(&spec, dir)
        .unwrap_or_else(|e| panic!("a sample of {records} records: {e}"))
        .xml_path
}

#[test]
fn the_preview_reads_and_the_history_writes_while_an_ingest_runs() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("owi.sqlite");
    let db = db.as_path();
    let earlier = Store::open(db)
        .unwrap()
        .ingest(
            &sample(&dir.path().join("small"), 1_000, 1),
            IngestOptions::default(),
        )
        .unwrap()
        .export_id;
    let large = sample(&dir.path().join("large"), 60_000, 2);

    // Halfway through the ingest (its transaction long open, thousands of
    // rows written), its reader thread hands over and waits for the other
    // side to read and write.
    let (halfway_tx, halfway_rx) = unbounded::<()>();
    let (done_tx, done_rx) = unbounded::<Result<(), String>>();
    let halfway_tx = Mutex::new(Some(halfway_tx));
    let waited = Mutex::new(None);
    let progress = |event: Progress| {
        let Progress::Advanced {
            phase: Phase::Ingest,
            position,
        } = event
        else {
            return;
        };
        let half = position.total.is_some_and(|t| position.done * 2 >= t);
        if let Some(tx) = half.then(|| halfway_tx.lock().unwrap().take()).flatten() {
            tx.send(()).unwrap();
            *waited.lock().unwrap() = Some(done_rx.recv_timeout(Duration::from_secs(60)));
        }
    };
    let ingest = std::thread::scope(|scope| {
        let other = scope.spawn(move || {
            halfway_rx.recv().unwrap();
            let store = Store::open(db).map_err(|e| e.to_string());
            let outcome = store.and_then(|store| {
                store.summary(earlier).map_err(|e| e.to_string())?;
                let id = store
                    .upload_started(&NewUpload {
                        export_key: "k",
                        source_path: "/e.zip",
                        server: "http://127.0.0.1:8000",
                        user_id: "u",
                        batch: "b",
                        piece: (1, 1),
                        fingerprint: "f",
                        cleaned: true,
                        delta: Some(true),
                        filters: "",
                    })
                    .map_err(|e| e.to_string())?;
                store
                    .upload_ended(id, Outcome::Imported, Some(1), None)
                    .map_err(|e| e.to_string())?;
                store
                    .ledger_pend(
                        "b",
                        "http://127.0.0.1:8000",
                        "u",
                        Carried::Listed(&[1, 2]),
                        &[],
                    )
                    .and_then(|_| store.ledger_confirm("b"))
                    .map_err(|e| e.to_string())?;
                Ok(())
            });
            done_tx.send(outcome).unwrap();
        });
        let ingest = Store::open(db).unwrap().ingest(
            &large,
            IngestOptions {
                progress: &progress,
                ..IngestOptions::default()
            },
        );
        other.join().unwrap();
        ingest
    });
    let waited = waited.into_inner().unwrap();
    assert_eq!(
        waited,
        Some(Ok(Ok(()))),
        "the other side read and wrote while the ingest held its transaction"
    );
    let ingest = ingest.unwrap();
    let store = Store::open(db).unwrap();
    assert_eq!(store.uploads(10).unwrap().len(), 1);
    assert!(store.summary(ingest.export_id).is_ok());
    assert!(store.summary(earlier).is_ok());
}

/// An ingest's pages wait in the write-ahead logs, where readers see them,
/// until the store folds them into its files: the preview need not wait
/// for that. Large enough that SQLite would fold both logs in at a commit
/// (1,000 pages): a forced read again, which drops the check it replaces,
/// leaves them too.
#[test]
fn an_ingest_leaves_its_pages_in_the_logs_until_they_are_folded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("owi.sqlite");
    let len = |file: &str| std::fs::metadata(dir.path().join(file)).map_or(0, |m| m.len());
    let files = || (len("owi.sqlite"), len("owi.journal.sqlite"));
    // Another connection stays open, as the app's window keeps one.
    let window = Store::open(&db).unwrap();
    let mut store = Store::open(&db).unwrap();
    let xml = sample(dir.path(), 320_000, 3);
    let export = store
        .ingest(&xml, IngestOptions::default())
        .unwrap()
        .export_id;
    let folded_in = |(main, journal): (u64, u64)| main > 4 << 20 || journal > 4 << 20;
    assert!(!folded_in(files()), "nothing folded yet: {:?}", files());
    assert!(len("owi.sqlite-wal") > 4 << 20 && len("owi.journal.sqlite-wal") > 4 << 20);
    let seen = window.summary(export).unwrap();
    assert_eq!(seen.records, 320_000);
    let forced = IngestOptions {
        force: true,
        ..IngestOptions::default()
    };
    let again = store.ingest(&xml, forced).unwrap().export_id;
    assert!(!folded_in(files()), "nothing folded yet: {:?}", files());

    assert!(store.fold_wal().unwrap(), "nothing in the way");
    let (main, journal) = files();
    assert!(
        main > 4 << 20 && journal > 4 << 20,
        "folded in: {main} and {journal} bytes"
    );
    assert_eq!(len("owi.sqlite-wal"), 0);
    assert_eq!(len("owi.journal.sqlite-wal"), 0);
    assert_eq!(window.summary(again).unwrap().records, seen.records);
}
