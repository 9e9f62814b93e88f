//! Following imports on the server to their end, as far as the server lets
//! a client see them.
//!
//! Servers differ. The bundled one reports every stage of a run whose id is
//! the task id its upload answered. Open Wearables 0.6 gives a direct
//! upload's run an id of its own, found only by the uploaded file's name in
//! its events' metadata, and says only `started` and then `completed` or
//! `failed`; of an S3 import it says nothing at all. So a run is recognised
//! by its task id or by its file name (every upload's name is unique), and
//! alongside the events the data itself is watched: the workouts and
//! samples of the export's span arriving on the server. The watch ends
//! when every run has ended, when everything expected is on the server
//! (even with no word from it), or after a bounded time with neither news
//! nor new data.

use std::time::{Duration, Instant};

use eventsource_stream::Eventsource;
use futures_util::StreamExt;
use reqwest::Method;
use serde::{Deserialize, Serialize};

use crate::client::{Client, Idempotent};
use crate::error::Error;
use crate::readback::{Expected, OnServer};

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

    /// The uploaded file's name, where the server says it.
    pub fn filename(&self) -> Option<&str> {
        self.metadata.get("filename")?.as_str()
    }
}

/// How to recognise the run that imports one upload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunTarget {
    /// The run id, where it is known already (`owi status`).
    pub run_id: Option<String>,
    /// The task id the upload was answered with: the run's id on servers
    /// that say so, an unrelated id on others.
    pub task_id: Option<String>,
    /// The uploaded file's name, which Open Wearables puts in every event.
    pub name: Option<String>,
}

impl RunTarget {
    pub fn run(run_id: &str) -> RunTarget {
        RunTarget {
            run_id: Some(run_id.to_string()),
            ..RunTarget::default()
        }
    }

    fn matches(&self, event: &SyncEvent) -> bool {
        let is = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_some_and(|w| have == Some(w))
        };
        is(&self.run_id, Some(&event.run_id))
            || is(&self.task_id, Some(&event.run_id))
            || is(&self.name, event.filename())
    }
}

/// How long to wait, and how.
#[derive(Debug, Clone, Copy)]
pub struct FollowOptions {
    /// Give up when, for this long, the server has said nothing new and no
    /// new data has arrived.
    pub silence: Duration,
    /// Polling interval where there is no stream.
    pub poll_every: Duration,
    /// A stream quiet this long is reopened (heartbeats are not events).
    pub reconnect_after: Duration,
    /// How often the data on the server is counted.
    pub data_every: Duration,
}

impl Default for FollowOptions {
    fn default() -> Self {
        FollowOptions {
            silence: Duration::from_secs(120),
            poll_every: Duration::from_secs(2),
            reconnect_after: Duration::from_secs(45),
            data_every: Duration::from_secs(5),
        }
    }
}

/// How a watch ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Watched {
    /// Every run ended well; their last events, in target order.
    Reported(Vec<SyncEvent>),
    /// A run failed: its index and its last event; `last` holds every
    /// run's latest event (others may have ended well).
    Failed {
        index: usize,
        event: SyncEvent,
        last: Vec<Option<SyncEvent>>,
    },
    /// Everything expected is on the server, though not every run was
    /// reported ended (or reported at all).
    Found(OnServer),
    /// Neither news nor new data for `waited_secs`.
    Silent {
        waited_secs: u64,
        /// The latest event of each run, where there was one.
        last: Vec<Option<SyncEvent>>,
        on_server: Option<OnServer>,
    },
}

/// What a watch reports as it goes.
pub trait WatchSink: Send + Sync {
    /// A new event of the run of target `index`.
    fn event(&self, index: usize, event: &SyncEvent);
    /// New counts of the data on the server.
    fn data(&self, on_server: &OnServer, expected: &Expected) {
        let _ = (on_server, expected);
    }
}

impl<F: Fn(usize, &SyncEvent) + Send + Sync> WatchSink for F {
    fn event(&self, index: usize, event: &SyncEvent) {
        self(index, event)
    }
}

/// The sync stream between reads: kept open across the data counts.
struct OpenStream {
    events: std::pin::Pin<
        Box<
            dyn futures_util::Stream<
                    Item = Result<
                        eventsource_stream::Event,
                        eventsource_stream::EventStreamError<reqwest::Error>,
                    >,
                > + Send,
        >,
    >,
    opened: Instant,
    /// When it last gave anything.
    heard: Instant,
}

/// The state of one watch: which runs are matched, what was last heard.
struct Watch<'a> {
    targets: &'a [RunTarget],
    expected: Option<&'a Expected>,
    sink: &'a dyn WatchSink,
    /// Each target's run id once recognised, and its latest event.
    runs: Vec<Option<String>>,
    last: Vec<Option<SyncEvent>>,
    seen: std::collections::HashSet<String>,
    on_server: Option<OnServer>,
    last_news: Instant,
}

impl Watch<'_> {
    /// Takes an event in; `Some` when it ends the watch.
    fn hear(&mut self, event: SyncEvent, id: String) -> Option<Watched> {
        let index = (0..self.targets.len()).find(|&i| match &self.runs[i] {
            Some(run) => *run == event.run_id,
            None => self.targets[i].matches(&event),
        })?;
        if !self.seen.insert(id) || self.last[index].as_ref() == Some(&event) {
            return None;
        }
        self.runs[index] = Some(event.run_id.clone());
        self.last_news = Instant::now();
        self.sink.event(index, &event);
        let ended = event.is_final();
        let failed = ended && !event.succeeded();
        self.last[index] = Some(event.clone());
        if failed {
            return Some(Watched::Failed {
                index,
                event,
                last: self.last.clone(),
            });
        }
        let all_ended = self
            .last
            .iter()
            .all(|e| e.as_ref().is_some_and(SyncEvent::is_final));
        all_ended.then(|| Watched::Reported(self.last.iter().flatten().cloned().collect()))
    }

    /// Takes new counts in; `Some` when everything expected is there and
    /// no run the server did report is still going. The first count is a
    /// baseline only: the events are read once before data can end the
    /// watch, so a server that reports is heard first.
    fn count(&mut self, on_server: OnServer) -> Option<Watched> {
        let expected = self.expected?;
        let baseline = self.on_server.is_none();
        let grew = self.on_server.is_none_or(|before| {
            on_server.workouts > before.workouts
                || on_server.samples.unwrap_or(0) > before.samples.unwrap_or(0)
        });
        if self.on_server != Some(on_server) {
            self.sink.data(&on_server, expected);
        }
        // Data already there when the watch began is no news of this import.
        if grew && self.on_server.is_some() {
            self.last_news = Instant::now();
        }
        self.on_server = Some(on_server);
        let running = self
            .last
            .iter()
            .any(|e| e.as_ref().is_some_and(|e| !e.is_final()));
        (!baseline && on_server.has_arrived(expected) && !running)
            .then_some(Watched::Found(on_server))
    }

    fn silent(&self) -> Watched {
        Watched::Silent {
            waited_secs: self.last_news.elapsed().as_secs(),
            last: self.last.clone(),
            on_server: self.on_server,
        }
    }
}

impl Client {
    /// Follows the runs of `targets` (one per uploaded piece) until they
    /// have all ended, or until what `expected` describes is on the server,
    /// or until `options.silence` passes with neither news nor new data.
    pub async fn watch(
        &self,
        user_id: &str,
        targets: &[RunTarget],
        expected: Option<&Expected>,
        options: FollowOptions,
        sink: &dyn WatchSink,
    ) -> Result<Watched, Error> {
        let mut watch = Watch {
            targets,
            expected,
            sink,
            runs: targets.iter().map(|t| t.run_id.clone()).collect(),
            last: vec![None; targets.len()],
            seen: Default::default(),
            on_server: None,
            last_news: Instant::now(),
        };
        let mut next_count = Instant::now();
        let mut delays = self.retry_policy().delays();
        let mut stream = true;
        let mut open = None;
        loop {
            if let Some(expected) = expected
                && Instant::now() >= next_count
            {
                match self.on_server(user_id, expected).await {
                    Ok(counts) => {
                        if let Some(done) = watch.count(counts) {
                            return Ok(done);
                        }
                    }
                    // The counts only add to what the events say: a count
                    // missed is taken again at the next one.
                    Err(e) => {
                        tracing::warn!(error = %e, "could not count the data on the server");
                    }
                }
                next_count = Instant::now() + options.data_every;
            }
            if watch.last_news.elapsed() >= options.silence {
                return Ok(watch.silent());
            }
            // Wait for events until the next count is due or silence ends.
            let until = (watch.last_news + options.silence).min(if expected.is_some() {
                next_count
            } else {
                Instant::now() + options.silence
            });
            let heard = if stream {
                match self
                    .stream_events(user_id, until, options, &mut watch, &mut open)
                    .await
                {
                    Ok(heard) => {
                        delays = self.retry_policy().delays();
                        heard
                    }
                    // No stream on this server: ask for recent events instead.
                    Err(Error::NotFound { .. } | Error::Refused { status: 405, .. }) => {
                        stream = false;
                        None
                    }
                    Err(e) if e.is_transient() => {
                        let delay = delays.next().ok_or(e)?;
                        tokio::time::sleep(
                            delay.min(until.saturating_duration_since(Instant::now())),
                        )
                        .await;
                        None
                    }
                    Err(e) => return Err(e),
                }
            } else {
                let heard = self.poll_events(user_id, &mut watch).await?;
                if heard.is_none() {
                    let pause = options
                        .poll_every
                        .min(until.saturating_duration_since(Instant::now()));
                    tokio::time::sleep(pause).await;
                }
                heard
            };
            if let Some(done) = heard {
                return Ok(done);
            }
        }
    }

    /// Reads the stream until `until`, opening it if `open` holds none and
    /// leaving it open for the next call; `Some` when an event ended the
    /// watch. A stream that broke, ended or stayed quiet for
    /// `reconnect_after` is closed (the next call reopens it; the replay
    /// fills the gap).
    async fn stream_events(
        &self,
        user_id: &str,
        until: Instant,
        options: FollowOptions,
        watch: &mut Watch<'_>,
        open: &mut Option<OpenStream>,
    ) -> Result<Option<Watched>, Error> {
        let mut stream = match open.take() {
            Some(stream) => stream,
            None => {
                let response = self
                    .send_raw(
                        Method::GET,
                        &format!("users/{user_id}/sync/stream"),
                        &[("replay", "100")],
                        Idempotent::No,
                    )
                    .await?;
                OpenStream {
                    events: Box::pin(response.bytes_stream().eventsource()),
                    opened: Instant::now(),
                    heard: Instant::now(),
                }
            }
        };
        loop {
            let now = Instant::now();
            if now >= until {
                *open = Some(stream);
                return Ok(None);
            }
            let quiet_for = now.saturating_duration_since(stream.heard);
            if quiet_for >= options.reconnect_after {
                return Ok(None);
            }
            let wait = until
                .saturating_duration_since(now)
                .min(options.reconnect_after - quiet_for);
            let next = match tokio::time::timeout(wait, stream.events.next()).await {
                Ok(Some(Ok(next))) => next,
                // Broken or ended: reopened by the next call, but a server
                // that ends streams at once is not asked in a busy loop.
                Ok(Some(Err(_)) | None) => {
                    tracing::debug!("the sync stream broke or ended; reopening");
                    let calm = Duration::from_secs(1).saturating_sub(stream.opened.elapsed());
                    tokio::time::sleep(calm.min(until.saturating_duration_since(Instant::now())))
                        .await;
                    return Ok(None);
                }
                Err(_) => continue,
            };
            stream.heard = Instant::now();
            if next.event != "sync.status" {
                continue;
            }
            match serde_json::from_str::<SyncEvent>(&next.data) {
                Ok(event) => {
                    let id = event.event_id.clone().unwrap_or(next.data);
                    if let Some(done) = watch.hear(event, id) {
                        return Ok(Some(done));
                    }
                }
                Err(e) => tracing::warn!(error = %e, "an unreadable sync event; skipped"),
            }
        }
    }

    /// One look at the recent events, oldest first.
    async fn poll_events(
        &self,
        user_id: &str,
        watch: &mut Watch<'_>,
    ) -> Result<Option<Watched>, Error> {
        let recent: Vec<SyncEvent> = self
            .get(&format!("users/{user_id}/sync/recent"), &[("limit", 100)])
            .await?;
        for event in recent.into_iter().rev() {
            // Without an id, the whole event is its identity (progress
            // within a stage is news).
            let id = match &event.event_id {
                Some(id) => id.clone(),
                None => serde_json::to_string(&event).unwrap_or_default(),
            };
            if let Some(done) = watch.hear(event, id) {
                return Ok(Some(done));
            }
        }
        Ok(None)
    }

    /// Reports each new event of `run_id` until the run ends; returns its
    /// last event (`succeeded()` says how it ended).
    pub async fn follow_run(
        &self,
        user_id: &str,
        run_id: &str,
        options: FollowOptions,
        on_event: impl FnMut(&SyncEvent) + Send,
    ) -> Result<SyncEvent, Error> {
        self.follow_one(user_id, RunTarget::run(run_id), options, on_event)
            .await
    }

    /// As [`Client::follow_run`], for the run that imports `uploaded`
    /// (recognised by its task id or its file name).
    pub async fn follow_upload(
        &self,
        user_id: &str,
        uploaded: &crate::Uploaded,
        options: FollowOptions,
        on_event: impl FnMut(&SyncEvent) + Send,
    ) -> Result<SyncEvent, Error> {
        let target = RunTarget {
            run_id: None,
            task_id: uploaded.task_id.clone(),
            name: Some(uploaded.name.clone()),
        };
        self.follow_one(user_id, target, options, on_event).await
    }

    async fn follow_one(
        &self,
        user_id: &str,
        target: RunTarget,
        options: FollowOptions,
        on_event: impl FnMut(&SyncEvent) + Send,
    ) -> Result<SyncEvent, Error> {
        let on_event = std::sync::Mutex::new(on_event);
        let sink = |_: usize, event: &SyncEvent| {
            if let Ok(mut on_event) = on_event.lock() {
                on_event(event);
            }
        };
        match self.watch(user_id, &[target], None, options, &sink).await? {
            Watched::Reported(mut last) => last.pop().ok_or_else(|| self.silent(0)),
            Watched::Failed { event, .. } => Ok(event),
            Watched::Found(_) => Err(self.silent(0)),
            Watched::Silent { waited_secs, .. } => Err(self.silent(waited_secs)),
        }
    }

    /// The latest state of each recent run of a user, newest first.
    pub async fn runs(&self, user_id: &str, limit: u32) -> Result<Vec<SyncEvent>, Error> {
        self.get(&format!("users/{user_id}/sync/runs"), &[("limit", limit)])
            .await
    }

    /// The newest events of a user, newest first (they name their file).
    pub async fn recent_events(&self, user_id: &str, limit: u32) -> Result<Vec<SyncEvent>, Error> {
        self.get(&format!("users/{user_id}/sync/recent"), &[("limit", limit)])
            .await
    }

    /// The run the server made of the upload named `name`, if it has
    /// made one yet.
    pub(crate) async fn run_named(
        &self,
        user_id: &str,
        name: &str,
    ) -> Result<Option<String>, Error> {
        let recent = self.recent_events(user_id, 100).await?;
        Ok(recent
            .into_iter()
            .find(|e| e.filename() == Some(name))
            .map(|e| e.run_id))
    }

    fn silent(&self, waited_secs: u64) -> Error {
        Error::Silent {
            server: self.server().origin().to_string(),
            waited_secs,
        }
    }
}
