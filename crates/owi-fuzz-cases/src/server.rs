//! (d) The server's request parsing: the direct upload's multipart body,
//! the embedded store's POST form upload and multipart requests, and the
//! JSON bodies of presign and multipart, sent in-process to one server.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use owi_server::ServerConfig;
use owi_server::fuzzing::{Services, services};
use tower::ServiceExt;

const API_KEY: &str = "sk-0123456789abcdef0123456789abcdef";

struct Harness {
    runtime: tokio::runtime::Runtime,
    services: Services,
    user_id: String,
    data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("data dir: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        let mut config = ServerConfig::new(dir.path());
        config.api_key = Some(API_KEY.into());
        // Fuzzing's disk is small and busy: refuse nothing for space.
        config.min_free_bytes = 0;
        let services = runtime
            .block_on(async { services(config) })
            .unwrap_or_else(|e| panic!("server: {e}"));
        let create = request(
            Method::POST,
            "/api/v1/users",
            "application/json",
            br#"{"first_name":"Fuzz"}"#.to_vec(),
        );
        let (status, body) = runtime.block_on(send(&services.api, create));
        assert_eq!(
            status,
            StatusCode::CREATED,
            "{}",
            String::from_utf8_lossy(&body)
        );
        let user: serde_json::Value =
            serde_json::from_slice(&body).unwrap_or_else(|e| panic!("user: {e}"));
        let user_id = user["id"].as_str().unwrap_or_default().to_string();
        Harness {
            runtime,
            services,
            user_id,
            data_dir: dir.path().to_path_buf(),
            _dir: dir,
        }
    })
}

fn request(method: Method, uri: &str, content_type: &str, body: Vec<u8>) -> Request<Body> {
    let builder = Request::builder()
        .method(method)
        .uri(uri)
        .header("x-open-wearables-api-key", API_KEY)
        .header(header::CONTENT_LENGTH, body.len());
    let builder = match header::HeaderValue::from_str(content_type) {
        Ok(value) => builder.header(header::CONTENT_TYPE, value),
        Err(_) => builder,
    };
    builder
        .body(Body::from(body))
        .unwrap_or_else(|e| panic!("request: {e}"))
}

async fn send(app: &axum::Router, req: Request<Body>) -> (StatusCode, Vec<u8>) {
    let response = match app.clone().oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (status, body)
}

/// `head\nbody`: the first line (a boundary, a path or a route), the rest.
fn split_line(data: &[u8]) -> (String, Vec<u8>) {
    match data.iter().position(|&b| b == b'\n') {
        Some(i) => (
            String::from_utf8_lossy(&data[..i.min(200)]).into_owned(),
            data[i + 1..].to_vec(),
        ),
        None => (String::new(), data.to_vec()),
    }
}

/// The first byte picks the endpoint; see `fuzz/corpus/server_requests/`.
pub fn server_requests(data: &[u8]) {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let h = harness();
    let (line, body) = split_line(rest);
    let user = &h.user_id;
    let (app, req) = match pick % 5 {
        0 => (
            &h.services.api,
            request(
                Method::POST,
                &format!("/api/v1/users/{user}/import/apple/xml/direct"),
                &format!("multipart/form-data; boundary={line}"),
                body,
            ),
        ),
        1 => (
            &h.services.store,
            request(
                Method::POST,
                &format!("/{}", h.services.bucket),
                &format!("multipart/form-data; boundary={line}"),
                body,
            ),
        ),
        2 => (
            &h.services.api,
            request(
                Method::POST,
                &format!("/api/v1/users/{user}/import/apple/xml/s3"),
                "application/json",
                body,
            ),
        ),
        3 => {
            let step = ["create", "sign", "complete", "abort"][usize::from(pick / 5 % 4)];
            (
                &h.services.api,
                request(
                    Method::POST,
                    &format!("/api/v1/users/{user}/import/apple/xml/s3/multipart/{step}"),
                    "application/json",
                    body,
                ),
            )
        }
        _ => {
            // A store request to any path and query: multipart parts,
            // `?uploads`, `?uploadId=`, with an XML or raw body.
            let method = if pick / 5 % 2 == 0 {
                Method::PUT
            } else {
                Method::POST
            };
            let path = format!("/{}/{}", h.services.bucket, line.trim_start_matches('/'));
            let Ok(uri) = path.parse::<axum::http::Uri>() else {
                return;
            };
            (
                &h.services.store,
                request(method, &uri.to_string(), "application/xml", body),
            )
        }
    };
    let (status, body) = h.runtime.block_on(send(app, req));
    assert_ne!(
        status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "a bad request is the client's error: {}",
        String::from_utf8_lossy(&body)
    );
    // Accepted uploads would fill the disk over a long run.
    clear(&h.data_dir.join("uploads"));
    clear(&h.data_dir.join("objects").join(&h.services.bucket));
}

fn clear(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let _ = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
    }
}
