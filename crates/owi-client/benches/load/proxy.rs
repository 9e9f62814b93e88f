//! A timing HTTP forward proxy on loopback: the client's `proxy` option
//! sends every request through it (the API's and the object store's), and
//! it keeps each request's time from its arrival to the upstream answer's
//! head, by endpoint. The server's own calls to its store (the worker's
//! read-back, multipart create/complete) do not pass through it.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::TryStreamExt;

/// Latencies by endpoint, and requests that got no answer.
#[derive(Debug, Default)]
pub struct Timings {
    pub by_endpoint: BTreeMap<String, Vec<Duration>>,
    pub failed: BTreeMap<String, u64>,
}

#[derive(Clone)]
struct Proxy {
    upstream: reqwest::Client,
    /// `host:port` of the object store, to name its requests apart.
    store: String,
    timings: Arc<Mutex<Timings>>,
}

/// Serves the proxy on a free loopback port; returns its URL and the
/// timings it fills.
pub async fn start(store_endpoint: &str) -> (String, Arc<Mutex<Timings>>) {
    let timings = Arc::new(Mutex::new(Timings::default()));
    let proxy = Proxy {
        upstream: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("an HTTP client"),
        store: store_endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_string(),
        timings: Arc::clone(&timings),
    };
    let app = axum::Router::new().fallback(forward).with_state(proxy);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the proxy");
    let url = format!("http://{}", listener.local_addr().expect("proxy address"));
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("the proxy serves");
    });
    (url, timings)
}

/// Hop-by-hop headers, which a proxy does not pass on.
const HOP: [HeaderName; 4] = [
    header::CONNECTION,
    header::TRANSFER_ENCODING,
    header::PROXY_AUTHORIZATION,
    HeaderName::from_static("proxy-connection"),
];

async fn forward(State(proxy): State<Proxy>, request: Request) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let endpoint = endpoint(&proxy.store, &parts.method, &parts.uri);
    let mut headers = parts.headers;
    for name in &HOP {
        headers.remove(name);
    }
    let answer = proxy
        .upstream
        .request(parts.method, parts.uri.to_string())
        .headers(headers)
        .body(reqwest::Body::wrap_stream(body.into_data_stream()))
        .send()
        .await;
    let elapsed = started.elapsed();
    let mut timings = proxy.timings.lock().unwrap_or_else(|e| e.into_inner());
    match answer {
        Ok(answer) => {
            timings
                .by_endpoint
                .entry(endpoint)
                .or_default()
                .push(elapsed);
            drop(timings);
            let mut response = Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if !HOP.contains(name) {
                    response = response.header(name, value);
                }
            }
            let body = Body::from_stream(answer.bytes_stream().map_err(std::io::Error::other));
            response
                .body(body)
                .unwrap_or_else(|_| StatusCode::BAD_GATEWAY.into_response())
        }
        Err(_) => {
            *timings.failed.entry(endpoint).or_default() += 1;
            StatusCode::BAD_GATEWAY.into_response()
        }
    }
}

/// `POST /api/v1/users/{id}/import/apple/xml/direct`, `store PUT part`, …:
/// ids folded so requests to one endpoint count together.
fn endpoint(store: &str, method: &axum::http::Method, uri: &axum::http::Uri) -> String {
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or_default();
    if authority == store {
        let query = uri.query().unwrap_or_default();
        let what = if query.contains("partNumber=") {
            "part"
        } else if method == axum::http::Method::POST {
            "object (POST form)"
        } else {
            "object"
        };
        return format!("store {method} {what}");
    }
    let path: Vec<&str> = uri
        .path()
        .split('/')
        .map(|segment| {
            if uuid::Uuid::parse_str(segment).is_ok() {
                "{id}"
            } else {
                segment
            }
        })
        .collect();
    format!("{method} {}", path.join("/"))
}
