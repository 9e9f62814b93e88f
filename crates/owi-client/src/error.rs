//! What can go wrong talking to a server, each in one sentence a person can
//! act on. Secrets never appear here: messages name the server, not the
//! credentials.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{url:?} is not a server address: {reason}")]
    BadServerUrl { url: String, reason: String },
    #[error("cannot reach {server}: {reason}")]
    Unreachable { server: String, reason: String },
    #[error("{server} did not answer in time")]
    Timeout { server: String },
    #[error("wrong email or password for {server}")]
    BadLogin { server: String },
    #[error("{server} no longer accepts these credentials: log in again (owi login)")]
    LoginRequired { server: String },
    #[error(
        "{server} refused this API key (wrong, or revoked): check it, or make a new one in the server's developer settings"
    )]
    BadApiKey { server: String },
    #[error(
        "{server} is not an Open Wearables server ({reason}): check the address; the API lives under /api/v1"
    )]
    NotOpenWearables { server: String, reason: String },
    #[error(
        "{id:?} is not a user id: user ids are UUIDs such as 6f1c2a9e-…; `owi users` lists them"
    )]
    BadUserId { id: String },
    #[error("{server} has no user {id}: `owi users` lists its users, `owi users create` makes one")]
    UnknownUser { server: String, id: String },
    #[error("{0}")]
    MethodUnavailable(String),
    #[error(
        "{server} is plain HTTP to another computer: the password or API key would cross the network readable by anyone on the way. Use https://, or allow plain HTTP on a network you trust"
    )]
    InsecureHttp { server: String },
    #[error(
        "{server} holds {held} of the {sent} workouts this computer sent to user {user} before: it may have been reset, or be another server, and sending only what is new would leave it short"
    )]
    ServerForgot {
        server: String,
        user: String,
        held: u64,
        sent: u64,
    },
    #[error("not found on {server}: {detail}")]
    NotFound { server: String, detail: String },
    #[error("{server} refused the request ({status}): {detail}")]
    Refused {
        server: String,
        status: u16,
        detail: String,
    },
    #[error("{server} failed ({status}): {detail}")]
    Server {
        server: String,
        status: u16,
        detail: String,
        /// The server's `Retry-After`, when it gave one.
        retry_after: Option<std::time::Duration>,
    },
    #[error("{server} sent an answer this client does not understand: {reason}")]
    Protocol { server: String, reason: String },
    #[error("{server} has said nothing about this import for {waited_secs} s")]
    Silent { server: String, waited_secs: u64 },
    #[error("{0}")]
    Export(String),
    #[error("the export is {bytes} bytes; {server} takes at most {limit} in one upload")]
    TooLarge {
        server: String,
        bytes: u64,
        limit: u64,
    },
    #[error("the object store refused the upload: {code} {message}")]
    Storage { code: String, message: String },
    #[error("cancelled")]
    Cancelled,
    #[error("{0}")]
    Config(String),
    #[error("the local database: {0}")]
    Local(String),
    #[error(
        "{error}; {parts_stored} of {parts} parts are on the server: send it again to go on from there"
    )]
    Resumable {
        error: Box<Error>,
        parts_stored: u32,
        parts: u32,
    },
    #[error("{server} could not import it: {reason}")]
    ImportFailed { server: String, reason: String },
}

impl Error {
    /// A stable name for the UI (`{kind, message}`) and scripts.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::BadServerUrl { .. } => "bad_server_url",
            Error::Unreachable { .. } => "unreachable",
            Error::Timeout { .. } => "timeout",
            Error::BadLogin { .. } => "bad_login",
            Error::LoginRequired { .. } => "login_required",
            Error::BadApiKey { .. } => "bad_api_key",
            Error::NotOpenWearables { .. } => "not_open_wearables",
            Error::BadUserId { .. } => "bad_user_id",
            Error::UnknownUser { .. } => "unknown_user",
            Error::MethodUnavailable(_) => "method_unavailable",
            Error::InsecureHttp { .. } => "insecure_http",
            Error::ServerForgot { .. } => "server_forgot",
            Error::NotFound { .. } => "not_found",
            Error::Refused { .. } => "refused",
            Error::Server { .. } => "server_error",
            Error::Protocol { .. } => "protocol",
            Error::Silent { .. } => "silent",
            Error::Export(_) => "export",
            Error::TooLarge { .. } => "too_large",
            Error::Storage { .. } => "storage",
            Error::Cancelled => "cancelled",
            Error::Config(_) => "config",
            Error::Local(_) => "local_store",
            Error::Resumable { error, .. } => error.kind(),
            Error::ImportFailed { .. } => "import_failed",
        }
    }

    /// Worth trying again after a pause: the network or the server's own
    /// trouble, never a refusal.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Unreachable { .. } | Error::Timeout { .. } => true,
            Error::Server { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}
