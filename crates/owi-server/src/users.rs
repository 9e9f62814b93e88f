//! `/users`: the people whose data is imported.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::Caller;
use crate::db::now_rfc3339;
use crate::error::ApiError;
use crate::extract::{ValidJson, ValidQuery};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct UserRead {
    pub id: String,
    pub created_at: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub last_synced_at: Option<String>,
    pub last_synced_provider: Option<String>,
    pub has_active_connection: bool,
}

const USER_COLUMNS: &str =
    "id, created_at, first_name, last_name, email, last_synced_at, last_synced_provider";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRead> {
    Ok(UserRead {
        id: r.get(0)?,
        created_at: r.get(1)?,
        first_name: r.get(2)?,
        last_name: r.get(3)?,
        email: r.get(4)?,
        last_synced_at: r.get(5)?,
        last_synced_provider: r.get(6)?,
        has_active_connection: false,
    })
}

/// The canonical id of an existing user, or the real server's 400/404.
/// The user an upload is for. Open Wearables 0.6 takes any id here (the
/// import fails later); this server refuses a malformed or unknown one
/// before a byte of the file is read, unless it imitates that version.
pub async fn upload_user(state: &AppState, raw: &str) -> Result<String, ApiError> {
    if state.config.compat.checks_user_on_upload() {
        return require_user(state, raw).await;
    }
    Ok(uuid::Uuid::parse_str(raw).map_or_else(|_| raw.to_string(), |id| id.to_string()))
}

pub async fn require_user(state: &AppState, raw: &str) -> Result<String, ApiError> {
    let id = uuid::Uuid::parse_str(raw)
        .map_err(|_| {
            ApiError::BadRequest(format!("Input should be a valid UUID - user_id: {raw}"))
        })?
        .to_string();
    let probe = id.clone();
    let exists = state
        .db
        .call(move |c| {
            c.query_row("SELECT 1 FROM users WHERE id = ?", [&probe], |_| Ok(()))
                .optional()
        })
        .await?
        .is_some();
    if exists {
        Ok(id)
    } else {
        Err(ApiError::NotFound(format!("User with ID: {id} not found.")))
    }
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
    limit: Option<u32>,
    search: Option<String>,
    email: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub limit: u32,
    pub pages: u32,
    pub has_next: bool,
    pub has_prev: bool,
}

pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    ValidQuery(q): ValidQuery<ListQuery>,
) -> Result<Json<Page<UserRead>>, ApiError> {
    let page = q.page.unwrap_or(1);
    let limit = q.limit.unwrap_or(20);
    if page < 1 {
        return Err(ApiError::BadRequest(
            "Input should be greater than or equal to 1 - page".into(),
        ));
    }
    if !(1..=100).contains(&limit) {
        return Err(ApiError::BadRequest(
            "Input should be less than or equal to 100 and greater than or equal to 1 - limit"
                .into(),
        ));
    }
    let sort_by = match q.sort_by.as_deref().unwrap_or("created_at") {
        "created_at" => "created_at",
        "email" => "email",
        "first_name" => "first_name",
        "last_name" => "last_name",
        other => {
            return Err(ApiError::BadRequest(format!(
                "Invalid sort field - sort_by: {other}"
            )));
        }
    };
    let order = match q.sort_order.as_deref().unwrap_or("desc") {
        "asc" => "ASC",
        "desc" => "DESC",
        other => {
            return Err(ApiError::BadRequest(format!(
                "Invalid sort order - sort_order: {other}"
            )));
        }
    };
    let search = q
        .search
        .filter(|s| !s.is_empty())
        .map(|s| format!("%{}%", s.to_lowercase()));
    let email = q.email.filter(|s| !s.is_empty());
    let offset = i64::from(page - 1) * i64::from(limit);
    let (items, total) = state
        .db
        .call(move |c| {
            let filter = "(?1 IS NULL OR lower(coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || coalesce(email, '') || ' ' || id) LIKE ?1)
                          AND (?2 IS NULL OR email = ?2)";
            let total: i64 = c.query_row(
                &format!("SELECT COUNT(*) FROM users WHERE {filter}"),
                params![search, email],
                |r| r.get(0),
            )?;
            let sql = format!(
                "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY {sort_by} {order}, id LIMIT ?3 OFFSET ?4"
            );
            let mut stmt = c.prepare(&sql)?;
            let items = stmt
                .query_map(params![search, email, limit, offset], user_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((items, total as u64))
        })
        .await?;
    let pages = total.div_ceil(u64::from(limit)) as u32;
    Ok(Json(Page {
        items,
        total,
        page,
        limit,
        pages,
        has_next: page < pages,
        has_prev: page > 1,
    }))
}

#[derive(Debug, Deserialize)]
pub struct UserCreate {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
}

pub async fn create(
    State(state): State<AppState>,
    _caller: Caller,
    ValidJson(body): ValidJson<UserCreate>,
) -> Result<(StatusCode, Json<UserRead>), ApiError> {
    if let Some(email) = &body.email
        && !email.contains('@')
    {
        return Err(ApiError::BadRequest(
            "value is not a valid email address - email".into(),
        ));
    }
    let id = uuid::Uuid::new_v4().to_string();
    let user = UserRead {
        id: id.clone(),
        created_at: now_rfc3339(),
        first_name: body.first_name,
        last_name: body.last_name,
        email: body.email,
        last_synced_at: None,
        last_synced_provider: None,
        has_active_connection: false,
    };
    let row = user.clone();
    let inserted = state
        .db
        .call(move |c| {
            let taken = match &row.email {
                Some(email) => c
                    .query_row("SELECT 1 FROM users WHERE email = ?", [email], |_| Ok(()))
                    .optional()?
                    .is_some(),
                None => false,
            };
            if taken {
                return Ok(false);
            }
            c.execute(
                "INSERT INTO users (id, created_at, first_name, last_name, email) VALUES (?, ?, ?, ?, ?)",
                params![row.id, row.created_at, row.first_name, row.last_name, row.email],
            )?;
            Ok(true)
        })
        .await?;
    if !inserted {
        return Err(ApiError::Conflict(
            "User with this email already exists".into(),
        ));
    }
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
) -> Result<Json<UserRead>, ApiError> {
    let id = require_user(&state, &user_id).await?;
    let user = state
        .db
        .call(move |c| {
            c.query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?"),
                [&id],
                user_row,
            )
        })
        .await?;
    Ok(Json(user))
}
