//! The bundled Open Wearables import backend (`owi serve`).
//!
//! It speaks the Apple-XML import API of Open Wearables (see
//! `docs/open-wearables-api.md`): the same paths, bodies, status codes and
//! error shapes, so a client that works against it works against the real
//! server. Where the real server is lax or broken it keeps the successful
//! shapes but does the right thing (see ARCHITECTURE.md).
//!
//! It is a library first: [`Server::open`] prepares the data directory and
//! [`Server::run`] serves on a listener until a shutdown future resolves, so
//! tests start it in-process on `127.0.0.1:0`. [`serve`] does both.

mod auth;
mod compat;
mod config;
mod data;
mod db;
mod error;
mod extract;
#[doc(hidden)]
pub mod fuzzing;
mod hashing;
mod import;
mod jobs;
mod keyfile;
mod local;
mod refresh;
pub mod s3;
mod session;
mod sync;
mod throttle;
mod users;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use owi_progress::CancelToken;
use rusqlite::{OptionalExtension, params};
use tokio::net::TcpListener;
use tokio::sync::Notify;

pub use auth::{is_api_key_shaped, new_api_key};
pub use compat::Compat;
pub use config::{Clock, HashingLimits, LoginThrottle, ServerConfig};
pub use error::Error;
#[doc(hidden)]
pub use hashing::HashingGauge;
pub use jobs::{series_type, workout_type};
pub use local::Local;
pub use s3::{Credentials, PostSignature, S3Settings};
pub use sync::{Stage, Status, SyncRunSummary, SyncStatusEvent};

use crate::auth::{TokenKeys, hash_password, random_bytes, sha256_hex};
use crate::db::{Db, now_rfc3339};

/// What the first start created, for the operator to see once.
#[derive(Clone)]
pub struct Bootstrap {
    pub email: String,
    /// Present only when generated (not given in the configuration).
    pub password: Option<String>,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bootstrap")
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Shared by every handler.
#[derive(Clone, Debug)]
pub struct AppState {
    /// server.sqlite: accounts, users, jobs, events.
    db: Db,
    /// data.sqlite, for reading back what imports stored.
    data: Db,
    keys: TokenKeys,
    hub: sync::Hub,
    objects: Arc<s3::Objects>,
    wake: Arc<Notify>,
    config: Arc<ServerConfig>,
    /// An argon2 hash to verify against when the email is unknown.
    dummy_hash: String,
    /// Becomes true when the server stops: live streams end.
    closing: Arc<tokio::sync::watch::Sender<bool>>,
    /// The hash of this run's session key and its account.
    session: Option<Arc<(String, String)>>,
    /// Failed logins, per account and per address.
    throttle: Arc<throttle::Throttle>,
    /// Password verification, a few at once.
    hashing: Arc<hashing::Hashing>,
}

impl AppState {
    fn uploads_dir(&self) -> PathBuf {
        self.config.data_dir.join("uploads")
    }

    /// Deletes expired refresh tokens every `purge_interval` until the
    /// server closes (`open` did it once at start).
    async fn purge_tokens(self, mut closed: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                () = tokio::time::sleep(self.config.purge_interval) => {}
                _ = closed.wait_for(|c| *c) => return,
            }
            let db = self.db.clone();
            let now = self.config.clock.now_secs();
            match tokio::task::spawn_blocking(move || refresh::purge_refresh(&db, now)).await {
                Ok(Ok(n)) if n > 0 => tracing::info!(tokens = n, "deleted expired refresh tokens"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not delete expired refresh tokens"),
                _ => {}
            }
        }
    }
}

/// A prepared server: database migrated, first-start accounts created.
#[derive(Debug)]
pub struct Server {
    state: AppState,
    /// The worker's own connection to data.sqlite.
    worker_db: Db,
    bootstrap: Option<Bootstrap>,
    /// The embedded object store, when no external one is configured.
    store: Option<s3::store::EmbeddedStore>,
    created: tokio::sync::mpsc::UnboundedReceiver<s3::store::Created>,
}

impl Server {
    pub fn open(config: ServerConfig) -> Result<Server, Error> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        let uploads = config.data_dir.join("uploads");
        std::fs::create_dir_all(&uploads).map_err(io(&uploads))?;
        let db = Db::open(&config.data_dir.join("server.sqlite"), db::SERVER_SCHEMA)?;
        let data_path = config.data_dir.join("data.sqlite");
        let data = Db::open(&data_path, db::DATA_SCHEMA)?;
        let worker_db = Db::open(&data_path, db::DATA_SCHEMA)?;
        let (key, new_key) = keyfile::signing_key(&config.data_dir.join("signing.key"))?;
        if new_key {
            // Refresh tokens are not signed, but they belong to the key's
            // sessions: a new key signs everyone out.
            db.blocking(|c| c.execute("DELETE FROM refresh_tokens", []))?;
        }
        let bootstrap = bootstrap(&db, &config)?;
        let hub = sync::Hub::new(db.clone());
        let resumed = jobs::resume_interrupted(&db, &hub, config.compat, config.job_attempts)?;
        if resumed.queued > 0 {
            tracing::info!(
                jobs = resumed.queued,
                "resuming imports interrupted by the last stop"
            );
        }
        let swept = jobs::sweep_uploads(&db, &uploads)?;
        if swept > 0 {
            tracing::info!(files = swept, "removed upload files no import will read");
        }
        refresh::purge_refresh(&db, config.clock.now_secs())?;
        let keys = TokenKeys::new(
            key,
            config.access_token_ttl.as_secs() as i64,
            config.refresh_token_ttl.as_secs() as i64,
        );
        let (created_tx, created) = tokio::sync::mpsc::unbounded_channel();
        let (store, objects) = open_objects(&config, &key, created_tx)?;
        let dummy_hash = hash_password(&auth::hex(&random_bytes::<16>()))
            .map_err(|_| Error::Config("argon2 failed".into()))?;
        let session = match &config.session_key {
            Some(key) if is_api_key_shaped(key) => {
                let account: String = db.blocking(|c| {
                    c.query_row(
                        "SELECT id FROM accounts ORDER BY created_at LIMIT 1",
                        [],
                        |r| r.get(0),
                    )
                })?;
                Some(Arc::new((sha256_hex(key), account)))
            }
            Some(_) => {
                return Err(Error::Config(
                    "the session key must be `sk-` followed by 32 hex digits".into(),
                ));
            }
            None => None,
        };
        let state = AppState {
            hub,
            throttle: Arc::new(throttle::Throttle::new(config.login_throttle.clone())),
            hashing: Arc::new(hashing::Hashing::new(&config.hashing)),
            objects: Arc::new(objects),
            db,
            data,
            keys,
            wake: Arc::new(Notify::new()),
            config: Arc::new(config),
            dummy_hash,
            closing: Arc::new(tokio::sync::watch::channel(false).0),
            session,
        };
        Ok(Server {
            state,
            worker_db,
            bootstrap,
            store,
            created,
        })
    }

    /// What the first start created (`None` on later starts).
    pub fn bootstrap(&self) -> Option<&Bootstrap> {
        self.bootstrap.as_ref()
    }

    /// Where presigned uploads go: `http://127.0.0.1:PORT` for the embedded
    /// store.
    pub fn s3_endpoint(&self) -> &str {
        &self.state.objects.endpoint
    }

    /// The bucket presigned uploads go to.
    pub fn s3_bucket(&self) -> &str {
        &self.state.objects.bucket
    }

    /// Password hashes running at once, for tests of the cap.
    #[doc(hidden)]
    pub fn hashing_gauge(&self) -> HashingGauge {
        self.state.hashing.gauge()
    }

    /// The store's credentials (for tools and tests that read the bucket).
    pub fn s3_credentials(&self) -> &Credentials {
        &self.state.objects.credentials
    }

    /// Serves until `shutdown` resolves, then lets the import in hand stop
    /// (it is rolled back and stays queued for the next start).
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), Error> {
        let stop = CancelToken::new();
        let worker = tokio::spawn(jobs::work(
            self.state.clone(),
            self.worker_db.clone(),
            stop.clone(),
        ));
        let app = router(self.state.clone());
        let addr = listener.local_addr().map_err(Error::Listen)?;
        let closed = self.state.closing.subscribe();
        // The store outlives the API: an upload it finishes while the API
        // stops still becomes a job (see the drain below).
        let (stop_store, store_stopped) = tokio::sync::oneshot::channel::<()>();
        let store = self.store.map(|store| {
            tokio::spawn(store.run(async move {
                let _ = store_stopped.await;
            }))
        });
        // An external store sends no notices: watch its POSTs closely. In
        // every mode, a pass at start and then hourly catches up with
        // uploads whose notice a crash lost and sweeps abandoned ones.
        let watcher = self.state.objects.external.then(|| {
            let (state, closed) = (self.state.clone(), closed.clone());
            tokio::spawn(async move {
                state
                    .watch_uploads(Duration::from_secs(2), false, closed)
                    .await;
            })
        });
        let upkeep = {
            let (state, closed) = (self.state.clone(), closed.clone());
            tokio::spawn(async move {
                state
                    .watch_uploads(Duration::from_secs(3600), true, closed)
                    .await;
            })
        };
        let purge = tokio::spawn(self.state.clone().purge_tokens(closed.clone()));
        // Ends when the store (the only sender) is gone, after every notice.
        let (state, mut created) = (self.state.clone(), self.created);
        let arrivals = tokio::spawn(async move {
            while let Some(object) = created.recv().await {
                if object.bucket != state.objects.bucket {
                    continue;
                }
                if let Err(e) = state
                    .object_created(&object.key, object.upload_id.as_deref())
                    .await
                {
                    tracing::error!(key = %object.key, error = %e, "could not queue an upload");
                }
            }
        });
        tracing::info!(%addr, s3 = %self.state.objects.endpoint, "serving the Open Wearables import API");
        let (state, signal) = (self.state.clone(), stop.clone());
        // On shutdown: stop the worker and end the SSE streams (which never
        // end by themselves), so the graceful wait can finish.
        let shutdown = async move {
            shutdown.await;
            tracing::info!("stopping: ending live streams and the import in hand");
            signal.cancel();
            state.wake.notify_one();
            let _ = state.closing.send(true);
        };
        // The peer's address is what logins are throttled by.
        let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
        let result = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(Error::Listen);
        stop.cancel();
        let _ = self.state.closing.send(true);
        let _ = stop_store.send(());
        if let Some(mut store) = store {
            // A part upload still streaming gets a few seconds, not forever.
            match tokio::time::timeout(STORE_STOP_GRACE, &mut store).await {
                Ok(Ok(Err(e))) => {
                    tracing::error!(error = %e, "the object store stopped with an error")
                }
                Ok(Err(e)) => tracing::error!(error = %e, "the object store task failed"),
                Ok(Ok(Ok(()))) => {}
                Err(_) => {
                    tracing::warn!(
                        "the object store did not stop in time; cutting its uploads off"
                    );
                    store.abort();
                    let _ = store.await;
                }
            }
        }
        let _ = arrivals.await;
        if let Some(watcher) = watcher {
            let _ = watcher.await;
        }
        let _ = upkeep.await;
        let _ = purge.await;
        let _ = worker.await;
        result
    }
}

/// Opens the data directory and serves on `listener` until `shutdown`.
pub async fn serve(
    listener: TcpListener,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    Server::open(config)?.run(listener, shutdown).await
}

fn router(state: AppState) -> Router {
    let mut api = Router::new()
        .route("/auth/login", post(session::login))
        .route("/token/refresh", post(session::refresh))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{user_id}", get(users::get))
        .route(
            "/users/{user_id}/import/apple/xml/direct",
            post(import::direct).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/users/{user_id}/import/apple/xml/s3",
            post(s3::api::presign),
        )
        .route("/users/{user_id}/sync/stream", get(sync::stream))
        .route("/users/{user_id}/sync/recent", get(sync::recent))
        .route("/users/{user_id}/sync/runs", get(sync::runs))
        .route("/users/{user_id}/events/workouts", get(data::workouts))
        .route("/users/{user_id}/timeseries", get(data::timeseries))
        .route("/users/{user_id}/summaries/data", get(data::summary));
    if state.config.compat.offers_multipart() {
        let multipart = "/users/{user_id}/import/apple/xml/s3/multipart";
        api = api
            .route(&format!("{multipart}/create"), post(s3::multipart::create))
            .route(
                &format!("{multipart}/sign"),
                post(s3::multipart::sign_parts),
            )
            .route(
                &format!("{multipart}/complete"),
                post(s3::multipart::complete),
            )
            .route(&format!("{multipart}/abort"), post(s3::multipart::abort));
    }
    Router::new()
        .nest("/api/v1", api)
        .fallback(|| async { error::ApiError::NotFound("Not Found".into()) })
        .with_state(state)
}

/// How long a stopping server waits for uploads in flight to the store.
const STORE_STOP_GRACE: Duration = Duration::from_secs(10);

/// The embedded store (bound, not yet serving) or the external one.
fn open_objects(
    config: &ServerConfig,
    signing_key: &[u8; 32],
    created: tokio::sync::mpsc::UnboundedSender<s3::store::Created>,
) -> Result<(Option<s3::store::EmbeddedStore>, s3::Objects), Error> {
    let settings = &config.s3;
    if let Some(endpoint) = &settings.endpoint {
        let credentials = settings.credentials.clone().ok_or_else(|| {
            Error::Config(
                "an external S3 endpoint needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY".into(),
            )
        })?;
        let objects = s3::Objects::new(endpoint.clone(), settings, credentials, true);
        return Ok((None, objects));
    }
    // Derived from the token key: stable across restarts (a multipart upload
    // is bound to the key that created it) with nothing more to keep secret.
    // The `:` keeps the labels apart from token payloads (base64url).
    let derive = |label: &str| auth::hex(&auth::hmac_sha256(signing_key, label.as_bytes()));
    let credentials = Credentials {
        access_key: format!("OWI{}", &derive("owi:s3-access-key")[..17].to_uppercase()),
        secret_key: derive("owi:s3-secret-key"),
    };
    let store = s3::store::EmbeddedStore::bind(
        &s3::store::StoreOptions {
            root: config.data_dir.join("objects"),
            bucket: settings.bucket.clone(),
            addr: settings.embedded_addr,
            credentials: credentials.clone(),
            post_max_bytes: settings.post_max_bytes,
            // A SigV4 POST policy is checked against its signing time: allow
            // the longest lifetime the API signs.
            max_skew_secs: 3600,
        },
        created,
    )?;
    let objects = s3::Objects::new(store.endpoint().to_string(), settings, credentials, false);
    Ok((Some(store), objects))
}

/// On an empty database: the developer account and its API key.
fn bootstrap(db: &Db, config: &ServerConfig) -> Result<Option<Bootstrap>, Error> {
    let existing: Option<String> = db.blocking(|c| {
        c.query_row("SELECT id FROM accounts LIMIT 1", [], |r| r.get(0))
            .optional()
    })?;
    if existing.is_some() {
        return Ok(None);
    }
    let email = config
        .admin_email
        .clone()
        .unwrap_or_else(|| "admin@localhost".to_string());
    let (password, generated_password) = match &config.admin_password {
        Some(p) => (p.clone(), None),
        None => {
            let p = auth::hex(&random_bytes::<12>());
            (p.clone(), Some(p))
        }
    };
    let (key, generated_key) = match &config.api_key {
        Some(k) if is_api_key_shaped(k) => (k.clone(), None),
        Some(_) => {
            return Err(Error::Config(
                "the API key must be `sk-` followed by 32 hex digits".into(),
            ));
        }
        None => {
            let k = new_api_key();
            (k.clone(), Some(k))
        }
    };
    let phc = hash_password(&password).map_err(|_| Error::Config("argon2 failed".into()))?;
    let account = uuid::Uuid::new_v4().to_string();
    let now = now_rfc3339();
    db.blocking(|c| {
        let tx = c.transaction()?;
        tx.execute(
            "INSERT INTO accounts (id, email, password_hash, created_at) VALUES (?, ?, ?, ?)",
            params![account, email, phc, now],
        )?;
        tx.execute(
            "INSERT INTO api_keys (id, account_id, key_hash, name, created_at) VALUES (?, ?, ?, 'default', ?)",
            params![uuid::Uuid::new_v4().to_string(), account, sha256_hex(&key), now],
        )?;
        tx.commit()
    })?;
    tracing::info!(email = %email, "created the developer account");
    Ok(Some(Bootstrap {
        email,
        password: generated_password,
        api_key: generated_key,
    }))
}
