//! The bytes an upload sends: the export whole, or pieces of it, as they
//! are or cleaned, streamed from disk in chunks through a bounded channel.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures_util::StreamExt;
use owi_export::{ExportSource, Outgoing};
use owi_progress::{CancelToken, ProgressSink};

use super::CHUNK;
use crate::error::Error;

/// The XML to send: the export whole, or one piece of it, as is or
/// cleaned for strict parsers; its exact length known before sending.
#[derive(Debug)]
pub struct UploadSource {
    body: Outgoing,
}

impl UploadSource {
    /// The export at `path`, whole and as it is.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let export = ExportSource::open(path).map_err(|e| Error::Export(e.to_string()))?;
        let body =
            Outgoing::whole(Arc::new(export), false).map_err(|e| Error::Export(e.to_string()))?;
        Ok(UploadSource { body })
    }

    /// The bodies to send for `export`: itself, or pieces of at most
    /// `limit` bytes, each a valid export, when it is larger.
    pub fn pieces(
        export: Arc<ExportSource>,
        clean: bool,
        limit: u64,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<UploadSource>, Error> {
        let pieces =
            Outgoing::split(export, clean, limit, progress, cancel).map_err(|e| match e {
                owi_export::Error::Cancelled { .. } => Error::Cancelled,
                other => Error::Export(other.to_string()),
            })?;
        Ok(pieces
            .into_iter()
            .map(|body| UploadSource { body })
            .collect())
    }

    /// The bodies of a selection (what the filters and the delta let
    /// out), in pieces of at most `limit` bytes.
    pub fn selected(
        export: Arc<ExportSource>,
        clean: bool,
        selection: &owi_export::Selection,
        limit: u64,
    ) -> Result<Vec<UploadSource>, Error> {
        let pieces = Outgoing::selected(export, clean, selection, limit)
            .map_err(|e| Error::Export(e.to_string()))?;
        Ok(pieces
            .into_iter()
            .map(|piece| UploadSource { body: piece.body })
            .collect())
    }

    pub fn len(&self) -> u64 {
        self.body.len()
    }

    pub fn is_empty(&self) -> bool {
        self.body.is_empty()
    }

    pub fn path(&self) -> &Path {
        self.body.source().path()
    }

    /// `len` bytes from `offset`.
    fn reader(&self, offset: u64, len: u64) -> Result<Box<dyn Read + Send>, Error> {
        let reader = self
            .body
            .reader_at(offset)
            .map_err(|e| Error::Export(e.to_string()))?;
        Ok(Box::new(reader.take(len)))
    }

    /// A streaming request body of `len` bytes from `offset`, counting what
    /// it hands over into `sent`.
    pub(super) fn body(
        self: &Arc<Self>,
        offset: u64,
        len: u64,
        sent: Arc<AtomicU64>,
        attempt: Option<Arc<AtomicU64>>,
        cancel: CancelToken,
    ) -> reqwest::Body {
        let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut reader = match source.reader(offset, len) {
                Ok(reader) => reader,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
                    return;
                }
            };
            let mut left = len;
            while left > 0 {
                if cancel.is_cancelled() {
                    let _ = tx.blocking_send(Err(std::io::Error::other("cancelled")));
                    return;
                }
                let mut chunk = vec![0; CHUNK.min(left as usize)];
                match reader.read(&mut chunk) {
                    Ok(0) => {
                        let _ = tx.blocking_send(Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the export got shorter while it was being sent",
                        )));
                        return;
                    }
                    Ok(n) => {
                        chunk.truncate(n);
                        left -= n as u64;
                        if tx.blocking_send(Ok(chunk)).is_err() {
                            return; // the request was dropped
                        }
                    }
                    Err(e) => {
                        let _ = tx.blocking_send(Err(e));
                        return;
                    }
                }
            }
        });
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        })
        .map(move |item| {
            if let Ok(chunk) = &item {
                sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Some(attempt) = &attempt {
                    attempt.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            }
            item
        });
        reqwest::Body::wrap_stream(stream)
    }
}
