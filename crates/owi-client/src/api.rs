//! The server's JSON, as `docs/open-wearables-api.md` describes it. Only
//! what this client reads is required; everything else may be missing or
//! `null`, because real servers differ by version.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub expires_in: Option<u64>,
}

/// A person whose data is imported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub last_synced_at: Option<String>,
}

impl User {
    /// "Ada Lovelace <ada@example.com>", or whatever parts exist.
    pub fn display_name(&self) -> String {
        let name = [self.first_name.as_deref(), self.last_name.as_deref()]
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        match (name.is_empty(), &self.email) {
            (false, Some(email)) => format!("{name} <{email}>"),
            (false, None) => name,
            (true, Some(email)) => email.clone(),
            (true, None) => self.id.clone(),
        }
    }
}

/// What to create a user with; every field is optional.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NewUser {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub page: u32,
    pub limit: u32,
    #[serde(default)]
    pub pages: u32,
    #[serde(default)]
    pub has_next: bool,
}

/// Which users to list.
#[derive(Debug, Clone, Serialize)]
pub struct UserQuery {
    pub page: u32,
    pub limit: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub search: Option<String>,
}

impl Default for UserQuery {
    fn default() -> Self {
        UserQuery {
            page: 1,
            limit: 20,
            search: None,
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ErrorBody {
    pub detail: serde_json::Value,
}

/// A page of `/events/workouts`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct WorkoutPage {
    pub data: Vec<ServerWorkout>,
    pub pagination: Cursor,
}

/// The parts of a server's workout the read-back compares.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ServerWorkout {
    pub start_time: String,
    pub end_time: String,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Cursor {
    #[serde(default)]
    pub next_cursor: Option<String>,
    #[serde(default)]
    pub has_more: bool,
}
