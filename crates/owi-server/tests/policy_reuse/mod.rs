//! A presigned POST policy stores one upload: refused while one is in
//! flight, refused once one succeeded (also after a restart), free again
//! after a POST that was cut.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tokio::sync::mpsc;

use crate::util::*;

/// The same form with its `key` changed: the store refuses it by the
/// policy (400 `InvalidPolicyDocument`), after the layer in front has
/// claimed (and let go of) the signature, so it probes the claim without
/// ever storing anything.
fn tampered(presigned: &Presigned) -> Vec<(String, String)> {
    presigned
        .fields
        .iter()
        .map(|(k, v)| match k.as_str() {
            "key" => (k.clone(), format!("{v}-not-signed")),
            _ => (k.clone(), v.clone()),
        })
        .collect()
}

type Held = (
    mpsc::Sender<Option<Vec<u8>>>,
    tokio::task::JoinHandle<reqwest::Result<reqwest::Response>>,
);

/// POSTs `presigned`'s form with a file that starts at once and then
/// waits: `Some(bytes)` on `rest` finishes it, `None` cuts it.
fn held_post(presigned: &Presigned, head: Vec<u8>) -> Held {
    let (rest, mut next) = mpsc::channel::<Option<Vec<u8>>>(1);
    let body = async_stream_of(head, async move { next.recv().await.flatten() });
    let mut form = reqwest::multipart::Form::new();
    for (k, v) in &presigned.fields {
        form = form.text(k.clone(), v.clone());
    }
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(body))
        .file_name("export.xml")
        .mime_str("application/xml")
        .expect("mime");
    form = form.part("file", part);
    let url = presigned.json["upload_url"]
        .as_str()
        .expect("upload_url")
        .to_string();
    let task = tokio::spawn(async move {
        reqwest::Client::new()
            .post(url)
            .multipart(form)
            .send()
            .await
    });
    (rest, task)
}

/// A held POST whose claim the store holds: probes (the tampered form)
/// until one meets 409. A held POST that met a probe's own brief claim
/// (and so ended) is started again.
async fn held_and_claimed(presigned: &Presigned, head: &[u8]) -> Held {
    let probe = tampered(presigned);
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let held = held_post(presigned, head.to_vec());
            while !held.1.is_finished() {
                let (status, code) =
                    s3_code(post_form(presigned, &probe, b"x".to_vec()).await).await;
                if status == StatusCode::CONFLICT {
                    assert_eq!(code, "OperationAborted");
                    return held;
                }
                assert_eq!(
                    (status, code.as_str()),
                    (StatusCode::BAD_REQUEST, "InvalidPolicyDocument")
                );
            }
        }
    })
    .await
    .expect("the held POST is claimed within 30 s")
}

/// `head`, then what `rest` gives, or an error (a cut) when it gives none.
fn async_stream_of(
    head: Vec<u8>,
    rest: impl std::future::Future<Output = Option<Vec<u8>>> + Send + 'static,
) -> impl futures_util::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    use futures_util::StreamExt;
    let head = futures_util::stream::once(async move { Ok(head) });
    let rest = futures_util::stream::once(async move {
        rest.await
            .ok_or_else(|| std::io::Error::other("cut on purpose"))
    });
    head.chain(rest)
}

/// POSTs `fields` until the answer is not `skip` (the server lets go of a
/// claim when it notices a cut, a moment after the client made it).
async fn post_until_not(
    presigned: &Presigned,
    fields: &[(String, String)],
    file: &[u8],
    skip: StatusCode,
) -> (StatusCode, String) {
    tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let answer = s3_code(post_form(presigned, fields, file.to_vec()).await).await;
            if answer.0 != skip {
                return answer;
            }
        }
    })
    .await
    .expect("the store answers otherwise within 30 s")
}

/// A server, a user and a small export.
async fn started() -> (TestServer, String, Vec<u8>) {
    let s = TestServer::start().await;
    let user = s.create_user("once@example.com").await;
    let data = tempfile::tempdir().unwrap();
    let manifest = sample(data.path(), 500, 2);
    let bytes = std::fs::read(&manifest.xml_path).unwrap();
    (s, user, bytes)
}

#[tokio::test]
async fn a_post_policy_in_flight_refuses_a_second_and_a_cut_one_may_be_tried_again() {
    let (s, user, bytes) = started().await;
    let presigned = s
        .presign(&user, json!({ "max_file_size": bytes.len() }))
        .await;
    let (head, tail) = bytes.split_at(bytes.len() / 2);

    // A POST that stays in flight: its signature is claimed.
    let (rest, first) = held_and_claimed(&presigned, head).await;
    // The genuine form too, while the first goes on.
    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::CONFLICT, "OperationAborted".into())
    );
    // Cut it: nothing stored, and the policy may be used again.
    rest.send(None).await.unwrap();
    let _ = first.await.unwrap();
    assert!(s.objects().await.is_empty());
    let stored = post_until_not(&presigned, &presigned.fields, &bytes, StatusCode::CONFLICT).await;
    assert_eq!(stored.0, StatusCode::NO_CONTENT, "{stored:?}");
    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );

    // One that completes while a second waits: the second is refused.
    let again = s
        .presign(&user, json!({ "max_file_size": bytes.len() }))
        .await;
    let (rest, first) = held_and_claimed(&again, head).await;
    rest.send(Some(tail.to_vec())).await.unwrap();
    let first = first.await.unwrap().unwrap();
    assert_eq!(first.status(), StatusCode::NO_CONTENT);
    let res = post_form(&again, &again.fields, bytes.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );
    assert_eq!(s.objects().await.len(), 2, "one object a policy");
}

#[tokio::test]
async fn a_used_post_policy_is_refused_after_a_restart_and_imported_once() {
    let (s, user, bytes) = started().await;
    let mut presigned = s
        .presign(&user, json!({ "max_file_size": bytes.len() }))
        .await;
    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let events = s.follow(&user, None).await;
    assert_eq!(events.last().unwrap().status, owi_server::Status::Success);
    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );

    // The store comes back on another port; the policy is still spent.
    let s = TestServer::start_in(s.stop().await, |_| {}).await;
    let fresh = s
        .presign(&user, json!({ "max_file_size": bytes.len() }))
        .await;
    presigned.json["upload_url"] = fresh.json["upload_url"].clone();
    let res = post_form(&presigned, &presigned.fields, bytes.clone()).await;
    assert_eq!(
        s3_code(res).await,
        (StatusCode::FORBIDDEN, "AccessDenied".into())
    );
    assert_eq!(s.jobs(), 1, "the upload was imported once");
    // A new policy still works.
    let res = post_form(&fresh, &fresh.fields, bytes).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
}
