//! The upload engine against the bundled server through a proxy the test
//! controls (`proxy`): connections cut at a random byte of the body, 500s,
//! 429s with `Retry-After`, stalls, an expired upload policy, revoked
//! tokens, a refusal from the store and a cancel. Each ends in an import
//! that holds exactly one clean import's worth of data from exactly one
//! run, or in one clear error with nothing half-recorded.
//!
//! Random cut points come from a seed each test prints (shown when it
//! fails); `OWI_FAULT_SEED=<seed>` repeats one. Each test prints its line
//! of the tally (`fault-tally | …`; see it with `--nocapture`).

mod campaign;
mod proxy;
mod resume;
mod rig;

use std::time::{Duration, Instant};

use owi_client::{Credentials, Method, Timeouts};
use owi_progress::{CancelToken, Recorder};
use proxy::{Fault, Gate};
use rig::{Size, export, finished, multiparts, retries, rig, rng, runs, stored};

use crate::{EMAIL, PASSWORD};

const DIRECT: &str = "/import/apple/xml/direct";
/// The presign call (only `Method::S3` uploads make it: the multipart
/// paths are longer, and are not sent in those tests).
const PRESIGN: &str = "/import/apple/xml/s3";
/// The embedded store's bucket: POSTs go to it, part PUTs under it.
const STORE: &str = "/owi-uploads";
const CREATE: &str = "/multipart/create";
const COMPLETE: &str = "/multipart/complete";
const ABORT: &str = "/multipart/abort";

/// `PUT …?…&partNumber=N&…` of a multipart upload.
fn part(n: u32) -> &'static str {
    match n {
        1 => "partNumber=1&",
        2 => "partNumber=2&",
        3 => "partNumber=3&",
        _ => unreachable!("three parts"),
    }
}

// Multi-threaded: the body read in place, as the CLI and the app send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_direct_upload_cut_mid_body_is_sent_again_and_imported_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Small);
    let cut = rng("direct cut").u64(1..export.len);
    rig.proxy.inject("POST", DIRECT, 1, Fault::Cut(cut));

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::Direct, &recorder)
        .await
        .unwrap_or_else(|e| panic!("cut after {cut} bytes: {e}"));
    assert_eq!(rig.proxy.count("POST", DIRECT), 2, "cut once, sent again");
    let retried = retries(&recorder);
    assert_eq!(retried.len(), 1, "{retried:?}");
    assert_eq!(finished(&recorder), Some(export.len));
    rig.imported_once(&uploaded, Size::Small).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy
        .tally("direct upload", "sent again, imported once");
}

#[tokio::test]
async fn a_presigned_post_cut_mid_body_is_sent_again_and_imported_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Small);
    let cut = rng("post cut").u64(1..export.len);
    rig.proxy.inject("POST", STORE, 1, Fault::Cut(cut));

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::S3, &recorder)
        .await
        .unwrap_or_else(|e| panic!("cut after {cut} bytes: {e}"));
    assert_eq!(rig.proxy.count("POST", STORE), 2, "cut once, sent again");
    assert_eq!(retries(&recorder).len(), 1);
    rig.imported_once(&uploaded, Size::Small).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy
        .tally("presigned POST", "sent again, imported once");
}

#[tokio::test]
async fn a_part_cut_mid_body_is_sent_again_and_imported_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    let cut = rng("part cut").u64(1..5 << 20);
    rig.proxy.inject("PUT", part(2), 1, Fault::Cut(cut));

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::Multipart, &recorder)
        .await
        .unwrap_or_else(|e| panic!("cut after {cut} bytes: {e}"));
    assert_eq!(uploaded.parts, Some(3));
    let puts = [1, 2, 3].map(|n| rig.proxy.count("PUT", part(n)));
    assert_eq!(puts, [1, 2, 1], "only the cut part is sent again");
    assert_eq!(rig.proxy.count("POST", COMPLETE), 1);
    assert_eq!(retries(&recorder).len(), 1);
    assert_eq!(finished(&recorder), Some(export.len));
    rig.imported_once(&uploaded, Size::Large).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy
        .tally("multipart part", "part sent again, imported once");
}

#[tokio::test]
async fn a_500_on_a_part_is_retried_and_imported_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    rig.proxy.inject("PUT", part(1), 1, Fault::Status(500));

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::Multipart, &recorder)
        .await
        .unwrap();
    let puts = [1, 2, 3].map(|n| rig.proxy.count("PUT", part(n)));
    assert_eq!(puts, [2, 1, 1]);
    let retried = retries(&recorder);
    assert!(
        retried.len() == 1 && retried[0].1.contains("InternalError"),
        "{retried:?}"
    );
    rig.imported_once(&uploaded, Size::Large).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy.tally("multipart part", "retried, imported once");
}

#[tokio::test]
async fn a_500_on_the_presign_call_is_retried_and_imported_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Small);
    rig.proxy.inject("POST", PRESIGN, 1, Fault::Status(500));

    let recorder = Recorder::new();
    let uploaded = rig.upload(&export, Method::S3, &recorder).await.unwrap();
    assert_eq!(rig.proxy.count("POST", PRESIGN), 2);
    assert_eq!(rig.proxy.count("POST", STORE), 1);
    let retried = retries(&recorder);
    assert!(
        retried.len() == 1 && retried[0].1.contains("(500)"),
        "{retried:?}"
    );
    rig.imported_once(&uploaded, Size::Small).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy.tally("presign call", "retried, imported once");
}

#[tokio::test]
async fn a_429_is_waited_out_as_the_server_asks_and_shown_as_retrying() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    // A 429 says the call was not acted on: waited out as the server asks.
    rig.proxy.inject("POST", CREATE, 1, Fault::Status(429));
    rig.proxy.inject("POST", COMPLETE, 1, Fault::Status(429));

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::Multipart, &recorder)
        .await
        .unwrap();
    for call in [CREATE, COMPLETE] {
        let gaps = rig.proxy.gaps("POST", call);
        assert!(
            gaps.len() == 1 && gaps[0] >= Duration::from_secs(1),
            "{call}: sent again only after Retry-After: {gaps:?}"
        );
    }
    let retried = retries(&recorder);
    assert_eq!(retried.len(), 2, "{retried:?}");
    for (delay_ms, reason) in &retried {
        assert_eq!(*delay_ms, 1000, "the server's Retry-After, shown as it is");
        assert!(reason.contains("(429)"), "{reason}");
    }
    rig.imported_once(&uploaded, Size::Large).await;
    // (Marked received when the store's notice is handled, by the run's start.)
    assert_eq!(multiparts(rig.dir(), &rig.user), ["received"], "one upload");
    assert_eq!(rig.proxy.injected(), 2, "every planned fault was met");
    rig.proxy.tally(
        "multipart create + complete",
        "waited 1 s each, imported once",
    );
}

#[tokio::test]
async fn a_stalled_part_is_given_up_after_the_stall_limit_and_sent_again() {
    let stall = Duration::from_secs(3);
    let timeouts = Timeouts {
        stall,
        ..Timeouts::default()
    };
    let rig = rig(|_| {}, timeouts).await;
    let export = export(Size::Large);
    rig.proxy.inject("PUT", part(2), 1, Fault::Stall);

    let recorder = Recorder::new();
    let uploaded = rig
        .upload(&export, Method::Multipart, &recorder)
        .await
        .unwrap();
    // The whole part went out, then silence: the watchdog gives it up
    // (not before the limit, and not long after) and sends it again.
    let gaps = rig.proxy.gaps("PUT", part(2));
    assert!(!gaps.is_empty(), "sent again");
    assert!(
        gaps[0] >= stall && gaps[0] < stall * 4,
        "detected within the stall limit: {gaps:?}"
    );
    let retried = retries(&recorder);
    assert!(
        retried
            .first()
            .is_some_and(|(_, r)| r.contains("did not answer in time")),
        "{retried:?}"
    );
    rig.imported_once(&uploaded, Size::Large).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy
        .tally("multipart part", "timed out, sent again, imported once");
}

#[tokio::test]
async fn an_upload_policy_that_expires_on_the_way_is_renewed_once() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Small);
    // The shortest lifetime the API signs, then the POST held until the
    // store must call the policy expired.
    rig.proxy.inject(
        "POST",
        PRESIGN,
        1,
        Fault::Rewrite(|mut body| {
            body["expiration_seconds"] = 60.into();
            body
        }),
    );
    let gate = Gate::new();
    rig.proxy
        .inject("POST", STORE, 1, Fault::Hold(gate.clone()));

    let recorder = Recorder::new();
    let expire = async {
        gate.arrived().await;
        // The server's record of the policy's end (never earlier than the
        // policy's own, which is cut to the second).
        let ends: Vec<i64> = {
            let db = rusqlite::Connection::open(rig.dir().join("server.sqlite")).unwrap();
            let mut q = db
                .prepare("SELECT expires_at FROM uploads WHERE user_id = ? AND kind = 'post'")
                .unwrap();
            q.query_map([&rig.user], |r| r.get(0))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap()
        };
        assert_eq!(ends.len(), 1, "one policy so far");
        let now = || {
            let since_epoch = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap();
            since_epoch.as_secs() as i64
        };
        while now() < ends[0] {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        gate.open();
    };
    let (uploaded, ()) = tokio::join!(rig.upload(&export, Method::S3, &recorder), expire);
    let uploaded = uploaded.unwrap();
    assert_eq!(rig.proxy.count("POST", PRESIGN), 2, "one fresh policy");
    assert_eq!(rig.proxy.count("POST", STORE), 2);
    assert_eq!(
        retries(&recorder),
        [],
        "a renewal, not a failure: {:#?}",
        rig.proxy.seen("", "")
    );
    rig.imported_once(&uploaded, Size::Small).await;
    assert_eq!(rig.proxy.injected(), 2, "every planned fault was met");
    rig.proxy
        .tally("presigned POST", "policy renewed once, imported once");
}

#[tokio::test]
async fn revoked_tokens_end_in_one_log_in_again_error_and_no_run() {
    // Access tokens that live no longer than the client's safety margin:
    // it renews before every request, so a revocation bites at once.
    let rig = rig(
        |config| config.access_token_ttl = Duration::from_secs(60),
        Timeouts::default(),
    )
    .await;
    let export = export(Size::Large);
    // As `owi login` then `owi upload`: a password login, then a process
    // that has only the refresh token it kept.
    let login = rig
        .connect(crate::password(PASSWORD))
        .await
        .refresh_token()
        .await
        .unwrap();
    let session = rig
        .connect(Credentials::RefreshToken {
            email: EMAIL.into(),
            token: login,
        })
        .await;
    let gate = Gate::new();
    rig.proxy
        .inject("PUT", part(1), 1, Fault::Hold(gate.clone()));

    let recorder = Recorder::new();
    let cancel = CancelToken::new();
    let revoke = async {
        gate.arrived().await;
        // Signed out everywhere, mid-upload.
        let db = rusqlite::Connection::open(rig.dir().join("server.sqlite")).unwrap();
        db.busy_timeout(Duration::from_secs(10)).unwrap();
        let revoked = db.execute("DELETE FROM refresh_tokens", []).unwrap();
        assert!(revoked > 0);
        gate.open();
    };
    let upload = session.upload(
        &export.path,
        &rig.user,
        Method::Multipart,
        &recorder,
        &cancel,
    );
    let (outcome, ()) = tokio::join!(upload, revoke);
    let e = outcome.unwrap_err();
    assert_eq!(e.kind(), "login_required", "{e:?}");
    assert!(e.to_string().contains("log in again"), "{e}");
    assert_eq!(retries(&recorder), [], "not retried");
    assert_eq!(rig.proxy.count("POST", COMPLETE), 0, "never completed");
    assert_eq!(runs(rig.dir(), &rig.user), Vec::<String>::new(), "no run");
    // Without credentials the client cannot abort: the upload stays
    // pending (no run, nothing imported) until the server's upkeep
    // aborts it at the end of its lifetime.
    assert_eq!(multiparts(rig.dir(), &rig.user), ["pending"]);
    assert_eq!(stored(rig.dir(), &rig.user).samples, 0);
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy.tally(
        "refresh tokens deleted mid-upload",
        "login_required, no run",
    );
}

#[tokio::test]
async fn a_refusal_from_the_store_is_not_retried_and_the_upload_is_aborted() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    rig.proxy.inject("PUT", part(2), 1, Fault::Status(403));

    let recorder = Recorder::new();
    let e = rig
        .upload(&export, Method::Multipart, &recorder)
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "storage", "{e:?}");
    assert!(e.to_string().contains("AccessDenied"), "{e}");
    assert_eq!(rig.proxy.count("PUT", part(2)), 1, "sent once, never again");
    assert_eq!(retries(&recorder), []);
    assert_eq!(rig.proxy.count("POST", COMPLETE), 0);
    assert_eq!(rig.proxy.count("POST", ABORT), 1);
    assert_eq!(multiparts(rig.dir(), &rig.user), ["aborted"]);
    assert_eq!(runs(rig.dir(), &rig.user), Vec::<String>::new());
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy.tally(
        "multipart part (403 from the store)",
        "one clear error, aborted",
    );
}

#[tokio::test]
async fn a_cancel_mid_multipart_stops_at_once_and_aborts_the_upload() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    // A part stuck in the network: the cancel must not wait for it.
    let gate = Gate::new();
    rig.proxy
        .inject("PUT", part(2), 1, Fault::Hold(gate.clone()));

    let cancel = CancelToken::new();
    let recorder = Recorder::new();
    let upload = async {
        let outcome = rig
            .client
            .upload(
                &export.path,
                &rig.user,
                Method::Multipart,
                &recorder,
                &cancel,
            )
            .await;
        (outcome, Instant::now())
    };
    let press = async {
        gate.arrived().await;
        cancel.cancel();
        Instant::now()
    };
    let ((outcome, stopped), pressed) = tokio::join!(upload, press);
    let e = outcome.unwrap_err();
    assert!(matches!(e, owi_client::Error::Cancelled), "{e:?}");
    assert!(
        stopped - pressed < Duration::from_secs(10),
        "stopped at once, not when the stuck connection gives up: {:?}",
        stopped - pressed
    );
    assert_eq!(rig.proxy.count("POST", ABORT), 1);
    assert_eq!(rig.proxy.count("POST", COMPLETE), 0);
    assert_eq!(multiparts(rig.dir(), &rig.user), ["aborted"]);
    assert_eq!(runs(rig.dir(), &rig.user), Vec::<String>::new());
    gate.open();
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy
        .tally("multipart part (held, then cancel)", "cancelled, aborted");
}

#[tokio::test]
async fn a_cancel_after_the_upload_is_committed_reports_what_the_server_has() {
    let rig = rig(|_| {}, Timeouts::default()).await;
    let export = export(Size::Large);
    // Every part is in; `complete` is on its way when the cancel comes.
    let gate = Gate::new();
    rig.proxy
        .inject("POST", COMPLETE, 1, Fault::Hold(gate.clone()));

    let cancel = CancelToken::new();
    let recorder = Recorder::new();
    let upload = rig.client.upload(
        &export.path,
        &rig.user,
        Method::Multipart,
        &recorder,
        &cancel,
    );
    let press = async {
        gate.arrived().await;
        cancel.cancel();
        gate.open();
    };
    let (outcome, ()) = tokio::join!(upload, press);
    // The server completes it and imports it: saying "cancelled" would be
    // a lie the local history keeps.
    let uploaded = outcome.unwrap();
    assert_eq!(rig.proxy.count("POST", ABORT), 0);
    assert_eq!(finished(&recorder), Some(export.len));
    rig.imported_once(&uploaded, Size::Large).await;
    assert_eq!(rig.proxy.injected(), 1, "every planned fault was met");
    rig.proxy.tally(
        "multipart complete (held, cancel)",
        "reported done, imported once",
    );
}
