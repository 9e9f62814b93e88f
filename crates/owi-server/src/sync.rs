//! Sync status: every import, whichever way it came, emits
//! `SyncStatusEvent`s; they are kept (for replay, `/sync/recent` and
//! `/sync/runs`) and broadcast to live SSE streams.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};

use crate::extract::ValidQuery;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::stream::{self, Stream, StreamExt};
use rusqlite::params;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::AppState;
use crate::auth::Caller;
use crate::db::{Db, now_rfc3339};
use crate::error::{ApiError, Error};
use crate::users::require_user;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Queued,
    Started,
    Fetching,
    Processing,
    Saving,
    Completed,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    InProgress,
    Success,
    Partial,
    Failed,
    Cancelled,
    Skipped,
}

/// As the real server documents it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncStatusEvent {
    pub event_id: String,
    pub run_id: String,
    pub user_id: String,
    pub provider: String,
    pub source: String,
    pub stage: Stage,
    pub status: Status,
    pub message: Option<String>,
    pub progress: Option<f64>,
    pub items_processed: Option<u64>,
    pub items_total: Option<u64>,
    pub error: Option<String>,
    pub metadata: serde_json::Value,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub timestamp: String,
}

/// The latest state of one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SyncRunSummary {
    pub run_id: String,
    pub user_id: String,
    pub provider: String,
    pub source: String,
    pub stage: Stage,
    pub status: Status,
    pub message: Option<String>,
    pub progress: Option<f64>,
    pub items_processed: Option<u64>,
    pub items_total: Option<u64>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub last_update: String,
}

/// Where events go: the database, then every live stream. Each carries its
/// row's `seq`, so a stream that falls behind can catch up from the table.
#[derive(Debug, Clone)]
pub struct Hub {
    db: Db,
    live: broadcast::Sender<(i64, SyncStatusEvent)>,
}

/// What a run reports at one moment.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub run_id: &'a str,
    pub user_id: &'a str,
    pub filename: &'a str,
    pub stage: Stage,
    pub status: Status,
    pub message: Option<String>,
    pub progress: Option<f64>,
    pub items_processed: Option<u64>,
    pub items_total: Option<u64>,
    pub error: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
}

impl Hub {
    pub fn new(db: Db) -> Self {
        Hub::with_capacity(db, 1024)
    }

    fn with_capacity(db: Db, capacity: usize) -> Self {
        let (live, _) = broadcast::channel(capacity);
        Hub { db, live }
    }

    /// Every event of `user_id` from now on, in order, none lost: a stream
    /// that falls behind the broadcast reads what it missed from the table.
    /// Also returns the last `replay` events stored before.
    async fn follow(
        &self,
        user_id: &str,
        replay: u32,
    ) -> Result<
        (
            Vec<SyncStatusEvent>,
            impl Stream<Item = SyncStatusEvent> + use<>,
        ),
        Error,
    > {
        // Subscribe before reading, so nothing falls in between; the seq
        // numbers drop what arrives twice.
        let live = self.live.subscribe();
        let user = user_id.to_string();
        let (last, replayed) = self
            .db
            .call(move |c| {
                let last: i64 = c.query_row(
                    "SELECT coalesce(max(seq), 0) FROM sync_events WHERE user_id = ?",
                    [&user],
                    |r| r.get(0),
                )?;
                let mut stmt = c.prepare(
                    "SELECT json FROM sync_events WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
                )?;
                let rows = stmt.query_map(params![user, replay], |r| r.get::<_, String>(0))?;
                Ok((last, rows.collect::<rusqlite::Result<Vec<String>>>()?))
            })
            .await?;
        let mut replayed: Vec<SyncStatusEvent> = replayed
            .iter()
            .filter_map(|j| serde_json::from_str(j).ok())
            .collect();
        replayed.reverse();
        let follow = Follow {
            live,
            db: self.db.clone(),
            user: user_id.to_string(),
            last,
            backlog: std::collections::VecDeque::new(),
        };
        let live = stream::unfold(follow, |mut f| async move {
            loop {
                if let Some(event) = f.backlog.pop_front() {
                    return Some((event, f));
                }
                match f.live.recv().await {
                    Ok((seq, event)) => {
                        if event.user_id == f.user && seq > f.last {
                            f.last = seq;
                            return Some((event, f));
                        }
                    }
                    Err(broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::debug!(missed, "a sync stream fell behind; reading back");
                        let missed = events_after(&f.db, &f.user, f.last).await.ok()?;
                        for (seq, event) in missed {
                            f.last = seq;
                            f.backlog.push_back(event);
                        }
                    }
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Ok((replayed, live))
    }

    /// Stores and broadcasts an event (from a blocking thread).
    pub fn emit(&self, r: Report<'_>) -> Result<SyncStatusEvent, Error> {
        let event = SyncStatusEvent {
            event_id: uuid::Uuid::new_v4().to_string(),
            run_id: r.run_id.to_string(),
            user_id: r.user_id.to_string(),
            provider: "apple".into(),
            source: "xml_import".into(),
            stage: r.stage,
            status: r.status,
            message: r.message,
            progress: r.progress,
            items_processed: r.items_processed,
            items_total: r.items_total,
            error: r.error,
            metadata: serde_json::json!({ "filename": r.filename }),
            started_at: r.started_at,
            ended_at: r.ended_at,
            timestamp: now_rfc3339(),
        };
        let json = serde_json::to_string(&event).unwrap_or_default();
        let (user, run) = (event.user_id.clone(), event.run_id.clone());
        // Broadcast under the database lock, so streams see events in seq
        // order (a stream drops a seq lower than one it has passed on).
        self.db.blocking(|c| {
            c.execute(
                "INSERT INTO sync_events (user_id, run_id, json) VALUES (?, ?, ?)",
                params![user, run, json],
            )?;
            // No live stream listening is fine.
            let _ = self.live.send((c.last_insert_rowid(), event.clone()));
            Ok(())
        })?;
        Ok(event)
    }
}

struct Follow {
    live: broadcast::Receiver<(i64, SyncStatusEvent)>,
    db: Db,
    user: String,
    /// The seq of the last event passed on.
    last: i64,
    backlog: std::collections::VecDeque<SyncStatusEvent>,
}

/// A user's events stored after `seq`, oldest first.
async fn events_after(
    db: &Db,
    user_id: &str,
    seq: i64,
) -> Result<Vec<(i64, SyncStatusEvent)>, Error> {
    let user = user_id.to_string();
    let rows: Vec<(i64, String)> = db
        .call(move |c| {
            let mut stmt = c.prepare(
                "SELECT seq, json FROM sync_events WHERE user_id = ? AND seq > ? ORDER BY seq LIMIT 10000",
            )?;
            let rows = stmt.query_map(params![user, seq], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.collect()
        })
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(seq, j)| Some((seq, serde_json::from_str(&j).ok()?)))
        .collect())
}

/// The last `limit` events of a user, oldest first.
async fn recent_events(db: &Db, user_id: &str, limit: u32) -> Result<Vec<SyncStatusEvent>, Error> {
    let user = user_id.to_string();
    let mut events: Vec<SyncStatusEvent> = db
        .call(move |c| {
            let mut stmt = c.prepare(
                "SELECT json FROM sync_events WHERE user_id = ? ORDER BY seq DESC LIMIT ?",
            )?;
            let rows = stmt.query_map(params![user, limit], |r| r.get::<_, String>(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()
        })
        .await?
        .iter()
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect();
    events.reverse();
    Ok(events)
}

#[derive(Debug, Deserialize)]
pub struct StreamQuery {
    #[serde(default)]
    replay: Option<u32>,
}

pub async fn stream(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    let (replay, live) = state
        .hub
        .follow(&user_id, q.replay.unwrap_or(0).min(1000))
        .await?;
    let mut closing = state.closing.subscribe();
    let closed = async move {
        let _ = closing.wait_for(|c| *c).await;
    };
    let events = stream::iter(replay)
        .chain(live)
        .take_until(closed)
        .map(|event| {
            Ok(Event::default()
                .event("sync.status")
                .data(serde_json::to_string(&event).unwrap_or_default()))
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(state.config.heartbeat).text("")))
}

#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    #[serde(default)]
    limit: Option<u32>,
}

pub async fn recent(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<LimitQuery>,
) -> Result<Json<Vec<SyncStatusEvent>>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    let mut events =
        recent_events(&state.db, &user_id, q.limit.unwrap_or(50).clamp(1, 500)).await?;
    events.reverse();
    Ok(Json(events))
}

pub async fn runs(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<LimitQuery>,
) -> Result<Json<Vec<SyncRunSummary>>, ApiError> {
    let user_id = require_user(&state, &user_id)
        .await
        .map_err(|_| ApiError::NotFound("User not found".into()))?;
    let limit = q.limit.unwrap_or(20).clamp(1, 200);
    let user = user_id.clone();
    let latest: Vec<String> = state
        .db
        .call(move |c| {
            let mut stmt = c.prepare(
                "SELECT json FROM sync_events WHERE seq IN
                   (SELECT MAX(seq) FROM sync_events WHERE user_id = ?1 GROUP BY run_id)
                 ORDER BY seq DESC LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![user, limit], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
        .await?;
    let runs = latest
        .iter()
        .filter_map(|j| serde_json::from_str::<SyncStatusEvent>(j).ok())
        .map(|e| SyncRunSummary {
            run_id: e.run_id,
            user_id: e.user_id,
            provider: e.provider,
            source: e.source,
            stage: e.stage,
            status: e.status,
            message: e.message,
            progress: e.progress,
            items_processed: e.items_processed,
            items_total: e.items_total,
            error: e.error,
            started_at: e.started_at,
            ended_at: e.ended_at,
            last_update: e.timestamp,
        })
        .collect();
    Ok(Json(runs))
}

/// How often an idle SSE stream sends a `:` comment line.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_stream_that_falls_behind_catches_up_from_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(&dir.path().join("s.sqlite"), crate::db::SERVER_SCHEMA).unwrap();
        // Room for two events in flight: the reader below falls behind.
        let hub = Hub::with_capacity(db, 2);
        let report = |n: u64| Report {
            run_id: "run",
            user_id: "u",
            filename: "export.xml",
            stage: Stage::Processing,
            status: Status::InProgress,
            message: None,
            progress: None,
            items_processed: Some(n),
            items_total: None,
            error: None,
            started_at: None,
            ended_at: None,
        };
        hub.emit(report(0)).unwrap();
        let (replayed, live) = hub.follow("u", 5).await.unwrap();
        assert_eq!(replayed.len(), 1);
        for n in 1..=20 {
            hub.emit(report(n)).unwrap();
        }
        let seen: Vec<u64> = live
            .take(20)
            .map(|e| e.items_processed.unwrap())
            .collect()
            .await;
        assert_eq!(
            seen,
            (1..=20).collect::<Vec<_>>(),
            "every event, once, in order"
        );
    }
}
