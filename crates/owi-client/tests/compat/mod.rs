//! The import flow against the bundled server imitating Open Wearables 0.6
//! (`Compat::OpenWearables06`), as checked against the real one: runs with
//! ids of their own found by file name, S3 imports that report nothing
//! (confirmed by their data), a strict parser, no multipart, no user check
//! on upload; and the checks made before a byte is sent.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use owi_client::{
    Client, Ending, Error, FollowOptions, ImportRequest, Importer, Method, NewUser, Step,
};
use owi_progress::{CancelToken, Recorder};
use owi_sample::{Dtd, SampleSpec};
use owi_server::Compat;
use owi_store::{Outcome, Store};

use super::{API_KEY, Running, key, server, server_with};

struct Flow {
    importer: Importer,
    user: String,
    db: tempfile::TempDir,
}

async fn flow(s: &Running) -> Flow {
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap().id;
    let db = tempfile::tempdir().unwrap();
    let store = Store::open(&db.path().join("owi.sqlite")).unwrap();
    // Short waits: a test server that will say nothing is known to.
    let follow = FollowOptions {
        silence: Duration::from_secs(20),
        data_every: Duration::from_millis(200),
        ..FollowOptions::default()
    };
    Flow {
        importer: Importer::new(client, Arc::new(Mutex::new(store))).with_follow(follow),
        user,
        db,
    }
}

impl Flow {
    fn history(&self) -> Vec<owi_store::UploadRecord> {
        Store::open(&self.db.path().join("owi.sqlite"))
            .unwrap()
            .uploads(50)
            .unwrap()
    }
}

async fn run(
    f: &Flow,
    request: &ImportRequest,
) -> (Result<owi_client::ImportReport, Error>, Vec<Step>) {
    let steps = Mutex::new(Vec::new());
    let on_step = |step: &Step| steps.lock().unwrap().push(step.clone());
    let report = f
        .importer
        .run(request, &Recorder::new(), &on_step, &CancelToken::new())
        .await;
    (report, steps.into_inner().unwrap())
}

fn export(dir: &std::path::Path, dtd: Dtd) -> owi_sample::SampleManifest {
    owi_sample::generate(
        &SampleSpec {
            records: 4_000,
            workouts: 5,
            seed: 11,
            dtd,
            ..SampleSpec::default()
        },
        dir,
    )
    .unwrap()
}

async fn old_server() -> Running {
    server_with(|c| c.compat = Compat::OpenWearables06).await
}

#[tokio::test]
async fn a_direct_import_is_followed_by_its_file_name_and_counted_as_the_server_counts() {
    let s = old_server().await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = export(dir.path(), Dtd::Version14);
    let (report, steps) = run(&f, &ImportRequest::new(&m.xml_path, &f.user)).await;
    let report = report.unwrap();
    assert_eq!(report.ending, Ending::Reported, "{steps:?}");

    let uploaded = report.pieces[0].uploaded.as_ref().unwrap();
    let events: Vec<_> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Server { event, .. } => Some(event.clone()),
            _ => None,
        })
        .collect();
    let stages: Vec<_> = events.iter().map(|e| e.stage.as_str()).collect();
    assert_eq!(stages, ["started", "completed"]);
    let run = &events[0].run_id;
    assert!(run.starts_with("xml_"), "{run}");
    assert_ne!(
        Some(run),
        uploaded.task_id.as_ref(),
        "the run is not the task"
    );
    assert_eq!(events[0].filename(), Some(uploaded.name.as_str()));

    // Records nested in correlations count again, as the server counts.
    let checked = &report.checked;
    assert!(m.correlations > 0);
    assert!(checked.items_for_server > checked.records_imported + checked.workouts);
    assert_eq!(report.items(), Some(checked.items_for_server));
    assert_eq!(report.compared, Some((5, 5)));
    let held = report.on_server.unwrap();
    assert_eq!(
        held.samples,
        Some(checked.samples),
        "every distinct sample stored"
    );
    assert_eq!(f.history()[0].outcome, Outcome::Imported);
}

#[tokio::test]
async fn an_s3_import_the_server_says_nothing_about_is_confirmed_by_its_data() {
    let s = old_server().await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = export(dir.path(), Dtd::Version14);
    let request = ImportRequest {
        method: Method::S3,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (report, steps) = run(&f, &request).await;
    let report = report.unwrap();
    assert_eq!(report.ending, Ending::Found, "{steps:?}");
    assert!(
        !steps.iter().any(|s| matches!(s, Step::Server { .. })),
        "no events for an S3 import: {steps:?}"
    );
    let arrived = steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Arriving {
                on_server,
                workouts,
                samples,
            } => Some((*on_server, *workouts, *samples)),
            _ => None,
        })
        .expect("the data was watched arriving");
    assert_eq!(arrived.0.workouts, 5);
    assert_eq!(arrived.0.samples, Some(arrived.2));
    assert_eq!(report.compared, Some((5, 5)));
    let row = &f.history()[0];
    assert_eq!(row.outcome, Outcome::Imported);
    assert_eq!(row.items, None, "the server counted nothing it said");
}

#[tokio::test]
async fn an_upload_no_one_imports_stays_awaiting_until_its_data_is_found() {
    let s = server_with(|c| {
        c.compat = Compat::OpenWearables06;
        c.s3_imports = false;
    })
    .await;
    let mut f = flow(&s).await;
    f.importer = f.importer.clone().with_follow(FollowOptions {
        silence: Duration::from_millis(800),
        data_every: Duration::from_millis(100),
        ..FollowOptions::default()
    });
    let dir = tempfile::tempdir().unwrap();
    let m = export(dir.path(), Dtd::Version14);
    let by_post = ImportRequest {
        method: Method::S3,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (report, steps) = run(&f, &by_post).await;
    let report = report.unwrap();
    assert_eq!(report.ending, Ending::Awaiting, "{steps:?}");
    let key = report.pieces[0]
        .uploaded
        .as_ref()
        .unwrap()
        .key
        .clone()
        .unwrap();
    assert!(
        matches!(steps.last(), Some(Step::Awaiting { keys, .. }) if keys == std::slice::from_ref(&key)),
        "{steps:?}"
    );
    assert_eq!(f.history()[0].outcome, Outcome::Sent);
    assert!(
        s.object(key.rsplit('/').next().unwrap()).is_some(),
        "the upload is kept"
    );

    // Nothing there yet: a later look leaves it awaiting.
    let again = f.importer.recheck(&f.user).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].outcome, Outcome::Sent);

    // The same data arrives another way; the next look finds it.
    let direct = ImportRequest {
        method: Method::Direct,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (sent, _) = run(&f, &direct).await;
    assert_eq!(sent.unwrap().ending, Ending::Reported);
    let later = f.importer.recheck(&f.user).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(later[0].outcome, Outcome::Imported);
    let on = later[0].on_server.unwrap();
    assert_eq!(on.workouts, 5);
    let history = f.history();
    assert!(
        history.iter().all(|u| u.outcome == Outcome::Imported),
        "{history:?}"
    );
    assert!(f.importer.recheck(&f.user).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_import_the_server_fails_ends_in_its_own_reason() {
    let s = old_server().await;
    let f = flow(&s).await;
    let dir = tempfile::tempdir().unwrap();
    let m = export(dir.path(), Dtd::Ios16);
    let raw = ImportRequest {
        clean: false,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let (report, steps) = run(&f, &raw).await;
    let e = report.unwrap_err();
    assert_eq!(e.kind(), "import_failed", "{e:?}");
    assert!(e.to_string().contains("syntax error"), "{e}");
    let Some(Step::Checked(checked)) = steps.first() else {
        panic!("{steps:?}")
    };
    assert!(checked.needs_cleaning && !checked.cleaned);
    let row = &f.history()[0];
    assert_eq!(row.outcome, Outcome::Failed);
    assert!(
        row.error.as_deref().unwrap_or("").contains("syntax error"),
        "{row:?}"
    );

    // Cleaned, the same export imports.
    let (report, _) = run(&f, &ImportRequest::new(&m.xml_path, &f.user)).await;
    assert_eq!(report.unwrap().ending, Ending::Reported);
}

#[tokio::test]
async fn what_cannot_work_is_refused_before_a_byte_is_sent() {
    let old = old_server().await;
    let f = flow(&old).await;
    let dir = tempfile::tempdir().unwrap();
    let m = export(dir.path(), Dtd::Version14);
    let refused = |request: ImportRequest| {
        let f = &f;
        async move {
            let (report, steps) = run(f, &request).await;
            assert!(
                !steps.iter().any(|s| matches!(s, Step::Sending { .. })),
                "nothing sent: {steps:?}"
            );
            report.unwrap_err()
        }
    };

    let e = refused(ImportRequest::new(&m.xml_path, "not-a-user")).await;
    assert_eq!(e.kind(), "bad_user_id", "{e}");
    let stranger = "6f1c2a9e-0000-4000-8000-000000000000";
    let e = refused(ImportRequest::new(&m.xml_path, stranger)).await;
    assert_eq!(e.kind(), "unknown_user", "{e}");
    assert!(e.to_string().contains(stranger), "{e}");
    let multipart = ImportRequest {
        method: Method::Multipart,
        ..ImportRequest::new(&m.xml_path, &f.user)
    };
    let e = refused(multipart.clone()).await;
    assert_eq!(e.kind(), "method_unavailable", "{e}");
    assert!(e.to_string().contains("--method s3"), "{e}");
    assert!(f.history().is_empty());

    // A server with multipart still needs 5 MiB for it.
    let s = server().await;
    let f = flow(&s).await;
    let e = run(
        &f,
        &ImportRequest {
            user_id: f.user.clone(),
            ..multipart
        },
    )
    .await
    .0
    .unwrap_err();
    assert_eq!(e.kind(), "method_unavailable", "{e}");
    assert!(e.to_string().contains("5 MiB"), "{e}");
}

#[tokio::test]
async fn a_bad_key_and_a_service_that_is_not_open_wearables_are_named_as_such() {
    let s = old_server().await;
    let e = Client::connect(&s.url, key("sk-ffffffffffffffffffffffffffffffff"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "bad_api_key", "{e:?}");
    assert!(e.to_string().contains("refused this API key"), "{e}");

    // The server's own object store answers HTTP, in S3's XML.
    let store = s.s3_endpoint();
    let e = Client::connect(&store, key(API_KEY)).await.unwrap_err();
    assert_eq!(e.kind(), "not_open_wearables", "{e:?}");
    assert!(
        e.to_string().contains("not an Open Wearables server"),
        "{e}"
    );
}
