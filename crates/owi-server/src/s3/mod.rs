//! The object store side of the import: where presigned uploads land, how
//! the server learns that one finished, and how the worker reads it back.
//!
//! By default the store is embedded ([`store::EmbeddedStore`], s3s over a
//! directory on its own loopback port), which reports each completed upload
//! the moment it lands, as S3 → SNS does for the real server. An external
//! store (MinIO, AWS) sends no such notice here, so the server watches the
//! keys it presigned (HEAD until the object appears or the policy expires).

pub(crate) mod api;
pub mod sign;
pub mod store;

use std::net::SocketAddr;
use std::time::Duration;

use aws_sdk_s3::config::{BehaviorVersion, Region};
use rusqlite::{OptionalExtension, params};

pub use sign::{Credentials, PostSignature};

use crate::AppState;
use crate::db::now_secs;
use crate::error::Error;
use crate::jobs::{NewJob, Origin};

/// Where presigned uploads go.
#[derive(Debug, Clone)]
pub struct S3Settings {
    /// An external S3 endpoint; `None` runs the embedded store.
    pub endpoint: Option<String>,
    pub bucket: String,
    pub region: String,
    /// For an external store. The embedded one derives its own.
    pub credentials: Option<Credentials>,
    /// Where the embedded store listens (loopback, any free port).
    pub embedded_addr: SocketAddr,
    pub post_signature: PostSignature,
    /// The largest presigned POST signed (s3s holds a POST in memory; big
    /// files go by multipart, whose parts stream to disk).
    pub post_max_bytes: u64,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: None,
            bucket: "owi-uploads".into(),
            region: "us-east-1".into(),
            credentials: None,
            embedded_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            post_signature: PostSignature::V4,
            post_max_bytes: 256 << 20,
        }
    }
}

/// The store as handlers and the worker use it.
#[derive(Debug, Clone)]
pub struct Objects {
    pub client: aws_sdk_s3::Client,
    /// `http://host:port` of the store, for presigned URLs.
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub credentials: Credentials,
    pub post_signature: PostSignature,
    pub post_max_bytes: u64,
    /// True when uploads are not reported by the store itself.
    pub external: bool,
}

/// A presigned POST stays watched this long past its expiry, for an upload
/// that started just before it.
const WATCH_GRACE_SECS: i64 = 15 * 60;
/// A multipart upload may take this long before its row is forgotten.
pub(crate) const MULTIPART_LIFETIME_SECS: i64 = 7 * 24 * 3600;

impl Objects {
    pub fn new(
        endpoint: String,
        settings: &S3Settings,
        credentials: Credentials,
        external: bool,
    ) -> Self {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .endpoint_url(&endpoint)
            .region(Region::new(settings.region.clone()))
            .credentials_provider(aws_sdk_s3::config::Credentials::new(
                credentials.access_key.clone(),
                credentials.secret_key.clone(),
                None,
                None,
                "owi-serve",
            ))
            .force_path_style(true)
            .timeout_config(
                aws_sdk_s3::config::timeout::TimeoutConfig::builder()
                    .connect_timeout(Duration::from_secs(10))
                    .operation_attempt_timeout(Duration::from_secs(120))
                    .build(),
            )
            .build();
        Objects {
            client: aws_sdk_s3::Client::from_conf(config),
            endpoint: endpoint.trim_end_matches('/').to_string(),
            bucket: settings.bucket.clone(),
            region: settings.region.clone(),
            credentials,
            post_signature: settings.post_signature,
            post_max_bytes: settings.post_max_bytes,
            external,
        }
    }
}

/// `{user_id}/raw/{name}` → the user id, when the key has that shape.
fn user_of_key(key: &str) -> Option<&str> {
    let (user, rest) = key.split_once('/')?;
    let name = rest.strip_prefix("raw/")?;
    (!name.is_empty() && !name.contains('/') && uuid::Uuid::parse_str(user).is_ok()).then_some(user)
}

impl AppState {
    /// An object finished uploading: queue its import, once. `upload_id`
    /// names the multipart upload that made it (`None` for a POST or PUT).
    /// The run id is the one promised when the upload was presigned, if it
    /// was; the promise is used and the job written in one transaction.
    pub(crate) async fn object_created(
        &self,
        key: &str,
        upload_id: Option<&str>,
    ) -> Result<(), Error> {
        let Some(user_id) = user_of_key(key).map(str::to_string) else {
            tracing::debug!(key, "ignoring an object outside any user's raw/ prefix");
            return Ok(());
        };
        let (owned_key, upload) = (key.to_string(), upload_id.map(str::to_string));
        let probe_user = user_id.clone();
        let queued = self
            .db
            .call(move |c| {
                let tx = c.transaction()?;
                let known: bool = tx
                    .query_row("SELECT 1 FROM users WHERE id = ?", [&probe_user], |_| Ok(()))
                    .optional()?
                    .is_some();
                if !known {
                    return Ok(None);
                }
                // A multipart upload answers its own promise; a POST the
                // newest POST promise for the key (a policy used twice gets
                // a new run the second time).
                let pending: Option<(i64, String, String)> = match &upload {
                    Some(upload) => tx.query_row(
                        "SELECT id, task_id, filename FROM uploads
                         WHERE key = ? AND upload_id = ? AND kind = 'multipart' AND state = 'pending'",
                        params![owned_key, upload],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    ),
                    None => tx.query_row(
                        "SELECT id, task_id, filename FROM uploads
                         WHERE key = ? AND kind = 'post' AND state = 'pending'
                         ORDER BY id DESC LIMIT 1",
                        [&owned_key],
                        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                    ),
                }
                .optional()?;
                let (task_id, filename) = match pending {
                    Some((id, task, filename)) => {
                        // Every POST promise for the key is answered by this
                        // object, so a watcher does not import it twice.
                        tx.execute(
                            "UPDATE uploads SET state = 'received'
                             WHERE id = ?2 OR (?3 AND state = 'pending' AND key = ?1 AND kind = 'post')",
                            params![owned_key, id, upload.is_none()],
                        )?;
                        (task, filename)
                    }
                    None => (
                        uuid::Uuid::new_v4().to_string(),
                        owned_key.rsplit('/').next().unwrap_or_default().to_string(),
                    ),
                };
                let job = NewJob {
                    task_id,
                    user_id: probe_user,
                    origin: Origin::S3,
                    path: owned_key,
                    filename,
                };
                crate::jobs::insert_job(&tx, &job)?;
                tx.commit()?;
                Ok(Some(job))
            })
            .await?;
        let Some(job) = queued else {
            tracing::warn!(key, "an upload arrived for an unknown user; not imported");
            return Ok(());
        };
        tracing::info!(key, task = %job.task_id, "upload received in the object store");
        self.announce(job).await
    }

    /// For an external store: looks for the presigned POST uploads still
    /// pending, every `every`, until `stop` says so.
    pub(crate) async fn watch_pending_posts(
        &self,
        every: Duration,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(every) => {}
            }
            if let Err(e) = self.check_pending_posts().await {
                tracing::warn!(error = %e, "could not check pending uploads");
            }
        }
    }

    async fn check_pending_posts(&self) -> Result<(), Error> {
        let now = now_secs();
        let pending: Vec<(String, i64)> = self
            .db
            .call(move |c| {
                c.execute(
                    "UPDATE uploads SET state = 'expired' WHERE state = 'pending' AND expires_at < ?",
                    [now - WATCH_GRACE_SECS],
                )?;
                let mut q = c.prepare(
                    "SELECT key, min(created_at) FROM uploads WHERE kind = 'post' AND state = 'pending' GROUP BY key",
                )?;
                let rows = q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect()
            })
            .await?;
        for (key, since) in pending {
            let head = self
                .objects
                .client
                .head_object()
                .bucket(&self.objects.bucket)
                .key(&key)
                .send()
                .await;
            // An object older than the presign is an earlier upload.
            let fresh = head
                .ok()
                .and_then(|h| h.last_modified)
                .is_some_and(|t| t.secs() + 1 >= since);
            if fresh {
                self.object_created(&key, None).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_raw_keys_of_a_user_are_imports() {
        let user = "6b1f3c9e-8a53-4b8e-9a43-0d6f0b1f7a10";
        assert_eq!(user_of_key(&format!("{user}/raw/export.xml")), Some(user));
        assert_eq!(user_of_key(&format!("{user}/other/export.xml")), None);
        assert_eq!(user_of_key(&format!("{user}/raw/")), None);
        assert_eq!(user_of_key(&format!("{user}/raw/a/b.xml")), None);
        assert_eq!(user_of_key("not-a-uuid/raw/export.xml"), None);
    }
}
