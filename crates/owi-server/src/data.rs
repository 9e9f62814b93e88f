//! Read-back: `/events/workouts` and `/timeseries`, enough to check what an
//! import stored.

use axum::Json;
use axum::extract::{Path, State};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Caller;
use crate::db::rfc3339;
use crate::error::ApiError;
use crate::extract::ValidQuery;
use crate::users::require_user;

#[derive(Debug, Serialize, Deserialize)]
pub struct Pagination {
    pub next_cursor: Option<String>,
    pub previous_cursor: Option<String>,
    pub has_more: bool,
    pub total_count: u64,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Paged<T> {
    pub data: Vec<T>,
    pub pagination: Pagination,
    pub metadata: serde_json::Value,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WorkoutSource {
    pub provider: String,
    pub source: String,
    pub device: Option<String>,
    pub device_type: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct WorkoutOut {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub name: Option<String>,
    pub start_time: String,
    pub end_time: String,
    pub zone_offset: String,
    pub duration_seconds: f64,
    pub source: WorkoutSource,
    pub calories_kcal: Option<f64>,
    pub distance_meters: Option<f64>,
    pub avg_heart_rate_bpm: Option<f64>,
    pub max_heart_rate_bpm: Option<f64>,
    pub avg_pace_sec_per_km: Option<f64>,
    pub elevation_gain_meters: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct WorkoutQuery {
    start_date: Option<String>,
    end_date: Option<String>,
    record_type: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

fn instant(raw: &Option<String>, name: &str) -> Result<Option<i64>, ApiError> {
    match raw.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(s) => s
            .parse::<jiff::Timestamp>()
            .map(|t| Some(t.as_second()))
            .or_else(|_| {
                // A bare date means its midnight, UTC.
                s.parse::<jiff::civil::Date>()
                    .ok()
                    .and_then(|d| d.to_zoned_datetime(jiff::tz::TimeZone::UTC).ok())
                    .map(|z| Some(z.timestamp().as_second()))
                    .ok_or(())
            })
            .map_err(|()| ApiError::BadRequest(format!("Invalid datetime format - {name}: {s}"))),
    }
}

fn zone(offset_min: i64) -> String {
    let sign = if offset_min < 0 { '-' } else { '+' };
    format!(
        "{sign}{:02}:{:02}",
        offset_min.abs() / 60,
        offset_min.abs() % 60
    )
}

fn time_at(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .map(rfc3339)
        .unwrap_or_default()
}

/// Cursor: the position after the last row given, `start:id`.
fn decode_cursor(raw: &Option<String>) -> Result<Option<(i64, String)>, ApiError> {
    let Some(raw) = raw.as_deref().filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || ApiError::BadRequest(format!("Invalid cursor - cursor: {raw}"));
    let text =
        String::from_utf8(URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?).map_err(|_| bad())?;
    let (start, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((start.parse().map_err(|_| bad())?, id.to_string())))
}

fn limit_of(limit: Option<u32>) -> Result<u32, ApiError> {
    let limit = limit.unwrap_or(50);
    if (1..=100).contains(&limit) {
        Ok(limit)
    } else {
        Err(ApiError::BadRequest(
            "Input should be less than or equal to 100 and greater than or equal to 1 - limit"
                .into(),
        ))
    }
}

pub async fn workouts(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<WorkoutQuery>,
) -> Result<Json<Paged<WorkoutOut>>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    let from = instant(&q.start_date, "start_date")?;
    let to = instant(&q.end_date, "end_date")?;
    let limit = limit_of(q.limit)?;
    let after = decode_cursor(&q.cursor)?;
    let kind = q.record_type.filter(|s| !s.is_empty());
    let until = if state.config.compat.lists_workouts_by_end() {
        "end < ?3"
    } else {
        "start <= ?3"
    };
    let (rows, total) = state
        .data
        .call(move |c| {
            let filter = format!(
                "user_id = ?1 AND (?2 IS NULL OR start >= ?2) AND (?3 IS NULL OR {until}) AND (?4 IS NULL OR type = ?4)"
            );
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM workouts WHERE {filter}"),
                params![user_id, from, to, kind],
                |r| r.get(0),
            )?;
            let (after_start, after_id) = after.unwrap_or((i64::MIN, String::new()));
            let mut stmt = c.prepare(&format!(
                "SELECT id, type, start, end, zone_offset, duration_s, source, device, calories_kcal, distance_m, hr_avg, hr_max
                 FROM workouts WHERE {filter} AND (start > ?5 OR (start = ?5 AND id > ?6))
                 ORDER BY start, id LIMIT ?7"
            ))?;
            let rows = stmt
                .query_map(params![user_id, from, to, kind, after_start, after_id, limit + 1], |r| {
                    let offset: i64 = r.get(4)?;
                    let duration: f64 = r.get(5)?;
                    let distance: Option<f64> = r.get(9)?;
                    Ok((
                        r.get::<_, i64>(2)?,
                        WorkoutOut {
                            id: r.get(0)?,
                            kind: r.get(1)?,
                            name: None,
                            start_time: time_at(r.get(2)?),
                            end_time: time_at(r.get(3)?),
                            zone_offset: zone(offset),
                            duration_seconds: duration,
                            source: WorkoutSource {
                                provider: "apple".into(),
                                source: r.get(6)?,
                                device: r.get(7)?,
                                device_type: None,
                            },
                            calories_kcal: r.get(8)?,
                            distance_meters: distance,
                            avg_heart_rate_bpm: r.get(10)?,
                            max_heart_rate_bpm: r.get(11)?,
                            avg_pace_sec_per_km: distance
                                .filter(|d| *d > 0.0)
                                .map(|d| duration / (d / 1000.0)),
                            elevation_gain_meters: None,
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total as u64))
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|(start, w)| (format!("{start}:{}", w.id), w))
        .collect();
    Ok(Json(page(rows, limit, total)))
}

#[derive(Debug, Serialize, Deserialize)]
pub struct SampleOut {
    pub timestamp: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub value: f64,
    pub unit: Option<String>,
    pub source: String,
    pub zone_offset: String,
}

#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    start_time: Option<String>,
    end_time: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

pub async fn timeseries(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<SeriesQuery>,
) -> Result<Json<Paged<SampleOut>>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    let from = instant(&q.start_time, "start_time")?;
    let to = instant(&q.end_time, "end_time")?;
    let limit = limit_of(q.limit)?;
    let after = decode_cursor(&q.cursor)?;
    let kind = q.kind.filter(|s| !s.is_empty());
    let (rows, total) = state
        .data
        .call(move |c| {
            let filter = "user_id = ?1 AND (?2 IS NULL OR recorded_at >= ?2) AND (?3 IS NULL OR recorded_at <= ?3) AND (?4 IS NULL OR series_type = ?4)";
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM samples WHERE {filter}"),
                params![user_id, from, to, kind],
                |r| r.get(0),
            )?;
            let (after_at, after_key) = after.unwrap_or((i64::MIN, String::new()));
            let mut stmt = c.prepare(&format!(
                "SELECT recorded_at, series_type, value, unit, source, zone_offset FROM samples
                 WHERE {filter} AND (recorded_at > ?5 OR (recorded_at = ?5 AND series_type || '|' || source > ?6))
                 ORDER BY recorded_at, series_type || '|' || source LIMIT ?7"
            ))?;
            let rows = stmt
                .query_map(params![user_id, from, to, kind, after_at, after_key, limit + 1], |r| {
                    let at: i64 = r.get(0)?;
                    let kind: String = r.get(1)?;
                    let source: String = r.get(4)?;
                    let offset: i64 = r.get(5)?;
                    Ok((
                        at,
                        format!("{kind}|{source}"),
                        SampleOut {
                            timestamp: time_at(at),
                            kind,
                            value: r.get(2)?,
                            unit: r.get(3)?,
                            source,
                            zone_offset: zone(offset),
                        },
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((rows, total as u64))
        })
        .await?;
    let rows = rows
        .into_iter()
        .map(|(at, key, sample)| (format!("{at}:{key}"), sample))
        .collect();
    Ok(Json(page(rows, limit, total)))
}

/// One page from up to `limit + 1` rows, each with its cursor position: the
/// extra row only tells that there is more.
fn page<T>(mut rows: Vec<(String, T)>, limit: u32, total: u64) -> Paged<T> {
    let has_more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = has_more
        .then(|| {
            rows.last()
                .map(|(position, _)| URL_SAFE_NO_PAD.encode(position))
        })
        .flatten();
    Paged {
        data: rows.into_iter().map(|(_, item)| item).collect(),
        pagination: Pagination {
            next_cursor,
            previous_cursor: None,
            has_more,
            total_count: total,
        },
        metadata: serde_json::json!({}),
    }
}

/// `/summaries/data`: how much a user has, optionally within a window, as
/// Open Wearables counts it — sleep apart from the other samples (real
/// servers keep sleep as sessions, not data points).
#[derive(Debug, Serialize, Deserialize)]
pub struct DataSummary {
    pub user_id: String,
    pub total_data_points: u64,
    pub total_workouts: u64,
    pub total_sleep_events: u64,
    pub series_type_counts: std::collections::BTreeMap<String, u64>,
    pub workout_type_counts: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryQuery {
    start_date: Option<String>,
    end_date: Option<String>,
}

pub async fn summary(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidQuery(q): ValidQuery<SummaryQuery>,
) -> Result<Json<DataSummary>, ApiError> {
    let user_id = require_user(&state, &user_id).await?;
    let from = instant(&q.start_date, "start_date")?;
    let to = instant(&q.end_date, "end_date")?;
    let sleep = crate::series_type("HKCategoryTypeIdentifierSleepAnalysis");
    let id = user_id.clone();
    let (series, workouts) = state
        .data
        .call(move |c| {
            let counts = |sql: &str| -> rusqlite::Result<Vec<(String, u64)>> {
                let mut stmt = c.prepare(sql)?;
                let rows: Vec<(String, u64)> = stmt
                    .query_map(params![id, from, to], |r| {
                        Ok((r.get(0)?, r.get::<_, i64>(1)? as u64))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                Ok(rows)
            };
            Ok((
                counts(
                    "SELECT series_type, COUNT(*) FROM samples WHERE user_id = ?1
                     AND (?2 IS NULL OR recorded_at >= ?2) AND (?3 IS NULL OR recorded_at <= ?3)
                     GROUP BY series_type",
                )?,
                counts(
                    "SELECT type, COUNT(*) FROM workouts WHERE user_id = ?1
                     AND (?2 IS NULL OR start >= ?2) AND (?3 IS NULL OR start <= ?3)
                     GROUP BY type",
                )?,
            ))
        })
        .await?;
    let total_sleep_events = series
        .iter()
        .filter(|(kind, _)| *kind == sleep)
        .map(|(_, n)| n)
        .sum();
    let series_type_counts: std::collections::BTreeMap<String, u64> = series
        .into_iter()
        .filter(|(kind, _)| *kind != sleep)
        .collect();
    let workout_type_counts: std::collections::BTreeMap<String, u64> =
        workouts.into_iter().collect();
    Ok(Json(DataSummary {
        user_id,
        total_data_points: series_type_counts.values().sum(),
        total_workouts: workout_type_counts.values().sum(),
        total_sleep_events,
        series_type_counts,
        workout_type_counts,
    }))
}
