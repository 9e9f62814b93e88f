//! The multipart path: `create`, part URLs signed in batches, parts sent
//! several at a time (each retried, each reported to the journal), then
//! `complete`; resumed from the parts a store already holds, aborted on a
//! cancel or a refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use reqwest::{Method as HttpMethod, StatusCode};
use serde::Deserialize;

use super::{
    MULTIPART_MIN, Method, PART_CONCURRENCY, Resume, Sending, Uploaded, retryable, storage_error,
};
use crate::client::{Client, Idempotent};
use crate::error::Error;

#[derive(Debug, Clone, Deserialize)]
pub(super) struct Created {
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

    /// Starts a multipart upload; a 404 or 405 here means the server has
    /// no multipart path.
    pub(super) async fn create_multipart(&self, job: &Sending<'_>) -> Result<Created, Error> {
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
                // upload (nothing imports before `complete`); the bundled
                // server aborts it in time, a real one by its bucket's
                // lifecycle rules.
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
    pub(super) async fn send_multipart(
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
    pub(super) async fn send_created(
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
        // Inside a zip a part's bytes are inflated from the closest stream
        // before them: parts side by side would each inflate what the
        // others are inflating, several times the export in all. One at a
        // time, each goes on from where the last one stopped.
        let in_flight = if source.is_zip() { 1 } else { PART_CONCURRENCY };
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
            .buffer_unordered(in_flight);
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
pub(super) fn no_multipart(e: &Error) -> bool {
    matches!(
        e,
        Error::NotFound { .. } | Error::Refused { status: 405, .. }
    )
}
