//! The fault campaign: many trials per upload path, each meeting one or
//! two faults drawn from a seeded generator (a connection cut at a random
//! byte, a 5xx, a 429, a stall, a key revoked on the server mid-upload).
//! Every trial has its own proxy, API key and user on one server, and a
//! few run at once. Each must end in one import of exactly the clean
//! import's data, or in one clear error with nothing on the server; a
//! duplicate or a silent loss fails the campaign. The tally is printed
//! (`--nocapture`); `OWI_FAULT_TRIALS` sets the trials per path (50).

use std::collections::BTreeMap;
use std::fmt;

use futures_util::StreamExt;
use owi_client::{Credentials, FollowOptions, Method, Secret, Timeouts};
use owi_progress::{CancelToken, Silent};
use sha2::Digest;

use super::proxy::{Fault, Gate, Proxy};
use super::rig::{Export, Size, clean_import, export, rng, runs, stored};
use super::{COMPLETE, CREATE, DIRECT, PRESIGN, STORE, part};
use crate::Running;

/// Trials running at once: enough to overlap, few enough for two cores.
const AT_ONCE: usize = 3;

/// What went wrong in a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Cut,
    ServerError,
    TooMany,
    Stall,
    Revoked,
    CutThenServerError,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Kind::Cut => "cut at a random byte",
            Kind::ServerError => "5xx",
            Kind::TooMany => "429 + Retry-After",
            Kind::Stall => "stall",
            Kind::Revoked => "key revoked mid-upload",
            Kind::CutThenServerError => "cut, then 5xx on the retry",
        })
    }
}

const KINDS: [Kind; 6] = [
    Kind::Cut,
    Kind::ServerError,
    Kind::TooMany,
    Kind::Stall,
    Kind::Revoked,
    Kind::CutThenServerError,
];

/// How a trial ended.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Ending {
    ImportedOnce,
    ClearError(&'static str),
    Duplicate(String),
    SilentLoss(String),
    Unexpected(String),
}

impl Ending {
    fn is_good(&self, kind: Kind) -> bool {
        match (kind, self) {
            (Kind::Revoked, Ending::ClearError(k)) => *k == "bad_api_key",
            (Kind::Revoked, _) => false,
            (_, e) => *e == Ending::ImportedOnce,
        }
    }
}

/// One request of a path that a fault can meet.
struct Target {
    method: &'static str,
    path: &'static str,
    /// The body's length, for a cut; `None` where the body is small JSON.
    body: Option<u64>,
}

/// The requests of an upload by `method` of `export`.
fn targets(method: Method, export: &Export) -> Vec<Target> {
    let small = |method, path| Target {
        method,
        path,
        body: None,
    };
    match method {
        Method::Direct => vec![Target {
            method: "POST",
            path: DIRECT,
            body: Some(export.len),
        }],
        Method::S3 => vec![
            small("POST", PRESIGN),
            Target {
                method: "POST",
                path: STORE,
                body: Some(export.len),
            },
        ],
        _ => {
            let part_len = |n: u64| (export.len - (n - 1) * (5 << 20)).min(5 << 20);
            let mut all = vec![small("POST", CREATE), small("POST", COMPLETE)];
            all.extend((1..=3).map(|n| Target {
                method: "PUT",
                path: part(n as u32),
                body: Some(part_len(n)),
            }));
            all
        }
    }
}

/// A server key of its own for one trial, so revoking it touches no other.
fn new_key(server: &Running) -> String {
    let key = owi_server::new_api_key();
    let hash = hex(&sha2::Sha256::digest(key.as_bytes()));
    let db = rusqlite::Connection::open(server.dir.path().join("server.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    db.execute(
        "INSERT INTO api_keys (id, account_id, key_hash, name, created_at)
         SELECT ?1, account_id, ?2, 'campaign', created_at FROM api_keys LIMIT 1",
        [&key[3..15], &hash],
    )
    .unwrap();
    key
}

fn revoke(server: &Running, key: &str) {
    let hash = hex(&sha2::Sha256::digest(key.as_bytes()));
    let db = rusqlite::Connection::open(server.dir.path().join("server.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    assert_eq!(
        db.execute("DELETE FROM api_keys WHERE key_hash = ?", [hash])
            .unwrap(),
        1
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A trial as drawn: the fault and where it meets the upload.
struct Drawn {
    kind: Kind,
    target: usize,
    cut: u64,
    status: u16,
    key: String,
}

fn draw(rng: &mut fastrand::Rng, server: &Running, targets: &[Target]) -> Drawn {
    let kind = KINDS[rng.usize(..KINDS.len())];
    let cuttable: Vec<usize> = (0..targets.len())
        .filter(|i| targets[*i].body.is_some())
        .collect();
    // A revoked key bites on the API; the store takes what was signed.
    let api: Vec<usize> = (0..targets.len())
        .filter(|i| targets[*i].path != STORE && !targets[*i].path.starts_with("partNumber"))
        .collect();
    let target = match kind {
        Kind::Cut | Kind::CutThenServerError | Kind::Stall => cuttable[rng.usize(..cuttable.len())],
        Kind::Revoked => api[rng.usize(..api.len())],
        _ => rng.usize(..targets.len()),
    };
    let cut = targets[target].body.map_or(0, |len| rng.u64(1..len));
    Drawn {
        kind,
        target,
        cut,
        status: [500, 502, 503][rng.usize(..3)],
        key: new_key(server),
    }
}

async fn trial(
    server: &Running,
    method: Method,
    size: Size,
    export: &Export,
    drawn: Drawn,
) -> Ending {
    let targets = targets(method, export);
    let at = &targets[drawn.target];
    let proxy = Proxy::start().await;
    let timeouts = Timeouts {
        stall: std::time::Duration::from_secs(2),
        ..Timeouts::default()
    };
    let credentials = Credentials::ApiKey(Secret::new(&drawn.key));
    let client = super::rig::connect(server, &proxy, timeouts, credentials).await;
    let user = client
        .create_user(&owi_client::NewUser::default())
        .await
        .unwrap()
        .id;
    let gate = Gate::new();
    match drawn.kind {
        Kind::Cut => proxy.inject(at.method, at.path, 1, Fault::Cut(drawn.cut)),
        Kind::ServerError => proxy.inject(at.method, at.path, 1, Fault::Status(drawn.status)),
        Kind::TooMany => proxy.inject(at.method, at.path, 1, Fault::Status(429)),
        Kind::Stall => proxy.inject(at.method, at.path, 1, Fault::Stall),
        Kind::Revoked => proxy.inject(at.method, at.path, 1, Fault::Hold(gate.clone())),
        Kind::CutThenServerError => {
            proxy.inject(at.method, at.path, 1, Fault::Cut(drawn.cut));
            proxy.inject(at.method, at.path, 2, Fault::Status(drawn.status));
        }
    }
    let never = CancelToken::new();
    let upload = client.upload(&export.path, &user, method, &Silent, &never);
    let revoking = async {
        if drawn.kind == Kind::Revoked {
            gate.arrived().await;
            revoke(server, &drawn.key);
            gate.open();
        }
    };
    let (outcome, ()) = tokio::join!(upload, revoking);
    let dir = server.dir.path();
    let ending = match outcome {
        Ok(uploaded) => match client
            .follow_upload(&user, &uploaded, FollowOptions::default(), |_| {})
            .await
        {
            Ok(done) if done.succeeded() => {
                let (have, clean) = (stored(dir, &user), clean_import(size).await);
                let runs = runs(dir, &user);
                if have == clean && runs == ["completed"] {
                    Ending::ImportedOnce
                } else if have.samples > clean.samples || runs.len() > 1 {
                    Ending::Duplicate(format!("{have:?}, runs {runs:?}"))
                } else {
                    Ending::SilentLoss(format!("{have:?} of {clean:?}"))
                }
            }
            Ok(done) => Ending::Unexpected(format!("the import failed: {done:?}")),
            Err(e) => Ending::Unexpected(format!("following: {e}")),
        },
        Err(e) => {
            let (have, runs) = (stored(dir, &user), runs(dir, &user));
            if have.samples == 0
                && have.workouts == 0
                && runs.is_empty()
                && !e.to_string().is_empty()
            {
                Ending::ClearError(e.kind())
            } else {
                Ending::SilentLoss(format!(
                    "error \"{e}\" yet the server has {have:?}, runs {runs:?}"
                ))
            }
        }
    };
    if !proxy.seen("", "").iter().any(|s| s.fault.is_some()) {
        return Ending::Unexpected("the fault was never met".into());
    }
    ending
}

async fn campaign(name: &str, method: Method, size: Size) {
    let trials: usize = std::env::var("OWI_FAULT_TRIALS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50);
    let server = crate::server().await;
    let export = export(size);
    let mut rng = rng(name);
    let targets = targets(method, &export);
    let drawn: Vec<Drawn> = (0..trials)
        .map(|_| draw(&mut rng, &server, &targets))
        .collect();
    let described: Vec<String> = drawn
        .iter()
        .map(|d| {
            format!(
                "{} on {} {}",
                d.kind, targets[d.target].method, targets[d.target].path
            )
        })
        .collect();
    let endings: Vec<(usize, Kind, Ending)> =
        futures_util::stream::iter(drawn.into_iter().enumerate())
            .map(|(i, d)| {
                let kind = d.kind;
                let (server, export) = (&server, &export);
                async move { (i, kind, trial(server, method, size, export, d).await) }
            })
            .buffer_unordered(AT_ONCE)
            .collect()
            .await;

    let mut tally: BTreeMap<(Kind, &Ending), usize> = BTreeMap::new();
    for (_, kind, ending) in &endings {
        *tally.entry((*kind, ending)).or_default() += 1;
    }
    for ((kind, ending), n) in &tally {
        eprintln!("fault-campaign | {name} | {kind} | {ending:?} | {n}");
    }
    let bad: Vec<String> = endings
        .iter()
        .filter(|(_, kind, ending)| !ending.is_good(*kind))
        .map(|(i, _, ending)| format!("trial {i} ({}): {ending:?}", described[*i]))
        .collect();
    assert_eq!(endings.len(), trials);
    assert!(
        bad.is_empty(),
        "{name}: {} of {trials} trials ended badly:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[tokio::test]
async fn fifty_trials_of_faults_on_direct_uploads_end_imported_once_or_in_a_clear_error() {
    campaign("direct", Method::Direct, Size::Small).await;
}

#[tokio::test]
async fn fifty_trials_of_faults_on_presigned_posts_end_imported_once_or_in_a_clear_error() {
    campaign("presigned POST", Method::S3, Size::Small).await;
}

#[tokio::test]
async fn fifty_trials_of_faults_on_multipart_uploads_end_imported_once_or_in_a_clear_error() {
    campaign("multipart", Method::Multipart, Size::Large).await;
}
