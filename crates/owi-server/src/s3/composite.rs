//! Multipart objects kept as their parts. s3s-fs completes an upload by
//! reading every part, hashing it and copying it into one new file: a
//! second write of the whole object. The embedded store completes it here
//! instead: the parts are renamed aside, the object's own file is made
//! sparse at the object's length and stamped (so listings, HEAD and the
//! free-space checks see its size), and a manifest beside it names the
//! parts; GET serves the parts in order, ranges included. A manifest whose
//! stamp no longer matches the file (the key was written again) is never
//! served, so every other object keeps s3s-fs's own behaviour.
//!
//! This relies on s3s-fs 0.14.1's file layout (pinned): its upload records
//! (`.upload-{id}.json`), part files (`.upload_id-{id}.part-{n}`) and the
//! per-object metadata and internal-info files.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::ops::Range;
use std::path::{Component, Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use md5::{Digest, Md5};
use s3s::dto::{CompleteMultipartUploadInput, StreamingBlob};
use s3s::{S3Error, S3Result, s3_error};
use serde::{Deserialize, Serialize};

/// S3's smallest part but the last.
const MIN_PART: u64 = 5 << 20;
/// Bytes a GET reads from a part file at a time.
const READ_CHUNK: usize = 256 << 10;

/// The composite objects of one store root.
pub(super) struct Composites {
    root: PathBuf,
    /// Each stored part's MD5 as `upload_part` answered it, so `complete`
    /// need not read the parts again (after a restart it does).
    part_md5: Mutex<HashMap<(String, i32), [u8; 16]>>,
}

/// What an object made of parts is.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Manifest {
    upload_id: String,
    /// Each part's length, in order (`.object-{upload_id}.part-{n}`).
    parts: Vec<u64>,
    pub len: u64,
    /// The object file's modification time, in ns since the epoch: a file
    /// written over since has another.
    stamp_ns: u128,
}

impl Composites {
    pub fn new(root: PathBuf) -> Self {
        Composites {
            root,
            part_md5: Mutex::new(HashMap::new()),
        }
    }

    /// A part landed with this ETag (its MD5).
    pub fn part_stored(&self, upload_id: &str, number: i32, etag: &str) {
        let mut md5 = [0u8; 16];
        if hex::decode_to_slice(etag.trim_matches('"'), &mut md5).is_ok() {
            self.lock_md5().insert((upload_id.to_string(), number), md5);
        }
    }

    /// The upload was aborted: its parts' hashes are of no more use.
    pub fn upload_ended(&self, upload_id: &str) {
        self.lock_md5().retain(|(id, _), _| id != upload_id);
    }

    fn lock_md5(&self) -> std::sync::MutexGuard<'_, HashMap<(String, i32), [u8; 16]>> {
        self.part_md5
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this store completes `input` itself: not for conditional
    /// completes (left to s3s-fs), nor for keys it would refuse anyway.
    pub fn handles(&self, input: &CompleteMultipartUploadInput) -> bool {
        input.if_match.is_none()
            && input.if_none_match.is_none()
            && self.object_path(&input.bucket, &input.key).is_some()
    }

    /// Completes the upload without copying it; the object's ETag (S3's
    /// multipart form, MD5 of the parts' MD5s and their count).
    pub async fn complete(
        self: &std::sync::Arc<Self>,
        input: &CompleteMultipartUploadInput,
        access_key: Option<String>,
    ) -> S3Result<String> {
        let this = self.clone();
        let input = input.clone();
        tokio::task::spawn_blocking(move || this.complete_now(&input, access_key.as_deref()))
            .await
            .map_err(|e| s3_error!(InternalError, "the completing task failed: {e}"))?
    }

    fn complete_now(
        &self,
        input: &CompleteMultipartUploadInput,
        access_key: Option<&str>,
    ) -> S3Result<String> {
        let (bucket, key, upload_id) = (&input.bucket, &input.key, &input.upload_id);
        let object = self
            .object_path(bucket, key)
            .ok_or_else(|| s3_error!(InvalidArgument, "not a valid key"))?;
        let upload = uuid::Uuid::parse_str(upload_id).map_err(|_| s3_error!(InvalidRequest))?;
        let record = self.root.join(format!(".upload-{upload}.json"));
        let owner: Option<Option<String>> = std::fs::read(&record)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        if owner.as_ref().map(Option::as_deref) != Some(access_key) {
            return Err(s3_error!(AccessDenied));
        }
        let listed = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .filter(|parts| !parts.is_empty())
            .ok_or_else(|| s3_error!(InvalidPart, "You must specify at least one part"))?;
        let mut lengths = Vec::with_capacity(listed.len());
        let mut digests = Vec::with_capacity(listed.len());
        for (i, part) in listed.iter().enumerate() {
            let number = i32::try_from(i + 1).map_err(|_| s3_error!(InvalidRequest))?;
            if part.part_number != Some(number) {
                return Err(s3_error!(InvalidRequest, "invalid part order"));
            }
            let path = self.upload_part_path(&upload, number);
            let len = std::fs::metadata(&path)
                .map_err(|_| s3_error!(InvalidPart, "part {number} was not uploaded"))?
                .len();
            if number as usize != listed.len() && len < MIN_PART {
                return Err(s3_error!(EntityTooSmall));
            }
            let known = self.lock_md5().get(&(upload_id.clone(), number)).copied();
            let md5 = match known {
                Some(md5) => md5,
                None => md5_of(&path)?,
            };
            if let Some(etag) = &part.e_tag
                && etag.value().trim_matches('"') != hex::encode(md5)
            {
                return Err(s3_error!(
                    InvalidPart,
                    "part {number}'s ETag does not match the stored part"
                ));
            }
            lengths.push(len);
            digests.push(md5);
        }
        // No part may land once completing has begun (s3s-fs does the same).
        std::fs::remove_file(&record).map_err(internal)?;
        self.upload_ended(upload_id);

        let mut all = Md5::new();
        for digest in &digests {
            all.update(digest);
        }
        let etag = format!("{}-{}", hex::encode(all.finalize()), digests.len());
        let uploaded_attrs = self.metadata_path(bucket, key, Some(&upload));
        if uploaded_attrs.exists() {
            std::fs::rename(&uploaded_attrs, self.metadata_path(bucket, key, None))
                .map_err(internal)?;
        }
        self.save_etag(bucket, key, &etag)?;
        self.forget_now(bucket, key);
        for number in 1..=lengths.len() {
            let number = number as i32;
            std::fs::rename(
                self.upload_part_path(&upload, number),
                self.part_path(&upload.to_string(), number),
            )
            .map_err(internal)?;
        }
        let len: u64 = lengths.iter().sum();
        let sparse = self.root.join(format!(".composite-{upload}.tmp"));
        let file = std::fs::File::create(&sparse).map_err(internal)?;
        file.set_len(len)
            .and_then(|()| file.set_modified(SystemTime::now()))
            .map_err(internal)?;
        let stamp_ns = stamp_of(&file.metadata().map_err(internal)?)?;
        drop(file);
        let manifest = Manifest {
            upload_id: upload.to_string(),
            parts: lengths,
            len,
            stamp_ns,
        };
        let json = serde_json::to_vec(&manifest).map_err(internal)?;
        self.write_atomically(&self.manifest_path(bucket, key), &json)?;
        if let Some(dir) = object.parent() {
            std::fs::create_dir_all(dir).map_err(internal)?;
        }
        // The object appears whole, with its manifest already in place.
        std::fs::rename(&sparse, &object).map_err(internal)?;
        Ok(etag)
    }

    /// The manifest of the object at `bucket`/`key`, if it is one made of
    /// parts and still the one that was completed.
    pub async fn current(self: &std::sync::Arc<Self>, bucket: &str, key: &str) -> Option<Manifest> {
        let (this, bucket, key) = (self.clone(), bucket.to_string(), key.to_string());
        tokio::task::spawn_blocking(move || this.current_now(&bucket, &key))
            .await
            .ok()
            .flatten()
    }

    fn current_now(&self, bucket: &str, key: &str) -> Option<Manifest> {
        let object = self.object_path(bucket, key)?;
        let json = std::fs::read(self.manifest_path(bucket, key)).ok()?;
        let manifest: Manifest = serde_json::from_slice(&json).ok()?;
        let meta = std::fs::metadata(&object).ok()?;
        let fresh = meta.len() == manifest.len && stamp_of(&meta).ok()? == manifest.stamp_ns;
        fresh.then_some(manifest)
    }

    /// The whole object as GET serves it, read at once.
    pub fn read(&self, bucket: &str, key: &str) -> std::io::Result<Vec<u8>> {
        let Some(manifest) = self.current_now(bucket, key) else {
            let object = self
                .object_path(bucket, key)
                .ok_or_else(|| std::io::Error::other("not a plain key"))?;
            return std::fs::read(object);
        };
        let mut bytes = Vec::with_capacity(usize::try_from(manifest.len).unwrap_or(0));
        for number in 1..=manifest.parts.len() {
            let part = self.part_path(&manifest.upload_id, number as i32);
            std::fs::File::open(part)?.read_to_end(&mut bytes)?;
        }
        Ok(bytes)
    }

    /// The object's bytes in `span`, read from its parts in order.
    pub fn body(&self, manifest: &Manifest, span: Range<u64>) -> StreamingBlob {
        let files: Vec<(PathBuf, u64)> = manifest
            .parts
            .iter()
            .enumerate()
            .map(|(i, len)| (self.part_path(&manifest.upload_id, i as i32 + 1), *len))
            .collect();
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(4);
        tokio::task::spawn_blocking(move || {
            if let Err(e) = send_span(&files, span, &tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        StreamingBlob::wrap(tokio_stream::wrappers::ReceiverStream::new(rx))
    }

    /// Removes what made the object at `bucket`/`key` of parts, if
    /// anything did: it was deleted or written over.
    pub async fn forget(self: &std::sync::Arc<Self>, bucket: &str, key: &str) {
        let (this, bucket, key) = (self.clone(), bucket.to_string(), key.to_string());
        let _ = tokio::task::spawn_blocking(move || this.forget_now(&bucket, &key)).await;
    }

    fn forget_now(&self, bucket: &str, key: &str) {
        let path = self.manifest_path(bucket, key);
        let Some(manifest) = std::fs::read(&path)
            .ok()
            .and_then(|json| serde_json::from_slice::<Manifest>(&json).ok())
        else {
            return;
        };
        let _ = std::fs::remove_file(&path);
        for number in 1..=manifest.parts.len() {
            let _ = std::fs::remove_file(self.part_path(&manifest.upload_id, number as i32));
        }
    }

    /// The object's internal info anew: its ETag, and none of the checksums
    /// an earlier object under the key left (they would not match).
    fn save_etag(&self, bucket: &str, key: &str, etag: &str) -> S3Result<()> {
        let json = serde_json::to_vec(&serde_json::json!({ "e_tag": etag })).map_err(internal)?;
        self.write_atomically(&self.internal_info_path(bucket, key), &json)
    }

    fn write_atomically(&self, path: &Path, bytes: &[u8]) -> S3Result<()> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = self.root.join(format!("{name}.writing"));
        std::fs::File::create(&tmp)
            .and_then(|mut f| f.write_all(bytes))
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(internal)
    }

    /// `root/bucket/key`, for plain relative keys only.
    fn object_path(&self, bucket: &str, key: &str) -> Option<PathBuf> {
        let plain = |s: &str| {
            !s.is_empty()
                && Path::new(s)
                    .components()
                    .all(|c| matches!(c, Component::Normal(_)))
        };
        (plain(bucket) && !bucket.contains('/') && plain(key))
            .then(|| self.root.join(bucket).join(key))
    }

    fn upload_part_path(&self, upload: &uuid::Uuid, number: i32) -> PathBuf {
        self.root.join(format!(".upload_id-{upload}.part-{number}"))
    }

    fn part_path(&self, upload_id: &str, number: i32) -> PathBuf {
        self.root.join(format!(".object-{upload_id}.part-{number}"))
    }

    fn manifest_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(format!(
            ".bucket-{}.object-{}.parts.json",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }

    /// s3s-fs's own per-object files.
    fn metadata_path(&self, bucket: &str, key: &str, upload: Option<&uuid::Uuid>) -> PathBuf {
        let upload = upload.map(|u| format!(".upload-{u}")).unwrap_or_default();
        self.root.join(format!(
            ".bucket-{}.object-{}{upload}.metadata.json",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }

    fn internal_info_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(format!(
            ".bucket-{}.object-{}.internal.json",
            URL_SAFE_NO_PAD.encode(bucket),
            URL_SAFE_NO_PAD.encode(key)
        ))
    }
}

/// Sends `span` of the concatenated `files` down `tx` in chunks; stops
/// quietly when the reader went away.
fn send_span(
    files: &[(PathBuf, u64)],
    span: Range<u64>,
    tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
) -> std::io::Result<()> {
    let mut at = 0u64;
    for (path, len) in files {
        let (start, end) = (at, at + len);
        at = end;
        if end <= span.start || start >= span.end {
            continue;
        }
        let from = span.start.saturating_sub(start);
        let mut left = span.end.min(end) - start - from;
        let mut file = std::fs::File::open(path)?;
        std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(from))?;
        while left > 0 {
            let mut chunk = vec![0; READ_CHUNK.min(left as usize)];
            let n = file.read(&mut chunk)?;
            if n == 0 {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    format!("{} is shorter than when it was stored", path.display()),
                ));
            }
            chunk.truncate(n);
            left -= n as u64;
            if tx.blocking_send(Ok(Bytes::from(chunk))).is_err() {
                return Ok(());
            }
        }
    }
    Ok(())
}

fn md5_of(path: &Path) -> S3Result<[u8; 16]> {
    let mut file = std::fs::File::open(path).map_err(internal)?;
    let mut hash = Md5::new();
    let mut buf = vec![0; READ_CHUNK];
    loop {
        let n = file.read(&mut buf).map_err(internal)?;
        if n == 0 {
            return Ok(hash.finalize().into());
        }
        hash.update(&buf[..n]);
    }
}

fn stamp_of(meta: &std::fs::Metadata) -> S3Result<u128> {
    let modified = meta.modified().map_err(internal)?;
    Ok(modified
        .duration_since(UNIX_EPOCH)
        .map_err(internal)?
        .as_nanos())
}

fn internal(e: impl std::fmt::Display) -> S3Error {
    s3_error!(InternalError, "{e}")
}
