//! The test rig: a server, the proxy in front of it, a client through
//! the proxy and a user; the sample exports; and the end state read back
//! from the server's own databases.

use std::path::{Path, PathBuf};
use std::time::Duration;

use owi_client::{
    Client, ClientOptions, Credentials, FollowOptions, Method, NewUser, RetryPolicy, Timeouts,
    Uploaded,
};
use owi_progress::{CancelToken, Progress, Recorder, Silent};
use owi_server::ServerConfig;
use tokio::sync::OnceCell;

use super::proxy::Proxy;
use crate::{API_KEY, Running};

/// Quick retries: the faults are the test, not the waiting.
const QUICK: RetryPolicy = RetryPolicy {
    attempts: 5,
    min_delay: Duration::from_millis(20),
    max_delay: Duration::from_millis(200),
};

/// An export small enough to go direct, or large enough for three parts.
#[derive(Debug, Clone, Copy)]
pub enum Size {
    Small,
    Large,
}

pub struct Export {
    pub path: PathBuf,
    pub len: u64,
    _dir: tempfile::TempDir,
}

pub fn export(size: Size) -> Export {
    let dir = tempfile::tempdir().unwrap();
    let records = match size {
        Size::Small => 1500,
        Size::Large => 40_000,
    };
    let spec = owi_sample::SampleSpec {
        records,
        workouts: 6,
        seed: 11,
        locale: "en_US".into(),
        zip: false,
        junk_values: 0,
        dtd: Default::default(),
    };
    let manifest = owi_sample::generate(&spec, dir.path()).unwrap();
    if let Size::Large = size {
        let parts = manifest.xml_bytes.div_ceil(5 << 20);
        assert_eq!(
            parts, 3,
            "three 5 MiB parts from {} bytes",
            manifest.xml_bytes
        );
    }
    Export {
        path: manifest.xml_path,
        len: manifest.xml_bytes,
        _dir: dir,
    }
}

/// A seeded generator for cut points; the seed is printed, so a failure
/// can be repeated.
pub fn rng(test: &str) -> fastrand::Rng {
    let seed = std::env::var("OWI_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("{test}: fault seed {seed} (OWI_FAULT_SEED={seed} repeats it)");
    fastrand::Rng::with_seed(seed)
}

/// What the server stored for a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub workouts: i64,
    pub samples: i64,
}

pub fn stored(dir: &Path, user: &str) -> Stored {
    let data = rusqlite::Connection::open(dir.join("data.sqlite")).unwrap();
    let count = |table: &str| {
        data.query_row(
            &format!("SELECT count(*) FROM {table} WHERE user_id = ?"),
            [user],
            |r| r.get(0),
        )
        .unwrap()
    };
    Stored {
        workouts: count("workouts"),
        samples: count("samples"),
    }
}

/// The server's rows for a user in one of its own tables, one string each.
fn rows(dir: &Path, sql: &str, user: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(dir.join("server.sqlite")).unwrap();
    let mut query = db.prepare(sql).unwrap();
    query
        .query_map([user], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

/// The state of each import job (run) of a user.
pub fn runs(dir: &Path, user: &str) -> Vec<String> {
    rows(
        dir,
        "SELECT state FROM jobs WHERE user_id = ? ORDER BY created_at, rowid",
        user,
    )
}

/// The state of each multipart upload the server started for a user.
pub fn multiparts(dir: &Path, user: &str) -> Vec<String> {
    rows(
        dir,
        "SELECT state FROM uploads WHERE user_id = ? AND kind = 'multipart' ORDER BY id",
        user,
    )
}

/// What one clean import of the export stores: the yardstick for "no
/// duplicates, nothing lost". Made once per size, without the proxy.
pub async fn clean_import(size: Size) -> Stored {
    static SMALL: OnceCell<Stored> = OnceCell::const_new();
    static LARGE: OnceCell<Stored> = OnceCell::const_new();
    let cell = match size {
        Size::Small => &SMALL,
        Size::Large => &LARGE,
    };
    cell.get_or_init(|| async {
        let server = crate::server().await;
        let client = Client::connect(&server.url, crate::key(API_KEY))
            .await
            .unwrap();
        let user = client.create_user(&NewUser::default()).await.unwrap().id;
        let export = export(size);
        let uploaded = client
            .upload(
                &export.path,
                &user,
                Method::Direct,
                &Silent,
                &CancelToken::new(),
            )
            .await
            .unwrap();
        let run = uploaded.task_id.clone().unwrap();
        let done = client
            .follow_run(&user, &run, FollowOptions::default(), |_| {})
            .await
            .unwrap();
        assert!(done.succeeded(), "the clean import: {done:?}");
        let clean = stored(server.dir.path(), &user);
        assert!(clean.workouts > 0 && clean.samples > 0, "{clean:?}");
        clean
    })
    .await
    .clone()
}

/// A server, the proxy in front of it, a client that goes through the
/// proxy, and a user to import for.
pub struct Rig {
    pub server: Running,
    pub proxy: Proxy,
    pub client: Client,
    pub user: String,
    pub timeouts: Timeouts,
}

pub async fn rig(tweak: impl FnOnce(&mut ServerConfig), timeouts: Timeouts) -> Rig {
    let server = crate::server_with(tweak).await;
    let proxy = Proxy::start().await;
    let client = connect(&server, &proxy, timeouts, crate::key(API_KEY)).await;
    let user = client.create_user(&NewUser::default()).await.unwrap().id;
    Rig {
        server,
        proxy,
        client,
        user,
        timeouts,
    }
}

/// A client whose every request, the store's included, goes through the proxy.
pub async fn connect(
    server: &Running,
    proxy: &Proxy,
    timeouts: Timeouts,
    credentials: Credentials,
) -> Client {
    let options = ClientOptions {
        retry: QUICK,
        timeouts,
        proxy: Some(proxy.url().to_string()),
        ..ClientOptions::default()
    };
    Client::connect_with(&server.url, credentials, options)
        .await
        .unwrap()
}

impl Rig {
    pub async fn connect(&self, credentials: Credentials) -> Client {
        connect(&self.server, &self.proxy, self.timeouts, credentials).await
    }

    pub fn dir(&self) -> &Path {
        self.server.dir.path()
    }

    pub async fn upload(
        &self,
        export: &Export,
        method: Method,
        recorder: &Recorder,
    ) -> Result<Uploaded, owi_client::Error> {
        self.client
            .upload(
                &export.path,
                &self.user,
                method,
                recorder,
                &CancelToken::new(),
            )
            .await
    }

    /// Follows the upload's run to its end and checks the end state: the
    /// one run completed, and the data of exactly one clean import.
    pub async fn imported_once(&self, uploaded: &Uploaded, size: Size) {
        let done = self
            .client
            .follow_upload(&self.user, uploaded, FollowOptions::default(), |_| {})
            .await
            .unwrap();
        assert!(done.succeeded(), "{done:?}");
        assert_eq!(
            runs(self.dir(), &self.user),
            ["completed"],
            "one run, no duplicate"
        );
        assert_eq!(
            stored(self.dir(), &self.user),
            clean_import(size).await,
            "exactly one clean import's worth: nothing lost, nothing twice"
        );
    }
}

/// The retries an upload reported: (delay in ms, reason).
pub fn retries(recorder: &Recorder) -> Vec<(u64, String)> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Progress::Retrying {
                delay_ms, reason, ..
            } => Some((delay_ms, reason)),
            _ => None,
        })
        .collect()
}

pub fn finished(recorder: &Recorder) -> Option<u64> {
    match recorder.events().last() {
        Some(Progress::Finished { done, .. }) => Some(*done),
        _ => None,
    }
}
