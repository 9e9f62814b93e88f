//! The presigned paths: browser POST (SigV4 and SigV2) and multipart
//! through the embedded store, an external store, and what S3 refuses.

use std::time::Duration;

use owi_server::s3::sign::{self, PostPolicy};
use owi_server::s3::store::{EmbeddedStore, StoreOptions};
use owi_server::{PostSignature, Stage, Status};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::expected_counts;
use crate::util::*;

async fn post_upload_round_trip(signature: PostSignature) {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.s3.post_signature = signature;
    })
    .await;
    let user = s.create_user("poster@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 3000, 6);
    let (samples, workouts) = expected_counts(&manifest.xml_path);
    let bytes = std::fs::read(&manifest.xml_path).unwrap();

    let presigned = s
        .presign(
            &user,
            json!({ "filename": "my экспорт (1).xml", "max_file_size": bytes.len() }),
        )
        .await;
    // A key of its own: the prefix, a random tag, the name's safe part.
    let key = presigned.json["file_key"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&format!("{user}/raw/")) && key.ends_with("-myэкспорт1.xml"),
        "{key}"
    );
    assert_eq!(presigned.json["max_file_size"], bytes.len() as u64);
    assert_eq!(presigned.json["expires_in"], 300);
    let names: Vec<&str> = presigned.fields.iter().map(|(k, _)| k.as_str()).collect();
    match signature {
        PostSignature::V4 => assert_eq!(
            names,
            [
                "Content-Type",
                "key",
                "x-amz-algorithm",
                "x-amz-credential",
                "x-amz-date",
                "policy",
                "x-amz-signature"
            ]
        ),
        PostSignature::V2 => assert_eq!(
            names,
            [
                "Content-Type",
                "key",
                "AWSAccessKeyId",
                "policy",
                "signature"
            ]
        ),
    }

    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    // Processing starts from the store's own notice: nothing else was sent.
    let events = s.follow(&user, None).await;
    let stages: Vec<Stage> = events.iter().map(|e| e.stage).collect();
    assert_eq!(
        stages.first(),
        Some(&Stage::Queued),
        "an S3 upload has events too: {stages:?}"
    );
    assert!(stages.contains(&Stage::Fetching), "{stages:?}");
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert_eq!(last.metadata["filename"], "my экспорт (1).xml");
    assert_eq!(s.count(&user, "/events/workouts").await, workouts);
    assert_eq!(s.count(&user, "/timeseries").await, samples);

    // The worker read the object back; it stays in the bucket, intact.
    let object =
        s.s3.get_object()
            .bucket(&s.bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(object.content_type(), Some("application/xml"));
    let stored = object.body.collect().await.unwrap().into_bytes();
    assert_eq!(stored.as_ref(), bytes.as_slice());

    // The same file again, same name: a new run, the same rows.
    let again = s
        .presign(
            &user,
            json!({ "filename": "my экспорт (1).xml", "max_file_size": bytes.len() }),
        )
        .await;
    let res = post_form(&again, &again.fields, bytes).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let second = s.follow_new(&user, &last.run_id).await;
    let last2 = second.last().unwrap();
    assert_ne!(last2.run_id, last.run_id, "a second run");
    assert_eq!(last2.status, Status::Success, "{last2:?}");
    s.assert_holds(&user, workouts, samples).await;
}

#[tokio::test]
async fn a_sigv4_post_upload_is_processed_from_the_stores_notice_and_dedupes() {
    post_upload_round_trip(PostSignature::V4).await;
}

#[tokio::test]
async fn a_sigv2_post_upload_works_the_same() {
    post_upload_round_trip(PostSignature::V2).await;
}

#[tokio::test]
async fn the_store_refuses_what_the_policy_forbids_and_nothing_is_imported() {
    let s = TestServer::start().await;
    let user = s.create_user("refused@example.com").await;
    let presigned = s
        .presign(&user, json!({ "filename": "x.xml", "max_file_size": 1024 }))
        .await;
    let fields = presigned.fields.clone();
    let xml = b"<HealthData></HealthData>".to_vec();

    let res = post_form(&presigned, &fields, vec![b' '; 1025]).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::BAD_REQUEST, "EntityTooLarge".into())
    );
    let res = post_form(&presigned, &fields, Vec::new()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::BAD_REQUEST, "EntityTooSmall".into())
    );

    let mut wrong_type = fields.clone();
    wrong_type[0].1 = "text/plain".into();
    let res = post_form(&presigned, &wrong_type, xml.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::BAD_REQUEST, "InvalidPolicyDocument".into())
    );

    let mut other_key = fields.clone();
    other_key[1].1 = format!("{user}/raw/other.xml");
    let res = post_form(&presigned, &other_key, xml.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::BAD_REQUEST, "InvalidPolicyDocument".into())
    );

    let mut extra = fields.clone();
    extra.insert(2, ("x-amz-meta-note".into(), "hi".into()));
    let res = post_form(&presigned, &extra, xml.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );

    let mut tampered = fields.clone();
    let signature = &mut tampered.last_mut().unwrap().1;
    let flipped = if signature.starts_with('0') { "1" } else { "0" };
    signature.replace_range(0..1, flipped);
    let res = post_form(&presigned, &tampered, xml.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".into())
    );

    // A policy that expired a minute ago, signed with the store's own key.
    let key = format!("{user}/raw/late.xml");
    let creds = owi_server::Credentials {
        access_key: s.s3_credentials.access_key.clone(),
        secret_key: s.s3_credentials.secret_key.clone(),
    };
    let expired = sign::post_fields(
        &PostPolicy {
            bucket: &s.bucket,
            key: &key,
            content_type: "application/xml",
            max_size: 1024,
            expires_in: 60,
            now: jiff::Timestamp::now() - jiff::SignedDuration::from_secs(120),
            region: "us-east-1",
            signature: PostSignature::V4,
        },
        &creds,
    );
    let res = post_form(&presigned, &expired, xml.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );

    // A client that stops mid-upload: its body errors after some bytes.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(vec![b'<'; 512]),
        Err(std::io::Error::other("the network went away")),
    ];
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in &fields {
        form = form.text(k.clone(), v.clone());
    }
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    form = form.part(
        "file",
        reqwest::multipart::Part::stream(body).file_name("x.xml"),
    );
    let cut = reqwest::Client::new()
        .post(presigned.json["upload_url"].as_str().unwrap())
        .multipart(form)
        .send()
        .await;
    assert!(cut.is_err(), "the request itself failed");

    // Each refusal left nothing: no object, no job, no event.
    assert!(s.objects().await.is_empty(), "{:?}", s.objects().await);
    // The good policy still works afterwards, and only that upload is queued.
    let res = post_form(&presigned, &fields, xml).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let events = s.follow(&user, None).await;
    assert_eq!(events.last().unwrap().status, Status::Success, "{events:?}");
    assert_eq!(s.jobs(), 1, "only the accepted upload became a job");
}

#[tokio::test]
async fn presign_requests_are_validated_as_the_real_server_does() {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.s3.post_max_bytes = 10 << 20;
    })
    .await;
    let user = s.create_user("valid@example.com").await;
    let cases = [
        (
            json!({ "filename": "a".repeat(201) }),
            "at most 200 bytes - filename",
        ),
        (
            json!({ "expiration_seconds": 59 }),
            "greater than or equal to 60 - expiration_seconds",
        ),
        (
            json!({ "expiration_seconds": 3601 }),
            "less than or equal to 3600 - expiration_seconds",
        ),
        (
            json!({ "max_file_size": 1023 }),
            "greater than or equal to 1024 - max_file_size",
        ),
        (
            json!({ "max_file_size": 1_073_741_825u64 }),
            "less than or equal to 1073741824 - max_file_size",
        ),
        (json!({ "max_file_size": "big" }), "Invalid request body"),
    ];
    for (body, expected) in cases {
        let res = s
            .post(&format!("/users/{user}/import/apple/xml/s3"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let (status, detail) = detail(res).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(detail.contains(expected), "{body}: {detail}");
    }
    let res = s
        .post("/users/3fa85f64-5717-4562-b3fc-2c963f66afa6/import/apple/xml/s3")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        detail(res).await.0,
        StatusCode::NOT_FOUND,
        "an unknown user"
    );

    // Defaults as the real server's; the size is capped where the store
    // would hold more in memory than configured, and the answer says so.
    let p = s.presign(&user, json!({})).await;
    assert_eq!(p.json["expires_in"], 300);
    assert_eq!(p.json["max_file_size"], 10 << 20);
    let name = p.json["file_key"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        name.ends_with(".xml") && !name.contains([' ', ':', '+']),
        "{name}"
    );
    let p = s.presign(&user, json!({ "max_file_size": 1 << 30 })).await;
    assert_eq!(p.json["max_file_size"], 10 << 20);
    let res = s
        .http
        .post(s.url(&format!("/users/{user}/import/apple/xml/s3")))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
}

/// A sample export of at least `min` bytes.
fn export_of_at_least(dir: &std::path::Path, min: usize) -> (std::path::PathBuf, Vec<u8>) {
    let manifest = sample(dir, (min / 180) as u64, 10);
    let bytes = std::fs::read(&manifest.xml_path).unwrap();
    assert!(bytes.len() >= min, "sample of {} bytes", bytes.len());
    (manifest.xml_path, bytes)
}

async fn put_part(url: &str, bytes: Vec<u8>) -> reqwest::Response {
    reqwest::Client::new()
        .put(url)
        .body(bytes)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_multipart_upload_is_signed_completed_processed_and_guarded() {
    let data = tempfile::tempdir().unwrap();
    let (xml, bytes) = export_of_at_least(data.path(), 6 << 20);
    // Parts of half the export (whole MiB), so it takes two.
    let split = ((bytes.len() / 2).div_ceil(1 << 20) << 20).max(5 << 20);
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.s3.part_size = split as u64;
    })
    .await;
    let user = s.create_user("parts@example.com").await;
    let other = s.create_user("other@example.com").await;
    let (samples, workouts) = expected_counts(&xml);
    let base = format!("/users/{user}/import/apple/xml/s3/multipart");

    let res = s
        .post(&format!("{base}/create"))
        .json(&json!({ "filename": "big export.xml", "file_size": 1024 }))
        .send()
        .await
        .unwrap();
    let (status, d) = detail(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(d.ends_with("- file_size"), "{d}");

    let res = s
        .post(&format!("{base}/create"))
        .json(&json!({ "filename": "big export.xml", "content_type": "application/xml", "file_size": bytes.len() }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: Value = res.json().await.unwrap();
    let key = created["key"].as_str().unwrap().to_string();
    let upload_id = created["upload_id"].as_str().unwrap().to_string();
    assert!(
        key.starts_with(&format!("{user}/raw/")) && key.ends_with("-bigexport.xml"),
        "{key}"
    );
    assert_eq!(created["part_size"], split);
    assert_eq!(created["bucket"], s.bucket.as_str());

    let res = s
        .post(&format!("{base}/sign"))
        .json(&json!({ "key": key, "upload_id": upload_id, "part_numbers": [1, 2] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let signed: Value = res.json().await.unwrap();
    let urls: Vec<String> = signed["urls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["url"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(signed["urls"][1]["part_number"], 2);

    // Someone else's key, an unknown upload, a bad part number.
    for (path_user, body, expected) in [
        (
            &other,
            json!({ "key": key, "upload_id": upload_id, "part_numbers": [1] }),
            StatusCode::FORBIDDEN,
        ),
        (
            &user,
            json!({ "key": key, "upload_id": "nope", "part_numbers": [1] }),
            StatusCode::NOT_FOUND,
        ),
        (
            &user,
            json!({ "key": key, "upload_id": upload_id, "part_numbers": [0] }),
            StatusCode::BAD_REQUEST,
        ),
        (
            &user,
            json!({ "key": key, "upload_id": upload_id, "part_numbers": [] }),
            StatusCode::BAD_REQUEST,
        ),
    ] {
        let res = s
            .post(&format!(
                "/users/{path_user}/import/apple/xml/s3/multipart/sign"
            ))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(detail(res).await.0, expected, "{body}");
    }

    // A tampered part URL is S3's refusal, not an upload.
    let tampered = urls[0].replace("partNumber=1", "partNumber=3");
    let res = put_part(&tampered, vec![0; 10]).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".into())
    );

    let mut etags = Vec::new();
    for (n, chunk) in [&bytes[..split], &bytes[split..]].into_iter().enumerate() {
        let res = put_part(&urls[n], chunk.to_vec()).await;
        assert_eq!(res.status(), StatusCode::OK);
        etags.push(res.headers()["etag"].to_str().unwrap().to_string());
    }
    assert!(
        s.objects().await.is_empty(),
        "nothing is an object before complete"
    );

    let res = s
        .post(&format!("/users/{other}/import/apple/xml/s3/multipart/complete"))
        .json(&json!({ "key": key, "upload_id": upload_id, "parts": [{ "part_number": 1, "etag": etags[0] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        detail(res).await.0,
        StatusCode::FORBIDDEN,
        "another user cannot complete it"
    );

    // Lists S3 refuses: out of order, a part never uploaded. Refused
    // without harm:
    // the upload can still be completed afterwards.
    for parts in [
        json!([{ "part_number": 2, "etag": etags[1] }, { "part_number": 1, "etag": etags[0] }]),
        json!([{ "part_number": 1, "etag": etags[0] }, { "part_number": 2, "etag": etags[1] }, { "part_number": 3, "etag": etags[1] }]),
    ] {
        let res = s
            .post(&format!("{base}/complete"))
            .json(&json!({ "key": key, "upload_id": upload_id, "parts": parts }))
            .send()
            .await
            .unwrap();
        assert_eq!(detail(res).await.0, StatusCode::BAD_REQUEST, "{parts}");
    }
    let complete = json!({ "key": key, "upload_id": upload_id, "parts": [
        { "part_number": 1, "etag": etags[0] },
        { "part_number": 2, "etag": etags[1] },
    ] });
    let res = s
        .post(&format!("{base}/complete"))
        .json(&complete)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let done: Value = res.json().await.unwrap();
    // A retried complete (its answer lost) gets the same run back.
    let res = s
        .post(&format!("{base}/complete"))
        .json(&complete)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        res.json::<Value>().await.unwrap()["task_id"],
        done["task_id"]
    );
    assert_eq!(done["status"], "processing");
    assert_eq!(done["key"], key.as_str());
    let task = done["task_id"].as_str().unwrap().to_string();

    let events = s.follow(&user, Some(&task)).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert_eq!(last.metadata["filename"], "big export.xml");
    assert_eq!(s.count(&user, "/events/workouts").await, workouts);
    assert_eq!(s.count(&user, "/timeseries").await, samples);
    let head =
        s.s3.head_object()
            .bucket(&s.bucket)
            .key(&key)
            .send()
            .await
            .unwrap();
    assert_eq!(head.content_length(), Some(bytes.len() as i64));

    // Abort is idempotent; a completed or aborted upload cannot be completed.
    let res = s
        .post(&format!("{base}/create"))
        .json(&json!({ "filename": "second.xml", "file_size": 6 << 20 }))
        .send()
        .await
        .unwrap();
    let second: Value = res.json().await.unwrap();
    // Nobody else can abort it, even knowing its id.
    let res = s
        .post(&format!(
            "/users/{other}/import/apple/xml/s3/multipart/abort"
        ))
        .json(
            &json!({ "key": format!("{other}/raw/second.xml"), "upload_id": second["upload_id"] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(detail(res).await.0, StatusCode::NOT_FOUND);
    for _ in 0..2 {
        let res = s
            .post(&format!("{base}/abort"))
            .json(&json!({ "key": second["key"], "upload_id": second["upload_id"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["status"], "aborted");
    }
    let res = s
        .post(&format!("{base}/complete"))
        .json(&json!({ "key": second["key"], "upload_id": second["upload_id"], "parts": [{ "part_number": 1, "etag": etags[0] }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(detail(res).await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.jobs(), 1, "only the completed upload is imported");
}

#[tokio::test]
async fn a_broken_s3_upload_fails_its_run_with_the_reason_and_no_server_paths() {
    let s = TestServer::start().await;
    let user = s.create_user("broken@example.com").await;
    let presigned = s.presign(&user, json!({ "filename": "notes.xml" })).await;
    let truncated = b"<?xml version=\"1.0\"?>\n<HealthData locale=\"en_US\">\n <Record type=\"HKQuantityTypeIdentifierStepCount\" sourceName=\"W\" unit=\"count\" startDate=\"2024-01-01 10:00:00 +0100\" endDate=\"2024-01-01 10:01:00 +0100\" value=\"12\"/>\n <Rec".to_vec();
    let res = post_form(&presigned, &presigned.fields, truncated).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let events = s.follow(&user, None).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Failed, Status::Failed),
        "{last:?}"
    );
    let error = last.error.clone().unwrap();
    assert!(error.contains("notes.xml"), "{error}");
    assert!(
        !error.contains(&s.dir.path().display().to_string()),
        "{error}"
    );
    assert_eq!(
        s.count(&user, "/timeseries").await,
        0,
        "a truncated upload stores nothing"
    );
}

#[tokio::test]
async fn an_s3_job_interrupted_by_a_stop_is_fetched_again_on_the_next_start() {
    let s = TestServer::start().await;
    let user = s.create_user("s3restart@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 300, 3);
    // Outside `raw/`, so the store's notice starts nothing by itself.
    let key = format!("{user}/staging/export.xml");
    s.s3.put_object()
        .bucket(&s.bucket)
        .key(&key)
        .body(std::fs::read(&manifest.xml_path).unwrap().into())
        .send()
        .await
        .unwrap();
    let dir = s.stop().await;
    let db = rusqlite::Connection::open(dir.path().join("server.sqlite")).unwrap();
    db.execute(
        "INSERT INTO jobs (id, run_id, user_id, origin, path, filename, state, created_at, updated_at)
         VALUES ('9b2f0d8e-0000-4000-8000-0000000000s3', 'run-s3', ?, 's3', ?, 'export.xml', 'processing', 0, 0)",
        rusqlite::params![user, key],
    )
    .unwrap();
    drop(db);

    let s = TestServer::start_in(dir, |_| {}).await;
    let events = s.follow(&user, Some("run-s3")).await;
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert_eq!(s.count(&user, "/events/workouts").await, 3);
}

#[tokio::test]
async fn an_external_store_is_watched_for_presigned_posts_and_trusted_on_complete() {
    // A separate S3 server, as MinIO or AWS would be.
    let store_dir = tempfile::tempdir().unwrap();
    let creds = owi_server::Credentials {
        access_key: "AKIDEXTERNAL".into(),
        secret_key: "external-secret".into(),
    };
    let (ignored, _rx) = tokio::sync::mpsc::unbounded_channel();
    let store = EmbeddedStore::bind(
        &StoreOptions {
            root: store_dir.path().to_path_buf(),
            bucket: "ext-bucket".into(),
            addr: "127.0.0.1:0".parse().unwrap(),
            credentials: creds.clone(),
            post_max_bytes: 64 << 20,
            max_skew_secs: 3600,
        },
        ignored,
    )
    .unwrap();
    let endpoint = store.endpoint().to_string();
    let (stop_store, stopped) = tokio::sync::oneshot::channel::<()>();
    let store_task = tokio::spawn(store.run(async {
        let _ = stopped.await;
    }));

    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.s3.endpoint = Some(endpoint.clone());
        c.s3.bucket = "ext-bucket".into();
        c.s3.credentials = Some(creds.clone());
    })
    .await;
    let user = s.create_user("external@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 500, 4);
    let presigned = s.presign(&user, json!({ "filename": "ext.xml" })).await;
    assert!(
        presigned.json["upload_url"]
            .as_str()
            .unwrap()
            .starts_with(&endpoint)
    );
    let res = post_form(
        &presigned,
        &presigned.fields,
        std::fs::read(&manifest.xml_path).unwrap(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let events = tokio::time::timeout(Duration::from_secs(60), s.follow(&user, None))
        .await
        .expect("the watcher notices the upload");
    assert_eq!(events.last().unwrap().status, Status::Success, "{events:?}");
    assert_eq!(s.count(&user, "/events/workouts").await, 4);

    let (_, bytes) = export_of_at_least(data.path(), 5 << 20);
    let base = format!("/users/{user}/import/apple/xml/s3/multipart");
    let created: Value = s
        .post(&format!("{base}/create"))
        .json(&json!({ "filename": "ext-big.xml", "file_size": bytes.len() }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let signed: Value = s
        .post(&format!("{base}/sign"))
        .json(&json!({ "key": created["key"], "upload_id": created["upload_id"], "part_numbers": [1] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = put_part(signed["urls"][0]["url"].as_str().unwrap(), bytes).await;
    assert_eq!(res.status(), StatusCode::OK);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    let res = s
        .post(&format!("{base}/complete"))
        .json(&json!({ "key": created["key"], "upload_id": created["upload_id"], "parts": [{ "part_number": 1, "etag": etag }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let task = res.json::<Value>().await.unwrap()["task_id"]
        .as_str()
        .unwrap()
        .to_string();
    let events = s.follow(&user, Some(&task)).await;
    assert_eq!(events.last().unwrap().status, Status::Success, "{events:?}");
    assert_eq!(s.jobs(), 2, "each upload imported once");

    s.stop().await;
    let _ = stop_store.send(());
    store_task.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_full_disk_is_refused_before_any_byte_is_sent() {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        // As if the disk had no room left beyond the reserve.
        c.min_free_bytes = u64::MAX / 4;
    })
    .await;
    let user = s.create_user("full@example.com").await;
    let res = s
        .post(&format!("/users/{user}/import/apple/xml/s3"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, d) = detail(res).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(d.contains("disk space"), "{d}");
    let res = s
        .post(&format!(
            "/users/{user}/import/apple/xml/s3/multipart/create"
        ))
        .json(&json!({ "file_size": 6 << 20 }))
        .send()
        .await
        .unwrap();
    assert_eq!(detail(res).await.0, StatusCode::SERVICE_UNAVAILABLE);
    let data = tempfile::tempdir().unwrap();
    let res = s
        .upload_direct(&user, &sample(data.path(), 50, 1).xml_path)
        .await;
    assert_eq!(detail(res).await.0, StatusCode::SERVICE_UNAVAILABLE);
    assert!(s.uploads().is_empty());
    assert_eq!(s.jobs(), 0);
}

#[tokio::test]
async fn an_upload_whose_notice_was_lost_is_claimed_at_the_next_start() {
    let s = TestServer::start().await;
    let user = s.create_user("lost@example.com").await;
    let presigned = s.presign(&user, json!({ "filename": "lost.xml" })).await;
    let key = presigned.json["file_key"].as_str().unwrap().to_string();
    let (creds, bucket) = (s.s3_credentials.clone(), s.bucket.clone());
    let dir = s.stop().await;

    // As if the server had crashed between the store writing the object and
    // the job row: the object is there (written a minute ago), no job is.
    let (ignored, _rx) = tokio::sync::mpsc::unbounded_channel();
    let store = EmbeddedStore::bind(
        &StoreOptions {
            root: dir.path().join("objects"),
            bucket: bucket.clone(),
            addr: "127.0.0.1:0".parse().unwrap(),
            credentials: creds.clone(),
            post_max_bytes: 1 << 20,
            max_skew_secs: 900,
        },
        ignored,
    )
    .unwrap();
    let client = s3_client(store.endpoint(), &creds);
    let (stop_store, stopped) = tokio::sync::oneshot::channel::<()>();
    let store_task = tokio::spawn(store.run(async {
        let _ = stopped.await;
    }));
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 200, 2);
    client
        .put_object()
        .bucket(&bucket)
        .key(&key)
        .body(std::fs::read(&manifest.xml_path).unwrap().into())
        .send()
        .await
        .unwrap();
    let _ = stop_store.send(());
    store_task.await.unwrap().unwrap();
    let object = dir.path().join("objects").join(&bucket).join(&key);
    let minute_ago = std::time::SystemTime::now() - Duration::from_secs(60);
    std::fs::File::options()
        .write(true)
        .open(&object)
        .unwrap()
        .set_modified(minute_ago)
        .unwrap();
    let db = rusqlite::Connection::open(dir.path().join("server.sqlite")).unwrap();
    db.execute("UPDATE uploads SET created_at = created_at - 120", [])
        .unwrap();
    drop(db);

    let s = TestServer::start_in(dir, |_| {}).await;
    let events = tokio::time::timeout(Duration::from_secs(60), s.follow(&user, None))
        .await
        .expect("the start-up pass claims the upload");
    let last = events.last().unwrap();
    assert_eq!(
        (last.stage, last.status),
        (Stage::Completed, Status::Success),
        "{last:?}"
    );
    assert_eq!(last.metadata["filename"], "lost.xml", "the promised run");
    assert_eq!(s.count(&user, "/events/workouts").await, 2);
    assert_eq!(s.jobs(), 1);
}
