//! A connection to one Open Wearables server: its address, how this client
//! proves who it is (an API key, or a password login with tokens refreshed
//! as they expire), and requests sent with timeouts and retries.

use owi_progress::CancelToken;
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode, Url};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::{ErrorBody, NewUser, Page, TokenResponse, User, UserQuery};
use crate::error::Error;
use crate::secret::Secret;
pub use crate::settings::{
    ClientOptions, Credentials, RetryPolicy, ServerUrl, Timeouts, TokenHook,
};

/// A connection to one server. Cheap to clone; clones share the session.
#[derive(Debug, Clone)]
pub struct Client {
    inner: Arc<Inner>,
    /// Where this handle reports the retries it is about to make (an
    /// upload's progress); other handles on the session do not.
    retries: Option<tokio::sync::mpsc::UnboundedSender<Retry>>,
    /// Cuts this handle's retry waits short (an upload's cancel).
    cancel: Option<CancelToken>,
}

/// A transient failure about to be tried again, for a progress report
/// ("retrying in 4 s").
#[derive(Debug, Clone)]
pub(crate) struct Retry {
    /// 1 for the first retry of a request.
    pub attempt: u32,
    pub delay: Duration,
    pub reason: String,
}

struct Inner {
    http: reqwest::Client,
    /// For request bodies that take long to send: no read timeout.
    upload_http: reqwest::Client,
    server: ServerUrl,
    auth: Auth,
    retry: RetryPolicy,
    stall: Duration,
    on_refresh_token: Option<TokenHook>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Inner")
            .field("server", &self.server)
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Auth {
    ApiKey(Secret),
    Session {
        email: String,
        /// Kept only for this process, to log in again when a refresh fails.
        password: Option<Secret>,
        tokens: tokio::sync::Mutex<Tokens>,
    },
}

#[derive(Debug, Default)]
struct Tokens {
    access: Option<Secret>,
    refresh: Option<Secret>,
    /// When the access token stops working (a little early, to be safe).
    expires_at: Option<Instant>,
}

/// Whether a request may be sent again after a transient failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotent {
    Yes,
    No,
}

impl Client {
    /// Connects and proves the credentials work: a password is logged in
    /// with, a key or a kept refresh token is tried on a cheap request.
    pub async fn connect(server: &str, credentials: Credentials) -> Result<Client, Error> {
        Client::connect_with(server, credentials, ClientOptions::default()).await
    }

    pub async fn connect_with(
        server: &str,
        credentials: Credentials,
        options: ClientOptions,
    ) -> Result<Client, Error> {
        let server = ServerUrl::parse(server)?;
        if server.in_clear() && !options.insecure_http {
            return Err(Error::InsecureHttp {
                server: server.origin().to_string(),
            });
        }
        // Credentials must not follow a redirect to another host (reqwest
        // keeps custom headers such as the API key): no redirects at all.
        let setup = |e: reqwest::Error| Error::Config(format!("cannot set up HTTP: {e}"));
        let proxy = options
            .proxy
            .as_deref()
            .map(reqwest::Proxy::all)
            .transpose()
            .map_err(setup)?;
        let builder = || {
            let builder = reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(10))
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("owi/", env!("CARGO_PKG_VERSION")));
            match &proxy {
                Some(proxy) => builder.proxy(proxy.clone()),
                None => builder,
            }
        };
        // The read timeout runs until the answer's headers, body included:
        // uploads get none, and a stall watchdog instead.
        let http = builder()
            .read_timeout(options.timeouts.read)
            .build()
            .map_err(setup)?;
        let upload = builder();
        // reqwest drops a connection whose sent data stays unacknowledged
        // for 30 s (`TCP_USER_TIMEOUT`): a peer that stops reading is the
        // stall watchdog's to judge, at its own limit.
        #[cfg(any(target_os = "android", target_os = "fuchsia", target_os = "linux"))]
        let upload = upload.tcp_user_timeout(options.timeouts.stall);
        let upload_http = upload.build().map_err(setup)?;
        let auth = match credentials {
            Credentials::ApiKey(key) => Auth::ApiKey(key),
            Credentials::Password { email, password } => Auth::Session {
                email,
                password: Some(password),
                tokens: Default::default(),
            },
            Credentials::RefreshToken { email, token } => Auth::Session {
                email,
                password: None,
                tokens: tokio::sync::Mutex::new(Tokens {
                    refresh: Some(token),
                    ..Tokens::default()
                }),
            },
        };
        let client = Client {
            inner: Arc::new(Inner {
                http,
                upload_http,
                server,
                auth,
                retry: options.retry,
                stall: options.timeouts.stall,
                on_refresh_token: options.on_refresh_token,
            }),
            retries: None,
            cancel: None,
        };
        client.identify().await?;
        // Proves the credentials now rather than at the first real request.
        let probe = client
            .users(&UserQuery {
                limit: 1,
                ..UserQuery::default()
            })
            .await;
        probe.map(|_| client)
    }

    pub fn server(&self) -> &ServerUrl {
        &self.inner.server
    }

    /// The email of a password session.
    pub fn email(&self) -> Option<&str> {
        match &self.inner.auth {
            Auth::Session { email, .. } => Some(email),
            Auth::ApiKey(_) => None,
        }
    }

    /// The current refresh token, to keep in the keychain (it rotates).
    pub async fn refresh_token(&self) -> Option<Secret> {
        match &self.inner.auth {
            Auth::Session { tokens, .. } => tokens.lock().await.refresh.clone(),
            Auth::ApiKey(_) => None,
        }
    }

    pub async fn users(&self, query: &UserQuery) -> Result<Page<User>, Error> {
        self.get("users", query).await
    }

    pub async fn user(&self, id: &str) -> Result<User, Error> {
        self.get(&format!("users/{id}"), &()).await
    }

    /// Not retried: a repeat could make the user twice.
    pub async fn create_user(&self, new: &NewUser) -> Result<User, Error> {
        self.send_json(Method::POST, "users", &(), Some(new), Idempotent::No)
            .await
    }

    pub(crate) async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &(impl Serialize + ?Sized),
    ) -> Result<T, Error> {
        self.send_json::<T, ()>(Method::GET, path, query, None, Idempotent::Yes)
            .await
    }

    pub(crate) fn url(&self, path: &str) -> Result<Url, Error> {
        self.inner.server.join(path)
    }

    /// The HTTP client for long uploads to presigned URLs (no credentials,
    /// no read timeout: the upload's stall watchdog stands in).
    pub(crate) fn api_http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub(crate) fn upload_http(&self) -> &reqwest::Client {
        &self.inner.upload_http
    }

    pub(crate) async fn decode<T: DeserializeOwned>(
        &self,
        response: reqwest::Response,
        what: &str,
    ) -> Result<T, Error> {
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            server: self.origin(),
            reason: format!("{what}: {e}"),
        })
    }

    pub(crate) fn retry_policy(&self) -> RetryPolicy {
        self.inner.retry
    }

    /// How long an upload's bytes may stand still.
    pub(crate) fn stall_after(&self) -> Duration {
        self.inner.stall
    }

    /// A handle on the same session that reports each retry to `to`.
    pub(crate) fn for_job(
        &self,
        retries: tokio::sync::mpsc::UnboundedSender<Retry>,
        cancel: CancelToken,
    ) -> Client {
        Client {
            inner: self.inner.clone(),
            retries: Some(retries),
            cancel: Some(cancel),
        }
    }

    /// Reports a retry and waits out its delay; this handle's cancel cuts
    /// the wait short.
    pub(crate) async fn pause(
        &self,
        attempt: u32,
        delay: Duration,
        error: &Error,
    ) -> Result<(), Error> {
        const TICK: Duration = Duration::from_millis(100);
        self.report_retry(attempt, delay, error);
        let until = tokio::time::Instant::now() + delay;
        loop {
            if self.cancel.as_ref().is_some_and(CancelToken::is_cancelled) {
                return Err(Error::Cancelled);
            }
            let now = tokio::time::Instant::now();
            if now >= until {
                return Ok(());
            }
            tokio::time::sleep(TICK.min(until - now)).await;
        }
    }

    /// Logs a retry about to be made and tells whoever follows this handle.
    pub(crate) fn report_retry(&self, attempt: u32, delay: Duration, error: &Error) {
        tracing::warn!(error = %error, ?delay, attempt, "retrying");
        if let Some(to) = &self.retries {
            let _ = to.send(Retry {
                attempt,
                delay,
                reason: error.to_string(),
            });
        }
    }

    /// Sends an authenticated request without a body; the response as is.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        path: &str,
        query: &(impl Serialize + ?Sized),
        idempotent: Idempotent,
    ) -> Result<reqwest::Response, Error> {
        let url = self.inner.server.join(path)?;
        self.send(idempotent, |http| {
            http.request(method.clone(), url.clone()).query(query)
        })
        .await
    }

    /// Sends an authenticated JSON request; decodes the JSON answer.
    pub(crate) async fn send_json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        query: &(impl Serialize + ?Sized),
        body: Option<&B>,
        idempotent: Idempotent,
    ) -> Result<T, Error> {
        let url = self.inner.server.join(path)?;
        let response = self
            .send(idempotent, |http| {
                let request = http.request(method.clone(), url.clone()).query(query);
                match body {
                    Some(body) => request.json(body),
                    None => request,
                }
            })
            .await?;
        let bytes = response.bytes().await.map_err(|e| self.transport(&e))?;
        serde_json::from_slice(&bytes).map_err(|e| Error::Protocol {
            server: self.origin(),
            reason: format!("{path}: {e}"),
        })
    }

    /// Sends with credentials, refreshing or logging in again once on a
    /// 401, and retrying transient failures when `idempotent`.
    pub(crate) async fn send(
        &self,
        idempotent: Idempotent,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        self.send_on(&self.inner.http, idempotent, build).await
    }

    /// As [`Client::send`], for a body that may take long to send (no read
    /// timeout; the caller watches for stalls).
    pub(crate) async fn send_upload(
        &self,
        idempotent: Idempotent,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        self.send_on(&self.inner.upload_http, idempotent, build)
            .await
    }

    async fn send_on(
        &self,
        http: &reqwest::Client,
        idempotent: Idempotent,
        build: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, Error> {
        let mut delays = self.inner.retry.delays();
        let mut renewed = false;
        let mut attempt = 0;
        loop {
            let request = self.authorize(build(http)).await?;
            let error = match request.send().await {
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    if !renewed && self.renew().await? {
                        renewed = true;
                        continue;
                    }
                    // A key has no login to renew: it was revoked.
                    if matches!(self.inner.auth, Auth::ApiKey(_)) {
                        return Err(Error::BadApiKey {
                            server: self.origin(),
                        });
                    }
                    return Err(Error::LoginRequired {
                        server: self.origin(),
                    });
                }
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => self.refusal(response).await,
                Err(e) => self.transport(&e),
            };
            // A server that says when to come back is believed.
            let retry_after = match &error {
                Error::Server { retry_after, .. } => *retry_after,
                _ => None,
            };
            // A 429 says the request was not acted on: safe to repeat even
            // when a repeat could otherwise do the work twice.
            let repeatable =
                idempotent == Idempotent::Yes || matches!(error, Error::Server { status: 429, .. });
            match delays.next() {
                Some(delay) if repeatable && error.is_transient() => {
                    let delay = retry_after.unwrap_or(delay);
                    attempt += 1;
                    self.pause(attempt, delay, &error).await?;
                }
                _ => return Err(error),
            }
        }
    }

    async fn authorize(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::RequestBuilder, Error> {
        match &self.inner.auth {
            Auth::ApiKey(key) => Ok(request.header("X-Open-Wearables-API-Key", key.expose())),
            Auth::Session { tokens, .. } => {
                let fresh = {
                    let tokens = tokens.lock().await;
                    match (&tokens.access, tokens.expires_at) {
                        (Some(access), Some(at)) if Instant::now() < at => Some(access.clone()),
                        (Some(access), None) => Some(access.clone()),
                        _ => None,
                    }
                };
                let access =
                    match fresh {
                        Some(access) => access,
                        None => {
                            if !self.renew().await? {
                                return Err(Error::LoginRequired {
                                    server: self.origin(),
                                });
                            }
                            tokens.lock().await.access.clone().ok_or_else(|| {
                                Error::LoginRequired {
                                    server: self.origin(),
                                }
                            })?
                        }
                    };
                Ok(request.bearer_auth(access.expose()))
            }
        }
    }

    /// Gets a new access token: by the refresh token, else by logging in
    /// again with the password this process holds. `false` when neither
    /// is possible (an API key, or nothing left to try).
    async fn renew(&self) -> Result<bool, Error> {
        let Auth::Session {
            email,
            password,
            tokens,
        } = &self.inner.auth
        else {
            return Ok(false);
        };
        let mut tokens = tokens.lock().await;
        if let Some(refresh) = tokens.refresh.take() {
            let url = self.inner.server.join("token/refresh")?;
            let body = serde_json::json!({ "refresh_token": refresh.expose() });
            match self.inner.http.post(url).json(&body).send().await {
                Ok(response) if response.status().is_success() => {
                    let answer: TokenResponse =
                        response.json().await.map_err(|e| Error::Protocol {
                            server: self.origin(),
                            reason: format!("token/refresh: {e}"),
                        })?;
                    let mut renewed = Tokens::from(answer);
                    self.announce(&renewed);
                    // A server that does not rotate sends none back.
                    renewed.refresh = renewed.refresh.or(Some(refresh));
                    *tokens = renewed;
                    return Ok(true);
                }
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED => {
                    tracing::info!("the refresh token was refused");
                }
                Ok(response) => {
                    // The server's trouble, not the token's: keep it.
                    tokens.refresh = Some(refresh);
                    return Err(self.refusal(response).await);
                }
                Err(e) => {
                    // Keep it for the next try: the network, not the token.
                    tokens.refresh = Some(refresh);
                    return Err(self.transport(&e));
                }
            }
        }
        let Some(password) = password else {
            return Ok(false);
        };
        let url = self.inner.server.join("auth/login")?;
        let form = [
            ("username", email.as_str()),
            ("password", password.expose()),
        ];
        let response = self
            .inner
            .http
            .post(url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.transport(&e))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(Error::BadLogin {
                server: self.origin(),
            });
        }
        if !response.status().is_success() {
            return Err(self.refusal(response).await);
        }
        let answer: TokenResponse = response.json().await.map_err(|e| Error::Protocol {
            server: self.origin(),
            reason: format!("auth/login: {e}"),
        })?;
        let renewed = Tokens::from(answer);
        self.announce(&renewed);
        *tokens = renewed;
        Ok(true)
    }

    /// Hands a new refresh token to whoever keeps it.
    fn announce(&self, tokens: &Tokens) {
        if let (Some(hook), Some(refresh)) = (&self.inner.on_refresh_token, &tokens.refresh) {
            hook(refresh);
        }
    }

    fn origin(&self) -> String {
        self.inner.server.origin().to_string()
    }

    pub(crate) fn transport(&self, e: &reqwest::Error) -> Error {
        if e.is_timeout() {
            return Error::Timeout {
                server: self.origin(),
            };
        }
        // The innermost cause says the most ("Connection refused").
        let mut reason = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(inner) = source {
            reason = inner.to_string();
            source = inner.source();
        }
        Error::Unreachable {
            server: self.origin(),
            reason,
        }
    }

    /// A non-success answer as an error, with the server's `detail`.
    pub(crate) async fn refusal(&self, response: reqwest::Response) -> Error {
        let status = response.status();
        let retry_after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let detail = match serde_json::from_str::<ErrorBody>(&text) {
            Ok(ErrorBody {
                detail: serde_json::Value::String(s),
            }) => s,
            Ok(ErrorBody { detail }) => detail.to_string(),
            Err(_) => text.chars().take(200).collect(),
        };
        let server = self.origin();
        if status.is_redirection() {
            return Error::Refused {
                server,
                status: status.as_u16(),
                detail: "the server redirects elsewhere; use the address it redirects to".into(),
            };
        }
        match status.as_u16() {
            404 => Error::NotFound { server, detail },
            429 | 500..=599 => Error::Server {
                server,
                status: status.as_u16(),
                detail,
                retry_after,
            },
            code => Error::Refused {
                server,
                status: code,
                detail,
            },
        }
    }
}

/// A `Retry-After` given in seconds (the form APIs use), believed up to
/// five minutes.
pub(crate) fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
        .map(|secs| Duration::from_secs(secs.min(300)))
}

impl From<TokenResponse> for Tokens {
    fn from(answer: TokenResponse) -> Self {
        Tokens {
            access: Some(Secret::new(answer.access_token)),
            refresh: answer.refresh_token.map(Secret::new),
            // A minute early: a token must not expire on the way.
            expires_at: answer.expires_in.and_then(|secs| {
                Instant::now().checked_add(Duration::from_secs(secs.saturating_sub(60)))
            }),
        }
    }
}
