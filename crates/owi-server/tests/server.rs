//! The bundled server over real HTTP: users, direct import followed over
//! SSE, read-back, dedupe, refusals; who may call in `auth`, the queue's
//! restarts and retries in `jobs`, the presigned S3 paths in `s3_paths`,
//! multipart objects kept as their parts in `composite`.

#![allow(clippy::expect_used, clippy::unwrap_used)] // in tests a failed expectation is the failure

mod auth;
mod composite;
mod jobs;
mod limits;
mod policy_reuse;
mod s3_paths;
mod util;

use std::collections::HashSet;
use std::ops::ControlFlow;

use owi_export::{ExportSource, ReadOptions, Record, Value as RecordValue, Visitor, read_export};
use owi_server::{Stage, Status};
use reqwest::StatusCode;
use serde_json::{Value, json};
use util::*;

#[tokio::test]
async fn users_create_list_search_page_and_not_found() {
    let s = TestServer::start().await;
    for i in 0..25 {
        s.create_user(&format!("person{i:02}@example.com")).await;
    }
    let res = s
        .post("/users")
        .json(&json!({ "email": "person03@example.com" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT, "a duplicate email");

    let page: Value = s
        .get("/users?page=2&limit=10&sort_by=email&sort_order=asc")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["total"], 25);
    assert_eq!(page["pages"], 3);
    assert_eq!(page["has_next"], true);
    assert_eq!(page["items"].as_array().unwrap().len(), 10);
    assert_eq!(
        page["items"][0]["email"], "person10@example.com",
        "page 2 of an email-sorted list"
    );

    let found: Value = s
        .get("/users?search=PERSON07")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(found["total"], 1, "search is case-insensitive");

    let res = s.get("/users?limit=500").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "limit over 100");
    assert!(detail(res).await.1.contains("limit"));

    let missing = uuid_like();
    let res = s.get(&format!("/users/{missing}")).send().await.unwrap();
    assert_eq!(
        detail(res).await,
        (
            StatusCode::NOT_FOUND,
            format!("User with ID: {missing} not found.")
        )
    );
    let res = s.get("/users/not-a-uuid").send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let res = s
        .post("/users")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "malformed JSON is a 400 with a detail"
    );
    assert!(!detail(res).await.1.is_empty());
}

async fn task_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    res.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string()
}

fn uuid_like() -> String {
    "3fa85f64-5717-4562-b3fc-2c963f66afa6".into()
}

/// The samples and workouts the server should hold: one per (source, type,
/// instant) and per (source, start, end), as the real server deduplicates.
fn expected_counts(path: &std::path::Path) -> (u64, u64) {
    struct Keys(HashSet<(String, String, i64)>, HashSet<(String, i64, i64)>);
    impl Visitor for Keys {
        fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
            let kept = matches!(r.value, RecordValue::Number(_))
                || (r.kind == "HKCategoryTypeIdentifierSleepAnalysis"
                    && matches!(r.value, RecordValue::Text(_)));
            if kept {
                self.0
                    .insert((r.source_name.to_string(), r.kind.to_string(), r.start.utc));
            }
            ControlFlow::Continue(())
        }
        fn workout(&mut self, w: &owi_export::Workout) -> ControlFlow<()> {
            self.1
                .insert((w.source_name.clone(), w.start.utc, w.end.utc));
            ControlFlow::Continue(())
        }
    }
    let source = ExportSource::open(path).unwrap();
    let mut keys = Keys(HashSet::new(), HashSet::new());
    read_export(
        &source,
        &mut keys,
        ReadOptions {
            read_routes: false,
            ..ReadOptions::default()
        },
    )
    .unwrap();
    (keys.0.len() as u64, keys.1.len() as u64)
}

#[tokio::test]
async fn a_direct_upload_is_processed_followed_over_sse_and_read_back_and_a_second_one_dedupes() {
    let s = TestServer::start().await;
    let user = s.create_user("runner@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 4000, 8);
    let (samples, workouts) = expected_counts(&manifest.xml_path);

    let res = s.upload_direct(&user, &manifest.xml_path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "processing");
    assert_eq!(body["user_id"], user.as_str());
    let task = body["task_id"].as_str().unwrap().to_string();
    assert_eq!(task.len(), 36, "a UUID task id");

    let events = s.follow(&user, Some(&task)).await;
    let stages: Vec<Stage> = events.iter().map(|e| e.stage).collect();
    assert_eq!(stages.first(), Some(&Stage::Queued), "{stages:?}");
    assert!(stages.contains(&Stage::Started), "{stages:?}");
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert!(
        last.items_processed.unwrap() >= samples + workouts,
        "every sample and workout went through"
    );
    assert_eq!(last.source, "xml_import");
    assert_eq!(last.metadata["filename"], "export.xml");
    assert!(events.iter().all(|e| e.run_id == last.run_id));

    assert_eq!(
        s.count(&user, "/events/workouts?limit=100").await,
        workouts,
        "workouts stored"
    );
    assert_eq!(
        s.count(&user, "/timeseries?limit=100").await,
        samples,
        "samples stored, one per key"
    );
    let running = manifest
        .workout_types
        .get("HKWorkoutActivityTypeRunning")
        .copied()
        .unwrap_or(0);
    assert_eq!(
        s.count(&user, "/events/workouts?record_type=running").await,
        running
    );

    let runs: Value = s
        .get(&format!("/users/{user}/sync/runs"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(runs[0]["status"], "success");
    assert_eq!(runs[0]["run_id"], last.run_id.as_str());

    // The same export again: a clean second run, the same rows.
    let res = s.upload_direct(&user, &manifest.xml_path).await;
    assert_eq!(res.status(), StatusCode::OK);
    let task2 = res.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = s.follow(&user, Some(&task2)).await;
    let last2 = second.last().unwrap();
    assert_ne!(last2.run_id, last.run_id);
    assert_eq!(last2.status, Status::Success, "{last2:?}");
    s.assert_holds(&user, workouts, samples).await;
}

#[tokio::test]
async fn workouts_page_with_a_cursor_and_date_filters_are_checked() {
    let s = TestServer::start().await;
    let user = s.create_user("pager@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 500, 12);
    s.upload_direct(&user, &manifest.xml_path).await;
    s.follow(&user, None).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/users/{user}/events/workouts?limit=5&cursor={c}"),
            None => format!("/users/{user}/events/workouts?limit=5"),
        };
        let page: Value = s.get(&path).send().await.unwrap().json().await.unwrap();
        for w in page["data"].as_array().unwrap() {
            seen.push(w["id"].as_str().unwrap().to_string());
        }
        match page["pagination"]["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        seen.len() as u64,
        manifest.workouts,
        "pages cover every workout once"
    );
    assert_eq!(
        seen.iter().collect::<HashSet<_>>().len(),
        seen.len(),
        "no workout twice"
    );

    // A raw `+` in a datetime decodes to a space: the real server says 400.
    let res = s
        .get(&format!(
            "/users/{user}/events/workouts?start_date=2024-01-01T00:00:00+01:00"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(detail(res).await.0, StatusCode::BAD_REQUEST);
    let encoded = s
        .get(&format!("/users/{user}/events/workouts"))
        .query(&[
            ("start_date", "1990-01-01T00:00:00+01:00"),
            ("end_date", "1990-12-31T00:00:00+01:00"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(encoded.status(), StatusCode::OK, "an encoded `+` is fine");
    let body: Value = encoded.json().await.unwrap();
    assert_eq!(body["pagination"]["total_count"], 0, "nothing in 1990");
}

#[tokio::test]
async fn bad_uploads_fail_clearly_and_store_nothing() {
    let s = TestServer::start().await;
    let user = s.create_user("bad@example.com").await;
    let data = tempfile::tempdir().unwrap();

    let res = s
        .upload_direct(&uuid_like(), &sample(data.path(), 10, 0).xml_path)
        .await;
    assert_eq!(
        res.status(),
        StatusCode::NOT_FOUND,
        "the real server accepts unknown users; this one says 404"
    );

    let svg = data.path().join("drawing.xml");
    std::fs::write(&svg, "<?xml version=\"1.0\"?><svg/>").unwrap();
    let task = task_of(s.upload_direct(&user, &svg).await).await;
    let events = s.follow(&user, Some(&task)).await;
    let last = events.last().unwrap();
    assert_eq!((last.stage, last.status), (Stage::Failed, Status::Failed));
    assert!(
        last.error.as_deref().is_some_and(|e| e.contains("<svg>")),
        "{last:?}"
    );

    let full = sample(&data.path().join("cut"), 2000, 0);
    let bytes = std::fs::read(&full.xml_path).unwrap();
    let cut = data.path().join("cut.xml");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let task = task_of(s.upload_direct(&user, &cut).await).await;
    let events = s.follow(&user, Some(&task)).await;
    let last = events.last().unwrap();
    assert_eq!(
        last.status,
        Status::Failed,
        "a truncated export fails the job"
    );
    assert!(
        last.error.as_deref().is_some_and(|e| e.contains("byte")),
        "{last:?}"
    );
    assert_eq!(
        s.count(&user, "/timeseries").await,
        0,
        "nothing half-imported is kept"
    );

    let res = s
        .post(&format!("/users/{user}/import/apple/xml/direct"))
        .multipart(reqwest::multipart::Form::new().text("other", "x"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST, "no file part");
}

#[tokio::test]
async fn a_client_dropping_mid_upload_leaves_no_job_and_no_file() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let user = s.create_user("drop@example.com").await;
    let addr = s
        .base
        .trim_start_matches("http://")
        .trim_end_matches("/api/v1")
        .to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let boundary = "XyZ";
    let head = format!(
        "POST /api/v1/users/{user}/import/apple/xml/direct HTTP/1.1\r\nHost: {addr}\r\nX-Open-Wearables-API-Key: {API_KEY}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 10000000\r\n\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"export.xml\"\r\nContent-Type: application/xml\r\n\r\n<HealthData>"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&vec![b' '; 200_000]).await.unwrap();
    drop(tcp);
    // The server notices when its read of the body fails; then the part file
    // is gone and no run exists. Poll the observable state, bounded.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let runs: Value = s
            .get(&format!("/users/{user}/sync/runs"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            runs.as_array().map(Vec::len),
            Some(0),
            "no import run for a broken upload"
        );
        if s.uploads().is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the partial upload was not removed: {:?}",
            s.uploads()
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test]
async fn sse_replays_and_sends_heartbeats() {
    let s = TestServer::start().await;
    let user = s.create_user("sse@example.com").await;
    let data = tempfile::tempdir().unwrap();
    s.upload_direct(&user, &sample(data.path(), 50, 0).xml_path)
        .await;
    let first = s.follow(&user, None).await;
    // A new stream with replay gets the finished run's events back, in order.
    let mut res = s
        .get(&format!("/users/{user}/sync/stream?replay=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut text = String::new();
    while text.matches("event: sync.status").count() < 3 || !text.contains("\n:") {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), res.chunk())
            .await
            .expect("replay and a heartbeat arrive")
            .unwrap()
            .expect("stream open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let replayed: Vec<String> = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| {
            serde_json::from_str::<Value>(d).unwrap()["event_id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let last_three: Vec<String> = first[first.len() - 3..]
        .iter()
        .map(|e| e.event_id.clone())
        .collect();
    assert_eq!(replayed, last_three, "the last three events, oldest first");
}

#[tokio::test]
async fn stopping_ends_open_sse_streams_instead_of_waiting_for_them() {
    let s = TestServer::start().await;
    let user = s.create_user("stop@example.com").await;
    let mut res = s
        .get(&format!("/users/{user}/sync/stream"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let stopped = tokio::time::timeout(std::time::Duration::from_secs(10), s.stop()).await;
    assert!(
        stopped.is_ok(),
        "the server stops although a client follows its events"
    );
    // The stream ends rather than hanging.
    let end = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = res.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the event stream was closed");
}

#[tokio::test]
async fn absurd_pages_and_bad_query_values_are_answered_not_crashed() {
    let s = TestServer::start().await;
    let user = s.create_user("pages@example.com").await;
    let page: Value = s
        .get("/users?page=4294967295&limit=100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["items"].as_array().map(Vec::len),
        Some(0),
        "a page past the end is empty"
    );
    let res = s
        .get(&format!("/users/{user}/sync/recent?limit=lots"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(
        detail(res).await.1.contains("limit"),
        "a JSON detail naming the parameter"
    );
    let res = s
        .post(&format!("/users/{user}/import/apple/xml/direct"))
        .header("content-type", "application/xml")
        .body("<HealthData/>")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::BAD_REQUEST,
        "a body that is not multipart"
    );
    assert!(!detail(res).await.1.is_empty());
}

#[tokio::test]
async fn a_local_server_answers_only_this_runs_key_and_keeps_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let users = |url: &str, key: &str| {
        reqwest::Client::new()
            .get(format!("{url}/api/v1/users"))
            .header("X-Open-Wearables-API-Key", key.to_string())
            .send()
    };
    let first = owi_server::Local::start(dir.path()).await.unwrap();
    assert!(
        first.url().starts_with("http://127.0.0.1:"),
        "{}",
        first.url()
    );
    assert!(!format!("{first:?}").contains(first.api_key()), "redacted");
    let created = reqwest::Client::new()
        .post(format!("{}/api/v1/users", first.url()))
        .header("X-Open-Wearables-API-Key", first.api_key().to_string())
        .json(&json!({ "first_name": "Ada" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let old_key = first.api_key().to_string();
    first.stop().await.unwrap();

    // The next run: the data is there, the last run's key is not.
    let second = owi_server::Local::start(dir.path()).await.unwrap();
    let listed: Value = users(second.url(), second.api_key())
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["total"], 1, "{listed}");
    let refused = users(second.url(), &old_key).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_local_server_keeps_its_address_across_launches_unless_it_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    let first = owi_server::Local::start(dir.path()).await.unwrap();
    let url = first.url().to_string();
    first.stop().await.unwrap();

    // Interrupted uploads are matched by address: the next launch has the same.
    let second = owi_server::Local::start(dir.path()).await.unwrap();
    assert_eq!(second.url(), url);

    second.stop().await.unwrap();

    // Something else took its port: another one, which the launch after
    // remembers.
    let taken = std::net::TcpListener::bind(url.trim_start_matches("http://")).unwrap();
    let third = owi_server::Local::start(dir.path()).await.unwrap();
    assert_ne!(third.url(), url);
    let moved = third.url().to_string();
    third.stop().await.unwrap();
    drop(taken);
    let fourth = owi_server::Local::start(dir.path()).await.unwrap();
    assert_eq!(fourth.url(), moved);
    fourth.stop().await.unwrap();
}
