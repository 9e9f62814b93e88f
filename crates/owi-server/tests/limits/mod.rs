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
