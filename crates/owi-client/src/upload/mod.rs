//! The upload engine: the export's XML (a file, or streamed out of the zip
//! it came in, never unpacked to disk) sent by direct upload, S3 presigned
//! POST or S3 multipart, with one progress model for all three.
//!
//! Bodies stream from disk in 64 KiB chunks (their buffers reused), each
//! read as the network takes it, so memory stays flat whatever the size.
//! A ticker reports the bytes handed to the network at most every 100 ms
//! (owi-progress's `Tracker`), always with a last event at the end.
//!
//! A multipart upload reports each stored part to a [`Journal`] (the local
//! store, in the import flow), and goes on from a [`Resume`] of those
//! parts after a dropped network, a killed process or a reboot.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use owi_progress::{CancelToken, Part, Phase, ProgressSink, Tracker};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Idempotent};
use crate::error::Error;

mod multipart;
mod post;
mod source;

use multipart::no_multipart;
pub use post::presigned_fields;
pub use source::UploadSource;

/// At or under this size, `auto` sends directly (as the official dashboard).
pub const DIRECT_MAX: u64 = 10_000_000;
/// The bytes of one body chunk read from a plain file: curl's size. A
/// chunk is read, cleaned and copied into the socket while it is still in
/// the core's cache; 1 MiB chunks went through memory each time (direct
/// upload of 1 GB, median of 17 rounds: 0.62 s against 0.71 s; 256 KiB
/// ones, 0.58 s against 0.55 s of 8).
const CHUNK: usize = 64 << 10;
/// The bytes of one body chunk inflated out of a zip. Each call into the
/// inflater ends by copying the last 32 KiB it wrote into its window, a
/// half of a 64 KiB chunk; at 256 KiB the 1 GB entry inflates in 0.37 s
/// rather than 0.41 s, and its direct upload took 0.69–0.73 s rather
/// than 0.83–0.86 s (medians of 8 alternated rounds, twice).
const ZIP_CHUNK: usize = 256 << 10;
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
