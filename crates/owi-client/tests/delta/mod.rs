//! Only what is new, only what the person shares — against the bundled
//! server, whose stored samples and workouts are the truth: an earlier
//! export plus the delta of a later one leaves exactly what the later one
//! sent whole would; the same export again sends nothing; filters store
//! exactly what they name; a failed or cancelled import leaves the ledger
//! as it was.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use std::time::Duration;

use owi_client::{
    Client, Ending, FollowOptions, ImportReport, ImportRequest, Importer, Method, NewUser,
    Rechecked, Step,
};
use owi_export::{Share, resolve_kinds};
use owi_progress::{CancelToken, Silent};
use owi_sample::Snapshot;
use owi_server::{Compat, ServerConfig};
use owi_store::Store;

use super::{API_KEY, Running, key, refuse_ledger_writes, server_with};

/// The day an element starts on, as written.
fn day_of(element: &str) -> &str {
    owi_sample::day_of(element).unwrap_or_else(|| panic!("no date in {element}"))
}

/// An attribute's value as written.
fn attr<'a>(element: &'a str, name: &str) -> &'a str {
    let (_, rest) = element
        .split_once(&format!(" {name}=\""))
        .unwrap_or_else(|| panic!("no {name} in {element}"));
    &rest[..rest.find('"').unwrap()]
}

/// What the server stores for a user: samples and workouts, in full.
#[derive(Debug, PartialEq, Eq)]
struct Stored {
    samples: BTreeSet<(String, String, i64, u64)>,
    workouts: BTreeSet<(String, String, i64, i64)>,
}

fn stored(s: &Running, user: &str) -> Stored {
    let db = rusqlite::Connection::open(s.dir.path().join("data.sqlite")).unwrap();
    let mut q = db
        .prepare("SELECT source, series_type, recorded_at, value FROM samples WHERE user_id = ?")
        .unwrap();
    let samples = q
        .query_map([user], |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get::<_, f64>(3)?.to_bits(),
            ))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut q = db
        .prepare("SELECT source, type, start, end FROM workouts WHERE user_id = ?")
        .unwrap();
    let workouts = q
        .query_map([user], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    Stored { samples, workouts }
}

struct Rig {
    server: Running,
    client: Client,
    _db: tempfile::TempDir,
    importer: Importer,
    dir: tempfile::TempDir,
}

async fn rig() -> Rig {
    rig_with(|_| {}).await
}

async fn rig_with(configure: impl FnOnce(&mut ServerConfig)) -> Rig {
    let server = server_with(configure).await;
    let client = Client::connect(&server.url, key(API_KEY)).await.unwrap();
    let db = tempfile::tempdir().unwrap();
    let store = Store::open(&db.path().join("owi.sqlite")).unwrap();
    Rig {
        importer: Importer::new(client.clone(), Arc::new(Mutex::new(store))),
        client,
        server,
        _db: db,
        dir: tempfile::tempdir().unwrap(),
    }
}

impl Rig {
    async fn user(&self) -> String {
        self.client
            .create_user(&NewUser::default())
            .await
            .unwrap()
            .id
    }

    fn write(&self, name: &str, xml: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, xml).unwrap();
        path
    }

    async fn send(&self, request: &ImportRequest) -> Result<ImportReport, owi_client::Error> {
        self.importer
            .run(request, &Silent, &|_: &Step| {}, &CancelToken::new())
            .await
    }

    /// Sends an export without following its import (`--no-wait`), then
    /// waits for the server to import it (followed only to know when).
    async fn sent_unwatched_and_imported(&self, user: &str) -> ImportReport {
        let path = self.write(
            "export.xml",
            &sample(self.dir.path(), 1500, Default::default()),
        );
        let request = ImportRequest {
            wait: false,
            ..ImportRequest::new(&path, user)
        };
        let report = self.send(&request).await.unwrap();
        assert_eq!(report.ending, Ending::Sent);
        assert_eq!(self.ledger_items(user), None, "pending until confirmed");
        let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
        let last = self
            .client
            .follow_upload(user, uploaded, FollowOptions::default(), |_| {})
            .await
            .unwrap();
        assert!(last.succeeded(), "{last:?}");
        report
    }

    fn ledger_items(&self, user: &str) -> Option<u64> {
        let store = Store::open(&self._db.path().join("owi.sqlite")).unwrap();
        store
            .ledger_summary(&self.server.url, user)
            .unwrap()
            .map(|l| l.items)
    }
}

fn bytes_sent(report: &ImportReport) -> u64 {
    report
        .pieces
        .iter()
        .filter_map(|p| p.uploaded.as_ref())
        .map(|u| u.bytes)
        .sum()
}

fn sample(dir: &Path, records: u64, dtd: owi_sample::Dtd) -> String {
    let spec = owi_sample::SampleSpec {
        records,
        workouts: 12,
        seed: 11,
        locale: "en_US".into(),
        zip: false,
        junk_values: 0,
        dtd,
    };
    let m = owi_sample::generate(&spec, dir).unwrap();
    std::fs::read_to_string(&m.xml_path).unwrap()
}

#[tokio::test]
async fn a_later_export_sends_only_what_is_new_and_leaves_what_a_whole_upload_would() {
    later_export_sends_only_what_is_new(rig().await).await;
}

/// The same against the real server's ways: its workout listing bounds
/// their ends, not their starts.
#[tokio::test]
async fn a_later_export_sends_only_what_is_new_to_a_server_like_open_wearables_06() {
    later_export_sends_only_what_is_new(rig_with(|c| c.compat = Compat::OpenWearables06).await)
        .await;
}

async fn later_export_sends_only_what_is_new(r: Rig) {
    let b_xml = sample(r.dir.path(), 3000, Default::default());
    let parts = Snapshot::of(&b_xml).unwrap();
    let mut days: Vec<&str> = parts.elements().iter().map(|e| day_of(e)).collect();
    days.sort_unstable();
    let cutoff = days[days.len() * 4 / 5];
    // The earlier export ends before the last days, and lacks samples a
    // watch synced late: old dates, new items.
    let a = r.write(
        "a.xml",
        &parts.with(|i, e| day_of(e) < cutoff && i % 7 != 3),
    );
    let b = r.write("b.xml", &b_xml);

    let (user, fresh) = (r.user().await, r.user().await);
    let first = r.send(&ImportRequest::new(&a, &user)).await.unwrap();
    assert_eq!(first.checked.ledger_items, None, "nothing sent before");
    let ledger = r.ledger_items(&user);
    assert!(ledger.is_some_and(|n| n > 0), "{ledger:?}");
    let delta = r.send(&ImportRequest::new(&b, &user)).await.unwrap();
    assert_eq!(delta.ending, Ending::Reported);
    assert_eq!(delta.checked.ledger_items, ledger);
    let whole = r.send(&ImportRequest::new(&b, &fresh)).await.unwrap();
    assert_eq!(
        stored(&r.server, &user),
        stored(&r.server, &fresh),
        "earlier + delta = later sent whole"
    );
    assert!(
        bytes_sent(&delta) * 2 < bytes_sent(&whole),
        "the delta sends far less: {} of {} bytes",
        bytes_sent(&delta),
        bytes_sent(&whole)
    );
    let late = parts
        .elements()
        .iter()
        .enumerate()
        .filter(|(i, e)| day_of(e) < cutoff && i % 7 == 3)
        .count() as u64;
    assert!(
        delta.checked.items_sent >= late,
        "the late samples went too"
    );

    // The same export again: nothing goes, nothing is uploaded.
    let again = r.send(&ImportRequest::new(&b, &user)).await.unwrap();
    assert_eq!(again.ending, Ending::NothingNew);
    assert!(again.pieces.is_empty());
    assert_eq!(again.checked.left_out.sent_before, whole.checked.items_sent);
    // An earlier export now lacks what the later one had: counted, kept.
    let older = r.send(&ImportRequest::new(&a, &user)).await.unwrap();
    assert_eq!(older.ending, Ending::NothingNew);
    assert_eq!(
        older.checked.left_out.gone,
        whole.checked.items_sent - first.checked.items_sent
    );
}

#[tokio::test]
async fn a_filtered_upload_stores_exactly_the_kinds_and_days_chosen() {
    let r = rig().await;
    let xml = sample(r.dir.path(), 3000, Default::default());
    let parts = Snapshot::of(&xml).unwrap();
    let mut days: Vec<&str> = parts.elements().iter().map(|e| day_of(e)).collect();
    days.sort_unstable();
    days.dedup();
    let (from, to) = (days[days.len() / 4], days[days.len() / 2]);
    let path = r.write("export.xml", &xml);
    let user = r.user().await;
    let share = Share {
        only: Some(resolve_kinds(["Heart rate", "workouts"]).unwrap()),
        from: owi_export::time::parse_date(from),
        to: owi_export::time::parse_date(to),
        ..Share::default()
    };
    let request = ImportRequest {
        share,
        ..ImportRequest::new(&path, &user)
    };
    let report = r.send(&request).await.unwrap();
    assert!(
        report.checked.filters.contains("heart rate"),
        "{}",
        report.checked.filters
    );
    let held = stored(&r.server, &user);
    let chosen = |e: &&String| (from..=to).contains(&day_of(e));
    // The server keeps one sample per source, type and instant.
    let heart: BTreeSet<(&str, &str)> = parts
        .elements()
        .iter()
        .filter(|e| e.starts_with(" <Record type=\"HKQuantityTypeIdentifierHeartRate\""))
        .filter(chosen)
        .map(|e| (attr(e, "sourceName"), attr(e, "startDate")))
        .collect();
    assert!(!heart.is_empty());
    let series: BTreeSet<&str> = held.samples.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(series, BTreeSet::from(["heart_rate"]), "only heart rate");
    assert_eq!(held.samples.len(), heart.len());
    let expected_workouts = parts
        .elements()
        .iter()
        .filter(|e| e.starts_with(" <Workout"))
        .filter(chosen)
        .count();
    assert!(expected_workouts > 0);
    assert_eq!(held.workouts.len(), expected_workouts);
}

#[tokio::test]
async fn a_failed_or_cancelled_delta_adds_nothing_and_the_next_run_sends_it_again() {
    // The real server's strict parser, to fail an import on purpose.
    let r = rig_with(|c| c.compat = Compat::OpenWearables06).await;
    let xml = sample(r.dir.path(), 2000, owi_sample::Dtd::Ios16);
    let parts = Snapshot::of(&xml).unwrap();
    let a = r.write("a.xml", &parts.with(|i, _| i % 2 == 0));
    let b = r.write("b.xml", &xml);
    let user = r.user().await;
    r.send(&ImportRequest::new(&a, &user)).await.unwrap();
    let before = r.ledger_items(&user);

    // Cancelled while sending.
    let cancel = CancelToken::new();
    let stop = cancel.clone();
    let on_step = move |step: &Step| {
        if matches!(step, Step::Sending { .. }) {
            stop.cancel();
        }
    };
    let cancelled = r
        .importer
        .run(&ImportRequest::new(&b, &user), &Silent, &on_step, &cancel)
        .await;
    assert!(
        matches!(cancelled, Err(owi_client::Error::Cancelled)),
        "{cancelled:?}"
    );
    assert_eq!(r.ledger_items(&user), before);

    // Failed on the server: the iOS 16 DTD sent as it is.
    let raw = ImportRequest {
        clean: false,
        resume: false,
        ..ImportRequest::new(&b, &user)
    };
    let failed = r.send(&raw).await;
    assert!(
        matches!(failed, Err(owi_client::Error::ImportFailed { .. })),
        "{failed:?}"
    );
    assert_eq!(
        r.ledger_items(&user),
        before,
        "a failed import adds nothing"
    );

    let retried = r
        .send(&ImportRequest {
            resume: false,
            ..ImportRequest::new(&b, &user)
        })
        .await
        .unwrap();
    assert_eq!(
        retried.checked.items_sent,
        parts.elements().len() as u64 / 2
    );
    assert_eq!(
        r.ledger_items(&user),
        before.map(|n| n + retried.checked.items_sent)
    );
}

/// However an export is split into what went earlier and the rest, the
/// earlier part plus the whole's delta leaves the server holding exactly
/// what the whole sent alone does.
#[tokio::test]
async fn earlier_plus_delta_equals_the_whole_for_random_splits() {
    let r = rig().await;
    let xml = sample(r.dir.path(), 400, Default::default());
    let parts = Snapshot::of(&xml).unwrap();
    let whole = r.write("whole.xml", &xml);
    let alone = r.user().await;
    r.send(&ImportRequest::new(&whole, &alone)).await.unwrap();
    let truth = stored(&r.server, &alone);
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for case in 0..4 {
        let share = 0.2 + 0.6 * rng.f64();
        let mask: Vec<bool> = (0..parts.elements().len())
            .map(|_| rng.f64() < share)
            .collect();
        let earlier = r.write(&format!("earlier{case}.xml"), &parts.with(|i, _| mask[i]));
        let user = r.user().await;
        r.send(&ImportRequest::new(&earlier, &user)).await.unwrap();
        let delta = r.send(&ImportRequest::new(&whole, &user)).await.unwrap();
        assert_eq!(
            delta.checked.left_out.sent_before,
            mask.iter().filter(|m| **m).count() as u64,
            "case {case}"
        );
        assert_eq!(
            stored(&r.server, &user),
            truth,
            "case {case} ({share:.2} sent earlier)"
        );
    }
}

/// A server that lost what the ledger says it has (reset, or another one
/// at the same address) stops a delta before anything is sent; everything
/// goes again when asked.
#[tokio::test]
async fn a_server_that_lost_our_workouts_refuses_a_delta_until_everything_is_sent() {
    server_that_lost_our_workouts(rig().await).await;
}

#[tokio::test]
async fn a_server_like_open_wearables_06_that_lost_our_workouts_refuses_a_delta() {
    server_that_lost_our_workouts(rig_with(|c| c.compat = Compat::OpenWearables06).await).await;
}

async fn server_that_lost_our_workouts(r: Rig) {
    let xml = sample(r.dir.path(), 1500, Default::default());
    let path = r.write("export.xml", &xml);
    let user = r.user().await;
    r.send(&ImportRequest::new(&path, &user)).await.unwrap();
    let held = stored(&r.server, &user);
    assert!(!held.workouts.is_empty());
    {
        let db = rusqlite::Connection::open(r.server.dir.path().join("data.sqlite")).unwrap();
        db.execute("DELETE FROM workouts WHERE user_id = ?", [&user])
            .unwrap();
        db.execute("DELETE FROM samples WHERE user_id = ?", [&user])
            .unwrap();
    }
    let refused = r.send(&ImportRequest::new(&path, &user)).await;
    match refused {
        Err(owi_client::Error::ServerForgot { held: 0, sent, .. }) => {
            assert_eq!(sent, held.workouts.len() as u64);
        }
        other => panic!("a delta to a server that forgot: {other:?}"),
    }
    let again = r
        .send(&ImportRequest {
            delta: false,
            ..ImportRequest::new(&path, &user)
        })
        .await
        .unwrap();
    assert_eq!(again.ending, Ending::Reported);
    assert_eq!(stored(&r.server, &user), held, "everything is back");
}

/// A silent server (S3 on Open Wearables 0.6; here one that never imports
/// S3 uploads at all): a delta's span already holds the earlier upload's
/// data, so data being there proves nothing. The import is not confirmed,
/// and its items stay out of the ledger.
#[tokio::test]
async fn data_that_was_there_before_never_confirms_a_delta() {
    let r = rig_with(|c| {
        c.compat = Compat::OpenWearables06;
        c.s3_imports = false;
    })
    .await;
    let importer = r.importer.clone().with_follow(FollowOptions {
        silence: Duration::from_millis(1500),
        data_every: Duration::from_millis(100),
        ..FollowOptions::default()
    });
    let xml = sample(r.dir.path(), 2000, Default::default());
    let parts = Snapshot::of(&xml).unwrap();
    // Every workout went before: only samples are new, and the span holds
    // more of the earlier ones than the delta adds.
    let a = r.write(
        "a.xml",
        &parts.with(|i, e| i % 3 != 0 || e.starts_with(" <Workout")),
    );
    let b = r.write("b.xml", &xml);
    let user = r.user().await;
    r.send(&ImportRequest::new(&a, &user)).await.unwrap();
    let before = r.ledger_items(&user);
    let request = ImportRequest {
        method: Method::S3,
        ..ImportRequest::new(&b, &user)
    };
    let report = importer
        .run(&request, &Silent, &|_: &Step| {}, &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(
        report.ending,
        Ending::Awaiting,
        "not found: {:?}",
        report.on_server
    );
    assert_eq!(
        r.ledger_items(&user),
        before,
        "nothing confirmed, nothing added"
    );
}

/// Sleep alone leaves nothing the read-back can count (servers turn it
/// into sessions): the server's word confirms it.
#[tokio::test]
async fn a_delta_of_sleep_alone_is_confirmed_by_the_servers_word() {
    let r = rig().await;
    let path = r.write(
        "export.xml",
        &sample(r.dir.path(), 2000, Default::default()),
    );
    let user = r.user().await;
    let sleep = ImportRequest {
        share: Share {
            only: Some(resolve_kinds(["sleep"]).unwrap()),
            ..Share::default()
        },
        ..ImportRequest::new(&path, &user)
    };
    let first = r.send(&sleep).await.unwrap();
    assert!(first.checked.items_sent > 0);
    assert_eq!(first.ending, Ending::Reported);
    assert_eq!(r.ledger_items(&user), Some(first.checked.items_sent));
    let again = r.send(&sleep).await.unwrap();
    assert_eq!(again.ending, Ending::NothingNew);
}

/// Blood pressure is a correlation: the server imports the readings inside
/// it, so a delta of blood pressure alone goes.
#[tokio::test]
async fn blood_pressure_alone_goes_for_the_readings_inside_it() {
    let r = rig().await;
    let path = r.write(
        "export.xml",
        &sample(r.dir.path(), 3000, Default::default()),
    );
    let user = r.user().await;
    let request = ImportRequest {
        share: Share {
            only: Some(resolve_kinds(["blood pressure"]).unwrap()),
            ..Share::default()
        },
        ..ImportRequest::new(&path, &user)
    };
    let report = r.send(&request).await.unwrap();
    assert!(report.checked.items_for_server > 0, "{:?}", report.checked);
    assert_eq!(report.ending, Ending::Reported);
    let series: BTreeSet<String> = stored(&r.server, &user)
        .samples
        .into_iter()
        .map(|s| s.1)
        .collect();
    assert!(series.contains("blood_pressure_systolic"), "{series:?}");
}

/// An upload nobody watched to its end (`--no-wait`) joins the ledger
/// when a later look finds the server reported its import.
#[tokio::test]
async fn an_unwatched_upload_joins_the_ledger_when_a_later_look_confirms_it() {
    let r = rig().await;
    let user = r.user().await;
    let report = r.sent_unwatched_and_imported(&user).await;
    let confirmed = r.importer.recheck(&user).await.unwrap();
    assert_all_imported(&confirmed);
    assert_eq!(r.ledger_items(&user), Some(report.checked.items_sent));
}

/// A later look found uploads, every one of them imported.
fn assert_all_imported(confirmed: &[Rechecked]) {
    assert!(!confirmed.is_empty());
    assert!(
        confirmed
            .iter()
            .all(|c| c.outcome == owi_store::Outcome::Imported),
        "{confirmed:?}"
    );
}

/// The later look tells of the import the server reported even when the
/// ledger cannot take its items: the server's outcome decides.
#[tokio::test]
async fn a_later_look_reports_the_import_whatever_the_ledger() {
    let r = rig().await;
    let user = r.user().await;
    r.sent_unwatched_and_imported(&user).await;
    refuse_ledger_writes(r._db.path());
    let confirmed = r
        .importer
        .recheck(&user)
        .await
        .expect("the import went through");
    assert_all_imported(&confirmed);
    assert_eq!(r.ledger_items(&user), None, "nothing recorded");
}
