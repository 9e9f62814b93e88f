//! `/auth/login` and `/token/refresh`.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::error::{ApiError, BAD_LOGIN, BAD_TOKEN};
use crate::extract::{ValidForm, ValidJson};
use crate::refresh::{issue_refresh, rotate_refresh};

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    username: Option<String>,
    password: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub refresh_token: Option<String>,
    pub expires_in: Option<i64>,
}

fn tokens(state: &AppState, account_id: &str, refresh: String) -> TokenResponse {
    TokenResponse {
        access_token: state.keys.issue(account_id),
        token_type: "bearer".into(),
        refresh_token: Some(refresh),
        expires_in: Some(state.keys.access_ttl_secs),
    }
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ValidForm(form): ValidForm<LoginForm>,
) -> Result<Json<TokenResponse>, ApiError> {
    // A missing or empty field is answered like a wrong password.
    let Some((email, password)) = form
        .and_then(|f| Some((f.username?, f.password?)))
        .filter(|(e, p)| !e.is_empty() && !p.is_empty())
    else {
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    };
    let address = peer.ip();
    // Before any hashing: a held-back login costs the server nothing.
    state
        .throttle
        .check(&email, address, state.config.clock.now_secs())
        .map_err(|secs| {
            ApiError::TooManyRequests(
                format!("Too many failed logins; try again in {secs} seconds"),
                secs,
            )
        })?;
    let lookup = email.clone();
    let account: Option<(String, String)> = state
        .db
        .call(move |c| {
            c.query_row(
                "SELECT id, password_hash FROM accounts WHERE email = ?",
                [&lookup],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await?;
    // Verify even for an unknown email, so timing does not tell which it was.
    let (account_id, phc) = account.unwrap_or_else(|| (String::new(), state.dummy_hash.clone()));
    let ok = state.hashing.verify(password, phc).await?;
    if !ok || account_id.is_empty() {
        state
            .throttle
            .failed(&email, address, state.config.clock.now_secs());
        // Not the submitted name: people paste passwords into it.
        tracing::info!("refused a login");
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    }
    state.throttle.succeeded(&email);
    let refresh = issue_refresh(&state, &account_id).await?;
    Ok(Json(tokens(&state, &account_id, refresh)))
}

#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RefreshBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let (account, next) = rotate_refresh(&state, &body.refresh_token)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_TOKEN))?;
    Ok(Json(tokens(&state, &account, next)))
}
