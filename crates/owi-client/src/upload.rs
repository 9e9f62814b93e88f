//! The upload engine: the export's XML (a file, or streamed out of the zip
//! it came in, never unpacked to disk) sent by direct upload, S3 presigned
//! POST or S3 multipart, with one progress model for all three.
//!
//! Bodies stream from disk in 256 KiB chunks through a small bounded
//! channel, so memory stays flat whatever the size. A ticker reports the
//! bytes handed to the network at most every 100 ms (owi-progress's
//! `Tracker`), always with a last event at the end.
//!
//! A multipart upload reports each stored part to a [`Journal`] (the local
//! store, in the import flow), and goes on from a [`Resume`] of those
//! parts after a dropped network, a killed process or a reboot.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use owi_export::{ExportSource, Outgoing};
use owi_progress::{CancelToken, Part, Phase, ProgressSink, Tracker};
use reqwest::{Method as HttpMethod, StatusCode};
use serde::{Deserialize, Serialize};

use crate::client::{Client, Idempotent};
use crate::error::Error;

/// At or under this size, `auto` sends directly (as the official dashboard).
pub const DIRECT_MAX: u64 = 10_000_000;
const CHUNK: usize = 256 << 10;
/// The most a presigned POST may carry (the API's `max_file_size` bound).
pub const POST_LIMIT: u64 = 1 << 30;
/// The largest body a multipart upload takes on the real server.
pub const MULTIPART_LIMIT: u64 = 5 << 30;

/// The smallest export multipart takes: S3's minimum part, 5 MiB.
pub const MULTIPART_MIN: u64 = 5 << 20;
/// How often a request in flight is checked for a stall or a cancel.
const WATCH_TICK: Duration = Duration::from_millis(100);
/// Parts in flight at once.
const PART_CONCURRENCY: usize = 4;

/// How to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Direct at or under 10 MB, else multipart where the server offers it,
    /// else a presigned POST.
    Auto,
    Direct,
    S3,
    Multipart,
}

/// Where a multipart upload's progress is kept as it goes, so an
/// interrupted one can resume. Failing to keep it must not fail the
/// upload (it only costs a resume), so these return nothing.
pub trait Journal: Send + Sync {
    /// The server opened a multipart upload.
    fn begun(&self, name: &str, key: &str, upload_id: &str, part_size: u64, bytes: u64);
    /// The store holds a part.
    fn part_stored(&self, number: u32, etag: &str);
    /// Completed or aborted: nothing left to resume.
    fn ended(&self);
}

/// A multipart upload to go on with: the parts the store already holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resume {
    pub key: String,
    pub upload_id: String,
    pub part_size: u64,
    /// Part numbers with their ETags.
    pub parts: Vec<(u32, String)>,
}

/// One body to send, and how.
pub struct Job<'a> {
    pub source: Arc<UploadSource>,
    pub user_id: &'a str,
    pub method: Method,
    /// The unique ASCII name it goes under ([`upload_name`]).
    pub name: String,
    /// A multipart upload to go on with instead of starting one.
    pub resume: Option<Resume>,
    pub journal: Option<&'a dyn Journal>,
}

impl std::fmt::Debug for Job<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Job")
            .field("source", &self.source)
            .field("user_id", &self.user_id)
            .field("method", &self.method)
            .field("name", &self.name)
            .field("resume", &self.resume)
            .finish_non_exhaustive()
    }
}

/// What an upload sent and how the server will know it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Uploaded {
    pub method: Method,
    pub bytes: u64,
    /// The ASCII name it went under.
    pub name: String,
    /// The server's run id, where the path returns one (direct, multipart).
    pub task_id: Option<String>,
    /// The object key (S3 paths).
    pub key: Option<String>,
    /// How many parts (multipart).
    pub parts: Option<u32>,
    /// Parts that were already on the server from an interrupted upload.
    pub resumed_parts: u32,
}

/// The XML to send: the export whole, or one piece of it, as is or
/// cleaned for strict parsers; its exact length known before sending.
#[derive(Debug)]
pub struct UploadSource {
    body: Outgoing,
}

impl UploadSource {
    /// The export at `path`, whole and as it is.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let export = ExportSource::open(path).map_err(|e| Error::Export(e.to_string()))?;
        let body =
            Outgoing::whole(Arc::new(export), false).map_err(|e| Error::Export(e.to_string()))?;
        Ok(UploadSource { body })
    }

    /// The bodies to send for `export`: itself, or pieces of at most
    /// `limit` bytes, each a valid export, when it is larger.
    pub fn pieces(
        export: Arc<ExportSource>,
        clean: bool,
        limit: u64,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<UploadSource>, Error> {
        let pieces =
            Outgoing::split(export, clean, limit, progress, cancel).map_err(|e| match e {
                owi_export::Error::Cancelled { .. } => Error::Cancelled,
                other => Error::Export(other.to_string()),
            })?;
        Ok(pieces
            .into_iter()
            .map(|body| UploadSource { body })
            .collect())
    }

    /// The bodies of a selection (what the filters and the delta let
    /// out), in pieces of at most `limit` bytes.
    pub fn selected(
        export: Arc<ExportSource>,
        clean: bool,
        selection: &owi_export::Selection,
        limit: u64,
    ) -> Result<Vec<UploadSource>, Error> {
        let pieces = Outgoing::selected(export, clean, selection, limit)
            .map_err(|e| Error::Export(e.to_string()))?;
        Ok(pieces
            .into_iter()
            .map(|piece| UploadSource { body: piece.body })
            .collect())
    }

    pub fn len(&self) -> u64 {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    pub fn path(&self) -> &Path {
        self.body.source().path()
    }

    /// `len` bytes from `offset`.
    fn reader(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send>, Error> {
        let reader = self
            .body
            .reader_at(offset)
            .map_err(|e| Error::Export(e.to_string()))?;
        Ok(Box::new(reader.take(len)))
    }

    /// A streaming request body of `len` bytes from `offset`, counting what
    /// it hands over into `sent`.
    fn body(
        self: &Arc<Self>,
        offset: u64,
        len: u64,
        sent: Arc<AtomicU64>,
        attempt: Option<Arc<AtomicU64>>,
        cancel: CancelToken,
    ) -> reqwest::Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = match source.reader(offset, len) {
                Ok(reader) => reader,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let mut left = len;
            while left > 0 {
                if cancel.is_cancelled() {
                    let _ = tx.blocking_send(Err(std::io::Error::other("cancelled")));
                    return;
                }
                let mut chunk = vec![0; CHUNK.min(left as usize)];
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the export got shorter while it was being sent",
                        )));
                        return;
                    }
                    Ok(n) => {
                        chunk.truncate(n);
                        left -= n as u64;
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return; // the request was dropped
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .map(move |item| {
            if let Ok(chunk) = &item {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(attempt) = &attempt {
                    attempt.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            item
        });
        reqwest::Body::wrap_stream(stream)
    }
}

/// A unique ASCII name, so no upload's key collides with an earlier one
/// or carries a localized file name.
pub fn upload_name() -> String {
    format!(
        "owi-{}-{:08x}.xml",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        fastrand::u32(..)
    )
}

/// One upload in flight: what every path needs.
struct Sending<'a> {
    source: Arc<UploadSource>,
    user_id: String,
    /// The unique name it goes under.
    name: String,
    /// Bytes handed to the network, read by the progress ticker.
    sent: Arc<AtomicU64>,
    parts: Parts,
    cancel: CancelToken,
    journal: Option<&'a dyn Journal>,
}

/// Parts done of how many, shared with the progress ticker.
#[derive(Debug, Default)]
struct Parts {
    done: AtomicU32,
    count: AtomicU32,
}

impl Parts {
    /// The part in flight (1-based), while there are several.
    fn current(&self) -> Option<Part> {
        let count = self.count.load(Ordering::Relaxed);
        let done = self.done.load(Ordering::Relaxed);
        (count > 1).then(|| Part {
            index: (done + 1).min(count),
            count,
        })
    }
}

#[derive(Debug, Deserialize)]
struct DirectAnswer {
    task_id: String,
}

#[derive(Debug, Deserialize)]
struct Presigned {
    upload_url: String,
    form_fields: OrderedFields,
    file_key: String,
    #[serde(default)]
    max_file_size: Option<u64>,
}

/// Form fields in the order the server gave them (they must be sent so;
/// a `serde_json::Value` would sort them).
#[derive(Debug)]
struct OrderedFields(Vec<(String, String)>);

/// The `form_fields` of a presign answer, in order.
pub fn presigned_fields(answer: &str) -> Result<Vec<(String, String)>, serde_json::Error> {
    #[derive(Deserialize)]
    struct Answer {
        form_fields: OrderedFields,
    }
    Ok(serde_json::from_str::<Answer>(answer)?.form_fields.0)
}

impl<'de> Deserialize<'de> for OrderedFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = OrderedFields;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object of form fields")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<OrderedFields, A::Error> {
                let mut fields = Vec::new();
                while let Some(field) = map.next_entry::<String, String>()? {
                    fields.push(field);
                }
                Ok(OrderedFields(fields))
            }
        }
        d.deserialize_map(Visit)
    }
}

#[derive(Debug, Clone, Deserialize)]
struct Created {
    upload_id: String,
    key: String,
    part_size: u64,
}

#[derive(Debug, Deserialize)]
struct SignedUrls {
    urls: Vec<SignedUrl>,
}

#[derive(Debug, Deserialize)]
struct SignedUrl {
    part_number: u32,
    url: String,
}

#[derive(Debug, Deserialize)]
struct Completed {
    #[serde(default)]
    task_id: Option<String>,
}

impl Client {
    /// Sends the export at `path` as it is to `user_id`'s import under a
    /// fresh name. Progress goes to `progress` (phase `upload`, bytes);
    /// `cancel` stops it at any moment.
    pub async fn upload(
        &self,
        path: &Path,
        user_id: &str,
        method: Method,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Uploaded, Error> {
        let path: PathBuf = path.to_path_buf();
        let source = tokio::task::spawn_blocking(move || UploadSource::open(&path))
            .await
            .map_err(|e| Error::Config(format!("the upload task failed: {e}")))??;
        let job = Job {
            source: Arc::new(source),
            user_id,
            method,
            name: upload_name(),
            resume: None,
            journal: None,
        };
        self.send_job(job, progress, cancel).await
    }

    /// Sends one body. `Auto` sends directly at or under 10 MB, else by
    /// multipart where the server offers it, else by presigned POST.
    pub async fn send_job(
        &self,
        job: Job<'_>,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Uploaded, Error> {
        let Job {
            source,
            user_id,
            method,
            name,
            resume,
            journal,
        } = job;
        if source.is_empty() {
            return Err(Error::Export(format!(
                "{} holds no XML to send",
                source.path().display()
            )));
        }
        let method = match method {
            Method::Auto if resume.is_some() => Method::Multipart,
            Method::Auto if source.len() <= DIRECT_MAX => Method::Direct,
            other => other,
        };
        let job = Sending {
            source,
            user_id: user_id.to_string(),
            name,
            sent: Arc::new(AtomicU64::new(0)),
            parts: Parts::default(),
            cancel: cancel.clone(),
            journal,
        };
        let (source, sent, parts) = (&job.source, &job.sent, &job.parts);
        let mut tracker = Tracker::start(progress, Phase::Upload, Some(source.len()));
        // The work reports its retries here, for the tracker to pass on.
        let (retry_tx, mut retries) = tokio::sync::mpsc::unbounded_channel();
        let this = self.for_job(retry_tx, cancel.clone());
        let work = async {
            match method {
                Method::Direct => this.send_direct(&job).await,
                Method::S3 => this.send_post(&job).await,
                Method::Multipart => this.send_multipart(&job, resume).await,
                Method::Auto => match this.create_multipart(&job).await {
                    Ok(created) => this.send_created(&job, created, Vec::new()).await,
                    // An older server: no multipart path.
                    Err(e) if no_multipart(&e) => this.send_post(&job).await,
                    Err(e) => Err(e),
                },
            }
        };
        tokio::pin!(work);
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let outcome = loop {
            tokio::select! {
                outcome = &mut work => break outcome,
                Some(retry) = retries.recv() => {
                    tracker.retrying(retry.attempt, retry.delay, retry.reason);
                }
                _ = tick.tick() => {
                    tracker.set_part(parts.current());
                    tracker.advance(sent.load(Ordering::Relaxed));
                }
            }
        };
        while let Ok(retry) = retries.try_recv() {
            tracker.retrying(retry.attempt, retry.delay, retry.reason);
        }
        // An upload that got through despite a late cancel is reported as
        // what it is: the server has it and will import it.
        if outcome.is_err() && cancel.is_cancelled() {
            return Err(Error::Cancelled);
        }
        let uploaded = outcome?;
        tracker.advance(source.len());
        tracker.finish();
        Ok(uploaded)
    }

    /// Whether the server has the multipart path: asked with an empty
    /// request, which a server that has it refuses as invalid (400/422)
    /// and one that does not answers 404/405. Nothing is created.
    pub async fn offers_multipart(&self, user_id: &str) -> Result<bool, Error> {
        let asked: Result<serde_json::Value, Error> = self
            .send_json(
                HttpMethod::POST,
                &format!("users/{user_id}/import/apple/xml/s3/multipart/create"),
                &(),
                Some(&serde_json::json!({})),
                Idempotent::Yes,
            )
            .await;
        match asked {
            Err(e) if no_multipart(&e) => Ok(false),
            Err(Error::Refused {
                status: 400 | 422, ..
            }) => Ok(true),
            Err(e) => Err(e),
            Ok(_) => Ok(true),
        }
    }

    async fn send_direct(&self, job: &Sending<'_>) -> Result<Uploaded, Error> {
        let Sending {
            source,
            user_id,
            name,
            sent,
            cancel,
            ..
        } = job;
        let url = self.url(&format!("users/{user_id}/import/apple/xml/direct"))?;
        let len = source.len();
        let uploaded = |task_id: String| Uploaded {
            method: Method::Direct,
            bytes: len,
            name: name.to_string(),
            task_id: Some(task_id),
            key: None,
            parts: None,
            resumed_parts: 0,
        };
        let mut delays = self.retry_policy().delays();
        let mut attempt = 0;
        loop {
            // A body streams once: each try builds the request again.
            let sending = self.send_upload(Idempotent::No, |http| {
                sent.store(0, Ordering::Relaxed);
                let part = reqwest::multipart::Part::stream_with_length(
                    source.body(0, len, sent.clone(), None, cancel.clone()),
                    len,
                )
                .file_name(name.to_string());
                let part = match part.mime_str("application/xml") {
                    Ok(part) => part,
                    Err(_) => unreachable!("a valid MIME type"),
                };
                http.post(url.clone())
                    .multipart(reqwest::multipart::Form::new().part("file", part))
            });
            let error = match self.watched(sent, len, cancel, sending).await {
                Ok(response) => {
                    let answer: DirectAnswer = self.decode(response, "direct upload").await?;
                    return Ok(uploaded(answer.task_id));
                }
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            if let Some(run) = self.landed(job).await? {
                return Ok(uploaded(run));
            }
            attempt += 1;
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            self.pause(attempt, delay, &error).await?;
        }
    }

    /// After a failure with every byte sent, the run the server made of
    /// the upload anyway (its answer was what got lost), found by the
    /// upload's unique name: sending it again would import it twice.
    async fn landed(&self, job: &Sending<'_>) -> Result<Option<String>, Error> {
        if job.sent.load(Ordering::Relaxed) < job.source.len() {
            return Ok(None);
        }
        self.run_named(&job.user_id, &job.name).await
    }

    /// Sends one upload request and watches it: it is given up as a
    /// timeout when its bytes, and then its answer, stand still for the
    /// stall limit, and as cancelled while it still has bytes to send.
    /// Dropping the request closes its connection.
    async fn watched<T>(
        &self,
        moved: &AtomicU64,
        len: u64,
        cancel: &CancelToken,
        request: impl std::future::Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        tokio::pin!(request);
        let mut tick = tokio::time::interval(WATCH_TICK);
        let (mut seen, mut since) = (moved.load(Ordering::Relaxed), tokio::time::Instant::now());
        loop {
            tokio::select! {
                outcome = &mut request => return outcome,
                _ = tick.tick() => {
                    let now = moved.load(Ordering::Relaxed);
                    if cancel.is_cancelled() && now < len {
                        return Err(Error::Cancelled);
                    }
                    if now != seen {
                        (seen, since) = (now, tokio::time::Instant::now());
                    } else if since.elapsed() >= self.stall_after() {
                        return Err(Error::Timeout { server: self.server().origin().to_string() });
                    }
                }
            }
        }
    }

    async fn send_post(&self, job: &Sending<'_>) -> Result<Uploaded, Error> {
        let Sending {
            source,
            user_id,
            name,
            sent,
            cancel,
            ..
        } = job;
        let len = source.len();
        if len > POST_LIMIT {
            return Err(Error::TooLarge {
                server: self.server().origin().to_string(),
                bytes: len,
                limit: POST_LIMIT,
            });
        }
        let mut delays = self.retry_policy().delays();
        let mut refreshed_policy = false;
        let mut attempt = 0;
        loop {
            let presigned: Presigned = self
                .send_json(
                    HttpMethod::POST,
                    &format!("users/{user_id}/import/apple/xml/s3"),
                    &(),
                    Some(&serde_json::json!({
                        "filename": name,
                        "expiration_seconds": 3600,
                        // The API's floor is 1 KiB.
                        "max_file_size": len.max(1024),
                    })),
                    Idempotent::Yes,
                )
                .await?;
            if let Some(max) = presigned.max_file_size
                && max < len
            {
                return Err(Error::TooLarge {
                    server: self.server().origin().to_string(),
                    bytes: len,
                    limit: max,
                });
            }
            let mut form = reqwest::multipart::Form::new();
            for (k, v) in presigned.form_fields.0 {
                form = form.text(k, v);
            }
            sent.store(0, Ordering::Relaxed);
            let file = reqwest::multipart::Part::stream_with_length(
                source.body(0, len, sent.clone(), None, cancel.clone()),
                len,
            )
            .file_name(name.to_string());
            form = form.part("file", file);
            // The store is not the API: no credentials go with this.
            let posting = async {
                let request = self.upload_http().post(&presigned.upload_url);
                let response = request.multipart(form).send().await;
                response.map_err(|e| self.transport(&e))
            };
            let response = self.watched(sent, len, cancel, posting).await;
            let mut retry_after = None;
            let error = match response {
                Ok(r) if r.status().is_success() => {
                    return Ok(Uploaded {
                        method: Method::S3,
                        bytes: len,
                        name: name.to_string(),
                        task_id: None,
                        key: Some(presigned.file_key),
                        parts: None,
                        resumed_parts: 0,
                    });
                }
                Ok(r) => {
                    let transient = retryable(r.status());
                    retry_after = crate::client::retry_after(r.headers());
                    let error = storage_error(r).await;
                    let expired = matches!(&error, Error::Storage { message, .. } if message.contains("expired"));
                    if expired && !refreshed_policy {
                        tracing::info!(
                            "the upload policy expired on the way; asking for a fresh one"
                        );
                        refreshed_policy = true;
                        continue;
                    }
                    if !transient {
                        return Err(error);
                    }
                    error
                }
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            if let Some(run) = self.landed(job).await? {
                return Ok(Uploaded {
                    method: Method::S3,
                    bytes: len,
                    name: name.to_string(),
                    task_id: Some(run),
                    key: Some(presigned.file_key),
                    parts: None,
                    resumed_parts: 0,
                });
            }
            attempt += 1;
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            self.pause(attempt, retry_after.unwrap_or(delay), &error)
                .await?;
        }
    }

    /// Starts a multipart upload; a 404 or 405 here means the server has
    /// no multipart path.
    async fn create_multipart(&self, job: &Sending<'_>) -> Result<Created, Error> {
        let Sending {
            source,
            user_id,
            name,
            ..
        } = job;
        let created: Created = self
            .send_json(
                HttpMethod::POST,
                &format!("users/{user_id}/import/apple/xml/s3/multipart/create"),
                &(),
                Some(&serde_json::json!({
                    "filename": name,
                    "content_type": "application/xml",
                    "file_size": source.len(),
                })),
                // A repeat after a lost answer at worst leaves an empty
                // upload, which the server aborts in time: nothing imports.
                Idempotent::Yes,
            )
            .await?;
        if let Some(journal) = job.journal {
            journal.begun(
                name,
                &created.key,
                &created.upload_id,
                created.part_size,
                source.len(),
            );
        }
        Ok(created)
    }

    /// A multipart upload: a new one, or the resumed one if the server
    /// still has it.
    async fn send_multipart(
        &self,
        job: &Sending<'_>,
        resume: Option<Resume>,
    ) -> Result<Uploaded, Error> {
        let Some(resume) = resume else {
            let created = self.create_multipart(job).await?;
            return self.send_created(job, created, Vec::new()).await;
        };
        let created = Created {
            upload_id: resume.upload_id,
            key: resume.key,
            part_size: resume.part_size,
        };
        match self.send_created(job, created, resume.parts).await {
            // The server forgot it (aborted, expired): start again.
            Err(Error::NotFound { .. }) if !job.cancel.is_cancelled() => {
                tracing::info!("the server no longer has the interrupted upload; starting afresh");
                if let Some(journal) = job.journal {
                    journal.ended();
                }
                job.sent.store(0, Ordering::Relaxed);
                job.parts.done.store(0, Ordering::Relaxed);
                let created = self.create_multipart(job).await?;
                self.send_created(job, created, Vec::new()).await
            }
            other => other,
        }
    }

    /// Sends the parts the store does not hold yet (`stored` are those it
    /// does, with their ETags), then completes the upload.
    async fn send_created(
        &self,
        job: &Sending<'_>,
        created: Created,
        stored: Vec<(u32, String)>,
    ) -> Result<Uploaded, Error> {
        let Sending {
            source,
            user_id,
            name,
            parts: progress,
            sent,
            cancel,
            journal,
            ..
        } = job;
        let len = source.len();
        let base = format!("users/{user_id}/import/apple/xml/s3/multipart");
        let part_size = created.part_size.max(MULTIPART_MIN);
        let count = len.div_ceil(part_size) as u32;
        progress.count.store(count, Ordering::Relaxed);
        let mut etags = vec![String::new(); count as usize];
        for (number, etag) in stored {
            let Some(slot) = number
                .checked_sub(1)
                .and_then(|i| etags.get_mut(i as usize))
            else {
                continue; // not a part of this body: sent again below
            };
            *slot = etag;
            let offset = u64::from(number - 1) * part_size;
            sent.fetch_add(part_size.min(len - offset), Ordering::Relaxed);
            progress.done.fetch_add(1, Ordering::Relaxed);
        }
        let resumed_parts = progress.done.load(Ordering::Relaxed);
        let missing: Vec<u32> = (1..=count)
            .filter(|n| etags[*n as usize - 1].is_empty())
            .collect();
        let result = async {
            let signed: SignedUrls = if missing.is_empty() {
                SignedUrls { urls: Vec::new() }
            } else {
                self.send_json(
                    HttpMethod::POST,
                    &format!("{base}/sign"),
                    &(),
                    Some(&serde_json::json!({
                        "key": created.key,
                        "upload_id": created.upload_id,
                        "part_numbers": missing,
                    })),
                    Idempotent::Yes,
                )
                .await?
            };
            let mut numbers: Vec<u32> = signed.urls.iter().map(|u| u.part_number).collect();
            numbers.sort_unstable();
            if numbers != missing {
                return Err(Error::Protocol {
                    server: self.server().origin().to_string(),
                    reason: format!(
                        "multipart/sign returned URLs for parts {numbers:?}, not {missing:?}"
                    ),
                });
            }
            let parts = futures_util::stream::iter(signed.urls.into_iter().map(|signed| {
                let offset = u64::from(signed.part_number - 1) * part_size;
                let part_len = part_size.min(len - offset);
                async move {
                    let etag = self.put_part(job, &signed, offset, part_len).await?;
                    Ok::<_, Error>((signed.part_number, etag))
                }
            }))
            .buffer_unordered(PART_CONCURRENCY);
            tokio::pin!(parts);
            while let Some(part) = parts.next().await {
                let (number, etag) = part?;
                if let Some(journal) = journal {
                    journal.part_stored(number, &etag);
                }
                progress.done.fetch_add(1, Ordering::Relaxed);
                if let Some(slot) = etags.get_mut(number as usize - 1) {
                    *slot = etag;
                }
            }
            let completed: Completed = self
                .send_json(
                    HttpMethod::POST,
                    &format!("{base}/complete"),
                    &(),
                    Some(&serde_json::json!({
                        "key": created.key,
                        "upload_id": created.upload_id,
                        "parts": etags.iter().enumerate().map(|(i, etag)| serde_json::json!({
                            "part_number": i + 1,
                            "etag": etag,
                        })).collect::<Vec<_>>(),
                    })),
                    Idempotent::Yes,
                )
                .await?;
            Ok(completed)
        }
        .await;
        match result {
            Ok(completed) => {
                if let Some(journal) = journal {
                    journal.ended();
                }
                Ok(Uploaded {
                    method: Method::Multipart,
                    bytes: len,
                    name: name.to_string(),
                    task_id: completed.task_id,
                    key: Some(created.key),
                    parts: Some(count),
                    resumed_parts,
                })
            }
            // Kept for a resume: the network or the server's own trouble,
            // or a server that forgot the upload (nothing to abort).
            Err(e)
                if (e.is_transient() || matches!(e, Error::NotFound { .. }))
                    && !cancel.is_cancelled()
                    && journal.is_some() =>
            {
                Err(e)
            }
            Err(e) => {
                // Leave nothing half-uploaded behind on the server.
                if let Some(journal) = journal {
                    journal.ended();
                }
                self.abort_multipart(user_id, &created.key, &created.upload_id)
                    .await;
                Err(e)
            }
        }
    }

    /// Aborts a multipart upload, so the store drops its parts. Best
    /// effort: the server's upkeep aborts abandoned uploads anyway.
    pub async fn abort_multipart(&self, user_id: &str, key: &str, upload_id: &str) {
        let aborted: Result<serde_json::Value, Error> = self
            .send_json(
                HttpMethod::POST,
                &format!("users/{user_id}/import/apple/xml/s3/multipart/abort"),
                &(),
                Some(&serde_json::json!({ "key": key, "upload_id": upload_id })),
                Idempotent::Yes,
            )
            .await;
        if let Err(e) = aborted {
            tracing::warn!(error = %e, "could not abort the multipart upload");
        }
    }

    /// One part, retried on its own; its ETag.
    async fn put_part(
        &self,
        job: &Sending<'_>,
        signed: &SignedUrl,
        offset: u64,
        len: u64,
    ) -> Result<String, Error> {
        let Sending {
            source,
            sent,
            cancel,
            ..
        } = job;
        let mut delays = self.retry_policy().delays();
        let mut tries = 0;
        loop {
            // Counted as it goes out; taken back if the attempt fails.
            let attempt = Arc::new(AtomicU64::new(0));
            let putting = async {
                let request = self.upload_http().put(&signed.url);
                let response = request
                    .header(reqwest::header::CONTENT_LENGTH, len)
                    .body(source.body(
                        offset,
                        len,
                        sent.clone(),
                        Some(attempt.clone()),
                        cancel.clone(),
                    ))
                    .send()
                    .await;
                response.map_err(|e| self.transport(&e))
            };
            let response = self.watched(&attempt, len, cancel, putting).await;
            if !matches!(&response, Ok(r) if r.status() == StatusCode::OK) {
                sent.fetch_sub(attempt.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            let mut retry_after = None;
            let error = match response {
                Ok(r) if r.status() == StatusCode::OK => {
                    return r
                        .headers()
                        .get(reqwest::header::ETAG)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                        .ok_or_else(|| Error::Storage {
                            code: "NoETag".into(),
                            message: format!(
                                "part {} was stored without an ETag",
                                signed.part_number
                            ),
                        });
                }
                Ok(r) if retryable(r.status()) => {
                    retry_after = crate::client::retry_after(r.headers());
                    storage_error(r).await
                }
                Ok(r) => return Err(storage_error(r).await),
                Err(e) if e.is_transient() => e,
                Err(e) => return Err(e),
            };
            tries += 1;
            let Some(delay) = delays.next() else {
                return Err(error);
            };
            tracing::debug!(part = signed.part_number, "retrying a part");
            self.pause(tries, retry_after.unwrap_or(delay), &error)
                .await?;
        }
    }
}

/// The answer of a server without the multipart path.
fn no_multipart(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound { .. } | Error::Refused { status: 405, .. }
    )
}

/// A store answer worth trying again after: its own trouble, or "slow down".
fn retryable(status: StatusCode) -> bool {
    status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS
}

/// S3's XML refusal (`<Error><Code>…<Message>…`) as an error.
async fn storage_error(response: reqwest::Response) -> Error {
    let status = response.status();
    let body = response.text().await.unwrap_or_default();
    let tag = |name: &str| {
        body.split_once(&format!("<{name}>"))
            .and_then(|(_, rest)| rest.split_once(&format!("</{name}>")))
            .map(|(inner, _)| inner.to_string())
    };
    Error::Storage {
        code: tag("Code").unwrap_or_else(|| status.to_string()),
        message: tag("Message").unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_fields_keep_the_servers_order() {
        let answer = r#"{"upload_url": "u", "form_fields": {"key": "k", "Content-Type": "t", "AWSAccessKeyId": "a"}}"#;
        let names: Vec<String> = presigned_fields(answer)
            .unwrap()
            .into_iter()
            .map(|(k, _)| k)
            .collect();
        assert_eq!(names, ["key", "Content-Type", "AWSAccessKeyId"]);
    }

    #[test]
    fn upload_names_are_unique_and_ascii() {
        let (a, b) = (upload_name(), upload_name());
        assert_ne!(a, b);
        assert!(
            a.is_ascii() && a.starts_with("owi-") && a.ends_with(".xml"),
            "{a}"
        );
    }
}
