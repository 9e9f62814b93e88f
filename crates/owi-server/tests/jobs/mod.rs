//! The import queue across crashes and failures: a job in hand when the
//! process died is resumed, up to its tries; a failure that may pass is
//! tried again, one that cannot fails at once; upload files no job will
//! read are swept at start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use owi_server::{Stage, Status, SyncStatusEvent};
use reqwest::StatusCode;

use crate::util::*;

/// A job row as a process would have left it, its upload at the path
/// returned (copied from `export` when given). Returns the run id too.
fn plant_job(
    dir: &Path,
    user: &str,
    n: u32,
    state: &str,
    attempts: u32,
    export: Option<&Path>,
) -> (String, PathBuf) {
    let id = format!("9b2f0d8e-0000-4000-8000-{n:012}");
    let upload = dir.join(format!("uploads/{id}.xml"));
    if let Some(export) = export {
        std::fs::copy(export, &upload).unwrap();
    }
    let run = format!("run-{n}");
    let db = rusqlite::Connection::open(dir.join("server.sqlite")).unwrap();
    db.execute(
        "INSERT INTO jobs (id, run_id, user_id, origin, path, filename, state, attempts, created_at, updated_at)
         VALUES (?, ?, ?, 'direct', ?, 'export.xml', ?, ?, ?, 0)",
        rusqlite::params![id, run, user, upload.display().to_string(), state, attempts, n],
    )
    .unwrap();
    (run, upload)
}

/// A data directory holding one user, its server stopped.
async fn stopped_with_user(email: &str) -> (tempfile::TempDir, String) {
    let s = TestServer::start().await;
    let user = s.create_user(email).await;
    (s.stop().await, user)
}

fn stages(events: &[SyncStatusEvent]) -> Vec<Stage> {
    events.iter().map(|e| e.stage).collect()
}

#[tokio::test]
async fn a_job_interrupted_by_a_crash_is_resumed_on_the_next_start() {
    let (dir, user) = stopped_with_user("restart@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 300, 2);
    let (run, _) = plant_job(
        dir.path(),
        &user,
        1,
        "processing",
        1,
        Some(&manifest.xml_path),
    );

    let s = TestServer::start_in(dir, |_| {}).await;
    let events = s.follow(&user, Some(&run)).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert_eq!(s.count(&user, "/events/workouts").await, 2);
    assert_eq!(
        s.query_i64("SELECT attempts FROM jobs"),
        2,
        "its second try"
    );
}

#[tokio::test]
async fn a_job_that_keeps_crashing_the_server_is_failed_and_the_server_starts() {
    let (dir, user) = stopped_with_user("crash@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 300, 2);
    let export = Some(manifest.xml_path.as_path());
    let (given_up, its_file) = plant_job(dir.path(), &user, 1, "processing", 3, export);
    let (resumed, _) = plant_job(dir.path(), &user, 2, "processing", 2, export);

    let s = TestServer::start_in(dir, |c| c.job_attempts = 3).await;
    assert!(!its_file.exists(), "the given-up job's upload is removed");
    let events = s.follow(&user, Some(&given_up)).await;
    let last = events.last().unwrap();
    assert_eq!((last.stage, last.status), (Stage::Failed, Status::Failed));
    let error = last.error.as_deref().unwrap();
    assert!(
        error.contains("stopped unexpectedly") && error.contains("3 times"),
        "{error}"
    );
    let last = s.follow(&user, Some(&resumed)).await.pop().unwrap();
    assert_eq!(last.stage, Stage::Completed, "its third try: {last:?}");
    assert_eq!(s.count(&user, "/events/workouts").await, 2);
}

#[tokio::test]
async fn a_failure_that_may_pass_is_tried_again_up_to_the_limit() {
    let (dir, user) = stopped_with_user("retry@example.com").await;
    // Its file cannot be read: an I/O failure, which may pass.
    let (run, upload) = plant_job(dir.path(), &user, 1, "queued", 0, None);

    let s = TestServer::start_in(dir, |c| c.job_attempts = 3).await;
    let events = s.follow(&user, Some(&run)).await;
    let stages = stages(&events);
    assert_eq!(
        stages,
        [
            Stage::Started,
            Stage::Queued,
            Stage::Started,
            Stage::Queued,
            Stage::Started,
            Stage::Failed
        ],
        "three tries"
    );
    assert!(
        events[1]
            .message
            .as_deref()
            .unwrap()
            .contains("Try 1 of 3 failed")
    );
    let error = events.last().unwrap().error.as_deref().unwrap();
    assert!(error.contains("(try 3 of 3)"), "{error}");
    assert!(error.contains("export.xml"), "named as uploaded: {error}");
    assert!(
        !error.contains(&upload.display().to_string()),
        "never the server's own path: {error}"
    );
    assert_eq!(s.query_i64("SELECT attempts FROM jobs"), 3);
}

#[tokio::test]
async fn a_failure_that_passes_is_imported_on_the_next_try() {
    let delay = Duration::from_secs(3600);
    let (dir, user) = stopped_with_user("later@example.com").await;
    let (run, upload) = plant_job(dir.path(), &user, 1, "queued", 0, None);

    let s = TestServer::start_in(dir, |c| c.job_retry_delay = delay).await;
    let first = s
        .follow_until(&user, |r| r == run, |e| e.stage == Stage::Queued)
        .await;
    assert_eq!(stages(&first), [Stage::Started, Stage::Queued]);
    // What was missing is back; the retry is due an hour later.
    let data = tempfile::tempdir().unwrap();
    std::fs::copy(sample(data.path(), 300, 2).xml_path, &upload).unwrap();
    s.clock.advance(delay);
    let last = s.follow(&user, Some(&run)).await.pop().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success)
    );
    assert_eq!(s.count(&user, "/events/workouts").await, 2);
    assert_eq!(s.query_i64("SELECT attempts FROM jobs"), 2);
}

#[tokio::test]
async fn a_file_that_is_not_an_export_fails_at_once() {
    let s = TestServer::start().await;
    let user = s.create_user("svg@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let svg = data.path().join("drawing.xml");
    std::fs::write(&svg, "<?xml version=\"1.0\"?><svg/>").unwrap();
    let res = s.upload_direct(&user, &svg).await;
    assert_eq!(res.status(), StatusCode::OK);
    let events = s.follow(&user, None).await;
    assert_eq!(
        stages(&events),
        [Stage::Queued, Stage::Started, Stage::Failed],
        "one try"
    );
    let error = events.last().unwrap().error.as_deref().unwrap();
    assert!(error.contains("<svg>"), "the parser's own words: {error}");
    assert_eq!(s.query_i64("SELECT attempts FROM jobs"), 1);
    assert!(s.uploads().is_empty());
}

#[tokio::test]
async fn upload_files_no_job_will_read_are_swept_at_start() {
    let (dir, user) = stopped_with_user("orphans@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 300, 2);
    let uploads = dir.path().join("uploads");
    // Written whole, but the process died before the job row.
    let orphans = [
        "5a1e0000-0000-4000-8000-000000000001.xml",
        "5a1e0000-0000-4000-8000-000000000002.part",
        "5a1e0000-0000-4000-8000-000000000003.fetched.xml",
    ]
    .map(|name| uploads.join(name));
    for orphan in &orphans {
        std::fs::copy(&manifest.xml_path, orphan).unwrap();
    }
    let export = Some(manifest.xml_path.as_path());
    let (run, _) = plant_job(dir.path(), &user, 1, "queued", 0, export);
    let (_, ended) = plant_job(dir.path(), &user, 2, "completed", 1, export);

    let s = TestServer::start_in(dir, |_| {}).await;
    for orphan in orphans.iter().chain([&ended]) {
        assert!(!orphan.exists(), "{} swept", orphan.display());
    }
    let last = s.follow(&user, Some(&run)).await.pop().unwrap();
    assert_eq!(
        last.stage,
        Stage::Completed,
        "the queued job's file was kept"
    );
    s.assert_holds(&user, 2, s.count(&user, "/timeseries").await)
        .await;
}
