//! Faults that reach the local store: a process that dies mid-upload and
//! the next one going on from what it kept, and an upload that fails with
//! nothing of it left pending in the ledger.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use owi_client::{ImportRequest, Importer, Method, Step, Timeouts};
use owi_progress::CancelToken;
use owi_store::Store;

use super::proxy::{Fault, Gate};
use super::rig::{self, Size, export, multiparts, rig, runs, stored};
use super::{CREATE, part};

/// The process dies mid-upload (its future dropped: no cleanup runs, as
/// with a kill), with parts 1 and 2 stored and part 3 stuck in the
/// network. The next process, with the same local database, goes on from
/// the stored parts: only part 3 is sent again, and the export is imported
/// once.
#[tokio::test]
async fn a_multipart_upload_cut_off_by_a_dying_process_resumes_from_its_stored_parts() {
    dying_process_resumes(false).await;
}

/// The same, with the server restarted in between, as when the desktop app
/// that bundles it quits mid-upload and is started again: the upload and
/// its parts outlive the server process.
#[tokio::test]
async fn a_multipart_upload_resumes_after_the_server_restarted_too() {
    dying_process_resumes(true).await;
}

async fn dying_process_resumes(restart_server: bool) {
    let mut rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("owi.sqlite");
    let request = ImportRequest {
        method: Method::Multipart,
        ..ImportRequest::new(&export.path, &rig.user)
    };
    let stuck = Gate::new();
    rig.proxy
        .inject("PUT", part(3), 1, Fault::Hold(stuck.clone()));

    let known = Store::open(&db_path).unwrap();
    // A client that has sent here before knows the server takes multipart
    // (else it asks first, with a `create` of its own).
    known
        .remember_multipart(rig.client.server().origin(), true)
        .unwrap();
    let first = Importer::new(rig.client.clone(), Arc::new(Mutex::new(known)));
    let no_steps = |_: &Step| {};
    let never = CancelToken::new();
    let dying = first.run(&request, &owi_progress::Silent, &no_steps, &never);
    let stored_parts = || {
        let store = Store::open(&db_path).unwrap();
        store
            .interrupted(
                &owi_store::quick_key(&export.path).unwrap(),
                rig.client.server().origin(),
                &rig.user,
            )
            .unwrap()
            .and_then(|i| i.multipart)
            .map_or(0, |(_, state)| state.parts.len())
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    tokio::select! {
        outcome = dying => panic!("part 3 is held, yet the upload ended: {outcome:?}"),
        () = async {
            stuck.arrived().await;
            // Parts 1 and 2 land while 3 waits, and the ledger keeps what
            // the upload carries beside its bytes: until then, keep polling
            // the database the way the next process would see it.
            while stored_parts() < 2 || pending(&db_path).is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "parts 1 and 2 stored: {}, kept pending: {:?}",
                    stored_parts(),
                    pending(&db_path)
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        } => {}
    }
    drop(first);
    assert_eq!(multiparts(rig.dir(), &rig.user), ["pending"]);
    let left = pending(&db_path);
    assert!(
        matches!(&left[..], [(_, true)]),
        "kept while sending, never to be confirmed as it is: {left:?}"
    );
    assert_eq!(pending_files(&db_path), 1, "what it carries, in a file");
    if restart_server {
        // The held part 3 must not hold the old server up.
        stuck.open();
        rig.server.restart().await;
        assert_eq!(multiparts(rig.dir(), &rig.user), ["pending"]);
    }

    let steps = Mutex::new(Vec::new());
    let keep = |step: &Step| steps.lock().unwrap().push(step.clone());
    let next = Importer::new(
        rig.connect(owi_client::Credentials::ApiKey(owi_client::Secret::new(
            crate::API_KEY,
        )))
        .await,
        Arc::new(Mutex::new(Store::open(&db_path).unwrap())),
    );
    let report = next
        .run(&request, &owi_progress::Silent, &keep, &CancelToken::new())
        .await
        .unwrap();
    let steps = steps.into_inner().unwrap();
    assert!(
        steps.iter().any(|s| matches!(
            s,
            Step::Resuming {
                pieces_sent: 0,
                parts_stored: 2
            }
        )),
        "{steps:?}"
    );
    let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
    assert_eq!(uploaded.resumed_parts, 2);
    assert_eq!(pending(&db_path), [], "the same batch, sent and confirmed");
    assert_eq!(pending_files(&db_path), 0, "nor their items' files");
    let ledger = Store::open(&db_path)
        .unwrap()
        .ledger(rig.client.server().origin(), &rig.user)
        .unwrap()
        .unwrap();
    assert_eq!(ledger.items.len() as u64, report.checked.items_sent);
    assert_eq!(rig.proxy.count("PUT", part(1)), 1, "part 1 not sent again");
    assert_eq!(rig.proxy.count("PUT", part(2)), 1, "part 2 not sent again");
    assert_eq!(
        rig.proxy.count("PUT", part(3)),
        2,
        "the stuck one, then again"
    );
    assert_eq!(
        rig.proxy.count("POST", CREATE),
        1,
        "the same upload went on"
    );
    assert_eq!(report.compared, Some((6, 6)));
    assert_eq!(runs(rig.dir(), &rig.user), ["completed"]);
    assert_eq!(
        stored(rig.dir(), &rig.user),
        rig::clean_import(Size::Large).await
    );
    assert!(
        next.interrupted(&export.path, &rig.user)
            .await
            .unwrap()
            .is_none()
    );
    rig.proxy.tally(
        if restart_server {
            "multipart, process killed, server restarted"
        } else {
            "multipart, process killed"
        },
        "resumed from 2 stored parts, imported once",
    );
}

/// The ledger's pending rows: batch, and whether its upload is still
/// being sent.
fn pending(db: &std::path::Path) -> Vec<(String, bool)> {
    let journal = rusqlite::Connection::open(owi_store::journal_path(db)).unwrap();
    let mut rows = journal
        .prepare(
            "SELECT batch, batch IN (SELECT batch FROM ledger_sending)
             FROM ledger_pending ORDER BY batch",
        )
        .unwrap();
    rows.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// How many files of items wait beside the store (`owi.pending/`).
fn pending_files(db: &std::path::Path) -> usize {
    std::fs::read_dir(db.with_extension("pending")).map_or(0, |d| d.count())
}

/// An upload the store refuses mid-way: what was kept pending beside its
/// bytes is dropped, so nothing of it can join the ledger.
#[tokio::test]
async fn a_refused_upload_leaves_nothing_pending_in_the_ledger() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    rig.proxy.inject("PUT", part(2), 1, Fault::Status(403));
    let db = tempfile::tempdir().unwrap();
    let db_path = db.path().join("owi.sqlite");
    let known = Store::open(&db_path).unwrap();
    known
        .remember_multipart(rig.client.server().origin(), true)
        .unwrap();
    let importer = Importer::new(rig.client.clone(), Arc::new(Mutex::new(known)));
    let request = ImportRequest {
        method: Method::Multipart,
        ..ImportRequest::new(&export.path, &rig.user)
    };
    let e = importer
        .run(
            &request,
            &owi_progress::Silent,
            &|_: &Step| {},
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("AccessDenied"), "{e}");
    assert_eq!(pending(&db_path), [], "nothing left pending");
    assert_eq!(pending_files(&db_path), 0, "nor their items' files");
    let ledger = Store::open(&db_path)
        .unwrap()
        .ledger(rig.client.server().origin(), &rig.user)
        .unwrap();
    assert_eq!(ledger, None);
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
}
