//! Load on the bundled server (`cargo bench -p owi-client --bench load`):
//! the server in-process on loopback, 4 users, 20 imports at once through
//! the real importer (check, upload, follow over SSE, read back), spread
//! over direct, presigned POST and multipart, each a distinct generated
//! export, while extra SSE listeners and read-back loops run. Then every
//! user's workouts and samples on the server are counted against what
//! owi-export reads in that user's exports: nothing lost, nothing twice.
//!
//! Prints peak RSS (VmHWM: server, client and proxy share the process) and
//! each endpoint's latency as the client sees it through a timing proxy
//! (arrival at the proxy → the answer's head), and fails if any request
//! but an upload's own body took over 5 s.

#![allow(clippy::expect_used, clippy::unwrap_used)] // a benchmark: a failed expectation is the failure

mod proxy;

use std::collections::HashSet;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use owi_client::{
    Client, ClientOptions, Credentials, Ending, ImportRequest, Importer, Method, NewUser, Secret,
    Step,
};
use owi_export::{ExportSource, ReadOptions, Record, Value, Visitor, read_export};
use owi_progress::{CancelToken, Silent};
use owi_server::{Server, ServerConfig};
use tokio::sync::watch;

const USERS: usize = 4;
const UPLOADS: usize = 20;
const API_KEY: &str = "sk-0123456789abcdef0123456789abcdef";
/// The whole run, or it fails.
const BUDGET: Duration = Duration::from_secs(900);
/// No request but an upload's body may take longer.
const SLOW: Duration = Duration::from_secs(5);
/// The endpoints whose time is an upload's body on the wire.
const UPLOADS_THEMSELVES: [&str; 3] = [
    "POST /api/v1/users/{id}/import/apple/xml/direct",
    "store POST object (POST form)",
    "store PUT part",
];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        tokio::time::timeout(BUDGET, load())
            .await
            .expect("the load run ends within its budget");
    });
}

/// What the server imports of an export, keyed as it dedupes: samples by
/// (source, type, start), workouts by (source, start, end).
#[derive(Default)]
struct Keys {
    samples: HashSet<(String, String, i64)>,
    workouts: HashSet<(String, i64, i64)>,
}

impl Visitor for Keys {
    fn record(&mut self, r: &Record<'_>) -> ControlFlow<()> {
        let kept = matches!(r.value, Value::Number(_))
            || (r.kind == "HKCategoryTypeIdentifierSleepAnalysis"
                && matches!(r.value, Value::Text(_)));
        if kept {
            self.samples
                .insert((r.source_name.to_string(), r.kind.to_string(), r.start.utc));
        }
        ControlFlow::Continue(())
    }

    fn workout(&mut self, w: &owi_export::Workout) -> ControlFlow<()> {
        self.workouts
            .insert((w.source_name.clone(), w.start.utc, w.end.utc));
        ControlFlow::Continue(())
    }
}

fn keys_of(path: &Path, into: &mut Keys) {
    let source = ExportSource::open(path).expect("the export opens");
    let options = ReadOptions {
        read_routes: false,
        ..ReadOptions::default()
    };
    read_export(&source, into, options).expect("the export reads");
}

struct Upload {
    user: usize,
    method: Method,
    path: PathBuf,
    bytes: u64,
}

struct Done {
    index: usize,
    method: Method,
    bytes: u64,
    took: Duration,
    outcome: Result<(Ending, Option<(u64, u64)>), String>,
}

async fn load() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let mut config = ServerConfig::new(dir.path().join("server"));
    // Parts of S3's least size, so each multipart export goes in several.
    config.s3.part_size = 5 << 20;
    config.api_key = Some(API_KEY.into());
    let server = Server::open(config).expect("the server opens");
    let store = server.s3_endpoint().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}/api/v1", listener.local_addr().expect("address"));
    let (stop_server, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    let (proxy_url, timings) = proxy::start(&store).await;
    let options = ClientOptions {
        proxy: Some(proxy_url.clone()),
        ..ClientOptions::default()
    };
    let client = Client::connect_with(
        &format!("{base}/"),
        Credentials::ApiKey(Secret::new(API_KEY)),
        options,
    )
    .await
    .expect("the client connects");
    let mut users = Vec::new();
    for _ in 0..USERS {
        users.push(
            client
                .create_user(&NewUser::default())
                .await
                .expect("a user")
                .id,
        );
    }

    let generated = Instant::now();
    let uploads = generate(&dir.path().join("exports"));
    let mut expected: Vec<Keys> = (0..USERS).map(|_| Keys::default()).collect();
    for upload in &uploads {
        keys_of(&upload.path, &mut expected[upload.user]);
    }
    println!(
        "{} exports generated and counted in {:.1} s ({:.1} MB in all)",
        uploads.len(),
        generated.elapsed().as_secs_f64(),
        uploads.iter().map(|u| u.bytes).sum::<u64>() as f64 / 1e6
    );

    let (stop, stopping) = watch::channel(false);
    let http = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(&proxy_url).expect("proxy"))
        .build()
        .expect("an HTTP client");
    let mut watchers = Vec::new();
    for user in &users {
        let watcher = || Watcher {
            http: http.clone(),
            base: base.clone(),
            user: user.clone(),
            stop: stopping.clone(),
        };
        watchers.push(tokio::spawn(listen(watcher())));
        watchers.push(tokio::spawn(read_back(watcher())));
    }

    let started = Instant::now();
    let mut running = Vec::new();
    for (index, upload) in uploads.into_iter().enumerate() {
        let importer = Importer::new(client.clone(), own_store(dir.path(), index));
        let user = users[upload.user].clone();
        running.push(tokio::spawn(async move {
            let request = ImportRequest {
                method: upload.method,
                ..ImportRequest::new(&upload.path, user)
            };
            let begun = Instant::now();
            let report = importer
                .run(&request, &Silent, &|_: &Step| {}, &CancelToken::new())
                .await;
            Done {
                index,
                method: upload.method,
                bytes: upload.bytes,
                took: begun.elapsed(),
                outcome: report
                    .map(|r| (r.ending, r.compared))
                    .map_err(|e| e.to_string()),
            }
        }));
    }
    let mut done = Vec::new();
    for task in running {
        done.push(task.await.expect("an import task"));
    }
    let wall = started.elapsed();
    let _ = stop.send(true);
    let mut seen = Vec::new();
    for watcher in watchers {
        seen.push(watcher.await.expect("a watcher"));
    }

    let mut failures = Vec::new();
    println!(
        "\nimports ({} at once, {:.1} s wall):",
        done.len(),
        wall.as_secs_f64()
    );
    for d in &done {
        println!(
            "  #{:<2} {:<9} {:>6.1} MB {:>6.1} s  {:?}",
            d.index,
            format!("{:?}", d.method),
            d.bytes as f64 / 1e6,
            d.took.as_secs_f64(),
            d.outcome
        );
        match &d.outcome {
            Ok((Ending::Reported, Some((found, expected)))) if found == expected => {}
            other => failures.push(format!("import #{} ended {other:?}", d.index)),
        }
    }

    println!("\non the server, per user (expected = distinct keys in its exports):");
    for (i, user) in users.iter().enumerate() {
        let workouts = total(&http, &base, user, "events/workouts").await;
        let samples = total(&http, &base, user, "timeseries").await;
        let (want_w, want_s) = (
            expected[i].workouts.len() as u64,
            expected[i].samples.len() as u64,
        );
        println!("  user {i}: workouts {workouts}/{want_w}, samples {samples}/{want_s}");
        if (workouts, samples) != (want_w, want_s) {
            failures.push(format!(
                "user {i} holds {workouts} workouts and {samples} samples, not {want_w} and {want_s}"
            ));
        }
    }
    let events: u64 = seen.iter().sum();
    println!("  extra SSE listeners and read-back loops saw {events} events and pages");

    let timings = std::mem::take(&mut *timings.lock().unwrap());
    println!("\nlatency by endpoint, client side through the proxy (to the answer's head):");
    println!(
        "  {:<62} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "endpoint", "count", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for (endpoint, mut times) in timings.by_endpoint {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let max = *times.last().unwrap();
        println!(
            "  {:<62} {:>6} {:>9.1} {:>9.1} {:>9.1} {:>9.1}",
            endpoint,
            times.len(),
            ms(at(0.5)),
            ms(at(0.9)),
            ms(at(0.99)),
            ms(max)
        );
        if max > SLOW && !UPLOADS_THEMSELVES.contains(&endpoint.as_str()) {
            failures.push(format!("{endpoint} took {:.1} s", max.as_secs_f64()));
        }
    }
    for (endpoint, n) in &timings.failed {
        failures.push(format!("{n} requests to {endpoint} got no answer"));
    }
    println!("\npeak RSS (VmHWM, the whole process): {}", peak_rss());

    let _ = stop_server.send(());
    serving
        .await
        .expect("the server task")
        .expect("the server stops cleanly");
    assert!(
        failures.is_empty(),
        "the load run failed:\n{}",
        failures.join("\n")
    );
    println!("\nnothing lost, nothing doubled; no request but an upload over {SLOW:?}");
}

/// The exports: distinct seeds, direct / POST / multipart in turn, users
/// in turn. Multipart ones are large enough for three 5 MiB parts.
fn generate(dir: &Path) -> Vec<Upload> {
    let methods = [Method::Direct, Method::S3, Method::Multipart];
    (0..UPLOADS)
        .map(|i| {
            let method = methods[i % methods.len()];
            let spec = owi_sample::SampleSpec {
                records: if method == Method::Multipart {
                    60_000
                } else {
                    8_000
                },
                workouts: 6,
                seed: 1000 + i as u64,
                ..owi_sample::SampleSpec::default()
            };
            let manifest = owi_sample::generate(&spec, &dir.join(format!("export-{i}")))
                .expect("a sample export");
            Upload {
                user: i % USERS,
                method,
                path: manifest.xml_path,
                bytes: manifest.xml_bytes,
            }
        })
        .collect()
}

fn own_store(dir: &Path, index: usize) -> Arc<Mutex<owi_store::Store>> {
    let path = dir.join(format!("client-{index}"));
    std::fs::create_dir_all(&path).expect("a store dir");
    let store = owi_store::Store::open(&path.join("owi.sqlite")).expect("a store");
    Arc::new(Mutex::new(store))
}

/// One user's extra watcher: where, and when to stop.
struct Watcher {
    http: reqwest::Client,
    base: String,
    user: String,
    stop: watch::Receiver<bool>,
}

/// An extra SSE listener on a user's stream until told to stop; returns
/// the events it saw.
async fn listen(mut w: Watcher) -> u64 {
    let mut events = 0;
    while !*w.stop.borrow() {
        let opened = get(&w.http, format!("{}/users/{}/sync/stream", w.base, w.user)).await;
        let Ok(mut stream) = opened else { continue };
        loop {
            tokio::select! {
                _ = w.stop.changed() => return events,
                chunk = stream.chunk() => match chunk {
                    Ok(Some(bytes)) => {
                        events += bytes.windows(5).filter(|w| w == b"data:").count() as u64;
                    }
                    _ => break,
                },
            }
        }
    }
    events
}

/// Reads a user's data back every 200 ms until told to stop; returns the
/// pages it read.
async fn read_back(mut w: Watcher) -> u64 {
    let mut pages = 0;
    let mut every = tokio::time::interval(Duration::from_millis(200));
    loop {
        tokio::select! {
            _ = w.stop.changed() => return pages,
            _ = every.tick() => {}
        }
        for what in ["timeseries?limit=100", "events/workouts?limit=100"] {
            let page = get(&w.http, format!("{}/users/{}/{what}", w.base, w.user)).await;
            if page.is_ok_and(|p| p.status().is_success()) {
                pages += 1;
            }
        }
    }
}

/// A listing's `pagination.total_count`.
async fn total(http: &reqwest::Client, base: &str, user: &str, what: &str) -> u64 {
    let page: serde_json::Value = get(http, format!("{base}/users/{user}/{what}?limit=1"))
        .await
        .expect("a listing")
        .json()
        .await
        .expect("its JSON");
    page["pagination"]["total_count"]
        .as_u64()
        .expect("total_count")
}

/// A GET of the API with the key.
async fn get(http: &reqwest::Client, url: String) -> reqwest::Result<reqwest::Response> {
    http.get(url)
        .header("X-Open-Wearables-API-Key", API_KEY)
        .send()
        .await
}

/// `VmHWM` from `/proc/self/status`.
fn peak_rss() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().to_string()))
        })
        .unwrap_or_else(|| "unknown (no /proc)".into())
}
