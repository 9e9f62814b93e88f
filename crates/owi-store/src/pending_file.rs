//! The identities an upload carries, kept pending in a file of their own
//! beside the store rather than in their `ledger_pending` row: 3 million
//! items are 23 MB, which SQLite writes as 6,000 pages into its log and
//! then again into the journal file, 0.12 s of a core taken from the
//! upload they are written beside, where one sequential write takes 0.01
//! s. The row names the file and the xxh3 of its bytes (migration 13); a
//! file gone or changed gives no items, as a damaged kept log gives none:
//! the next upload to that user sends them again.

use std::collections::HashSet;
use std::fs::{self, File};
use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rusqlite::Connection;
use tempfile::TempPath;
use xxhash_rust::xxh3::Xxh3;

use crate::{Error, Result};

/// What every such file's name starts with: the sweep leaves anything else.
const PREFIX: &str = "items-";

/// Random letters and digits after the prefix: names never meet.
const RANDOM_LEN: usize = 12;

/// Items per write: 64 KiB.
const ITEMS_PER_CHUNK: usize = 8 << 10;

/// The folder of a store's pending items: `owi.sqlite` → `owi.pending`.
pub(crate) fn dir_of(store: &Path) -> PathBuf {
    store.with_extension("pending")
}

/// Items written, not yet named by a row: the file goes when this is
/// dropped before [`kept`](PendingItems::kept) is.
pub(crate) struct PendingItems {
    path: TempPath,
    pub(crate) name: String,
    /// The xxh3 of its bytes, as SQLite keeps integers.
    pub(crate) hash: i64,
}

impl PendingItems {
    /// Writes `items` to a new file in `dir`, as little-endian integers.
    pub(crate) fn write(dir: &Path, items: &[u64]) -> Result<PendingItems> {
        let io = |source| Error::Io {
            path: dir.to_path_buf(),
            source,
        };
        fs::create_dir_all(dir).map_err(io)?;
        let mut file = tempfile::Builder::new()
            .prefix(PREFIX)
            .rand_bytes(RANDOM_LEN)
            .tempfile_in(dir)
            .map_err(io)?;
        let mut hasher = Xxh3::new();
        let mut chunk = Vec::with_capacity(ITEMS_PER_CHUNK * 8);
        for part in items.chunks(ITEMS_PER_CHUNK) {
            chunk.clear();
            for item in part {
                chunk.extend_from_slice(&item.to_le_bytes());
            }
            hasher.update(&chunk);
            file.write_all(&chunk).map_err(io)?;
        }
        let path = file.into_temp_path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| io(io::Error::other("a temporary file without a name")))?
            .to_string();
        debug_assert!(inside(dir, &name).is_some(), "{name}");
        Ok(PendingItems {
            path,
            name,
            hash: hasher.digest() as i64,
        })
    }

    /// Marks the file as new, under the journal's write lock, before a row
    /// names it: the sweep takes only files a day old, and one this old
    /// could have been swept by another process while this one slept. An
    /// error when it was.
    pub(crate) fn claim(&self) -> Result<()> {
        File::options()
            .write(true)
            .open(&self.path)
            .and_then(|file| file.set_modified(SystemTime::now()))
            .map_err(|source| Error::Io {
                path: self.path.to_path_buf(),
                source,
            })
    }

    /// A row names the file now: it stays.
    pub(crate) fn kept(self) {
        if let Err(e) = self.path.keep() {
            tracing::warn!(error = %e.error, "could not keep an upload's pending items");
            // Left where it is: the row names it.
            std::mem::forget(e.path);
        }
    }
}

/// The items in file `name` of `dir`, in the order written: `Ok(None)`
/// when it is gone or not what was written (`hash`), or the name is not one
/// this module gives (a hand on the database); an error when it could not
/// be read, which may pass.
pub(crate) fn read(dir: &Path, name: &str, hash: i64) -> io::Result<Option<Vec<u64>>> {
    let found = match inside(dir, name) {
        Some(path) => read_checked(&path, hash),
        None => Ok(None),
    };
    if let Ok(None) = found {
        tracing::warn!(file = name, "an upload's pending items are gone or damaged");
    }
    found
}

fn read_checked(path: &Path, hash: i64) -> io::Result<Option<Vec<u64>>> {
    match fs::symlink_metadata(path) {
        // Not a FIFO that would block, nor a link out of the folder.
        Ok(meta) if meta.is_file() && meta.len() % 8 == 0 => {}
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    let mut file = match File::open(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        opened => opened?,
    };
    let mut chunk = vec![0; ITEMS_PER_CHUNK * 8];
    // Known whole before anything is held for it: a file grown by a hand
    // cannot make us allocate its size.
    let mut hasher = Xxh3::new();
    let mut len = 0;
    loop {
        let n = match file.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&chunk[..n]);
        len += n;
    }
    if hasher.digest() as i64 != hash || len % 8 != 0 {
        return Ok(None);
    }
    let mut items = Vec::with_capacity(len / 8);
    file.seek(io::SeekFrom::Start(0))?;
    let mut again = Xxh3::new();
    let mut left = len;
    while left > 0 {
        let part = &mut chunk[..left.min(ITEMS_PER_CHUNK * 8)];
        match file.read_exact(part) {
            // Cut between the two passes, by a hand.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            read => read?,
        }
        again.update(part);
        items.extend(
            part.chunks_exact(8)
                .map(|c| u64::from_le_bytes(c.try_into().unwrap_or_default())),
        );
        left -= part.len();
    }
    // Changed between the two passes, by a hand.
    Ok((again.digest() == hasher.digest()).then_some(items))
}

/// Removes the files `names` of `dir` no row names any more. A file that
/// stays is taken by the sweep a day later.
pub(crate) fn remove(dir: &Path, names: impl IntoIterator<Item = String>) {
    for name in names {
        let Some(path) = inside(dir, &name) else {
            continue;
        };
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), error = %e, "could not remove an upload's pending items");
            }
            _ => {}
        }
    }
}

/// Removes the files in `dir` that no row names and that are older than
/// `age`: left by a process that stopped between writing one and its row,
/// or after its row went. A younger one may be another process's, its row
/// not yet committed.
pub(crate) fn sweep(dir: &Path, named: &HashSet<String>, age: Duration) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let before = SystemTime::now().checked_sub(age);
    let stale = entries.flatten().filter_map(|entry| {
        let name = entry.file_name().into_string().ok()?;
        let modified = entry.metadata().and_then(|m| m.modified()).ok()?;
        let old = before.is_some_and(|before| modified < before);
        let ours = inside(dir, &name).is_some();
        (ours && !named.contains(&name) && old).then_some(name)
    });
    let stale: Vec<String> = stale.collect();
    if !stale.is_empty() {
        tracing::info!(
            files = stale.len(),
            "removing pending items no upload names"
        );
    }
    remove(dir, stale);
}

/// `dir/name` when `name` is one this module gives: the prefix, then
/// [`RANDOM_LEN`] letters and digits.
fn inside(dir: &Path, name: &str) -> Option<PathBuf> {
    let tail = name.strip_prefix(PREFIX)?;
    let plain = tail.len() == RANDOM_LEN && tail.bytes().all(|b| b.is_ascii_alphanumeric());
    plain.then(|| dir.join(name))
}

/// Migration 13 (its script says why): a pending row may name a file of
/// items. Made only if missing, like migration 12.
pub(crate) fn name_files(conn: &Connection) -> rusqlite::Result<()> {
    for column in ["items_file TEXT", "items_hash INTEGER"] {
        let name = column.split(' ').next().unwrap_or_default();
        if !crate::journal_has(conn, "ledger_pending", name)? {
            conn.execute_batch(&format!(
                "ALTER TABLE journal.ledger_pending ADD COLUMN {column};"
            ))?;
        }
    }
    Ok(())
}
