//! The presigned-upload endpoints: a browser POST policy
//! (`…/import/apple/xml/s3`) and the multipart path
//! (`…/s3/multipart/create|sign|complete|abort`). Nothing here imports:
//! the upload landing in the store does (see [`AppState::object_created`]).

use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use axum::Json;
use axum::extract::{Path, State};
use rusqlite::{OptionalExtension, params};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize};

use super::sign::{self, PostPolicy};
use crate::AppState;
use crate::auth::Caller;
use crate::db::now_secs;
use crate::error::ApiError;
use crate::extract::ValidJson;
use crate::users::upload_user;

pub(super) const CONTENT_TYPE: &str = "application/xml";
pub(super) const MIB: u64 = 1 << 20;
/// S3's own bounds on multipart uploads.
pub(super) const MIN_PART: u64 = 5 * MIB;
pub(super) const MAX_PARTS: u64 = 10_000;

#[derive(Debug, Deserialize)]
pub struct PresignRequest {
    #[serde(default)]
    filename: String,
    #[serde(default = "default_expiration")]
    expiration_seconds: i64,
    #[serde(default = "default_max_file_size")]
    max_file_size: i64,
}

fn default_expiration() -> i64 {
    300
}

fn default_max_file_size() -> i64 {
    50 * MIB as i64
}

/// Form fields in the order they must be sent, serialized as a JSON object.
#[derive(Debug)]
pub struct FormFields(Vec<(String, String)>);

impl Serialize for FormFields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Debug, Serialize)]
pub struct PresignResponse {
    upload_url: String,
    form_fields: FormFields,
    file_key: String,
    expires_in: i64,
    max_file_size: u64,
    bucket: String,
}

pub async fn presign(
    State(state): State<AppState>,
    _caller: Caller,
    Path(user_id): Path<String>,
    ValidJson(req): ValidJson<PresignRequest>,
) -> Result<Json<PresignResponse>, ApiError> {
    check_filename(&req.filename, state.config.compat)?;
    in_range("expiration_seconds", req.expiration_seconds, 60, 3600)?;
    in_range("max_file_size", req.max_file_size, 1024, 1 << 30)?;
    let user_id = upload_user(&state, &user_id).await?;
    let objects = &state.objects;
    // s3s holds a POST in memory: the policy allows no more than the cap,
    // and says so in `max_file_size` (a client splits, or uses multipart).
    let max_size = (req.max_file_size as u64).min(objects.post_max_bytes);
    // The object, then the worker's copy of it.
    state.ensure_room(max_size.saturating_mul(2))?;
    let key = object_key(
        &user_id,
        &req.filename,
        state.config.compat.unique_object_keys(),
    );
    let fields = sign::post_fields(
        &PostPolicy {
            bucket: &objects.bucket,
            key: &key,
            content_type: CONTENT_TYPE,
            max_size,
            expires_in: req.expiration_seconds as u64,
            now: jiff::Timestamp::now(),
            region: &objects.region,
            signature: objects.post_signature,
        },
        &objects.credentials,
    );
    promise(
        &state,
        &user_id,
        &key,
        &req.filename,
        "post",
        None,
        req.expiration_seconds,
    )
    .await?;
    Ok(Json(PresignResponse {
        upload_url: format!("{}/{}", objects.endpoint, objects.bucket),
        form_fields: FormFields(fields),
        file_key: key,
        expires_in: req.expiration_seconds,
        max_file_size: max_size,
        bucket: objects.bucket.clone(),
    }))
}

impl AppState {
    /// Refuses an upload the disk cannot hold (with the configured reserve
    /// left free), before any byte is sent.
    pub(crate) fn ensure_room(&self, bytes: u64) -> Result<(), ApiError> {
        let dir = &self.config.data_dir;
        let available = match fs4::available_space(dir) {
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the free disk space");
                return Ok(());
            }
        };
        if available < bytes.saturating_add(self.config.min_free_bytes) {
            tracing::warn!(available, bytes, "refusing an upload: disk nearly full");
            return Err(ApiError::Unavailable(format!(
                "The server has no disk space left for an upload of {bytes} bytes"
            )));
        }
        Ok(())
    }
}

/// Remembers which run an upload will be processed as.
pub(super) async fn promise(
    state: &AppState,
    user_id: &str,
    key: &str,
    filename: &str,
    kind: &'static str,
    upload_id: Option<&str>,
    lifetime_secs: i64,
) -> Result<(), ApiError> {
    let task_id = uuid::Uuid::new_v4().to_string();
    let shown = if filename.is_empty() {
        key.rsplit('/').next().unwrap_or_default().to_string()
    } else {
        filename.to_string()
    };
    let (user, key, upload, task) = (
        user_id.to_string(),
        key.to_string(),
        upload_id.map(str::to_string),
        task_id.clone(),
    );
    let now = now_secs();
    state
        .db
        .call(move |c| {
            c.execute(
                "INSERT INTO uploads (key, user_id, task_id, filename, kind, upload_id, state, created_at, expires_at)
                 VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?)",
                params![key, user, task, shown, kind, upload, now, now + lifetime_secs],
            )
        })
        .await?;
    Ok(())
}

/// A multipart upload of this user: the run it will be processed as, and
/// whether it is still `pending` (or `received`, `aborted`, `expired`).
pub(super) async fn upload_row(
    state: &AppState,
    user_id: &str,
    key: &str,
    upload_id: &str,
) -> Result<(String, String), ApiError> {
    owned(user_id, key)?;
    let (user, key, upload) = (user_id.to_string(), key.to_string(), upload_id.to_string());
    state
        .db
        .call(move |c| {
            c.query_row(
                "SELECT task_id, state FROM uploads
                 WHERE user_id = ? AND key = ? AND upload_id = ? AND kind = 'multipart'",
                params![user, key, upload],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
        })
        .await?
        .ok_or_else(upload_not_found)
}

pub(super) fn upload_not_found() -> ApiError {
    ApiError::NotFound("Multipart upload not found".into())
}

pub(super) fn owned(user_id: &str, key: &str) -> Result<(), ApiError> {
    if key.starts_with(&format!("{user_id}/")) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(format!(
            "Key does not belong to user {user_id}"
        )))
    }
}

/// At most 200 bytes (Open Wearables 0.6 counts characters): the key must
/// stay within S3's limit, which is in bytes, whatever the script.
pub(super) fn check_filename(name: &str, compat: crate::Compat) -> Result<(), ApiError> {
    let (length, unit) = match compat {
        crate::Compat::OpenWearables06 => (name.chars().count(), "characters"),
        crate::Compat::Native => (name.len(), "bytes"),
    };
    if length > 200 {
        return Err(ApiError::BadRequest(format!(
            "String should have at most 200 {unit} - filename"
        )));
    }
    Ok(())
}

pub(super) fn in_range(field: &str, value: i64, min: i64, max: i64) -> Result<(), ApiError> {
    if value < min {
        Err(ApiError::BadRequest(format!(
            "Input should be greater than or equal to {min} - {field}"
        )))
    } else if value > max {
        Err(ApiError::BadRequest(format!(
            "Input should be less than or equal to {max} - {field}"
        )))
    } else {
        Ok(())
    }
}

/// `{user_id}/raw/{name}`, keeping letters, digits (any script) and `._-`
/// of the file name, as the real server does. A name with nothing left
/// becomes a timestamp (the real server's has spaces and `+`; this one is
/// URL-safe). With `unique`, the name gets a random prefix: two uploads
/// named `export.xml` (as third-party clients name them) must not
/// overwrite each other before the worker has fetched the first.
pub(crate) fn object_key(user_id: &str, filename: &str, unique: bool) -> String {
    let cleaned: String = filename
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-'))
        .collect();
    let name = if cleaned.chars().all(|c| c == '.') {
        format!(
            "{}.xml",
            jiff::Timestamp::now().strftime("%Y-%m-%dT%H-%M-%S%.6fZ")
        )
    } else {
        cleaned
    };
    if unique {
        let tag = crate::auth::hex(&crate::auth::random_bytes::<4>());
        format!("{user_id}/raw/{tag}-{name}")
    } else {
        format!("{user_id}/raw/{name}")
    }
}

/// An S3 refusal as the client should hear it.
pub(super) fn store_error<E: ProvideErrorMetadata + std::fmt::Debug>(e: SdkError<E>) -> ApiError {
    match &e {
        SdkError::ServiceError(_) => {
            let code = e.code().unwrap_or("Unknown").to_string();
            let message = e.message().unwrap_or_default().to_string();
            match code.as_str() {
                "NoSuchUpload" => upload_not_found(),
                "AccessDenied" => {
                    ApiError::Forbidden(format!("The object store denied access - {message}"))
                }
                "EntityTooSmall" | "InvalidPart" | "InvalidPartOrder" | "MalformedXML"
                | "InvalidRequest" | "InvalidArgument" => ApiError::BadRequest(format!(
                    "The object store refused the upload: {code} - {message}"
                )),
                _ => {
                    tracing::error!(%code, %message, "the object store refused a request");
                    ApiError::Unavailable(format!("The object store failed: {code}"))
                }
            }
        }
        _ => {
            tracing::error!(error = ?e, "the object store is unreachable");
            ApiError::Unavailable("The object store is unreachable".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_keep_letters_digits_and_dot_dash_underscore() {
        let user = "u";
        assert_eq!(
            object_key(user, "my экспорт (1).xml", false),
            "u/raw/myэкспорт1.xml"
        );
        assert_eq!(object_key(user, "export.xml", false), "u/raw/export.xml");
        let (one, two) = (
            object_key(user, "export.xml", true),
            object_key(user, "export.xml", true),
        );
        assert_ne!(one, two, "each upload a key of its own");
        for key in [one, two] {
            assert!(
                key.starts_with("u/raw/") && key.ends_with("-export.xml"),
                "{key}"
            );
            assert_eq!(key.len(), "u/raw/".len() + 9 + "export.xml".len());
        }
        let stamped = object_key(user, "..", false);
        assert!(
            stamped.starts_with("u/raw/2") && stamped.ends_with("Z.xml"),
            "{stamped}"
        );
        assert!(!stamped.contains([' ', ':', '+']));
    }
}
