//! Who may call: credentials on every endpoint, logins held back after
//! failures, password hashing capped under a flood, refresh-token families
//! with reuse detection, expired tokens purged, and the signing key's file.

use std::time::Duration;

use owi_server::{HashingLimits, LoginThrottle};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::util::*;

#[tokio::test]
async fn every_endpoint_refuses_a_request_without_valid_credentials() {
    let s = TestServer::start().await;
    let user = s.create_user("a@example.com").await;
    for path in [
        "/users".to_string(),
        format!("/users/{user}"),
        format!("/users/{user}/sync/runs"),
        format!("/users/{user}/events/workouts"),
    ] {
        let res = s.http.get(s.url(&path)).send().await.unwrap();
        refused(res, NO_CREDENTIALS).await;
        let res = s
            .http
            .get(s.url(&path))
            .header(
                "X-Open-Wearables-API-Key",
                "sk-ffffffffffffffffffffffffffffffff",
            )
            .send()
            .await
            .unwrap();
        refused(res, "Invalid or missing API key").await;
        let forged = s.http.get(s.url(&path)).bearer_auth("not.a-token");
        refused(
            forged.send().await.unwrap(),
            "Could not validate credentials",
        )
        .await;
    }
    for upload in [
        "direct",
        "s3",
        "s3/multipart/create",
        "s3/multipart/sign",
        "s3/multipart/complete",
        "s3/multipart/abort",
    ] {
        let url = s.url(&format!("/users/{user}/import/apple/xml/{upload}"));
        let res = s.http.post(url).json(&json!({ "file_size": 6 << 20 }));
        refused(res.send().await.unwrap(), NO_CREDENTIALS).await;
    }
}

const NO_CREDENTIALS: &str = "Authentication required: provide JWT token or API key";

/// A 401 with the API's `WWW-Authenticate` and `detail`.
async fn refused(res: reqwest::Response, said: &str) {
    assert_eq!(
        res.headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap()),
        Some("Bearer")
    );
    assert_eq!(detail(res).await, (StatusCode::UNAUTHORIZED, said.into()));
}

#[tokio::test]
async fn login_refresh_rotation_and_expiry() {
    let s = TestServer::start().await;
    refused(s.login(EMAIL, "wrong").await, "Incorrect email or password").await;
    let res = s.login("nobody@example.com", PASSWORD).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "unknown email");
    // An empty field is a wrong password.
    refused(s.login(EMAIL, "").await, "Incorrect email or password").await;

    let tokens: Value = s.login(EMAIL, PASSWORD).await.json().await.unwrap();
    assert_eq!(tokens["token_type"], "bearer");
    assert_eq!(tokens["expires_in"], 3600);
    let access = tokens["access_token"].as_str().unwrap();
    let res = s.http.get(s.url("/users")).bearer_auth(access).send();
    assert_eq!(
        res.await.unwrap().status(),
        StatusCode::OK,
        "the access token works"
    );

    let refresh = tokens["refresh_token"].as_str().unwrap();
    let res = s.refresh(refresh).await;
    assert_eq!(res.status(), StatusCode::OK);
    let rotated: Value = res.json().await.unwrap();
    assert_ne!(
        rotated["refresh_token"], tokens["refresh_token"],
        "a new refresh token"
    );
    assert_eq!(
        s.refresh(refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old refresh token was revoked"
    );

    let dir = s.stop().await;
    let short = TestServer::start_in(dir, |c| c.access_token_ttl = Duration::ZERO).await;
    let tokens: Value = short.login(EMAIL, PASSWORD).await.json().await.unwrap();
    let res = short.http.get(short.url("/users"));
    let res = res
        .bearer_auth(tokens["access_token"].as_str().unwrap())
        .send();
    assert_eq!(
        res.await.unwrap().status(),
        StatusCode::UNAUTHORIZED,
        "an expired token is refused"
    );
}

/// The `Retry-After` of a 429, checked to be within the window.
async fn held_back(res: reqwest::Response, window: u64) -> u64 {
    let secs: u64 = res
        .headers()
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=window).contains(&secs), "Retry-After {secs}");
    let (status, said) = detail(res).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(said.contains("try again in"), "{said}");
    secs
}

#[tokio::test]
async fn failed_logins_are_held_back_per_account_and_per_address() {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.login_throttle = LoginThrottle {
            per_account: 3,
            per_address: 8,
            window: Duration::from_secs(60),
            max_entries: 100,
        };
    })
    .await;
    let status = |res: reqwest::Response| res.status();
    for _ in 0..2 {
        assert_eq!(
            status(s.login(EMAIL, "wrong").await),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(status(s.login(EMAIL, PASSWORD).await), StatusCode::OK);
    // The success cleared the account's two: two more are not yet three.
    for _ in 0..2 {
        assert_eq!(
            status(s.login(EMAIL, "wrong").await),
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(
        status(s.login(EMAIL, PASSWORD).await),
        StatusCode::OK,
        "a success resets the account's count"
    );
    for _ in 0..3 {
        assert_eq!(
            status(s.login(EMAIL, "wrong").await),
            StatusCode::UNAUTHORIZED
        );
    }
    held_back(s.login(EMAIL, PASSWORD).await, 60).await;
    held_back(s.login(&EMAIL.to_uppercase(), PASSWORD).await, 60).await;

    // Seven failures from this address so far; the eighth fills it, and
    // then any account is held back from here.
    assert_eq!(
        status(s.login("nobody@example.com", "guess").await),
        StatusCode::UNAUTHORIZED
    );
    held_back(s.login("other@example.com", "guess").await, 60).await;

    s.clock.advance(Duration::from_secs(61));
    assert_eq!(
        status(s.login(EMAIL, PASSWORD).await),
        StatusCode::OK,
        "the window is over"
    );
}

#[tokio::test]
async fn a_login_flood_never_hashes_more_than_the_cap_at_once() {
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.hashing = HashingLimits {
            concurrent: 2,
            queued: 64,
        };
        c.login_throttle.per_account = 1000;
        c.login_throttle.per_address = 1000;
    })
    .await;
    let logins = (0..16).map(|i| {
        let password = if i % 2 == 0 { PASSWORD } else { "wrong" };
        let s = &s;
        async move { (password, s.login(EMAIL, password).await) }
    });
    for (password, res) in futures_util::future::join_all(logins).await {
        if password == PASSWORD {
            assert_eq!(res.status(), StatusCode::OK);
            let tokens: Value = res.json().await.unwrap();
            assert!(tokens["access_token"].is_string(), "{tokens}");
        } else {
            assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        }
    }
    assert_eq!(
        s.hashing.peak(),
        2,
        "the flood hashed two at once, never more"
    );
}

/// A login's refresh token.
async fn refresh_token_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), StatusCode::OK);
    let tokens: Value = res.json().await.unwrap();
    tokens["refresh_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_spent_refresh_token_presented_again_revokes_its_family() {
    let s = TestServer::start().await;
    let first = refresh_token_of(s.login(EMAIL, PASSWORD).await).await;
    let other = refresh_token_of(s.login(EMAIL, PASSWORD).await).await;
    let second = refresh_token_of(s.refresh(&first).await).await;
    let third = refresh_token_of(s.refresh(&second).await).await;

    // `first` again: someone else holds this family.
    refused(s.refresh(&first).await, "Could not validate credentials").await;
    assert_eq!(
        s.refresh(&third).await.status(),
        StatusCode::UNAUTHORIZED,
        "the token issued last in the family stops working too"
    );
    assert_eq!(
        s.query_i64("SELECT count(DISTINCT family_id) FROM refresh_tokens"),
        1,
        "only the other login's family is left"
    );
    let next = refresh_token_of(s.refresh(&other).await).await;
    assert_ne!(next, other, "another family is untouched");
}

#[tokio::test]
async fn expired_refresh_tokens_are_deleted_at_start_and_then_periodically() {
    let ttl = Duration::from_secs(100);
    let s = TestServer::start_in(tempfile::tempdir().unwrap(), |c| {
        c.refresh_token_ttl = ttl;
    })
    .await;
    let clock = s.clock.clone();
    let first = refresh_token_of(s.login(EMAIL, PASSWORD).await).await;
    clock.advance(Duration::from_secs(50));
    let second = refresh_token_of(s.refresh(&first).await).await;
    let expired = refresh_token_of(s.login(EMAIL, PASSWORD).await).await;
    clock.advance(Duration::from_secs(60));
    assert_eq!(s.query_i64("SELECT count(*) FROM refresh_tokens"), 3);

    // 110 s on: `first` (spent) is past its 100 s, `second` and the third
    // login's token are not.
    let dir = s.stop().await;
    let s = TestServer::start_in(dir, |c| {
        c.refresh_token_ttl = ttl;
        c.clock = clock.clone();
        c.purge_interval = Duration::from_millis(50);
    })
    .await;
    assert_eq!(
        s.query_i64("SELECT count(*) FROM refresh_tokens"),
        2,
        "the expired, spent token went at start"
    );
    let _ = expired;
    clock.advance(Duration::from_secs(200));
    // The periodic pass deletes the rest; wait for it, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while s.query_i64("SELECT count(*) FROM refresh_tokens") > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "expired refresh tokens are still there"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        s.refresh(&second).await.status(),
        StatusCode::UNAUTHORIZED,
        "an expired token is refused"
    );
}

#[tokio::test]
async fn a_damaged_signing_key_is_named_and_a_lost_one_signs_everyone_out() {
    let s = TestServer::start().await;
    let res = s.login(EMAIL, PASSWORD).await;
    let tokens: Value = res.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let dir = s.stop().await;
    let key = dir.path().join("signing.key");
    let whole = std::fs::read(&key).unwrap();
    assert_eq!(whole.len(), 32);

    std::fs::write(&key, &whole[..10]).unwrap();
    let err = owi_server::Server::open(config(dir.path()))
        .expect_err("a short key is refused")
        .to_string();
    assert!(err.contains(&key.display().to_string()), "{err}");
    assert!(err.contains("10 bytes"), "{err}");
    assert!(err.contains("delete it"), "says what to do: {err}");

    std::fs::remove_file(&key).unwrap();
    let s = TestServer::start_in(dir, |_| {}).await;
    let made = std::fs::read(&key).unwrap();
    assert_eq!(made.len(), 32, "a new key");
    assert_ne!(made, whole);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the owner's only");
    }
    assert!(
        !s.dir.path().join("signing.key.new").exists(),
        "no temporary file left"
    );
    let res = s
        .http
        .get(s.url("/users"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::UNAUTHORIZED,
        "the old access token"
    );
    assert_eq!(
        s.refresh(&refresh).await.status(),
        StatusCode::UNAUTHORIZED,
        "the old refresh token"
    );
    assert_eq!(
        s.get("/users").send().await.unwrap().status(),
        StatusCode::OK,
        "API keys keep working"
    );
    assert_eq!(s.login(EMAIL, PASSWORD).await.status(), StatusCode::OK);
}
