//! A server started in-process on `127.0.0.1:0` for each test, and a small
//! client around reqwest.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use owi_server::{Server, ServerConfig, SyncStatusEvent};
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const EMAIL: &str = "dev@example.com";
pub const PASSWORD: &str = "correct horse battery staple";
pub const API_KEY: &str = "sk-0123456789abcdef0123456789abcdef";

pub struct TestServer {
    pub base: String,
    /// The object store presigned uploads go to, and a client for it.
    pub s3: aws_sdk_s3::Client,
    pub bucket: String,
    pub s3_credentials: owi_server::Credentials,
    pub dir: tempfile::TempDir,
    pub http: Client,
    /// Password hashes running at once, and the most ever.
    pub hashing: owi_server::HashingGauge,
    /// The server's clock for tokens and throttling, to move forward.
    pub clock: owi_server::Clock,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

pub fn config(dir: &Path) -> ServerConfig {
    let mut config = ServerConfig::new(dir);
    config.admin_email = Some(EMAIL.into());
    config.admin_password = Some(PASSWORD.into());
    config.api_key = Some(API_KEY.into());
    config.heartbeat = Duration::from_millis(200);
    config.job_retry_delay = Duration::ZERO;
    config
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        TestServer::start_in(dir, |_| {}).await
    }

    pub async fn start_in(
        dir: tempfile::TempDir,
        tweak: impl FnOnce(&mut ServerConfig),
    ) -> TestServer {
        let mut cfg = config(dir.path());
        tweak(&mut cfg);
        let clock = cfg.clock.clone();
        let server = Server::open(cfg).expect("server opens");
        let hashing = server.hashing_gauge();
        let s3 = s3_client(server.s3_endpoint(), server.s3_credentials());
        let bucket = server.s3_bucket().to_string();
        let s3_credentials = server.s3_credentials().clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            server
                .run(listener, async {
                    let _ = stopped.await;
                })
                .await
                .expect("server runs");
        });
        TestServer {
            base: format!("http://{addr}/api/v1"),
            s3,
            bucket,
            s3_credentials,
            dir,
            http: Client::new(),
            hashing,
            clock,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Stops the server and waits for it, keeping the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("server task ends cleanly");
        }
        std::mem::replace(&mut self.dir, tempfile::tempdir().expect("temp dir"))
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .get(self.url(path))
            .header("X-Open-Wearables-API-Key", API_KEY)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.http
            .post(self.url(path))
            .header("X-Open-Wearables-API-Key", API_KEY)
    }

    pub async fn create_user(&self, email: &str) -> String {
        let res = self
            .post("/users")
            .json(&json!({ "first_name": "Ada", "last_name": "L", "email": email }))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::CREATED);
        let user: Value = res.json().await.expect("json");
        user["id"].as_str().expect("id").to_string()
    }

    pub async fn upload_direct(&self, user: &str, path: &Path) -> Response {
        let bytes = std::fs::read(path).expect("read export");
        let part = reqwest::multipart::Part::bytes(bytes).file_name("export.xml");
        let form = reqwest::multipart::Form::new().part("file", part);
        self.post(&format!("/users/{user}/import/apple/xml/direct"))
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    /// Follows the SSE stream until the run ends; returns its events.
    pub async fn follow(&self, user: &str, run_or_task: Option<&str>) -> Vec<SyncStatusEvent> {
        self.follow_where(user, |run| run_or_task.is_none_or(|r| run == r))
            .await
    }

    /// Follows the first run, other than `known`, to its end.
    pub async fn follow_new(&self, user: &str, known: &str) -> Vec<SyncStatusEvent> {
        self.follow_where(user, |run| run != known).await
    }

    async fn follow_where(
        &self,
        user: &str,
        wanted: impl Fn(&str) -> bool,
    ) -> Vec<SyncStatusEvent> {
        self.follow_until(user, wanted, |e| {
            matches!(
                e.stage,
                owi_server::Stage::Completed | owi_server::Stage::Failed
            )
        })
        .await
    }

    /// The events of the runs `wanted` takes, replayed and live, up to the
    /// first that `until` takes.
    pub async fn follow_until(
        &self,
        user: &str,
        wanted: impl Fn(&str) -> bool,
        until: impl Fn(&SyncStatusEvent) -> bool,
    ) -> Vec<SyncStatusEvent> {
        let mut res = self
            .get(&format!("/users/{user}/sync/stream?replay=100"))
            .send()
            .await
            .expect("stream");
        assert_eq!(res.status(), StatusCode::OK);
        let mut buf = String::new();
        let mut events: Vec<SyncStatusEvent> = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
        loop {
            let chunk = tokio::time::timeout_at(deadline, res.chunk())
                .await
                .expect("the import ends within two minutes")
                .expect("stream readable");
            let Some(chunk) = chunk else { break };
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = buf.find("\n\n") {
                let block: String = buf.drain(..end + 2).collect();
                if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data: ")) {
                    let event: SyncStatusEvent = serde_json::from_str(data).expect("event json");
                    if wanted(&event.run_id) {
                        let done = until(&event);
                        events.push(event);
                        if done {
                            return events;
                        }
                    }
                }
            }
        }
        events
    }

    pub async fn count(&self, user: &str, path: &str) -> u64 {
        let res = self
            .get(&format!("/users/{user}{path}"))
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK, "{path}");
        let body: Value = res.json().await.expect("json");
        body["pagination"]["total_count"]
            .as_u64()
            .expect("total_count")
    }

    pub fn uploads(&self) -> Vec<PathBuf> {
        std::fs::read_dir(self.dir.path().join("uploads"))
            .map(|d| d.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    }
}

impl TestServer {
    /// Asks for a presigned POST.
    pub async fn presign(&self, user: &str, body: Value) -> Presigned {
        let res = self
            .post(&format!("/users/{user}/import/apple/xml/s3"))
            .json(&body)
            .send()
            .await
            .expect("request");
        assert_eq!(res.status(), StatusCode::OK);
        let text = res.text().await.expect("body");
        let json: Value = serde_json::from_str(&text).expect("json");
        let ordered: Ordered = serde_json::from_str(&text).expect("json");
        Presigned {
            json,
            fields: ordered.form_fields.0,
        }
    }

    /// The keys in the bucket.
    pub async fn objects(&self) -> Vec<String> {
        let listed = self
            .s3
            .list_objects_v2()
            .bucket(&self.bucket)
            .send()
            .await
            .expect("list objects");
        listed
            .contents()
            .iter()
            .filter_map(|o| o.key().map(str::to_string))
            .collect()
    }

    /// The user holds exactly these rows (a re-import added none) and no
    /// upload file is left behind.
    pub async fn assert_holds(&self, user: &str, workouts: u64, samples: u64) {
        assert_eq!(
            self.count(user, "/events/workouts").await,
            workouts,
            "workouts, no duplicates"
        );
        assert_eq!(
            self.count(user, "/timeseries").await,
            samples,
            "samples, no duplicates"
        );
        assert!(
            self.uploads().is_empty(),
            "upload files removed: {:?}",
            self.uploads()
        );
    }

    /// A login with the form body the API takes.
    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.http
            .post(self.url("/auth/login"))
            .form(&[("username", email), ("password", password)])
            .send()
            .await
            .expect("request")
    }

    /// `/token/refresh` with `token`.
    pub async fn refresh(&self, token: &str) -> Response {
        self.http
            .post(self.url("/token/refresh"))
            .json(&json!({ "refresh_token": token }))
            .send()
            .await
            .expect("request")
    }

    /// One value of a query on server.sqlite.
    pub fn query_i64(&self, sql: &str) -> i64 {
        let db = rusqlite::Connection::open(self.dir.path().join("server.sqlite")).expect("db");
        db.query_row(sql, [], |r| r.get::<_, i64>(0)).expect(sql)
    }

    /// The jobs the server has queued or run.
    pub fn jobs(&self) -> u64 {
        let db = rusqlite::Connection::open(self.dir.path().join("server.sqlite")).expect("db");
        db.query_row("SELECT count(*) FROM jobs", [], |r| r.get::<_, i64>(0))
            .expect("count") as u64
    }
}

/// A presign answer, with its form fields in the order sent (a
/// `serde_json::Value` would sort them).
#[derive(Debug, Clone)]
pub struct Presigned {
    pub json: Value,
    pub fields: Vec<(String, String)>,
}

#[derive(serde::Deserialize)]
struct Ordered {
    form_fields: Fields,
}

struct Fields(Vec<(String, String)>);

impl<'de> serde::Deserialize<'de> for Fields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Fields;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object of strings")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Fields, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, String>()? {
                    out.push(entry);
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// A browser-style POST: every given field in order, then the file last.
pub async fn post_form(
    presigned: &Presigned,
    fields: &[(String, String)],
    file: Vec<u8>,
) -> Response {
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.clone(), v.clone());
    }
    let part = reqwest::multipart::Part::bytes(file)
        .file_name("export.xml")
        .mime_str("application/xml")
        .expect("mime");
    form = form.part("file", part);
    Client::new()
        .post(presigned.json["upload_url"].as_str().expect("upload_url"))
        .multipart(form)
        .send()
        .await
        .expect("request")
}

/// S3's `<Error><Code>` of a refused request.
pub async fn s3_code(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body = res.text().await.expect("body");
    let code = body
        .split_once("<Code>")
        .and_then(|(_, rest)| rest.split_once("</Code>"))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| format!("no code in {body:?}"));
    (status, code)
}

pub fn s3_client(endpoint: &str, creds: &owi_server::Credentials) -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::Config::builder()
        .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_sdk_s3::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_s3::config::Credentials::new(
            creds.access_key.clone(),
            creds.secret_key.clone(),
            None,
            None,
            "test",
        ))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

pub async fn detail(res: Response) -> (StatusCode, String) {
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON error body");
    (
        status,
        body["detail"]
            .as_str()
            .expect("a detail string")
            .to_string(),
    )
}

pub fn sample(dir: &Path, records: u64, workouts: u64) -> owi_sample::SampleManifest {
    let spec = owi_sample::SampleSpec {
        records,
        workouts,
        seed: 11,
        locale: "en_US".into(),
        zip: false,
        junk_values: 0,
        dtd: Default::default(),
    };
    owi_sample::generate(&spec, dir).expect("sample")
}
