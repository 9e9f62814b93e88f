//! The client against the bundled server, started in-process on a free
//! loopback port: connecting by key and by password, refresh-token rotation,
//! users, and the errors people see; uploads through faults (`faults`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // in tests a failed expectation is the failure

use std::sync::Arc;
use std::time::Duration;

use owi_client::{
    Client, ClientOptions, Credentials, Error, FollowOptions, Method, NewUser, RetryPolicy, Secret,
    UploadSource, UserQuery,
};
use owi_progress::{CancelToken, Progress, Recorder};
use owi_server::{Server, ServerConfig};

mod compat;
mod delta;
mod faults;
mod flow;

const EMAIL: &str = "dev@example.com";
const PASSWORD: &str = "correct horse battery staple";
const API_KEY: &str = "sk-0123456789abcdef0123456789abcdef";

struct Running {
    url: String,
    /// The server's data directory (its databases, for checking the end state).
    dir: tempfile::TempDir,
    config: ServerConfig,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), owi_server::Error>>>,
    /// The embedded object store's address.
    s3: String,
}

impl Running {
    /// Stops the server, waits until it has let go of its port and
    /// databases, and starts it again on the same data and address: a
    /// reboot, or the app that bundles it quitting and starting again.
    async fn restart(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
        let addr = self.url.trim_start_matches("http://");
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let (stop, task, s3) = serve(self.config.clone(), listener);
        self.s3 = s3;
        self.stop = Some(stop);
        self.task = Some(task);
    }

    fn s3_endpoint(&self) -> String {
        self.s3.clone()
    }

    /// The object the embedded store holds under a name ending `name`.
    fn object(&self, name: &str) -> Option<Vec<u8>> {
        fn find(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
            for entry in std::fs::read_dir(dir).ok()?.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    if let Some(found) = find(&path, name) {
                        return Some(found);
                    }
                } else if path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().ends_with(name))
                {
                    return Some(path);
                }
            }
            None
        }
        let root = self.dir.path().join("objects");
        let found = find(&root, name)?;
        // As the store serves it: a multipart object is kept as its parts.
        let relative = found.strip_prefix(&root).unwrap();
        let mut parts = relative.iter().map(|p| p.to_string_lossy().into_owned());
        let bucket = parts.next().unwrap();
        let key = parts.collect::<Vec<_>>().join("/");
        Some(owi_server::s3::store::read_object(&root, &bucket, &key).unwrap())
    }
}

async fn server() -> Running {
    server_with(|_| {}).await
}

async fn server_with(configure: impl FnOnce(&mut ServerConfig)) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut config = ServerConfig::new(dir.path());
    // Small parts, so a test-sized export goes in several.
    config.s3.part_size = 5 << 20;
    config.admin_email = Some(EMAIL.into());
    config.admin_password = Some(PASSWORD.into());
    config.api_key = Some(API_KEY.into());
    configure(&mut config);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, task, s3) = serve(config.clone(), listener);
    Running {
        url,
        dir,
        config,
        stop: Some(stop),
        task: Some(task),
        s3,
    }
}

type Serving = (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<Result<(), owi_server::Error>>,
    String,
);

fn serve(config: ServerConfig, listener: tokio::net::TcpListener) -> Serving {
    let server = Server::open(config).unwrap();
    let s3 = server.s3_endpoint().to_string();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(server.run(listener, async {
        let _ = stopped.await;
    }));
    (stop, task, s3)
}

/// Makes the ledger of the local store in `db_dir` refuse every insert,
/// as a full disk would.
fn refuse_ledger_writes(db_dir: &std::path::Path) {
    rusqlite::Connection::open(db_dir.join("owi.journal.sqlite"))
        .unwrap()
        .execute_batch(
            "CREATE TRIGGER refuse BEFORE INSERT ON ledgers
             BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
        )
        .unwrap();
}

fn key(k: &str) -> Credentials {
    Credentials::ApiKey(Secret::new(k))
}

fn password(p: &str) -> Credentials {
    Credentials::Password {
        email: EMAIL.into(),
        password: Secret::new(p),
    }
}

#[tokio::test]
async fn an_api_key_lists_creates_finds_and_pages_users() {
    let s = server().await;
    let client = Client::connect(&format!("{}/api/v1/", s.url), key(API_KEY))
        .await
        .unwrap();
    assert_eq!(client.server().origin(), s.url);
    for (first, email) in [
        ("Ada", "ada@example.com"),
        ("Grace", "grace@example.com"),
        ("Alan", "alan@example.com"),
    ] {
        let user = client
            .create_user(&NewUser {
                first_name: Some(first.into()),
                last_name: Some("Test".into()),
                email: Some(email.into()),
            })
            .await
            .unwrap();
        assert_eq!(user.display_name(), format!("{first} Test <{email}>"));
        assert_eq!(client.user(&user.id).await.unwrap(), user);
    }
    let page = client
        .users(&UserQuery {
            page: 1,
            limit: 2,
            search: None,
        })
        .await
        .unwrap();
    assert_eq!((page.items.len(), page.total, page.has_next), (2, 3, true));
    let found = client
        .users(&UserQuery {
            search: Some("grace".into()),
            ..UserQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1);
    assert_eq!(found.items[0].first_name.as_deref(), Some("Grace"));

    let duplicate = client
        .create_user(&NewUser {
            email: Some("ada@example.com".into()),
            ..NewUser::default()
        })
        .await
        .unwrap_err();
    assert!(
        matches!(duplicate, Error::Refused { status: 409, .. }),
        "{duplicate:?}"
    );
    let missing = client
        .user("3fa85f64-5717-4562-b3fc-2c963f66afa6")
        .await
        .unwrap_err();
    assert_eq!(missing.kind(), "not_found");
    assert!(missing.to_string().contains("not found"), "{missing}");
}

#[tokio::test]
async fn a_wrong_key_or_password_is_one_clear_sentence_without_the_secret() {
    let s = server().await;
    let wrong = "sk-ffffffffffffffffffffffffffffffff";
    let e = Client::connect(&s.url, key(wrong)).await.unwrap_err();
    assert_eq!(e.kind(), "bad_api_key", "{e:?}");
    assert!(!format!("{e} {e:?}").contains(wrong));

    let e = Client::connect(&s.url, password("not it"))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "bad_login", "{e:?}");
    assert_eq!(
        e.to_string(),
        format!("wrong email or password for {}", s.url)
    );
    assert!(!format!("{e:?}").contains("not it"));

    let client = Client::connect(&s.url, password(PASSWORD)).await.unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(PASSWORD), "{debug}");
    let refresh = client.refresh_token().await.unwrap();
    assert!(!debug.contains(refresh.expose()), "{debug}");
}

#[tokio::test]
async fn a_kept_refresh_token_logs_in_once_and_rotates() {
    let s = server().await;
    let first = Client::connect(&s.url, password(PASSWORD)).await.unwrap();
    let kept = first.refresh_token().await.unwrap();

    // A later process with only the kept token: it refreshes, and the
    // server rotates the token.
    // It hands each new token to the keeper as it arrives.
    let handed = Arc::new(std::sync::Mutex::new(Vec::<Secret>::new()));
    let keeper = handed.clone();
    let options = ClientOptions {
        on_refresh_token: Some(Arc::new(move |t: &Secret| {
            keeper.lock().unwrap().push(t.clone())
        })),
        ..ClientOptions::default()
    };
    let later = Client::connect_with(
        &s.url,
        Credentials::RefreshToken {
            email: EMAIL.into(),
            token: kept.clone(),
        },
        options,
    )
    .await
    .unwrap();
    let rotated = later.refresh_token().await.unwrap();
    assert_ne!(rotated, kept);
    assert_eq!(
        handed.lock().unwrap().as_slice(),
        std::slice::from_ref(&rotated)
    );
    assert_eq!(later.users(&UserQuery::default()).await.unwrap().total, 0);

    // The old token is spent: with no password to fall back on, the answer
    // is to log in again.
    let stale = Client::connect(
        &s.url,
        Credentials::RefreshToken {
            email: EMAIL.into(),
            token: kept,
        },
    )
    .await
    .unwrap_err();
    assert_eq!(stale.kind(), "login_required", "{stale:?}");
    assert!(stale.to_string().contains("log in again"), "{stale}");
}

#[tokio::test]
async fn a_server_that_is_not_there_is_named_with_the_reason() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let quick = RetryPolicy {
        attempts: 2,
        min_delay: Duration::from_millis(10),
        max_delay: Duration::from_millis(20),
    };
    let url = format!("http://127.0.0.1:{port}");
    let options = ClientOptions {
        retry: quick,
        ..ClientOptions::default()
    };
    let e = Client::connect_with(&url, key(API_KEY), options)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "unreachable", "{e:?}");
    let message = e.to_string();
    assert!(
        message.starts_with(&format!("cannot reach {url}: ")),
        "{message}"
    );
    assert!(message.to_lowercase().contains("refused"), "{message}");

    let e = Client::connect("localhost:8000", key(API_KEY))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "bad_server_url");
}

#[tokio::test]
async fn an_import_is_followed_from_queued_to_completed() {
    let s = server().await;
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap();
    let data = tempfile::tempdir().unwrap();
    let spec = owi_sample::SampleSpec {
        records: 2000,
        workouts: 5,
        seed: 3,
        locale: "en_US".into(),
        zip: false,
        junk_values: 0,
        dtd: Default::default(),
    };
    let manifest = owi_sample::generate(&spec, data.path()).unwrap();
    // Sent by hand here; the upload engine has its own tests.
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(std::fs::read(&manifest.xml_path).unwrap())
            .file_name("export.xml"),
    );
    let task: serde_json::Value = reqwest::Client::new()
        .post(format!(
            "{}/api/v1/users/{}/import/apple/xml/direct",
            s.url, user.id
        ))
        .header("X-Open-Wearables-API-Key", API_KEY)
        .multipart(form)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let run = task["task_id"].as_str().unwrap();

    let mut stages = Vec::new();
    let last = client
        .follow_run(&user.id, run, FollowOptions::default(), |e| {
            stages.push(e.stage.clone());
        })
        .await
        .unwrap();
    assert!(last.succeeded(), "{last:?}");
    assert_eq!(
        stages.first().map(String::as_str),
        Some("queued"),
        "{stages:?}"
    );
    assert_eq!(stages.last().map(String::as_str), Some("completed"));
    assert!(last.items_processed.is_some_and(|n| n > 0), "{last:?}");

    // Following it again replays its end at once.
    let again = client
        .follow_run(&user.id, run, FollowOptions::default(), |_| {})
        .await
        .unwrap();
    assert_eq!(again, last);
}

#[tokio::test]
async fn a_run_the_server_never_mentions_ends_in_a_bounded_wait() {
    let s = server().await;
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap();
    let options = FollowOptions {
        silence: Duration::from_millis(400),
        ..FollowOptions::default()
    };
    let e = client
        .follow_run(&user.id, "no-such-run", options, |_| {})
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "silent", "{e:?}");
    assert!(e.to_string().contains("has said nothing"), "{e}");
}

fn sample_export(dir: &std::path::Path, records: u64, zip: bool) -> owi_sample::SampleManifest {
    let spec = owi_sample::SampleSpec {
        records,
        workouts: 6,
        seed: 5,
        locale: "de_DE".into(),
        zip,
        junk_values: 0,
        dtd: Default::default(),
    };
    owi_sample::generate(&spec, dir).unwrap()
}

/// Uploads, follows the run to its end, and checks the progress events and
/// the workouts the server now holds.
async fn upload_and_follow(
    path: &std::path::Path,
    method: Method,
    expected: Method,
) -> owi_client::Uploaded {
    let s = server().await;
    let client = Client::connect(&s.url, key(API_KEY)).await.unwrap();
    let user = client.create_user(&NewUser::default()).await.unwrap();
    let recorder = Recorder::new();
    let uploaded = client
        .upload(path, &user.id, method, &recorder, &CancelToken::new())
        .await
        .unwrap();
    assert_eq!(uploaded.method, expected);
    assert!(
        uploaded.name.is_ascii() && uploaded.name.starts_with("owi-"),
        "{}",
        uploaded.name
    );
    let len = UploadSource::open(path).unwrap().len();
    assert_eq!(uploaded.bytes, len);

    let events = recorder.events();
    assert!(
        matches!(events.first(), Some(Progress::Started { total: Some(t), .. }) if *t == len),
        "{events:?}"
    );
    assert!(
        matches!(events.last(), Some(Progress::Finished { done, .. }) if *done == len),
        "{events:?}"
    );
    let mut last = 0;
    for e in &events {
        if let Progress::Advanced { position, .. } = e {
            assert!(
                position.done >= last && position.done <= len,
                "monotonic: {events:?}"
            );
            last = position.done;
        }
    }

    let done = client
        .follow_upload(&user.id, &uploaded, FollowOptions::default(), |_| {})
        .await
        .unwrap();
    assert!(done.succeeded(), "{done:?}");
    let page: serde_json::Value = reqwest::Client::new()
        .get(format!(
            "{}/api/v1/users/{}/events/workouts",
            s.url, user.id
        ))
        .header("X-Open-Wearables-API-Key", API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        page["pagination"]["total_count"], 6,
        "every workout arrived"
    );
    uploaded
}

#[tokio::test]
async fn a_small_export_goes_direct_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 1500, false);
    let sent = upload_and_follow(&m.xml_path, Method::Auto, Method::Direct).await;
    assert!(sent.task_id.is_some());
}

#[tokio::test]
async fn a_zip_is_streamed_out_of_the_archive_by_presigned_post() {
    let dir = tempfile::tempdir().unwrap();
    let m = sample_export(dir.path(), 1500, true);
    let sent = upload_and_follow(m.zip_path.as_ref().unwrap(), Method::S3, Method::S3).await;
    assert!(sent.key.unwrap().ends_with(&sent.name));
}

#[tokio::test]
async fn a_large_export_goes_by_multipart_in_parts() {
    let dir = tempfile::tempdir().unwrap();
    // Over 10 MB, so `auto` picks multipart; zipped, so parts are cut from
    // the inflated stream.
    let m = sample_export(dir.path(), 60_000, true);
    assert!(m.xml_bytes > 10_000_000, "{}", m.xml_bytes);
    upload_and_follow(
        m.zip_path.as_ref().unwrap(),
        Method::Auto,
        Method::Multipart,
    )
    .await;
}
