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
use tokio_stream::wrappers::BroadcastStream;

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

/// Where events go: the database, then every live stream.
#[derive(Debug, Clone)]
pub struct Hub {
    db: Db,
    live: broadcast::Sender<SyncStatusEvent>,
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
        let (live, _) = broadcast::channel(1024);
        Hub { db, live }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<SyncStatusEvent> {
        self.live.subscribe()
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
        self.db.blocking(|c| {
            c.execute(
                "INSERT INTO sync_events (user_id, run_id, json) VALUES (?, ?, ?)",
                params![user, run, json],
            )
        })?;
        // No live stream listening is fine.
        let _ = self.live.send(event.clone());
        Ok(event)
    }
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
    // Subscribe before reading the replay, so nothing falls in between.
    let live = BroadcastStream::new(state.hub.subscribe());
    let replay = recent_events(&state.db, &user_id, q.replay.unwrap_or(0).min(1000)).await?;
    let seen: std::collections::HashSet<String> =
        replay.iter().map(|e| e.event_id.clone()).collect();
    let user = user_id.clone();
    let live = live.filter_map(move |item| {
        let keep = match item {
            Ok(event) if event.user_id == user && !seen.contains(&event.event_id) => Some(event),
            _ => None,
        };
        std::future::ready(keep)
    });
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
