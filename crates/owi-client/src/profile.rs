//! The server a person last logged in to, remembered between runs: the
//! address and email in a small JSON file, the secret (API key or refresh
//! token) in the keychain. Environment variables win over both, for
//! scripts: `OWI_SERVER` with `OWI_API_KEY`, or with `OWI_EMAIL` and
//! `OWI_PASSWORD`.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::client::{Client, Credentials, ServerUrl};
use crate::error::Error;
use crate::secret::{Kept, Secret, SecretStore};

/// What is remembered in clear: nothing secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The server's origin, `http://host:port`.
    pub server: String,
    /// Set for a password login; `None` for an API key.
    pub email: Option<String>,
    /// The person allowed plain HTTP to this (non-loopback) server.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_http: bool,
}

impl Profile {
    pub fn load(path: &Path) -> Result<Option<Profile>, Error> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                Error::Config(format!(
                    "{} is damaged ({e}); log in again to replace it",
                    path.display()
                ))
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::Config(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        let write = || -> std::io::Result<()> {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let tmp = path.with_extension("json.tmp");
            std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
            std::fs::rename(&tmp, path)
        };
        write().map_err(|e| Error::Config(format!("cannot write {}: {e}", path.display())))
    }

    fn account(&self) -> String {
        match &self.email {
            Some(email) => format!("refresh-token:{email}@{}", self.server),
            None => format!("api-key:{}", self.server),
        }
    }

    /// The credentials to connect with: the environment's, else the
    /// keychain's for this profile.
    pub async fn credentials(
        profile: Option<&Profile>,
        secrets: &SecretStore,
    ) -> Result<(String, Credentials), Error> {
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let server = env("OWI_SERVER").or_else(|| profile.map(|p| p.server.clone()));
        let Some(server) = server else {
            return Err(Error::Config(
                "no server: log in first (owi login --server URL) or set OWI_SERVER".into(),
            ));
        };
        if let Some(key) = env("OWI_API_KEY") {
            return Ok((server, Credentials::ApiKey(Secret::new(key))));
        }
        if let (Some(email), Some(password)) = (env("OWI_EMAIL"), env("OWI_PASSWORD")) {
            let password = Secret::new(password);
            return Ok((server, Credentials::Password { email, password }));
        }
        let origin = ServerUrl::parse(&server)?.origin().to_string();
        let profile = profile.filter(|p| p.server == origin).ok_or_else(|| {
            Error::Config(format!(
                "not logged in to {origin}: run owi login --server {origin}"
            ))
        })?;
        let secret = secrets.get(&profile.account()).await.ok_or_else(|| {
            Error::Config(format!(
                "no saved credentials for {origin} (this machine has no keychain, or they were removed): \
                 log in again, or set OWI_API_KEY (or OWI_EMAIL and OWI_PASSWORD)"
            ))
        })?;
        let credentials = match &profile.email {
            Some(email) => Credentials::RefreshToken {
                email: email.clone(),
                token: secret,
            },
            None => Credentials::ApiKey(secret),
        };
        Ok((server, credentials))
    }

    /// A hook that keeps each rotated refresh token as it arrives, so a
    /// process that dies mid-upload leaves the live token behind, not a
    /// spent one.
    pub fn token_keeper(&self, secrets: SecretStore) -> crate::TokenHook {
        let account = self.account();
        std::sync::Arc::new(move |token: &Secret| {
            let (secrets, account, token) = (secrets.clone(), account.clone(), token.clone());
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move { secrets.put(&account, &token).await });
            }
        })
    }

    /// Keeps what `client` needs to connect again (the API key, or the
    /// current refresh token: it rotates on every use).
    pub async fn keep(
        &self,
        client: &Client,
        api_key: Option<&Secret>,
        secrets: &SecretStore,
    ) -> Kept {
        let secret = match (api_key, client.refresh_token().await) {
            (Some(key), _) => Some(key.clone()),
            (None, Some(token)) => Some(token),
            (None, None) => None,
        };
        match secret {
            Some(secret) => secrets.put(&self.account(), &secret).await,
            None => Kept::ProcessOnly,
        }
    }
}
