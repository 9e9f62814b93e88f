//! Secrets (passwords, tokens, API keys): never printed, wiped on drop, and
//! kept in the OS keychain — or, where there is none (headless Linux, CI),
//! only in this process, which the caller is told about.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use zeroize::Zeroizing;

/// A secret string. `Debug` shows `<redacted>`; there is no `Display`, so
/// it cannot end up in a log line or an error message by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Secret::new(value)
    }
}

/// Where a secret was kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// In the OS keychain: it survives this process.
    Keychain,
    /// Only in this process: there is no keychain here.
    ProcessOnly,
}

/// Secrets by (service, account): the OS keychain when there is one, else a
/// map that lives as long as this value.
#[derive(Debug, Clone, Default)]
pub struct SecretStore {
    /// `false` keeps everything in memory (tests, or a machine without a
    /// keychain once one call has found out).
    use_keychain: bool,
    memory: Arc<Mutex<HashMap<String, Secret>>>,
}

const SERVICE: &str = "open-wearables-importer";

impl SecretStore {
    /// The OS keychain, falling back to this process's memory; memory only
    /// when `OWI_NO_KEYCHAIN` is set (tests, machines where it must not be
    /// touched).
    pub fn system() -> Self {
        SecretStore {
            use_keychain: std::env::var_os("OWI_NO_KEYCHAIN").is_none(),
            memory: Arc::default(),
        }
    }

    /// Memory only (tests; `--no-keychain`).
    pub fn in_memory() -> Self {
        SecretStore::default()
    }

    /// Keeps `secret` under `account` (e.g. `api-key:https://host`).
    pub async fn put(&self, account: &str, secret: &Secret) -> Kept {
        self.remember(account, secret);
        if !self.use_keychain {
            return Kept::ProcessOnly;
        }
        let (account, value) = (account.to_string(), secret.clone());
        let stored = tokio::task::spawn_blocking(move || {
            keyring::Entry::new(SERVICE, &account)?.set_password(value.expose())
        })
        .await;
        match stored {
            Ok(Ok(())) => Kept::Keychain,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "no usable keychain: the secret is kept for this process only");
                Kept::ProcessOnly
            }
            Err(e) => {
                tracing::warn!(error = %e, "the keychain task failed");
                Kept::ProcessOnly
            }
        }
    }

    pub async fn get(&self, account: &str) -> Option<Secret> {
        if let Some(found) = self.recall(account) {
            return Some(found);
        }
        if !self.use_keychain {
            return None;
        }
        let owned = account.to_string();
        let found = tokio::task::spawn_blocking(move || {
            keyring::Entry::new(SERVICE, &owned)?.get_password()
        })
        .await;
        match found {
            Ok(Ok(value)) => {
                let secret = Secret::new(value);
                self.remember(account, &secret);
                Some(secret)
            }
            Ok(Err(keyring::Error::NoEntry)) => None,
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "the keychain could not be read");
                None
            }
            Err(_) => None,
        }
    }

    pub async fn delete(&self, account: &str) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.remove(account);
        }
        if self.use_keychain {
            let owned = account.to_string();
            let _ = tokio::task::spawn_blocking(move || {
                keyring::Entry::new(SERVICE, &owned)?.delete_credential()
            })
            .await;
        }
    }

    fn remember(&self, account: &str, secret: &Secret) {
        if let Ok(mut memory) = self.memory.lock() {
            memory.insert(account.to_string(), secret.clone());
        }
    }

    fn recall(&self, account: &str) -> Option<Secret> {
        let memory = self.memory.lock().ok()?;
        memory.get(account).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secret() {
        let s = Secret::new("sk-0123456789abcdef0123456789abcdef");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(s.clone())), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "sk-0123456789abcdef0123456789abcdef");
    }

    #[tokio::test]
    async fn memory_store_keeps_and_forgets() {
        let store = SecretStore::in_memory();
        let key = Secret::new("k");
        assert_eq!(store.put("api-key:http://x", &key).await, Kept::ProcessOnly);
        assert_eq!(store.get("api-key:http://x").await, Some(key));
        store.delete("api-key:http://x").await;
        assert_eq!(store.get("api-key:http://x").await, None);
    }
}
