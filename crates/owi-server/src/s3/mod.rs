//! The object store side of the import: where presigned uploads land, how
//! the server learns that one finished, and how the worker reads it back.
//!
//! By default the store is embedded ([`store::EmbeddedStore`], s3s over a
//! directory on its own loopback port), which reports each completed upload
//! the moment it lands, as S3 → SNS does for the real server. An external
//! store (MinIO, AWS) sends no such notice here, so the server watches the
//! keys it presigned (HEAD until the object appears or the policy expires).

pub(crate) mod api;
mod composite;
pub(crate) mod multipart;
mod post_once;
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
    /// The part size multipart `create` suggests (grown to keep within
    /// 10,000 parts); S3's floor is 5 MiB.
    pub part_size: u64,
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
            part_size: 100 << 20,
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
    pub part_size: u64,
    /// True when uploads are not reported by the store itself.
    pub external: bool,
}

/// A presigned POST stays watched this long past its expiry, for an upload
/// that started just before it.
const WATCH_GRACE_SECS: i64 = 15 * 60;
/// Objects this recent are left to the notice already on its way.
const UPKEEP_SETTLE: Duration = Duration::from_secs(30);
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
            part_size: settings.part_size.max(5 << 20),
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
        if !self.config.s3_imports {
            tracing::info!(
                key,
                "an upload arrived; S3 imports are off, so it stays as it is"
            );
            return Ok(());
        }
        let Some(user_id) = user_of_key(key).map(str::to_string) else {
            tracing::debug!(key, "ignoring an object outside any user's raw/ prefix");
            return Ok(());
        };
        let (owned_key, upload) = (key.to_string(), upload_id.map(str::to_string));
        let probe_user = user_id.clone();
        let compat = self.config.compat;
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
                    run_id: compat.run_id(&task_id),
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

    /// Runs [`AppState::reconcile`] now and then every `every` until
    /// `stop`. With an external store the server watches POSTs this way
    /// (every 2 s); in every mode an hourly pass catches up with the rest.
    pub(crate) async fn watch_uploads(
        &self,
        every: Duration,
        multipart: bool,
        mut stop: tokio::sync::watch::Receiver<bool>,
    ) {
        // The close watch (no notices to wait for) claims at once; the
        // upkeep pass leaves recent objects to their notice.
        let settle = if multipart {
            UPKEEP_SETTLE
        } else {
            Duration::ZERO
        };
        loop {
            if let Err(e) = self.reconcile(multipart, settle).await {
                tracing::warn!(error = %e, "could not check pending uploads");
            }
            tokio::select! {
                _ = stop.wait_for(|closing| *closing) => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Keeps the upload promises true to the store: claims objects that
    /// landed without their notice reaching a job (an external store; a
    /// crash between the store's write and the job row), expires old
    /// promises and aborts multipart uploads abandoned past their lifetime,
    /// so their parts do not fill the disk.
    async fn reconcile(&self, multipart: bool, settle: Duration) -> Result<(), Error> {
        let now = now_secs();
        let (abandoned, pending) = self
            .db
            .call(move |c| {
                let mut q = c.prepare(
                    "SELECT key, upload_id FROM uploads
                     WHERE state = 'pending' AND kind = 'multipart' AND expires_at < ?",
                )?;
                let abandoned = q
                    .query_map([now], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                c.execute(
                    "UPDATE uploads SET state = 'expired'
                     WHERE state = 'pending' AND (
                        (kind = 'post' AND expires_at < ?1) OR (kind = 'multipart' AND expires_at < ?2))",
                    params![now - WATCH_GRACE_SECS, now],
                )?;
                // A POST promise per key (the newest claims the object); a
                // multipart promise per upload.
                let mut q = c.prepare(
                    "SELECT key, NULL, min(created_at) FROM uploads
                       WHERE kind = 'post' AND state = 'pending' GROUP BY key
                     UNION ALL
                     SELECT key, upload_id, created_at FROM uploads
                       WHERE kind = 'multipart' AND state = 'pending' AND ?",
                )?;
                let pending = q
                    .query_map([multipart], |r| {
                        Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?, r.get::<_, i64>(2)?))
                    })?
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                Ok((abandoned, pending))
            })
            .await?;
        let objects = &self.objects;
        for (key, upload_id) in abandoned {
            tracing::info!(
                key,
                "aborting a multipart upload abandoned past its lifetime"
            );
            if let Err(e) = objects
                .client
                .abort_multipart_upload()
                .bucket(&objects.bucket)
                .key(&key)
                .upload_id(&upload_id)
                .send()
                .await
            {
                tracing::debug!(key, error = ?e, "the store would not abort it (already gone?)");
            }
        }
        for (key, upload_id, since) in pending {
            let head = objects
                .client
                .head_object()
                .bucket(&objects.bucket)
                .key(&key)
                .send()
                .await;
            // An object older than the promise is an earlier upload; one
            // younger than `settle` may still have its notice on the way.
            let modified = head.ok().and_then(|h| h.last_modified).map(|t| t.secs());
            let fresh = modified
                .is_some_and(|t| t + 1 >= since && t <= now_secs() - settle.as_secs() as i64);
            if fresh {
                self.object_created(&key, upload_id.as_deref()).await?;
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
