//! How the server runs: [`ServerConfig`] and the limits it sets on logins,
//! password hashing, tokens and job retries.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::{Compat, S3Settings, sync};

/// How the server runs.
#[derive(Clone)]
pub struct ServerConfig {
    /// Where the database, the signing key and uploads live.
    pub data_dir: PathBuf,
    /// The developer account created on first start (generated if `None`).
    pub admin_email: Option<String>,
    pub admin_password: Option<String>,
    /// The API key created on first start (generated if `None`).
    pub api_key: Option<String>,
    /// An API key of the developer account accepted for this run only and
    /// never stored: how the app talks to the server it starts itself.
    pub session_key: Option<String>,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    /// Interval of the `:` comment lines on idle SSE streams.
    pub heartbeat: Duration,
    /// The largest upload accepted.
    pub max_upload_bytes: u64,
    /// Disk space an upload may not eat into.
    pub min_free_bytes: u64,
    /// The object store for presigned uploads.
    pub s3: S3Settings,
    /// Which server to behave like, where a client can tell.
    pub compat: Compat,
    /// Whether uploads to the object store are imported. `false` is a
    /// real server whose bucket notifications are not set up: it keeps
    /// S3 uploads and never imports them.
    pub s3_imports: bool,
    /// Failed logins allowed before 429.
    pub login_throttle: LoginThrottle,
    /// Password hashes computed at once, and logins allowed to wait.
    pub hashing: HashingLimits,
    /// Tries of an import whose failure may pass (I/O, the store), or
    /// that was in hand when the process died.
    pub job_attempts: u32,
    /// How long a failed try waits before the next.
    pub job_retry_delay: Duration,
    /// How often expired refresh tokens are deleted (also at start).
    pub purge_interval: Duration,
    /// What the server takes as now for refresh tokens and throttling;
    /// tests move it forward instead of waiting.
    #[doc(hidden)]
    pub clock: Clock,
}

/// After `per_account` failed logins for one email, or `per_address` from
/// one client address, within `window`, logins answer 429 until the window
/// that began with the first failure ends. A success clears the account's
/// count. At most `max_entries` counts are kept (expired ones go first).
#[derive(Clone, Debug)]
pub struct LoginThrottle {
    pub per_account: u32,
    pub per_address: u32,
    pub window: Duration,
    pub max_entries: usize,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        LoginThrottle {
            per_account: 5,
            per_address: 20,
            window: Duration::from_secs(15 * 60),
            max_entries: 10_000,
        }
    }
}

/// argon2 takes ~19 MiB and tens of milliseconds a hash: `concurrent` run at
/// once, `queued` more wait, and a login beyond that is answered 503 with
/// `Retry-After`.
#[derive(Clone, Debug)]
pub struct HashingLimits {
    pub concurrent: usize,
    pub queued: usize,
}

impl Default for HashingLimits {
    fn default() -> Self {
        HashingLimits {
            concurrent: 2,
            queued: 64,
        }
    }
}

/// Wall-clock seconds, moved forward by tests.
#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset: Arc<AtomicI64>,
}

impl Clock {
    /// Now, as Unix seconds.
    pub fn now_secs(&self) -> i64 {
        jiff::Timestamp::now().as_second() + self.offset.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every clone of it) forward.
    #[doc(hidden)]
    pub fn advance(&self, by: Duration) {
        let secs = i64::try_from(by.as_secs()).unwrap_or(i64::MAX);
        self.offset.fetch_add(secs, Ordering::Relaxed);
    }
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let redacted = |s: &Option<String>| s.as_ref().map(|_| "<redacted>");
        f.debug_struct("ServerConfig")
            .field("data_dir", &self.data_dir)
            .field("admin_email", &self.admin_email)
            .field("admin_password", &redacted(&self.admin_password))
            .field("api_key", &redacted(&self.api_key))
            .field("session_key", &redacted(&self.session_key))
            .field("access_token_ttl", &self.access_token_ttl)
            .field("heartbeat", &self.heartbeat)
            .field("max_upload_bytes", &self.max_upload_bytes)
            .field("min_free_bytes", &self.min_free_bytes)
            .field("s3", &self.s3)
            .field("compat", &self.compat)
            .field("s3_imports", &self.s3_imports)
            .field("login_throttle", &self.login_throttle)
            .field("hashing", &self.hashing)
            .field("job_attempts", &self.job_attempts)
            .finish_non_exhaustive()
    }
}

impl ServerConfig {
    pub fn new(data_dir: impl Into<PathBuf>) -> Self {
        ServerConfig {
            data_dir: data_dir.into(),
            admin_email: None,
            admin_password: None,
            api_key: None,
            session_key: None,
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            heartbeat: sync::DEFAULT_HEARTBEAT,
            max_upload_bytes: 5 << 30,
            min_free_bytes: 256 << 20,
            s3: S3Settings::default(),
            compat: Compat::Native,
            s3_imports: true,
            login_throttle: LoginThrottle::default(),
            hashing: HashingLimits::default(),
            job_attempts: 3,
            job_retry_delay: Duration::from_secs(10),
            purge_interval: Duration::from_secs(3600),
            clock: Clock::default(),
        }
    }
}
