//! Who is calling: developer accounts (argon2 password → signed, expiring
//! access token + rotating refresh token) and API keys (`sk-` + 32 hex).
//! Keys and tokens are stored as SHA-256 hashes and compared in constant
//! time; nothing secret is logged.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::AppState;
use crate::db::now_secs;
use crate::error::{ApiError, BAD_API_KEY, BAD_TOKEN, NO_CREDENTIALS};

type HmacSha256 = hmac::Hmac<Sha256>;

pub const API_KEY_HEADER: &str = "x-open-wearables-api-key";

/// Random bytes from the OS.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    // The OS's generator failing is not something to recover from.
    if getrandom::fill(&mut out).is_err() {
        panic!("the operating system's random number generator failed");
    }
    out
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC accepts keys of any length"),
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn sha256_hex(s: &str) -> String {
    hex(&Sha256::digest(s.as_bytes()))
}

/// A new API key: `sk-` and 32 hex digits.
pub fn new_api_key() -> String {
    format!("sk-{}", hex(&random_bytes::<16>()))
}

pub fn is_api_key_shaped(key: &str) -> bool {
    key.strip_prefix("sk-")
        .is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|_| ApiError::Internal)
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Signs and checks access tokens: `base64url(claims).base64url(hmac)`.
#[derive(Clone)]
pub struct TokenKeys {
    key: [u8; 32],
    pub access_ttl_secs: i64,
    pub refresh_ttl_secs: i64,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("key", &"<redacted>")
            .field("access_ttl_secs", &self.access_ttl_secs)
            .finish()
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    sub: String,
    exp: i64,
}

impl TokenKeys {
    pub fn new(key: [u8; 32], access_ttl_secs: i64, refresh_ttl_secs: i64) -> Self {
        TokenKeys {
            key,
            access_ttl_secs,
            refresh_ttl_secs,
        }
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = match HmacSha256::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts keys of any length"),
        };
        mac.update(payload.as_bytes());
        mac
    }

    pub fn issue(&self, account_id: &str) -> String {
        let claims = Claims {
            sub: account_id.to_string(),
            exp: now_secs() + self.access_ttl_secs,
        };
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The account id of a valid, unexpired token.
    pub fn verify(&self, token: &str) -> Option<String> {
        let (payload, sig) = token.split_once('.')?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        self.mac(payload).verify_slice(&sig).ok()?;
        let claims: Claims = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (claims.exp > now_secs()).then_some(claims.sub)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account_id: String,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(auth) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let token = auth
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .ok_or(ApiError::Unauthorized(BAD_TOKEN))?;
            let account_id = state
                .keys
                .verify(token.trim())
                .ok_or(ApiError::Unauthorized(BAD_TOKEN))?;
            return Ok(Caller { account_id });
        }
        if let Some(key) = parts.headers.get(API_KEY_HEADER) {
            let key = key
                .to_str()
                .map_err(|_| ApiError::Unauthorized(BAD_API_KEY))?
                .to_string();
            if !is_api_key_shaped(&key) {
                return Err(ApiError::Unauthorized(BAD_API_KEY));
            }
            let wanted = sha256_hex(&key);
            let mut keys: Vec<(String, String)> = state
                .db
                .call(|c| {
                    let mut stmt = c.prepare("SELECT key_hash, account_id FROM api_keys")?;
                    let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                    rows.collect()
                })
                .await?;
            if let Some(session) = &state.session {
                keys.push(session.as_ref().clone());
            }
            // Compare against every key, in constant time each.
            let mut found = None;
            for (hash, account) in keys {
                if bool::from(hash.as_bytes().ct_eq(wanted.as_bytes())) {
                    found = Some(account);
                }
            }
            return found
                .map(|account_id| Caller { account_id })
                .ok_or(ApiError::Unauthorized(BAD_API_KEY));
        }
        Err(ApiError::Unauthorized(NO_CREDENTIALS))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_until_they_expire_and_not_when_tampered() {
        let keys = TokenKeys::new([7; 32], 60, 600);
        let token = keys.issue("acct");
        assert_eq!(keys.verify(&token).as_deref(), Some("acct"));
        let other = TokenKeys::new([8; 32], 60, 600);
        assert_eq!(other.verify(&token), None, "another key's token");
        let (payload, sig) = token.split_once('.').expect("two parts");
        let forged = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":99999999999}"#);
        assert_eq!(
            keys.verify(&format!("{forged}.{sig}")),
            None,
            "a changed payload"
        );
        assert_eq!(keys.verify(payload), None);
        let expired = TokenKeys::new([7; 32], -1, 600).issue("acct");
        assert_eq!(keys.verify(&expired), None, "an expired token");
    }

    #[test]
    fn passwords_and_keys() {
        let phc = hash_password("correct horse").expect("hashes");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        let key = new_api_key();
        assert!(is_api_key_shaped(&key), "{key}");
        assert!(!is_api_key_shaped("sk-123"));
    }
}
