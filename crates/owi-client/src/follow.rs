//! Following an import on the server to its end: the SSE stream (with
//! replay, reconnecting with backoff), or `/sync/runs` polling where there
//! is no stream; and a bounded wait with a clear message when the server
//! says nothing at all (the real one, after an S3 upload).

use std::collections::HashSet;
use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Idempotent};
use crate::error::Error;

/// One report about a run: a `SyncStatusEvent`, or a `/sync/runs` summary
/// (which has no `event_id`). Stages and statuses stay strings: servers add
/// new ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SyncEvent {
    #[serde(default)]
    pub event_id: Option<String>,
    pub run_id: String,
    pub stage: String,
    pub status: String,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub progress: Option<f64>,
    #[serde(default)]
    pub items_processed: Option<u64>,
    #[serde(default)]
    pub items_total: Option<u64>,
    #[serde(default)]
    pub error: Option<String>,
    /// `{"filename": …}` on Open Wearables servers.
    #[serde(default)]
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub metadata: serde_json::Value,
}

impl SyncEvent {
    /// The run has ended, one way or another.
    pub fn is_final(&self) -> bool {
        matches!(self.stage.as_str(), "completed" | "failed" | "cancelled")
            || matches!(
                self.status.as_str(),
                "success" | "failed" | "cancelled" | "partial"
            )
    }

    pub fn succeeded(&self) -> bool {
        self.stage == "completed" || matches!(self.status.as_str(), "success" | "partial")
    }
}

/// How long to wait, and how.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Give up when the server says nothing about the run for this long.
    pub silence: Duration,
    /// Polling interval where there is no stream.
    pub poll_every: Duration,
    /// A stream quiet this long is reopened (heartbeats are not events).
    pub reconnect_after: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            silence: Duration::from_secs(180),
            poll_every: Duration::from_secs(2),
            reconnect_after: Duration::from_secs(45),
        }
    }
}

impl Client {
    /// Reports each new event of `run_id` to `on_event` until the run
    /// ends; returns its last event (`succeeded()` says how it ended).
    pub async fn follow_run(
        &self,
        user_id: &str,
        run_id: &str,
        options: FollowOptions,
        mut on_event: impl FnMut(&SyncEvent),
    ) -> Result<SyncEvent, Error> {
        let mut seen = HashSet::new();
        let mut last_heard = Instant::now();
        let mut delays = self.retry_policy().delays();
        let stream_path = format!("users/{user_id}/sync/stream");
        // Once the server has mentioned the run, silence is no failure: the
        // real server reports only the start and the end of a long import.
        let mut known = false;
        loop {
            let waited = last_heard.elapsed();
            if waited >= options.silence {
                if !known {
                    return Err(self.silent(waited));
                }
                if let Some(run) = self
                    .runs(user_id, 50)
                    .await?
                    .into_iter()
                    .find(|r| r.run_id == run_id)
                    && run.is_final()
                {
                    on_event(&run);
                    return Ok(run);
                }
                last_heard = Instant::now();
            }
            let response = self
                .send_raw(
                    Method::GET,
                    &stream_path,
                    &[("replay", "100")],
                    Idempotent::No,
                )
                .await;
            let response = match response {
                Ok(response) => response,
                // No stream on this server: ask for the runs instead.
                Err(Error::NotFound { .. } | Error::Refused { status: 405, .. }) => {
                    return self
                        .poll_run(user_id, run_id, options, last_heard, on_event)
                        .await;
                }
                Err(e) if e.is_transient() => {
                    let Some(delay) = delays.next() else {
                        return Err(e);
                    };
                    tracing::warn!(error = %e, ?delay, "the sync stream is unavailable; retrying");
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let mut events = response.bytes_stream().eventsource();
            loop {
                let quiet = options
                    .reconnect_after
                    .min(options.silence.saturating_sub(last_heard.elapsed()));
                let next = match tokio::time::timeout(quiet, events.next()).await {
                    Ok(Some(Ok(next))) => next,
                    // Ended, broken or quiet: reopen (the replay fills gaps).
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "the sync stream broke; reopening");
                        break;
                    }
                    Ok(None) | Err(_) => break,
                };
                if next.event != "sync.status" {
                    continue;
                }
                let event: SyncEvent = match serde_json::from_str(&next.data) {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::warn!(error = %e, "an unreadable sync event; skipped");
                        continue;
                    }
                };
                let id = event.event_id.clone().unwrap_or_else(|| next.data.clone());
                if event.run_id != run_id || !seen.insert(id) {
                    continue;
                }
                last_heard = Instant::now();
                known = true;
                delays = self.retry_policy().delays();
                on_event(&event);
                if event.is_final() {
                    return Ok(event);
                }
            }
            // A stream that keeps ending without news is not hammered.
            let pause = delays.next().unwrap_or(Duration::from_secs(5));
            tokio::time::sleep(pause.min(options.silence)).await;
        }
    }

    /// The run that imports `uploaded`: its task id where the upload path
    /// returned one, else the run the server names after the upload's file
    /// (S3 POST), waited for up to `wait`.
    pub async fn run_of(
        &self,
        user_id: &str,
        uploaded: &crate::Uploaded,
        wait: Duration,
    ) -> Result<String, Error> {
        if let Some(task) = &uploaded.task_id {
            return Ok(task.clone());
        }
        let started = Instant::now();
        loop {
            if let Some(run) = self.run_named(user_id, &uploaded.name).await? {
                return Ok(run);
            }
            if started.elapsed() >= wait {
                return Err(self.silent(started.elapsed()));
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// The run the server made of the upload named `name`, if it has
    /// made one yet.
    pub(crate) async fn run_named(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        // Events carry the file name (`metadata`); run summaries do not.
        let recent: Vec<SyncEvent> = self
            .get(&format!("users/{user_id}/sync/recent"), &[("limit", 100)])
            .await?;
        Ok(recent
            .into_iter()
            .find(|r| r.metadata["filename"].as_str() == Some(name))
            .map(|r| r.run_id))
    }

    /// The latest state of each recent run of a user, newest first.
    pub async fn runs(&self, user_id: &str, limit: u32) -> Result<Vec<SyncEvent>, Error> {
        self.get(&format!("users/{user_id}/sync/runs"), &[("limit", limit)])
            .await
    }

    async fn poll_run(
        &self,
        user_id: &str,
        run_id: &str,
        options: FollowOptions,
        mut last_heard: Instant,
        mut on_event: impl FnMut(&SyncEvent),
    ) -> Result<SyncEvent, Error> {
        let mut last: Option<SyncEvent> = None;
        loop {
            // Events carry the file name (`metadata`); run summaries do not.
            let recent: Vec<SyncEvent> = self
                .get(&format!("users/{user_id}/sync/recent"), &[("limit", 100)])
                .await?;
            if let Some(run) = recent.into_iter().find(|r| r.run_id == run_id)
                && last.as_ref() != Some(&run)
            {
                last_heard = Instant::now();
                on_event(&run);
                if run.is_final() {
                    return Ok(run);
                }
                last = Some(run);
            }
            let waited = last_heard.elapsed();
            if waited >= options.silence {
                return Err(self.silent(waited));
            }
            tokio::time::sleep(options.poll_every).await;
        }
    }

    fn silent(&self, waited: Duration) -> Error {
        Error::Silent {
            server: self.server().origin().to_string(),
            waited_secs: waited.as_secs(),
        }
    }
}
