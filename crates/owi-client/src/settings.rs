//! What a connection is made of before it is made: the server's address as
//! people type it, the credentials, and the retry, timeout and token-keeping
//! settings.

use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder;
use reqwest::Url;

use crate::error::Error;
use crate::secret::Secret;

/// How a client proves who it is.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// `X-Open-Wearables-API-Key`.
    ApiKey(Secret),
    /// A form login, then `Authorization: Bearer`.
    Password { email: String, password: Secret },
    /// A refresh token kept from an earlier login (the password is not kept).
    RefreshToken { email: String, token: Secret },
}

/// A server's address: what people type (`http://host:8000`, with or without
/// `/api/v1`) made into the API's base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerUrl {
    /// `…/api/v1/`, for joining paths.
    api: Url,
    /// `scheme://host[:port][/prefix]`, as shown to people and used as a key.
    origin: String,
}

impl ServerUrl {
    pub fn parse(input: &str) -> Result<ServerUrl, Error> {
        // Never echo what could hold a password (`user:pass@`, a query).
        let shown = match input.split_once("://") {
            Some((scheme, rest)) => {
                let host = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
                format!(
                    "{scheme}://{}",
                    host.split(['?', '#']).next().unwrap_or_default()
                )
            }
            None => input
                .split(['?', '#', '@'])
                .next()
                .unwrap_or_default()
                .to_string(),
        };
        let bad = |reason: &str| Error::BadServerUrl {
            url: shown.clone(),
            reason: reason.to_string(),
        };
        let trimmed = input.trim().trim_end_matches('/');
        let mut url = Url::parse(trimmed).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("it must start with http:// or https://"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("it has no host"));
        }
        if url.query().is_some()
            || url.fragment().is_some()
            || !url.username().is_empty()
            || url.password().is_some()
        {
            return Err(bad("it must not carry a query, fragment or credentials"));
        }
        let path = url.path().trim_end_matches('/').to_string();
        let prefix = path.strip_suffix("/api/v1").unwrap_or(&path).to_string();
        url.set_path(&format!("{prefix}/api/v1/"));
        let origin = format!("{}{}", url.origin().ascii_serialization(), prefix);
        Ok(ServerUrl { api: url, origin })
    }

    /// `http://host:port`: how the server is named to people.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Plain HTTP to another computer: whatever is sent (a password, an
    /// API key, a token) crosses the network readable by anyone on the way.
    /// Loopback (`localhost`, 127.0.0.0/8, `::1`) stays on this computer.
    pub fn in_clear(&self) -> bool {
        if self.api.scheme() != "http" {
            return false;
        }
        let host = self.api.host_str().unwrap_or_default();
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<std::net::IpAddr>() {
            Ok(ip) => !ip.is_loopback(),
            Err(_) => {
                let name = host.trim_end_matches('.').to_ascii_lowercase();
                name != "localhost" && !name.ends_with(".localhost")
            }
        }
    }

    pub(crate) fn join(&self, path: &str) -> Result<Url, Error> {
        self.api
            .join(path.trim_start_matches('/'))
            .map_err(|e| Error::Config(format!("bad API path {path}: {e}")))
    }
}

/// How hard to try before giving up on a transient failure.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub attempts: usize,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            min_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(20),
        }
    }
}

impl RetryPolicy {
    /// Exponential delays with jitter, one per retry.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + use<> {
        backon::ExponentialBuilder::default()
            .with_min_delay(self.min_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.attempts)
            .with_jitter()
            .build()
    }
}

/// How long to wait on a connection before calling it dead.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// An API request, from sending it until its answer begins.
    pub read: Duration,
    /// An upload whose bytes, and then its answer, have not moved for this
    /// long (it is then tried again on a new connection).
    pub stall: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            read: Duration::from_secs(60),
            stall: Duration::from_secs(120),
        }
    }
}

/// Told each refresh token the server hands out: they rotate, and the
/// one kept in the keychain must be the latest.
pub type TokenHook = Arc<dyn Fn(&Secret) + Send + Sync>;

/// How a [`Client`](crate::Client) behaves beyond its server and credentials.
#[derive(Clone, Default)]
pub struct ClientOptions {
    pub retry: RetryPolicy,
    pub timeouts: Timeouts,
    /// Every request, the object store's included, goes through this HTTP
    /// proxy (tests put a fault-injecting one here). Without it, the
    /// usual `HTTPS_PROXY`/`NO_PROXY` variables apply.
    pub proxy: Option<String>,
    pub on_refresh_token: Option<TokenHook>,
    /// Send credentials over plain HTTP to a computer other than this one
    /// (refused otherwise: see [`ServerUrl::in_clear`]).
    pub insecure_http: bool,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("retry", &self.retry)
            .field("timeouts", &self.timeouts)
            .field("proxy", &self.proxy)
            .field("on_refresh_token", &self.on_refresh_token.is_some())
            .field("insecure_http", &self.insecure_http)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_are_normalized() {
        for (input, api, origin) in [
            (
                "http://127.0.0.1:8000",
                "http://127.0.0.1:8000/api/v1/",
                "http://127.0.0.1:8000",
            ),
            (
                "http://127.0.0.1:8000/",
                "http://127.0.0.1:8000/api/v1/",
                "http://127.0.0.1:8000",
            ),
            (
                "https://ow.example.com/api/v1",
                "https://ow.example.com/api/v1/",
                "https://ow.example.com",
            ),
            (
                "https://example.com/ow/api/v1/",
                "https://example.com/ow/api/v1/",
                "https://example.com/ow",
            ),
        ] {
            let url = ServerUrl::parse(input).unwrap();
            assert_eq!(url.api.as_str(), api, "{input}");
            assert_eq!(url.origin(), origin, "{input}");
        }
        for bad in [
            "ftp://x",
            "localhost:8000",
            "",
            "http://u:p@host",
            "http://h/?q=1",
        ] {
            assert!(
                matches!(ServerUrl::parse(bad), Err(Error::BadServerUrl { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn retry_delays_grow_and_stop() {
        let policy = RetryPolicy {
            attempts: 4,
            min_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(1),
        };
        let delays: Vec<Duration> = policy.delays().collect();
        assert_eq!(delays.len(), 4);
        assert!(delays.iter().all(|d| *d >= Duration::from_millis(100)));
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(2)),
            "{delays:?}"
        );
    }

    #[test]
    fn plain_http_is_in_clear_unless_it_stays_on_this_computer() {
        let in_clear = |url: &str| ServerUrl::parse(url).unwrap().in_clear();
        for elsewhere in [
            "http://192.168.1.5:8000",
            "http://ow.example.com",
            "http://0.0.0.0:8000",
            "http://[2001:db8::1]:8000",
        ] {
            assert!(in_clear(elsewhere), "{elsewhere}");
        }
        for here in [
            "http://127.0.0.1:8000",
            "http://127.8.9.10",
            "http://localhost:8000/api/v1",
            "http://LOCALHOST.",
            "http://app.localhost",
            "http://[::1]:8000",
            "https://ow.example.com",
        ] {
            assert!(!in_clear(here), "{here}");
        }
    }
}
