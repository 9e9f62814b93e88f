//! `cargo bench -p owi-cli --bench serve`: the bundled server taking a
//! large export by each upload path, on loopback.
//!
//! For each path a fresh `owi serve` runs as a child process (so its peak
//! RSS is its own): the upload is timed (curl for direct and presigned POST,
//! as a user would send them; streamed parts for multipart), then the
//! server-side import is followed to the end through `/sync/runs`. Reports
//! upload MB/s, processing items/s (the server's own start and end times)
//! and the server's peak RSS over the whole run.

mod common;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{BenchExport, bench_export, peak_rss_bytes};
use serde_json::{Value, json};

const KEY: &str = "sk-0123456789abcdef0123456789abcdef";

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench failed: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = runtime.block_on(run()) {
        eprintln!("bench failed: {e}");
        std::process::exit(1);
    }
}

async fn run() -> Result<()> {
    let export = bench_export()?;
    let mb = export.xml_bytes as f64 / 1e6;
    println!(
        "export: {mb:.0} MB of XML, {} records, {} workouts",
        export.records, export.workouts
    );
    println!(
        "{:<28} {:>9} {:>9} {:>11} {:>11} {:>10}",
        "path", "upload s", "MB/s", "process s", "items/s", "peak RSS"
    );
    for path in ["direct", "s3-post", "s3-multipart"] {
        let server = ChildServer::start(&export.dir)?;
        let user = server.create_user().await?;
        let started = Instant::now();
        match path {
            "direct" => server.curl_direct(&user, &export.xml)?,
            "s3-post" => server.curl_post(&user, &export).await?,
            _ => server.multipart(&user, &export).await?,
        }
        let upload = started.elapsed().as_secs_f64();
        let run = server.wait_for_import(&user).await?;
        let secs = seconds_between(&run["started_at"], &run["ended_at"]).unwrap_or(f64::NAN);
        let items = run["items_processed"].as_u64().unwrap_or(0);
        let rss = peak_rss_bytes(server.child.id()).unwrap_or(0);
        println!(
            "{path:<28} {upload:>9.2} {:>9.0} {secs:>11.1} {:>11.0} {:>7.0} MB",
            mb / upload,
            items as f64 / secs,
            rss as f64 / 1e6
        );
        if run["status"] != "success" {
            return Err(format!(
                "the {path} import ended {}: {}",
                run["status"], run["error"]
            )
            .into());
        }
    }
    Ok(())
}

fn seconds_between(start: &Value, end: &Value) -> Option<f64> {
    let start: jiff::Timestamp = start.as_str()?.parse().ok()?;
    let end: jiff::Timestamp = end.as_str()?.parse().ok()?;
    Some(end.duration_since(start).as_secs_f64())
}

struct ChildServer {
    child: Child,
    base: String,
    http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildServer {
    fn start(scratch: &Path) -> Result<Self> {
        let data = tempfile::tempdir_in(scratch)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(env!("CARGO_BIN_EXE_owi"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data.path())
            // Room for the 1 GB presigned POST (s3s holds it in memory).
            .args(["--s3-post-max-mib", "1100"])
            .env("OWI_API_KEY", KEY)
            .env("OWI_ADMIN_PASSWORD", "bench-password")
            .stdout(Stdio::null())
            .spawn()?;
        Ok(ChildServer {
            child,
            base: format!("http://127.0.0.1:{port}/api/v1"),
            http: reqwest::Client::new(),
            _data: data,
        })
    }

    async fn call(&self, path: &str, body: Option<Value>) -> Result<Value> {
        let url = format!("{}{path}", self.base);
        let request = match body {
            Some(body) => self.http.post(url).json(&body),
            None => self.http.get(url),
        };
        let res = request
            .header("X-Open-Wearables-API-Key", KEY)
            .send()
            .await?;
        let status = res.status();
        let body: Value = res.json().await?;
        if !status.is_success() {
            return Err(format!("{path}: {status} {body}").into());
        }
        Ok(body)
    }

    async fn create_user(&self) -> Result<String> {
        // The child needs a moment to listen: poll until it answers.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self
                .call("/users", Some(json!({ "first_name": "Bench" })))
                .await
            {
                Ok(user) => return Ok(user["id"].as_str().ok_or("no id")?.to_string()),
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn curl_direct(&self, user: &str, xml: &Path) -> Result<()> {
        curl(&[
            "-H".into(),
            format!("X-Open-Wearables-API-Key: {KEY}"),
            "-F".into(),
            format!("file=@{}", xml.display()),
            format!("{}/users/{user}/import/apple/xml/direct", self.base),
        ])
    }

    async fn curl_post(&self, user: &str, export: &BenchExport) -> Result<()> {
        let text = self
            .http
            .post(format!("{}/users/{user}/import/apple/xml/s3", self.base))
            .header("X-Open-Wearables-API-Key", KEY)
            .json(&json!({ "filename": "bench.xml", "max_file_size": export.xml_bytes, "expiration_seconds": 3600 }))
            .send()
            .await?
            .text()
            .await?;
        let presigned: Value = serde_json::from_str(&text)?;
        let mut args = Vec::new();
        // Field order matters and serde_json's map sorts: take it from the text.
        for (name, value) in owi_client::presigned_fields(&text)? {
            args.push("-F".to_string());
            args.push(format!("{name}={value}"));
        }
        args.push("-F".into());
        args.push(format!("file=@{}", export.xml.display()));
        args.push(
            presigned["upload_url"]
                .as_str()
                .ok_or("no url")?
                .to_string(),
        );
        curl(&args)
    }

    async fn multipart(&self, user: &str, export: &BenchExport) -> Result<()> {
        let base = format!("/users/{user}/import/apple/xml/s3/multipart");
        let created = self
            .call(
                &format!("{base}/create"),
                Some(json!({ "filename": "bench.xml", "file_size": export.xml_bytes })),
            )
            .await?;
        let part_size = created["part_size"].as_u64().ok_or("no part size")?;
        let parts = export.xml_bytes.div_ceil(part_size);
        let signed = self
            .call(
                &format!("{base}/sign"),
                Some(
                    json!({ "key": created["key"], "upload_id": created["upload_id"],
                             "part_numbers": (1..=parts).collect::<Vec<_>>() }),
                ),
            )
            .await?;
        let urls = signed["urls"].as_array().ok_or("no urls")?;
        let mut uploads = Vec::new();
        for (i, url) in urls.iter().enumerate() {
            let url = url["url"].as_str().ok_or("no url")?.to_string();
            let offset = i as u64 * part_size;
            let len = part_size.min(export.xml_bytes - offset);
            let (http, path) = (self.http.clone(), export.xml.clone());
            uploads.push(async move {
                let body = file_range(&path, offset, len).await?;
                let res = http
                    .put(url)
                    .header("content-length", len)
                    .body(body)
                    .send()
                    .await?;
                let etag = res
                    .headers()
                    .get("etag")
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| format!("part {}: {}", i + 1, res.status()))?
                    .to_string();
                Ok::<_, Box<dyn std::error::Error>>(json!({ "part_number": i + 1, "etag": etag }))
            });
        }
        // Four parts in flight, as a client would.
        let mut etags = Vec::new();
        let mut pending = uploads.into_iter();
        loop {
            let batch: Vec<_> = pending.by_ref().take(4).collect();
            if batch.is_empty() {
                break;
            }
            for result in futures_util::future::join_all(batch).await {
                etags.push(result?);
            }
        }
        self.call(
            &format!("{base}/complete"),
            Some(
                json!({ "key": created["key"], "upload_id": created["upload_id"], "parts": etags }),
            ),
        )
        .await?;
        Ok(())
    }

    /// Polls `/sync/runs` until the newest run has ended.
    async fn wait_for_import(&self, user: &str) -> Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(1800);
        while Instant::now() < deadline {
            let runs = self.call(&format!("/users/{user}/sync/runs"), None).await?;
            if let Some(run) = runs.as_array().and_then(|r| r.first())
                && matches!(run["status"].as_str(), Some("success" | "failed"))
            {
                return Ok(run.clone());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        Err("the import did not end within 30 minutes".into())
    }
}

fn curl(args: &[String]) -> Result<()> {
    let out = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-o", "/dev/null"])
        .args(args)
        .output()?;
    if !out.status.success() {
        return Err(format!("curl failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(())
}

async fn file_range(path: &Path, offset: u64, len: u64) -> Result<reqwest::Body> {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let mut file = tokio::fs::File::open(path).await?;
    file.seek(std::io::SeekFrom::Start(offset)).await?;
    let reader = file.take(len);
    let stream = futures_util::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 1 << 20];
        match reader.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), reader))
            }
            Err(e) => Some((Err(e), reader)),
        }
    });
    Ok(reqwest::Body::wrap_stream(stream))
}
