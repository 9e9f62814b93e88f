//! `/auth/login` and `/token/refresh`.

use axum::Json;
use axum::extract::State;
use rusqlite::OptionalExtension;
use serde::{Deserialize, Serialize};

use crate::AppState;
use crate::auth::{issue_refresh, spend_refresh, verify_password};
use crate::error::{ApiError, BAD_LOGIN, BAD_TOKEN};
use crate::extract::{ValidForm, ValidJson};

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

async fn tokens_for(state: &AppState, account_id: &str) -> Result<TokenResponse, ApiError> {
    Ok(TokenResponse {
        access_token: state.keys.issue(account_id),
        token_type: "bearer".into(),
        refresh_token: Some(issue_refresh(state, account_id).await?),
        expires_in: Some(state.keys.access_ttl_secs),
    })
}

pub async fn login(
    State(state): State<AppState>,
    ValidForm(form): ValidForm<LoginForm>,
) -> Result<Json<TokenResponse>, ApiError> {
    // A missing or empty field is answered like a wrong password.
    let Some((email, password)) = form
        .and_then(|f| Some((f.username?, f.password?)))
        .filter(|(e, p)| !e.is_empty() && !p.is_empty())
    else {
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    };
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
    let ok = tokio::task::spawn_blocking(move || verify_password(&password, &phc))
        .await
        .unwrap_or(false);
    if !ok || account_id.is_empty() {
        // Not the submitted name: people paste passwords into it.
        tracing::info!("refused a login");
        let _ = email;
        return Err(ApiError::Unauthorized(BAD_LOGIN));
    }
    Ok(Json(tokens_for(&state, &account_id).await?))
}

#[derive(Debug, Deserialize)]
pub struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(
    State(state): State<AppState>,
    ValidJson(body): ValidJson<RefreshBody>,
) -> Result<Json<TokenResponse>, ApiError> {
    let account = spend_refresh(&state, &body.refresh_token)
        .await?
        .ok_or(ApiError::Unauthorized(BAD_TOKEN))?;
    Ok(Json(tokens_for(&state, &account).await?))
}
