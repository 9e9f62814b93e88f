//! The direct upload's limits hold for a body that does not say its
//! length (chunked): free space is checked as it arrives, not only from
//! the announced length.

use reqwest::StatusCode;

use crate::util::*;

#[tokio::test]
async fn a_chunked_direct_upload_stops_when_the_disk_runs_short() {
    let dir = tempfile::tempdir().unwrap();
    let available = fs4::available_space(dir.path()).unwrap();
    // The reserve leaves 4 MiB: room to start, not for the 64 MiB coming.
    let s = TestServer::start_in(dir, |c| {
        c.min_free_bytes = available.saturating_sub(4 << 20);
    })
    .await;
    let user = s.create_user("chunked@example.com").await;
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = (0..64)
        .map(|i| {
            Ok(if i == 0 {
                b"<HealthData>".to_vec()
            } else {
                vec![b' '; 1 << 20]
            })
        })
        .collect();
    let body = reqwest::Body::wrap_stream(futures_util::stream::iter(chunks));
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::stream(body).file_name("export.xml"),
    );
    let res = s
        .post(&format!("/users/{user}/import/apple/xml/direct"))
        .multipart(form)
        .send()
        .await;
    // The server may answer before it has read the whole body, and close.
    if let Ok(res) = res {
        let (status, d) = detail(res).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{d}");
        assert!(d.contains("disk space"), "{d}");
    }
    assert!(s.uploads().is_empty(), "nothing kept: {:?}", s.uploads());
    assert_eq!(s.jobs(), 0);
}

/// Third-party clients name every upload `export.xml`: each one still gets
/// an object of its own (natively; Open Wearables 0.6 reuses the name).
#[tokio::test]
async fn two_uploads_with_the_same_name_never_share_an_object() {
    let s = TestServer::start().await;
    let user = s.create_user("same-name@example.com").await;
    let key = |json: &serde_json::Value| json["file_key"].as_str().unwrap().to_string();
    let one = s
        .presign(&user, serde_json::json!({ "filename": "export.xml" }))
        .await;
    let two = s
        .presign(&user, serde_json::json!({ "filename": "export.xml" }))
        .await;
    assert_ne!(key(&one.json), key(&two.json));
    // A name is bounded in bytes: 67 Cyrillic letters are 134 bytes, 101 are 202.
    let fits = "э".repeat(67);
    let res = s
        .post(&format!("/users/{user}/import/apple/xml/s3"))
        .json(&serde_json::json!({ "filename": fits }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let long = "э".repeat(101);
    let res = s
        .post(&format!("/users/{user}/import/apple/xml/s3"))
        .json(&serde_json::json!({ "filename": long }))
        .send()
        .await
        .unwrap();
    let (status, d) = detail(res).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(d.contains("200 bytes"), "{d}");

    let compat = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.compat = owi_server::Compat::OpenWearables06;
    })
    .await;
    let user = compat.create_user("same-name@example.com").await;
    let one = compat
        .presign(&user, serde_json::json!({ "filename": "export.xml" }))
        .await;
    assert_eq!(key(&one.json), format!("{user}/raw/export.xml"));
}

/// A multipart upload is held to what `create` declared: part URLs only
/// for its parts, each signed with its length (a longer, shorter or
/// unannounced part is refused before a byte is stored), and `complete`
/// only when the parts hold exactly that many bytes.
#[tokio::test]
async fn a_multipart_upload_is_held_to_its_declared_size() {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.s3.part_size = 5 << 20;
    })
    .await;
    let user = s.create_user("declared@example.com").await;
    let base = format!("/users/{user}/import/apple/xml/s3/multipart");
    let declared: usize = 6 << 20;
    let part: usize = 5 << 20;
    let res = s
        .post(&format!("{base}/create"))
        .json(&serde_json::json!({ "filename": "x.xml", "file_size": declared }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let created: serde_json::Value = res.json().await.unwrap();
    assert_eq!(created["part_size"], part);
    let (key, upload_id) = (created["key"].clone(), created["upload_id"].clone());
    let sign = |parts: serde_json::Value| {
        s.post(&format!("{base}/sign"))
            .json(&serde_json::json!({ "key": key, "upload_id": upload_id, "part_numbers": parts }))
            .send()
    };
    // 6 MiB in parts of 5 MiB: two parts.
    let (status, d) = detail(sign(serde_json::json!([1, 3])).await.unwrap()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(d.contains("Part 3 is beyond the 2 parts"), "{d}");
    let signed: serde_json::Value = sign(serde_json::json!([1, 2]))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let url = |n: usize| signed["urls"][n]["url"].as_str().unwrap().to_string();
    let put = |n: usize, body: reqwest::Body| reqwest::Client::new().put(url(n)).body(body).send();
    let stored = || stored_bytes(&s.dir.path().join("objects"));
    let before = stored();

    // Longer or shorter than its part, or without a length: refused by
    // the store, and nothing of it stays on disk.
    // (The store may answer before it has read the body, and close.)
    for (n, len) in [(0, part + 1), (1, declared - part + 1), (0, part - 1)] {
        if let Ok(res) = put(n, vec![b' '; len].into()).await {
            assert_eq!(
                s3_code(res).await,
                (StatusCode::FORBIDDEN, "SignatureDoesNotMatch".into()),
                "part {} of {len} bytes",
                n + 1
            );
        }
    }
    let chunked =
        futures_util::stream::iter((0..6).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1 << 20])));
    if let Ok(res) = put(0, reqwest::Body::wrap_stream(chunked)).await {
        assert_eq!(s3_code(res).await.0, StatusCode::FORBIDDEN);
    }
    assert_eq!(stored(), before, "no refused byte is kept");
    let parts =
        s.s3.list_parts()
            .bucket(&s.bucket)
            .key(key.as_str().unwrap())
            .upload_id(upload_id.as_str().unwrap())
            .send()
            .await
            .unwrap();
    assert!(parts.parts().is_empty(), "{parts:?}");

    // Each part at its length: accepted and completed.
    let mut body = b"<HealthData>".to_vec();
    body.resize(declared, b' ');
    let mut etags = Vec::new();
    for (n, chunk) in [&body[..part], &body[part..]].into_iter().enumerate() {
        let res = put(n, chunk.to_vec().into()).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        etags.push(res.headers()["etag"].to_str().unwrap().to_string());
    }
    assert_eq!(stored(), before + declared as u64);
    let res = s
        .post(&format!("{base}/complete"))
        .json(
            &serde_json::json!({ "key": key, "upload_id": upload_id, "parts": [
            { "part_number": 1, "etag": etags[0] },
            { "part_number": 2, "etag": etags[1] },
        ] }),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::ACCEPTED);
}

/// Bytes in the files under `dir`.
fn stored_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.file_type() {
                    Ok(t) if t.is_dir() => stored_bytes(&e.path()),
                    _ => e.metadata().map_or(0, |m| m.len()),
                })
                .sum()
        })
        .unwrap_or(0)
}
