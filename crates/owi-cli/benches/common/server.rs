//! A child `owi serve` on a loopback port, and uploads to it sent the way
//! a person would send them with curl.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{BenchExport, Result, wait_with_peak_rss};

/// The API key the child server accepts.
pub const KEY: &str = "sk-0123456789abcdef0123456789abcdef";

/// A release `owi serve` in its own process (so its peak RSS is its own),
/// with its data in a temporary folder; killed when dropped.
pub struct ChildServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`, what `owi login --server` takes.
    pub origin: String,
    /// The API's root: `{origin}/api/v1`.
    pub base: String,
    pub http: reqwest::Client,
    _data: tempfile::TempDir,
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildServer {
    /// Starts a server keeping its data in a fresh folder under `scratch`.
    pub fn start(scratch: &Path) -> Result<Self> {
        let data = tempfile::tempdir_in(scratch)?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(env!("CARGO_BIN_EXE_owi"))
            .args(["serve", "--addr", &format!("127.0.0.1:{port}"), "--data"])
            .arg(data.path().join("server"))
            // Room for the 1 GB presigned POST (s3s holds it in memory).
            .args(["--s3-post-max-mib", "1100"])
            .env("OWI_API_KEY", KEY)
            .env("OWI_ADMIN_PASSWORD", "bench-password")
            // Its log file too stays out of the person's data directory.
            .env("XDG_DATA_HOME", data.path().join("xdg"))
            .stdout(Stdio::null())
            .spawn()?;
        let origin = format!("http://127.0.0.1:{port}");
        Ok(ChildServer {
            child,
            base: format!("{origin}/api/v1"),
            origin,
            http: reqwest::Client::new(),
            _data: data,
        })
    }

    /// A GET (without `body`) or a JSON POST to the API, with the key.
    pub async fn call(&self, path: &str, body: Option<Value>) -> Result<Value> {
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

    /// Creates a user to import for, once the server listens; its id.
    pub async fn create_user(&self) -> Result<String> {
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

    /// `curl -F file=@export.xml` to the direct upload; curl's peak RSS.
    pub fn curl_direct(&self, user: &str, xml: &Path) -> Result<u64> {
        curl(&[
            "-H".into(),
            format!("X-Open-Wearables-API-Key: {KEY}"),
            "-F".into(),
            format!("file=@{}", xml.display()),
            format!("{}/users/{user}/import/apple/xml/direct", self.base),
        ])
    }

    /// A presigned POST asked of the API, then sent by curl: every form
    /// field in the order given, the file last. Curl's peak RSS.
    pub async fn curl_post(&self, user: &str, export: &BenchExport) -> Result<u64> {
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
}

/// Runs curl quietly, failing on an HTTP error; its peak RSS.
fn curl(args: &[String]) -> Result<u64> {
    let mut child = Command::new("curl")
        .args(["-sS", "--fail-with-body", "-o", "/dev/null"])
        .args(args)
        .stderr(Stdio::piped())
        .spawn()?;
    // curl says little on stderr (only errors): the pipe cannot fill.
    let mut stderr = child.stderr.take().ok_or("curl without stderr")?;
    let (status, peak_rss) = wait_with_peak_rss(child)?;
    if !status.success() {
        let mut said = String::new();
        stderr.read_to_string(&mut said)?;
        return Err(format!("curl failed: {said}").into());
    }
    Ok(peak_rss)
}
