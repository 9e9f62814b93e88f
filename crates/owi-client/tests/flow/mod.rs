//! The whole import flow (`Importer`) against the bundled server: the
//! check, the cleaned stream, pieces cut to the server's limit, the
//! history, the read-back.

use std::sync::{Arc, Mutex};

use owi_client::{Client, ImportRequest, Importer, Method, NewUser, Step};
use owi_progress::{CancelToken, Phase, Progress, Recorder};
use owi_store::{Outcome, Store};

use super::{API_KEY, Running, key, refuse_ledger_writes, sample_export, server, server_with};

mod cleaning;

struct Flow {
    importer: Importer,
    user: String,
    _db: tempfile::TempDir,
}

async fn flow(s: &Running) -> Flow {
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap().id;
    let db = tempfile::tempdir().unwrap();
    let store = Store::open(&db.path().join("owi.sqlite")).unwrap();
    Flow {
        importer: Importer::new(client, Arc::new(Mutex::new(store))),
        user,
        _db: db,
    }
}

/// Reads `export` into the flow's store, as the app's preview does.
fn preview(f: &Flow, export: &std::path::Path) {
    let mut store = Store::open(&f._db.path().join("owi.sqlite")).unwrap();
    store
        .ingest(export, owi_store::IngestOptions::default())
        .unwrap();
}

/// Runs the flow, keeping every step and progress event.
async fn run(
    flow: &Flow,
    request: &ImportRequest,
) -> (
    Result<owi_client::ImportReport, owi_client::Error>,
    Vec<Step>,
    Vec<Progress>,
) {
    let steps = Mutex::new(Vec::new());
    let recorder = Recorder::new();
    let on_step = |step: &Step| steps.lock().unwrap().push(step.clone());
    let report = flow
        .importer
        .run(request, &recorder, &on_step, &CancelToken::new())
        .await;
    (report, steps.into_inner().unwrap(), recorder.events())
}

/// Where `<Me …/>` lies in an export, with the whitespace before it.
fn profile(xml: &[u8]) -> std::ops::Range<usize> {
    let at = xml
        .windows(4)
        .position(|w| w == b"<Me ")
        .expect("a profile");
    let start = xml[..at].iter().rposition(|b| *b == b'>').unwrap() + 1;
    let end = at + xml[at..].windows(2).position(|w| w == b"/>").unwrap() + 2;
    start..end
}

// On a multi-threaded runtime, as the app and the CLI run it: the body's
// chunks are then read in place (`block_in_place`), elsewhere inline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_checks_sends_a_cleaned_stream_follows_it_and_reads_back() {
    let s = server().await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 60_000, true);
    let zip = m.zip_path.clone().unwrap();
    let (report, steps, events) = run(&f, &ImportRequest::new(&zip, &f.user)).await;
    let report = report.unwrap();

    let Some(Step::Checked(checked)) = steps.first() else {
        panic!("{steps:?}")
    };
    assert_eq!(checked.workouts, 6);
    // Everything goes but the profile, which stays home by default.
    let original = std::fs::read(&m.xml_path).unwrap();
    let me = profile(&original);
    assert!(checked.left_out.me);
    assert_eq!(checked.xml_bytes, m.xml_bytes - me.len() as u64);
    assert!(checked.needs_cleaning, "the sample carries Apple's DTD");
    assert!(
        steps.iter().any(|s| matches!(
            s,
            Step::Plan {
                method: Method::Multipart,
                pieces: 1,
                ..
            }
        )),
        "{steps:?}"
    );
    assert!(matches!(
        steps.iter().rev().find(|s| matches!(s, Step::Server { .. })),
        Some(Step::Server { event, .. }) if event.stage == "completed"
    ));
    assert!(
        matches!(
            steps.last(),
            Some(Step::Compared {
                found: 6,
                expected: 6
            })
        ),
        "{steps:?}"
    );
    assert_eq!(report.compared, Some((6, 6)));
    assert!(
        events.iter().any(
            |e| matches!(e, Progress::Finished { phase: Phase::Check, done, .. } if *done == m.xml_bytes)
        ),
        "the check read it all: {events:?}"
    );
    assert!(
        events.iter().any(
            |e| matches!(e, Progress::Finished { phase: Phase::Upload, done, .. } if *done == checked.xml_bytes)
        ),
        "{events:?}"
    );

    // The server got the export byte for byte without the profile, its
    // DTD blanked.
    let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
    let object = s.object(&uploaded.name).expect("the object in the store");
    let original = [&original[..me.start], &original[me.end..]].concat();
    assert_eq!(object.len(), original.len());
    let dtd = |b: &[u8]| b.windows(9).position(|w| w == b"<!DOCTYPE");
    let start = dtd(&original).expect("the sample has a DTD");
    assert_eq!(dtd(&object), None);
    let root = original
        .windows(11)
        .position(|w| w == b"<HealthData")
        .unwrap();
    assert_eq!(object[..start], original[..start]);
    assert!(
        object[start..root]
            .iter()
            .all(|b| *b == b' ' || *b == b'\n')
    );
    assert_eq!(object[root..], original[root..], "the data unchanged");

    // On record: imported, and not interrupted.
    let sent = f
        .importer
        .already_sent(&zip, &f.user)
        .await
        .unwrap()
        .expect("on record");
    assert_eq!(sent.outcome, Outcome::Imported);
    assert!(sent.cleaned && sent.fingerprint.is_some());
    assert_eq!(sent.method.as_deref(), Some("multipart"));
    assert!(
        f.importer
            .interrupted(&zip, &f.user)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn an_export_larger_than_the_server_takes_goes_in_pieces_it_accepts() {
    const LIMIT: u64 = 4 << 20;
    let s = server_with(|config| config.s3.post_max_bytes = LIMIT).await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 60_000, false);
    assert!(m.xml_bytes > 2 * LIMIT, "{}", m.xml_bytes);
    let request = ImportRequest {
        method: Method::S3,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (report, steps, _) = run(&f, &request).await;
    let report = report.unwrap();

    let plans: Vec<u32> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Plan { pieces, .. } => Some(*pieces),
            _ => None,
        })
        .collect();
    let count = report.pieces.len() as u32;
    assert_eq!(
        plans,
        [1, count],
        "cut again once the server named its limit"
    );
    assert!(count >= 3, "{count}");
    for piece in &report.pieces {
        let uploaded = piece.uploaded.as_ref().unwrap();
        let object = s.object(&uploaded.name).unwrap();
        assert!(object.len() as u64 <= LIMIT);
        assert!(
            object.windows(11).any(|w| w == b"<ExportDate"),
            "every piece carries the header"
        );
        assert!(
            !object.windows(4).any(|w| w == b"<Me "),
            "never the profile"
        );
        assert!(piece.import.as_ref().unwrap().succeeded());
    }
    assert_eq!(report.compared, Some((6, 6)), "every workout arrived once");
    let history = f
        .importer
        .already_sent(&m.xml_path, &f.user)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(history.pieces, Some(count));
}

/// The importer reaches the local store from blocking threads: while
/// another thread holds the store, the runtime (one thread here) goes on.
/// Were the store reached from the runtime's thread, it would wait for
/// the holder, which waits for this test: the watchdog would end that.
#[tokio::test(flavor = "current_thread")]
async fn the_importer_waits_for_the_store_without_holding_up_the_runtime() {
    let s = server().await;
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap().id;
    let db = tempfile::tempdir().unwrap();
    let store = Arc::new(Mutex::new(
        Store::open(&db.path().join("owi.sqlite")).unwrap(),
    ));
    let importer = Importer::new(client, Arc::clone(&store));

    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn({
        let store = Arc::clone(&store);
        move || {
            let guard = store.lock().unwrap();
            held_tx.send(()).unwrap();
            let released_by_test = release_rx
                .recv_timeout(std::time::Duration::from_secs(30))
                .is_ok();
            drop(guard);
            released_by_test
        }
    });
    held_rx.recv().unwrap();
    let asking = tokio::spawn(async move { importer.ledger(&user).await });
    // The importer runs first and must hand its wait to another thread.
    tokio::task::yield_now().await;
    release_tx.send(()).unwrap();
    assert!(
        holder.join().unwrap(),
        "the runtime was held up until the watchdog let the store go"
    );
    assert!(asking.await.unwrap().unwrap().is_none());
}

/// What a run says before it sends: its check, and its plan.
fn before_sending(steps: &[Step]) -> (serde_json::Value, serde_json::Value) {
    let checked = steps.iter().find(|s| matches!(s, Step::Checked(_)));
    let plan = steps.iter().find(|s| matches!(s, Step::Plan { .. }));
    (
        serde_json::to_value(checked.expect("a check")).unwrap(),
        serde_json::to_value(plan.expect("a plan")).unwrap(),
    )
}

fn read_for_check(events: &[Progress]) -> bool {
    events.iter().any(|e| e.phase() == Phase::Check)
}

/// An export previewed before (read into the same store) is checked from
/// what that read kept, not read again; the check, the plan, the bytes
/// sent and the import's outcome are what a read would have given. With
/// filters, what goes is chosen from the preview's log and only that is
/// read.
#[tokio::test]
async fn a_previewed_export_is_sent_without_reading_it_again_and_alike() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 30_000, true);
    let zip = m.zip_path.clone().unwrap();
    let (previewed, unseen) = (flow(&s).await, flow(&s).await);
    preview(&previewed, &zip);

    let plain = |f: &Flow| ImportRequest::new(&zip, &f.user);
    async fn dry(f: &Flow, request: ImportRequest) -> (serde_json::Value, Vec<Progress>) {
        let recorder = Recorder::new();
        let plan = f
            .importer
            .plan(&request, &recorder, &CancelToken::new())
            .await
            .unwrap();
        (serde_json::to_value(plan).unwrap(), recorder.events())
    }
    let (kept_plan, kept_events) = dry(&previewed, plain(&previewed)).await;
    let (read_plan, read_events) = dry(&unseen, plain(&unseen)).await;
    assert!(!read_for_check(&kept_events), "{kept_events:?}");
    assert!(read_for_check(&read_events));
    assert_eq!(kept_plan, read_plan, "the dry run, tally included");

    let (kept, kept_steps, kept_events) = run(&previewed, &plain(&previewed)).await;
    let (read, read_steps, read_events) = run(&unseen, &plain(&unseen)).await;
    let (kept, read) = (kept.unwrap(), read.unwrap());
    assert!(!read_for_check(&kept_events), "{kept_events:?}");
    assert!(read_for_check(&read_events));
    assert_eq!(before_sending(&kept_steps), before_sending(&read_steps));
    assert_eq!(kept.compared, Some((6, 6)));
    assert_eq!(kept.compared, read.compared);
    assert_eq!(kept.items(), read.items(), "N of N items alike");
    let object = |r: &owi_client::ImportReport| {
        s.object(&r.pieces[0].uploaded.as_ref().unwrap().name)
            .expect("the object in the store")
    };
    assert!(object(&kept) == object(&read), "the same bytes sent");
    // The identities, left in the kept log until the ledger took them out.
    let kept_ledger = ledger(&s, &previewed);
    assert_eq!(kept_ledger.len() as u64, kept.checked.items_sent);
    assert_eq!(kept_ledger, ledger(&s, &unseen));

    // Filters, everything they let go sent again: chosen from the
    // preview's log, only that is read, and alike.
    let only_heart = owi_export::Share {
        only: Some(owi_export::resolve_kinds(["heart"]).unwrap()),
        ..Default::default()
    };
    let filtered = |f: &Flow| ImportRequest {
        share: only_heart.clone(),
        delta: false,
        method: Method::S3,
        ..plain(f)
    };
    let (kept_plan, kept_events) = dry(&previewed, filtered(&previewed)).await;
    let (read_plan, read_events) = dry(&unseen, filtered(&unseen)).await;
    let xml_size = std::fs::metadata(&m.xml_path).unwrap().len();
    assert_eq!(checked_bytes(&read_events), xml_size, "a read of it all");
    let only_what_goes = checked_bytes(&kept_events);
    assert!(
        only_what_goes < xml_size / 2,
        "{only_what_goes} of {xml_size} bytes read"
    );
    assert_eq!(kept_plan, read_plan);
    let (kept, kept_steps, _) = run(&previewed, &filtered(&previewed)).await;
    let (read, read_steps, _) = run(&unseen, &filtered(&unseen)).await;
    let (kept, read) = (kept.unwrap(), read.unwrap());
    assert_eq!(before_sending(&kept_steps), before_sending(&read_steps));
    assert_eq!(kept.items(), read.items(), "N of N items alike");
    assert!(object(&kept) == object(&read), "the same bytes sent");

    // Everything once more, not followed: its items wait in the ledger as
    // the kept check whose log holds them, not as a copy.
    let everything = ImportRequest {
        delta: false,
        wait: false,
        ..plain(&previewed)
    };
    run(&previewed, &everything).await.0.unwrap();
    let journal =
        rusqlite::Connection::open(previewed._db.path().join("owi.journal.sqlite")).unwrap();
    let pending: Vec<(Option<i64>, i64)> = journal
        .prepare("SELECT kept_check, length(items) + (items_file IS NOT NULL) FROM ledger_pending")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let kept_id: i64 = journal
        .query_row("SELECT max(id) FROM kept_checks", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, [(Some(kept_id), 0)]);
}

/// The items the user's ledger holds: confirmed, sorted.
fn ledger(s: &Running, f: &Flow) -> Vec<u64> {
    let store = Store::open(&f._db.path().join("owi.sqlite")).unwrap();
    store
        .ledger(&s.url, &f.user)
        .unwrap()
        .map_or_else(Vec::new, |l| l.items)
}

/// A kept log damaged in the file is found only when the ledger takes the
/// identities out of it, beside the upload: the upload stands, and what
/// went is found by a read of the export instead.
#[tokio::test]
async fn a_kept_log_found_damaged_while_sending_fills_the_ledger_by_a_read() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 20_000, false);
    let (previewed, unseen) = (flow(&s).await, flow(&s).await);
    preview(&previewed, &m.xml_path);
    let journal =
        rusqlite::Connection::open(previewed._db.path().join("owi.journal.sqlite")).unwrap();
    let mut outcome: Vec<u8> = journal
        .query_row("SELECT outcome FROM kept_checks", [], |r| r.get(0))
        .unwrap();
    // The log (some 14 bytes an item) ends a few hundred bytes of kinds'
    // names before the workout keys (16 bytes each, counted); no item
    // decodes across 32 bytes of 0xFF.
    let in_log = outcome.len() - 8 - 16 * 6 - 5_000;
    outcome[in_log..in_log + 32].fill(0xFF);
    journal
        .execute("UPDATE kept_checks SET outcome = ?", [&outcome])
        .unwrap();
    drop(journal);
    // Served all the same, the damage found only when its identities are
    // taken out.
    let store = Store::open(&previewed._db.path().join("owi.sqlite")).unwrap();
    let everything = store
        .kept_check(&m.xml_path)
        .unwrap()
        .expect("its frame is whole")
        .choose(
            Arc::new(owi_export::ExportSource::open(&m.xml_path).unwrap()),
            owi_export::Choice {
                share: &Default::default(),
                sent: None,
                tally: false,
            },
            Default::default(),
        )
        .unwrap()
        .and_then(|p| p.selection)
        .expect("everything, as kept");
    assert_eq!(everything.identities(), None);
    drop(store);

    let plain = |f: &Flow| ImportRequest::new(&m.xml_path, &f.user);
    let (kept, _, kept_events) = run(&previewed, &plain(&previewed)).await;
    let (read, _, _) = run(&unseen, &plain(&unseen)).await;
    let (kept, read) = (kept.unwrap(), read.unwrap());
    assert!(
        !read_for_check(&kept_events),
        "checked from the kept outcome"
    );
    assert_eq!(kept.compared, Some((6, 6)));
    assert_eq!(kept.items(), read.items());
    let kept_ledger = ledger(&s, &previewed);
    assert_eq!(kept_ledger.len() as u64, kept.checked.items_sent);
    assert_eq!(kept_ledger, ledger(&s, &unseen));
}

/// An import the server completed is a success though the store cannot
/// record it — the ledger's file refuses the write, as a full disk would;
/// the upload's items cannot be kept pending, beside the bytes nor after;
/// what the upload should leave on the server cannot be kept once it is
/// sent: the server's word decides, and only what was kept is recorded.
#[tokio::test]
async fn an_import_that_went_through_is_a_success_whatever_the_store() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 2_000, false);
    for refused in ["the ledger", "pending items", "expectations"] {
        let f = flow(&s).await;
        match refused {
            "the ledger" => refuse_ledger_writes(f._db.path()),
            // Where their folder goes, a file.
            "pending items" => std::fs::write(f._db.path().join("owi.pending"), b"").unwrap(),
            _ => rusqlite::Connection::open(f._db.path().join("owi.journal.sqlite"))
                .unwrap()
                .execute_batch(
                    "CREATE TRIGGER refuse BEFORE INSERT ON upload_expectations
                     BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
                )
                .unwrap(),
        }
        let (report, _, _) = run(&f, &ImportRequest::new(&m.xml_path, &f.user)).await;
        let report = report.expect(refused);
        assert!(report.pieces[0].import.as_ref().unwrap().succeeded());
        assert_eq!(report.compared, Some((6, 6)));
        let recorded = ledger(&s, &f).len() as u64;
        let want = if refused == "expectations" {
            report.checked.items_sent
        } else {
            0
        };
        assert_eq!(recorded, want, "{refused}: what the ledger recorded");
    }
}

/// The bytes the check read, as its last progress event says.
fn checked_bytes(events: &[Progress]) -> u64 {
    let finished = events.iter().rev().find_map(|e| match e {
        Progress::Finished {
            phase: Phase::Check,
            done,
            ..
        } => Some(*done),
        _ => None,
    });
    finished.expect("a check that finished")
}

/// A user who has part of a previewed export from us (all but the heart
/// data, sent earlier): what goes is chosen from the log the preview kept
/// and only those bytes are read; the check, the plan, the bytes sent and
/// the outcome are what a read of the whole export gives.
#[tokio::test]
async fn a_delta_of_a_previewed_export_reads_only_what_goes_and_alike() {
    let s = server().await;
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 20_000, true);
    let xml_size = std::fs::metadata(&m.xml_path).unwrap().len();
    let (previewed, unseen) = (flow(&s).await, flow(&s).await);
    preview(&previewed, &m.xml_path);
    let but_heart = owi_export::Share {
        except: owi_export::resolve_kinds(["heart"]).unwrap(),
        ..Default::default()
    };
    for f in [&previewed, &unseen] {
        let first = ImportRequest {
            share: but_heart.clone(),
            ..ImportRequest::new(&m.xml_path, &f.user)
        };
        let (report, _, _) = run(f, &first).await;
        assert!(
            report.unwrap().pieces[0]
                .import
                .as_ref()
                .unwrap()
                .succeeded()
        );
    }

    let rest = |f: &Flow| ImportRequest {
        method: Method::S3,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (kept, kept_steps, kept_events) = run(&previewed, &rest(&previewed)).await;
    let (read, read_steps, read_events) = run(&unseen, &rest(&unseen)).await;
    let (kept, read) = (kept.unwrap(), read.unwrap());
    assert_eq!(checked_bytes(&read_events), xml_size, "a read of it all");
    let only_what_goes = checked_bytes(&kept_events);
    assert!(
        only_what_goes < xml_size / 2,
        "{only_what_goes} of {xml_size} bytes read"
    );
    let (checked, plan) = before_sending(&kept_steps);
    assert_eq!((checked.clone(), plan), before_sending(&read_steps));
    assert!(
        checked["left_out"]["sent_before"].as_u64() > Some(0),
        "{checked}"
    );
    assert_eq!(kept.items(), read.items(), "N of N items alike");
    assert_eq!(kept.compared, read.compared);
    let object = |r: &owi_client::ImportReport| {
        s.object(&r.pieces[0].uploaded.as_ref().unwrap().name)
            .expect("the object in the store")
    };
    assert!(object(&kept) == object(&read), "the same bytes sent");
}
