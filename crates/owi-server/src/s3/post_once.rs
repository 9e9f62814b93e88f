//! A presigned POST policy is good for one upload. Held by its signature:
//! a layer in front of s3s reads the form's fields (they come before the
//! file) and claims the signature before s3s reads the body into memory,
//! so a second POST of the same policy is refused while the first is in
//! flight (409, after waiting briefly for it to end) and after one
//! succeeded (403); a failed one (cut, refused) lets go, so it may be tried
//! again. Used signatures are kept until their
//! policy expires, in memory and in a small file beside the buckets, so a
//! restart within a policy's life still refuses it.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt;

use crate::db::now_secs;
use crate::error::Error;

/// How much of a POST form is read for its fields; s3s is told to refuse
/// forms whose fields need more, so none slips past unclaimed.
pub(crate) const FIELDS_LIMIT: usize = 1 << 20;
/// A policy whose expiry cannot be read is kept this long (the longest a
/// presign signs for).
const FALLBACK_LIFETIME_SECS: i64 = 3600;
/// Kept a little past expiry, for clocks read a moment apart.
const EXPIRY_MARGIN_SECS: i64 = 60;
/// A second POST waits this long for the first to end before it is
/// refused: a client retrying a cut POST at once may arrive before the
/// store has noticed the cut. Its body is not read meanwhile.
const IN_FLIGHT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    InFlight,
    Used { expires: i64 },
}

#[derive(Debug, Default)]
struct Ledger {
    entries: HashMap<String, Entry>,
    /// Lines in the file that a rewrite would drop or has not yet seen.
    appended: usize,
}

/// The signatures of POST policies in flight or used, and their file.
#[derive(Debug)]
pub(crate) struct UsedPolicies {
    path: PathBuf,
    ledger: Mutex<Ledger>,
    /// Appends and rewrites of the file, one at a time.
    file: Mutex<()>,
    /// Held (read) by each write on its way; [`UsedPolicies::flushed`]
    /// waits for them.
    writes: Arc<tokio::sync::RwLock<()>>,
    /// Told whenever a claim ends (spent or let go).
    ended: tokio::sync::Notify,
}

/// Why a POST was refused before its body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    InFlight,
    Used,
}

impl UsedPolicies {
    /// Reads the signatures still unexpired from `path` (none when it is
    /// missing) and writes them back alone.
    pub(crate) fn load(path: PathBuf) -> Result<Arc<Self>, Error> {
        let now = now_secs();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(source) => return Err(Error::Io { path, source }),
        };
        let entries = text
            .lines()
            .filter_map(|line| {
                let (expires, signature) = line.split_once(' ')?;
                let expires: i64 = expires.parse().ok()?;
                (expires > now && !signature.is_empty())
                    .then(|| (signature.to_string(), Entry::Used { expires }))
            })
            .collect();
        let used = Arc::new(UsedPolicies {
            path,
            ledger: Mutex::new(Ledger {
                entries,
                appended: 0,
            }),
            file: Mutex::new(()),
            writes: Arc::new(tokio::sync::RwLock::new(())),
            ended: tokio::sync::Notify::new(),
        });
        used.rewrite()?;
        Ok(used)
    }

    /// Every used signature is on disk (the store waits for this when it
    /// stops, so a restart reads them all).
    pub(crate) async fn flushed(&self) {
        let _all = self.writes.write().await;
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // A panic elsewhere cannot leave the map half-changed: take it.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims `signature`, waiting up to [`IN_FLIGHT_WAIT`] for a POST
    /// in flight with it to end.
    async fn claim_waiting(
        self: &Arc<Self>,
        signature: &str,
        expires: i64,
    ) -> Result<Claim, Refusal> {
        let deadline = tokio::time::Instant::now() + IN_FLIGHT_WAIT;
        loop {
            // Listening before looking, so an end in between is not missed.
            let ended = self.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            match self.claim(signature, expires) {
                Err(Refusal::InFlight) => {
                    if tokio::time::timeout_at(deadline, ended).await.is_err() {
                        return Err(Refusal::InFlight);
                    }
                }
                claimed => return claimed,
            }
        }
    }

    fn claim(self: &Arc<Self>, signature: &str, expires: i64) -> Result<Claim, Refusal> {
        let now = now_secs();
        let mut ledger = self.ledger();
        match ledger.entries.get(signature) {
            Some(Entry::InFlight) => return Err(Refusal::InFlight),
            Some(Entry::Used { expires }) if *expires > now => return Err(Refusal::Used),
            _ => {}
        }
        ledger
            .entries
            .insert(signature.to_string(), Entry::InFlight);
        Ok(Claim(Arc::new(Held {
            used: Arc::clone(self),
            signature: signature.to_string(),
            expires,
            done: AtomicBool::new(false),
        })))
    }

    /// Forgets expired signatures; rewrites the file when most of its
    /// lines are stale.
    fn prune(&self, now: i64) -> bool {
        let mut ledger = self.ledger();
        ledger
            .entries
            .retain(|_, e| !matches!(e, Entry::Used { expires } if *expires <= now));
        ledger.appended > 1024.max(2 * ledger.entries.len())
    }

    /// The file holds exactly the used signatures in memory (written aside,
    /// then moved into place).
    fn rewrite(&self) -> Result<(), Error> {
        let _file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let text: String = {
            let mut ledger = self.ledger();
            ledger.appended = 0;
            ledger
                .entries
                .iter()
                .filter_map(|(signature, e)| match e {
                    Entry::Used { expires } => Some(format!("{expires} {signature}\n")),
                    Entry::InFlight => None,
                })
                .collect()
        };
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let aside = self.path.with_extension("new");
        std::fs::write(&aside, text).map_err(io)?;
        std::fs::rename(&aside, &self.path).map_err(io)
    }

    fn append(&self, signature: &str, expires: i64) -> Result<(), Error> {
        let _file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        let io = |source| Error::Io {
            path: self.path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(io)?;
        file.write_all(format!("{expires} {signature}\n").as_bytes())
            .map_err(io)?;
        file.sync_data().map_err(io)
    }
}

/// A POST holding its policy's signature. Dropped without [`Claim::used`]
/// (the upload failed or was cut), the signature is free again.
#[derive(Debug, Clone)]
pub(crate) struct Claim(Arc<Held>);

#[derive(Debug)]
struct Held {
    used: Arc<UsedPolicies>,
    signature: String,
    expires: i64,
    done: AtomicBool,
}

impl Claim {
    /// The upload is stored: the policy is spent until it expires. Memory
    /// says so at once; the file is written on a blocking thread, detached,
    /// so a request cancelled now cannot undo it.
    pub(crate) fn used(&self) {
        let held = &self.0;
        held.done.store(true, Ordering::SeqCst);
        let expires = held.expires.saturating_add(EXPIRY_MARGIN_SECS);
        {
            let mut ledger = held.used.ledger();
            ledger
                .entries
                .insert(held.signature.clone(), Entry::Used { expires });
            ledger.appended += 1;
        }
        held.used.ended.notify_waiters();
        let (used, signature) = (Arc::clone(&held.used), held.signature.clone());
        let on_its_way = Arc::clone(&used.writes).try_read_owned().ok();
        tokio::task::spawn_blocking(move || {
            let _on_its_way = on_its_way;
            let written = used.append(&signature, expires).and_then(|()| {
                if used.prune(now_secs()) {
                    used.rewrite()?;
                }
                Ok(())
            });
            // Memory still holds it: only a restart could let it through.
            if let Err(e) = written {
                tracing::warn!(error = %e, "a used POST policy was not written down");
            }
        });
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.done.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut ledger = self.used.ledger();
            if ledger.entries.get(&self.signature) == Some(&Entry::InFlight) {
                ledger.entries.remove(&self.signature);
            }
        }
        self.used.ended.notify_waiters();
    }
}

/// The layer in front of the store: a POST form's signature is claimed
/// before the body goes on to s3s, and travels with the request as a
/// [`Claim`] for the storage to spend once the object is stored.
pub(crate) async fn hold_posts(
    State(used): State<Arc<UsedPolicies>>,
    request: Request,
    next: Next,
) -> Response {
    let boundary = match boundary(request.headers()) {
        Some(b) if request.method() == Method::POST => b,
        _ => return next.run(request).await,
    };
    let (parts, body) = request.into_parts();
    let mut stream = body.into_data_stream();
    let mut read: Vec<Bytes> = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let fields = loop {
        match scan(&buf, boundary.as_bytes()) {
            Scan::Found(fields) => break Some(fields),
            Scan::Malformed => break None,
            Scan::NeedMore if buf.len() > FIELDS_LIMIT => break None,
            Scan::NeedMore => {}
        }
        match stream.next().await {
            Some(Ok(chunk)) => {
                buf.extend_from_slice(&chunk);
                read.push(chunk);
            }
            Some(Err(_)) => {
                return s3_refusal(
                    StatusCode::BAD_REQUEST,
                    "IncompleteBody",
                    "The request body ended early",
                );
            }
            None => break None,
        }
    };
    drop(buf);
    // No signature found: s3s refuses the form, or the storage refuses a
    // POST that arrives without a claim.
    let claim = match fields.as_ref().and_then(Fields::signature) {
        Some(signature) => {
            let expires = fields
                .as_ref()
                .and_then(|f| f.policy.as_deref())
                .and_then(policy_expiry)
                .unwrap_or_else(|| now_secs() + FALLBACK_LIFETIME_SECS);
            match used.claim_waiting(signature, expires).await {
                Ok(claim) => Some(claim),
                Err(Refusal::InFlight) => {
                    return s3_refusal(
                        StatusCode::CONFLICT,
                        "OperationAborted",
                        "An upload with this POST policy is in progress; a policy is good for one upload",
                    );
                }
                Err(Refusal::Used) => {
                    return s3_refusal(
                        StatusCode::FORBIDDEN,
                        "AccessDenied",
                        "This POST policy was already used; ask the server for a new one",
                    );
                }
            }
        }
        None => None,
    };
    let body = Body::from_stream(
        futures_util::stream::iter(read.into_iter().map(Ok::<_, axum::Error>)).chain(stream),
    );
    let mut request = Request::from_parts(parts, body);
    if let Some(claim) = claim {
        request.extensions_mut().insert(claim);
    }
    next.run(request).await
}

/// S3's XML error.
fn s3_refusal(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code><Message>{message}</Message></Error>"
    );
    (status, [(header::CONTENT_TYPE, "application/xml")], body).into_response()
}

/// The boundary of a `multipart/form-data` body.
fn boundary(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let mut params = value.split(';');
    let kind = params.next()?.trim();
    if !kind.eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    params.find_map(|p| {
        let (name, value) = p.trim().split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').to_string())
    })
}

/// The fields that decide a POST's identity, as s3s reads them: names
/// without regard to case, the last of a repeated name, a SigV4 signature
/// before a SigV2 one.
#[derive(Debug, Default, PartialEq, Eq)]
struct Fields {
    v4: Option<String>,
    v2: Option<String>,
    policy: Option<String>,
}

impl Fields {
    fn signature(&self) -> Option<&str> {
        self.v4.as_deref().or(self.v2.as_deref())
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Scan {
    /// Every field before the file (or the form's end).
    Found(Fields),
    NeedMore,
    Malformed,
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Reads the fields before the `file` part from the start of a form body.
fn scan(buf: &[u8], boundary: &[u8]) -> Scan {
    let open = [b"--", boundary, b"\r\n"].concat();
    let close = [b"\r\n--", boundary].concat();
    let Some(start) = find(buf, &open) else {
        return Scan::NeedMore;
    };
    let mut rest = &buf[start + open.len()..];
    let mut fields = Fields::default();
    loop {
        let Some(end) = find(rest, b"\r\n\r\n") else {
            return Scan::NeedMore;
        };
        let Some(name) = field_name(&rest[..end]) else {
            return Scan::Malformed;
        };
        if name.eq_ignore_ascii_case("file") {
            return Scan::Found(fields);
        }
        let body = &rest[end + 4..];
        let Some(value_end) = find(body, &close) else {
            return Scan::NeedMore;
        };
        let value = String::from_utf8_lossy(&body[..value_end]).into_owned();
        for (wanted, slot) in [
            ("x-amz-signature", &mut fields.v4),
            ("signature", &mut fields.v2),
            ("policy", &mut fields.policy),
        ] {
            if name.eq_ignore_ascii_case(wanted) {
                *slot = Some(value.clone());
            }
        }
        let after = &body[value_end + close.len()..];
        if after.starts_with(b"--") {
            return Scan::Found(fields);
        }
        match after.get(..2) {
            None => return Scan::NeedMore,
            Some(b"\r\n") => rest = &after[2..],
            Some(_) => return Scan::Malformed,
        }
    }
}

/// `name` of a part's `Content-Disposition: form-data; name="…"`.
fn field_name(headers: &[u8]) -> Option<String> {
    let headers = std::str::from_utf8(headers).ok()?;
    headers.split("\r\n").find_map(|line| {
        let (header, value) = line.split_once(':')?;
        if !header.trim().eq_ignore_ascii_case("content-disposition") {
            return None;
        }
        value.split(';').skip(1).find_map(|p| {
            let (k, v) = p.trim().split_once('=')?;
            k.trim()
                .eq_ignore_ascii_case("name")
                .then(|| v.trim().trim_matches('"').to_string())
        })
    })
}

/// The `expiration` of a base64 policy document, in Unix seconds.
fn policy_expiry(policy: &str) -> Option<i64> {
    let json = base64::engine::general_purpose::STANDARD
        .decode(policy.trim())
        .ok()?;
    let doc: serde_json::Value = serde_json::from_slice(&json).ok()?;
    let at: jiff::Timestamp = doc.get("expiration")?.as_str()?.parse().ok()?;
    Some(at.as_second())
}

/// Where a store at `root` keeps its used signatures: beside the buckets
/// (a dot name is no bucket name, so no S3 request reaches it).
pub(crate) fn ledger_path(root: &Path) -> PathBuf {
    root.join(".used-post-policies")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(fields: &[(&str, &str)]) -> Vec<u8> {
        let mut body = Vec::new();
        for (name, value) in fields {
            body.extend_from_slice(
                format!(
                    "--XyZ\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
                )
                .as_bytes(),
            );
        }
        body.extend_from_slice(
            b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.xml\"\r\n\r\n<x/>",
        );
        body
    }

    #[test]
    fn the_signature_is_read_as_s3s_reads_it() {
        let body = form(&[
            ("key", "k"),
            ("X-Amz-Signature", "first"),
            ("policy", "cA=="),
            ("signature", "v2"),
            ("x-amz-signature", "last"),
        ]);
        let Scan::Found(fields) = scan(&body, b"XyZ") else {
            panic!("not found");
        };
        assert_eq!(fields.signature(), Some("last"));
        assert_eq!(fields.policy.as_deref(), Some("cA=="));
        // Cut anywhere before the file part, more is needed.
        let file_at = find(&body, b"name=\"file\"").unwrap();
        for cut in [0, 10, 60, file_at] {
            assert_eq!(scan(&body[..cut], b"XyZ"), Scan::NeedMore, "cut at {cut}");
        }
    }

    #[test]
    fn a_policy_expiry_is_read_from_its_document() {
        let doc = r#"{"expiration": "2026-12-05T10:00:00Z", "conditions": []}"#;
        let b64 = base64::engine::general_purpose::STANDARD.encode(doc);
        let at: jiff::Timestamp = "2026-12-05T10:00:00Z".parse().unwrap();
        assert_eq!(policy_expiry(&b64), Some(at.as_second()));
        assert_eq!(policy_expiry("not base64!"), None);
    }
}
