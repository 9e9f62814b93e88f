//! Refresh tokens: random, stored as SHA-256 hashes, spent on use. Each
//! login starts a family that every rotation carries on; a token presented
//! again after it was spent means two parties hold the family, so the
//! whole family is revoked (OAuth's reuse detection) and both must log in.

use rusqlite::{Connection, OptionalExtension, params};

use crate::AppState;
use crate::auth::{hex, random_bytes, sha256_hex};
use crate::db::Db;
use crate::error::{ApiError, Error};

fn insert(
    c: &Connection,
    account_id: &str,
    family: &str,
    expires_at: i64,
) -> rusqlite::Result<String> {
    let token = hex(&random_bytes::<32>());
    c.execute(
        "INSERT INTO refresh_tokens (token_hash, account_id, expires_at, family_id) VALUES (?, ?, ?, ?)",
        params![sha256_hex(&token), account_id, expires_at, family],
    )?;
    Ok(token)
}

/// A new family's first refresh token, for a login.
pub async fn issue_refresh(state: &AppState, account_id: &str) -> Result<String, ApiError> {
    let account = account_id.to_string();
    let expires = state.config.clock.now_secs() + state.keys.refresh_ttl_secs;
    let family = uuid::Uuid::new_v4().to_string();
    Ok(state
        .db
        .call(move |c| insert(c, &account, &family, expires))
        .await?)
}

/// Spends `token` and issues its successor in the same family: the
/// account and the new token, or `None` for an unknown, expired or
/// already spent token (which revokes its family).
pub async fn rotate_refresh(
    state: &AppState,
    token: &str,
) -> Result<Option<(String, String)>, ApiError> {
    let hash = sha256_hex(token);
    let now = state.config.clock.now_secs();
    let expires = now + state.keys.refresh_ttl_secs;
    let rotated = state
        .db
        .call(move |c| {
            let tx = c.transaction()?;
            let row: Option<(String, i64, String, Option<i64>)> = tx
                .query_row(
                    "SELECT account_id, expires_at, family_id, spent_at FROM refresh_tokens WHERE token_hash = ?",
                    [&hash],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
                )
                .optional()?;
            let outcome = match row {
                None => Ok(None),
                Some((_, _, family, Some(_))) => {
                    let revoked =
                        tx.execute("DELETE FROM refresh_tokens WHERE family_id = ?", [&family])?;
                    Err(revoked)
                }
                Some((_, expires_at, _, None)) if expires_at <= now => {
                    tx.execute("DELETE FROM refresh_tokens WHERE token_hash = ?", [&hash])?;
                    Ok(None)
                }
                Some((account, _, family, None)) => {
                    tx.execute(
                        "UPDATE refresh_tokens SET spent_at = ? WHERE token_hash = ?",
                        params![now, hash],
                    )?;
                    let next = insert(&tx, &account, &family, expires)?;
                    Ok(Some((account, next)))
                }
            };
            tx.commit()?;
            Ok(outcome)
        })
        .await?;
    match rotated {
        Ok(rotated) => Ok(rotated),
        Err(revoked) => {
            tracing::warn!(
                tokens = revoked,
                "a spent refresh token was presented again: its family is revoked"
            );
            Ok(None)
        }
    }
}

/// Deletes expired refresh tokens, and spent ones whose family has no live
/// token left (nothing remains to protect). Returns how many went.
pub fn purge_refresh(db: &Db, now: i64) -> Result<usize, Error> {
    db.blocking(|c| {
        let expired = c.execute("DELETE FROM refresh_tokens WHERE expires_at <= ?", [now])?;
        let remnants = c.execute(
            "DELETE FROM refresh_tokens WHERE spent_at IS NOT NULL AND family_id NOT IN
               (SELECT family_id FROM refresh_tokens WHERE spent_at IS NULL)",
            [],
        )?;
        Ok(expired + remnants)
    })
}
