//! The file a check riding along an ingest writes its log of judged items
//! to (`judged.rs`) as it goes, and what the kept form needs of it after.

use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::judged::{JudgedItem, KindNames, LogWriter};

/// The log of judged items (`judged.rs`) written to a file as the read
/// finds them, so a check riding along an ingest holds none of them in
/// memory (about 14 bytes an item: 44 MB for a 1 GB export).
pub(crate) struct Spill {
    out: BufWriter<File>,
    /// Where the (unnamed) file lies, for errors.
    dir: PathBuf,
    log: LogWriter,
    scratch: Vec<u8>,
    kinds: KindNames,
    counts: Spilled,
    failed: Option<io::Error>,
}

/// What a spill file holds, and what its items refer to.
#[derive(Debug, Default)]
pub(crate) struct Spilled {
    pub items: u64,
    pub bytes: u64,
    /// The kinds its items name by index.
    pub kinds: Vec<String>,
    /// Where each `<Me>` lies: no item, but sent with the profile.
    pub profile: Vec<(u64, u64)>,
}

impl Spilled {
    /// The bytes the kinds and the profile take after the log.
    pub(crate) fn after_log_len(&self) -> u64 {
        let kinds: u64 = self.kinds.iter().map(|k| 8 + k.len() as u64).sum();
        8 + kinds + 8 + self.profile.len() as u64 * 16
    }
}

impl Spill {
    pub(crate) fn new(file: File, dir: &Path) -> Spill {
        Spill {
            out: BufWriter::with_capacity(64 << 10, file),
            dir: dir.to_path_buf(),
            log: LogWriter::default(),
            scratch: Vec::with_capacity(64),
            kinds: KindNames::default(),
            counts: Spilled::default(),
            failed: None,
        }
    }

    /// The index items of `kind` are logged with.
    pub(crate) fn kind(&mut self, kind: &str) -> u32 {
        self.kinds.of(kind)
    }

    /// A `<Me>` lies at `from..end`.
    pub(crate) fn profile(&mut self, from: u64, end: u64) {
        self.counts.profile.push((from, end));
    }

    pub(crate) fn push(&mut self, item: &JudgedItem) {
        if self.failed.is_some() {
            return;
        }
        self.scratch.clear();
        if self.log.encode(item, &mut self.scratch).is_none() {
            self.failed = Some(io::Error::other("an item out of document order"));
            return;
        }
        match self.out.write_all(&self.scratch) {
            Ok(()) => {
                self.counts.items += 1;
                self.counts.bytes += self.scratch.len() as u64;
            }
            Err(e) => self.failed = Some(e),
        }
    }

    /// The file, rewound, and what it holds.
    pub(crate) fn into_file(self) -> Result<(File, Spilled)> {
        let dir = self.dir;
        let fail = |e| Error::io(&dir, e);
        if let Some(e) = self.failed {
            return Err(fail(e));
        }
        let mut file = self.out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        let mut counts = self.counts;
        counts.kinds = self.kinds.into_names();
        Ok((file, counts))
    }
}
