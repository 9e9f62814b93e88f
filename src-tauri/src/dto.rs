//! Request and response types that exist only at the IPC boundary. The
//! preview's answers are the core's own types (`owi_store::Summary`, …).

use owi_store::{ExportInfo, WorkoutFilter};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

use crate::error::ErrorKind;

/// Names a long operation so that it can be cancelled. The UI makes it up.
pub type OperationId = String;

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct PathRequest {
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct OpenRequest {
    pub path: String,
    pub operation: OperationId,
    /// Read the file again even if the store already holds it.
    #[serde(default)]
    #[ts(optional)]
    pub force: Option<bool>,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct CancelRequest {
    pub operation: OperationId,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, TS)]
pub struct ExportRequest {
    pub export_id: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct WorkoutsRequest {
    pub export_id: i64,
    pub filter: WorkoutFilter,
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, TS)]
pub struct WorkoutRequest {
    pub workout_id: i64,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct SeriesRequest {
    pub export_id: i64,
    /// A HealthKit type identifier (`HKQuantityTypeIdentifierStepCount`).
    pub kind: String,
    /// Days since 1970-01-01, inclusive.
    pub from_day: Option<i64>,
    pub to_day: Option<i64>,
}

/// What a quick look at a file says, before any reading: for the drop
/// target's hover state.
#[derive(Debug, Clone, Serialize, TS)]
pub struct FileCheck {
    pub path: String,
    /// Whether it holds an Apple Health export.
    pub ok: bool,
    /// Why not, for people.
    pub reason: Option<String>,
    pub kind: Option<ErrorKind>,
    /// The export's XML inside (`export.xml`, `экспорт.xml`).
    pub xml_name: Option<String>,
    pub file_size: Option<u64>,
}

/// An export opened: read now, or found already in the store.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Opened {
    pub export: ExportInfo,
    /// The store already held it; nothing was read.
    pub reused: bool,
    pub seconds: f64,
}

/// Log in to an Open Wearables server: with an email and password, with an
/// API key, or (neither given) with what the keychain kept from last time.
/// The password goes to the core once and is never sent back.
#[derive(Clone, Deserialize, TS)]
pub struct ConnectRequest {
    /// What the person typed: `https://host`, with or without `/api/v1`.
    pub server: String,
    #[serde(default)]
    #[ts(optional)]
    pub email: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub password: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub api_key: Option<String>,
    /// Plain http:// to another computer is allowed (the person ticked it).
    #[serde(default)]
    #[ts(optional)]
    pub insecure_http: Option<bool>,
}

impl std::fmt::Debug for ConnectRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectRequest")
            .field("server", &self.server)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("insecure_http", &self.insecure_http)
            .finish()
    }
}

/// Where the secret that reconnects next time was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum KeptIn {
    /// The OS keychain: the app reconnects after a restart.
    Keychain,
    /// This machine has no keychain: only until the app closes.
    ProcessOnly,
}

/// The server the app talks to, as the UI may see it: never a key or token.
#[derive(Debug, Clone, Serialize, TS)]
pub struct Connection {
    /// `http://host:port`.
    pub server: String,
    /// The bundled server, started by the app on a loopback port.
    pub local: bool,
    pub email: Option<String>,
    /// `None` for the local server: its key lives and dies with the app.
    pub kept: Option<KeptIn>,
}

/// What the connect panel starts from.
#[derive(Debug, Clone, Serialize, TS)]
pub struct ConnectionStatus {
    pub connection: Option<Connection>,
    /// The remote server logged in to last time, if any.
    pub saved: Option<SavedLogin>,
}

/// The server logged in to last time, to offer reconnecting.
#[derive(Debug, Clone, Serialize, TS)]
pub struct SavedLogin {
    pub server: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct UsersRequest {
    #[serde(default)]
    #[ts(optional)]
    pub search: Option<String>,
    /// 1-based.
    #[serde(default)]
    #[ts(optional)]
    pub page: Option<u32>,
}

/// One page of the server's users.
#[derive(Debug, Clone, Serialize, TS)]
pub struct UserPage {
    pub items: Vec<owi_client::User>,
    pub total: u64,
    pub page: u32,
    pub pages: u32,
    pub has_next: bool,
}

#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct NewUserRequest {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
}

/// Send an export to a user on the connected server.
#[derive(Debug, Clone, Deserialize, Serialize, TS)]
pub struct ImportStartRequest {
    pub operation: OperationId,
    /// The export's file; or `export_id`, one the store holds.
    #[serde(default)]
    #[ts(optional)]
    pub path: Option<String>,
    #[serde(default)]
    #[ts(optional)]
    pub export_id: Option<i64>,
    pub user_id: String,
    pub method: owi_client::Method,
    /// Blank what strict XML parsers refuse (same length, same data).
    pub clean: bool,
    /// Only what this server's user does not have from this computer.
    pub delta: bool,
    /// What the person lets leave the machine.
    pub share: owi_export::Share,
}

/// Whose ledger: a user of the connected server.
#[derive(Debug, Clone, Deserialize, TS)]
pub struct LedgerRequest {
    pub user_id: String,
}

/// What an import reports as it goes: the core's byte progress (checking,
/// uploading, retries) and its steps (plan, pieces, the server's stages,
/// the comparison).
#[derive(Debug, Clone, Serialize, TS)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum ImportEvent {
    Progress(owi_progress::Progress),
    Step(owi_client::Step),
}

#[derive(Debug, Clone, Copy, Deserialize, Serialize, TS)]
pub struct HistoryRequest {
    #[serde(default)]
    #[ts(optional)]
    pub limit: Option<u32>,
}
