//! The bytes an upload sends: the export whole, or pieces of it, as they
//! are or cleaned, streamed from disk in chunks through a bounded channel.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use owi_export::{ExportSource, Outgoing};
use owi_progress::{CancelToken, ProgressSink};

use super::CHUNK;

/// Chunks read ahead of the network, per body.
const IN_FLIGHT: usize = 4;
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

    /// Whether its bytes are inflated out of a zip as they are read.
    pub fn is_zip(&self) -> bool {
        self.body.source().is_zip()
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
        let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(IN_FLIGHT);
        let source = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = source.fill(offset, len, &tx, &cancel) {
                let _ = tx.blocking_send(Err(e));
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

    /// Sends `len` bytes from `offset` down `tx` in full chunks, in buffers
    /// that come back once the network is done with them: no allocation,
    /// zeroing or page faults per chunk.
    fn fill(
        &self,
        offset: u64,
        len: u64,
        tx: &tokio::sync::mpsc::Sender<std::io::Result<Bytes>>,
        cancel: &CancelToken,
    ) -> std::io::Result<()> {
        let mut reader = self
            .reader(offset, len)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (home, returned) = std::sync::mpsc::channel::<Vec<u8>>();
        let mut left = len;
        while left > 0 {
            if cancel.is_cancelled() {
                return Err(std::io::Error::other("cancelled"));
            }
            let mut buf = returned.try_recv().unwrap_or_else(|_| vec![0; CHUNK]);
            let want = CHUNK.min(usize::try_from(left).unwrap_or(CHUNK));
            let mut filled = 0;
            while filled < want {
                match reader.read(&mut buf[filled..want]) {
                    Ok(0) => {
                        return Err(std::io::Error::new(
                            std::io::ErrorKind::UnexpectedEof,
                            "the export got shorter while it was being sent",
                        ));
                    }
                    Ok(n) => filled += n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            left -= filled as u64;
            let chunk = Bytes::from_owner(Pooled {
                buf,
                len: filled,
                home: home.clone(),
            });
            if tx.blocking_send(Ok(chunk)).is_err() {
                return Ok(()); // the request was dropped
            }
        }
        Ok(())
    }
}

/// A chunk's buffer, handed back to its body's reader when dropped.
struct Pooled {
    buf: Vec<u8>,
    len: usize,
    home: std::sync::mpsc::Sender<Vec<u8>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        // The reader may have finished: then the buffer is simply freed.
        let _ = self.home.send(std::mem::take(&mut self.buf));
    }
}
