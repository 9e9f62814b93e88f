//! The server the app talks to: the bundled one, started in this process on
//! a loopback port, or a remote one logged in to. The client, the local
//! server's key and every credential stay here; the UI only ever sees a
//! [`Connection`].

use std::path::{Path, PathBuf};

use owi_client::{
    Client, ClientOptions, Credentials, Kept, Profile, Secret, SecretStore, User, UserQuery,
};
use tauri::async_runtime::Mutex;

use crate::dto::{ConnectRequest, Connection, KeptIn, NewUserRequest, SavedLogin, UserPage};
use crate::error::{CommandError, ErrorKind};

/// The server's data for the bundled server, inside the app's data directory.
const LOCAL_SERVER_DIR: &str = "server";
/// The last login (address and email, nothing secret).
const PROFILE_FILE: &str = "login.json";

pub struct Online {
    data_dir: PathBuf,
    secrets: SecretStore,
    current: Mutex<Option<Connected>>,
}

struct Connected {
    client: Client,
    /// Running while connected to it; stopped on disconnect.
    local: Option<owi_server::Local>,
    shown: Connection,
}

impl std::fmt::Debug for Online {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Online")
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl Online {
    pub fn new(data_dir: &Path, secrets: SecretStore) -> Self {
        Online {
            data_dir: data_dir.to_path_buf(),
            secrets,
            current: Mutex::new(None),
        }
    }

    fn profile_path(&self) -> PathBuf {
        self.data_dir.join(PROFILE_FILE)
    }

    /// The connection, if any.
    pub async fn connection(&self) -> Option<Connection> {
        self.current.lock().await.as_ref().map(|c| c.shown.clone())
    }

    /// The client of the connection; `not_connected` without one.
    pub async fn client(&self) -> Result<Client, CommandError> {
        match self.current.lock().await.as_ref() {
            Some(connected) => Ok(connected.client.clone()),
            None => Err(CommandError::new(
                ErrorKind::NotConnected,
                "not connected to a server: connect first",
            )),
        }
    }

    /// The last remote login, to offer reconnecting with the keychain.
    pub fn saved(&self) -> Result<Option<SavedLogin>, CommandError> {
        let profile = Profile::load(&self.profile_path())?;
        Ok(profile.map(|p| SavedLogin {
            server: p.server,
            email: p.email,
        }))
    }

    /// Starts the bundled server (its data in the app's data directory) and
    /// connects to it with the key only this process knows.
    pub async fn connect_local(&self) -> Result<Connection, CommandError> {
        self.disconnect().await;
        let local = owi_server::Local::start(&self.data_dir.join(LOCAL_SERVER_DIR)).await?;
        let key = Credentials::ApiKey(Secret::new(local.api_key()));
        let client = Client::connect(local.url(), key).await?;
        let shown = Connection {
            server: client.server().origin().to_string(),
            local: true,
            email: None,
            kept: None,
        };
        *self.current.lock().await = Some(Connected {
            client,
            local: Some(local),
            shown: shown.clone(),
        });
        Ok(shown)
    }

    /// Logs in to a remote server and keeps what reconnects next time (the
    /// API key, or the rotating refresh token) in the keychain.
    pub async fn connect_remote(
        &self,
        request: ConnectRequest,
    ) -> Result<Connection, CommandError> {
        self.disconnect().await;
        let ConnectRequest {
            server,
            email,
            password,
            api_key,
            insecure_http,
        } = request;
        let mut insecure_http = insecure_http.unwrap_or(false);
        let api_key = api_key.filter(|k| !k.is_empty()).map(Secret::new);
        let (server, credentials) = match (&api_key, email.clone(), password) {
            (Some(key), _, _) => (server, Credentials::ApiKey(key.clone())),
            (None, Some(email), Some(password)) if !password.is_empty() => (
                server,
                Credentials::Password {
                    email,
                    password: Secret::new(password),
                },
            ),
            _ => {
                let saved = Profile::load(&self.profile_path())?;
                insecure_http |= saved.as_ref().is_some_and(|p| p.insecure_http);
                Profile::credentials(saved.as_ref(), &self.secrets).await?
            }
        };
        let email = match &credentials {
            Credentials::ApiKey(_) => None,
            Credentials::Password { email, .. } | Credentials::RefreshToken { email, .. } => {
                Some(email.clone())
            }
        };
        let origin = owi_client::ServerUrl::parse(&server)?.origin().to_string();
        let profile = Profile {
            server: origin,
            email: email.clone(),
            insecure_http,
        };
        let options = ClientOptions {
            on_refresh_token: Some(profile.token_keeper(self.secrets.clone())),
            insecure_http,
            ..ClientOptions::default()
        };
        let client = Client::connect_with(&server, credentials, options).await?;
        profile.save(&self.profile_path())?;
        let kept = match profile.keep(&client, api_key.as_ref(), &self.secrets).await {
            Kept::Keychain => KeptIn::Keychain,
            Kept::ProcessOnly => KeptIn::ProcessOnly,
        };
        tracing::info!(server = %profile.server, ?kept, "connected");
        let shown = Connection {
            server: client.server().origin().to_string(),
            local: false,
            email,
            kept: Some(kept),
        };
        *self.current.lock().await = Some(Connected {
            client,
            local: None,
            shown: shown.clone(),
        });
        Ok(shown)
    }

    /// Forgets the connection; a bundled server stops.
    pub async fn disconnect(&self) {
        let Some(connected) = self.current.lock().await.take() else {
            return;
        };
        if let Some(local) = connected.local
            && let Err(e) = local.stop().await
        {
            tracing::warn!("stopping the local server: {e}");
        }
    }

    pub async fn users(&self, search: Option<String>, page: u32) -> Result<UserPage, CommandError> {
        let client = self.client().await?;
        let query = UserQuery {
            page: page.max(1),
            search: search.filter(|s| !s.trim().is_empty()),
            ..UserQuery::default()
        };
        let found = client.users(&query).await?;
        Ok(UserPage {
            items: found.items,
            total: found.total,
            page: found.page,
            pages: found.pages,
            has_next: found.has_next,
        })
    }

    pub async fn create_user(&self, new: NewUserRequest) -> Result<User, CommandError> {
        let client = self.client().await?;
        let blank = |s: Option<String>| s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let new = owi_client::NewUser {
            first_name: blank(new.first_name),
            last_name: blank(new.last_name),
            email: blank(new.email),
        };
        Ok(client.create_user(&new).await?)
    }
}
