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
