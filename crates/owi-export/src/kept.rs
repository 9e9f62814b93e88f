//! A check's outcome as bytes, so the local store can keep what an ingest
//! found ([`Checking`](crate::Checking)) for a later upload, and
//! [`check_logic`], which names the logic that found it: an outcome kept
//! by another logic is never used.
//!
//! The counts travel as JSON; the selection (head, runs, end, one identity
//! per item) and the workout keys, millions of numbers, as little-endian
//! integers.

use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::preflight::Preflight;
use crate::selection::{Run, Selection};

/// Bump whenever the reader, the check or the chooser changes what a check
/// finds for the same export.
const LOGIC: u32 = 1;
const MAGIC: &[u8; 4] = b"OWIC";

/// The check's logic, as the store keeps it beside an outcome: this
/// constant and the crate's version, so a release never trusts another's.
pub fn check_logic() -> String {
    format!("{LOGIC}/{}", env!("CARGO_PKG_VERSION"))
}

/// Identities written to a file as the read finds them, so a check riding
/// along an ingest holds none of them in memory (8 bytes an item: 24 MB
/// for a 1 GB export).
pub(crate) struct Spill {
    out: BufWriter<File>,
    /// Where the (unnamed) file lies, for errors.
    dir: PathBuf,
    count: u64,
    failed: Option<io::Error>,
}

impl Spill {
    pub(crate) fn new(file: File, dir: &Path) -> Spill {
        Spill {
            out: BufWriter::with_capacity(64 << 10, file),
            dir: dir.to_path_buf(),
            count: 0,
            failed: None,
        }
    }

    pub(crate) fn push(&mut self, identity: Identity) {
        if self.failed.is_some() {
            return;
        }
        match self.out.write_all(&identity.to_le_bytes()) {
            Ok(()) => self.count += 1,
            Err(e) => self.failed = Some(e),
        }
    }

    /// The file, rewound, and how many identities it holds.
    fn into_file(self) -> Result<(File, u64)> {
        let dir = self.dir;
        let fail = |e| Error::io(&dir, e);
        if let Some(e) = self.failed {
            return Err(fail(e));
        }
        let mut file = self.out.into_inner().map_err(|e| fail(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(fail)?;
        Ok((file, self.count))
    }
}

/// A check's outcome on its way into the store: written as
/// [`Preflight::to_kept`] writes it, with identities that may wait in a
/// file ([`Checking::spill_to`](crate::Checking::spill_to)) rather than in
/// the preflight's selection.
pub struct KeptOutcome {
    preflight: Preflight,
    json: Vec<u8>,
    spilled: Option<(File, u64)>,
}

impl std::fmt::Debug for KeptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptOutcome")
            .field("fingerprint", &self.preflight.fingerprint)
            .field("identities", &self.identities())
            .finish_non_exhaustive()
    }
}

impl KeptOutcome {
    pub(crate) fn new(preflight: Preflight, spill: Option<Spill>) -> Result<KeptOutcome> {
        Ok(KeptOutcome {
            json: serde_json::to_vec(&preflight)
                .map_err(|e| Error::io("<the check's outcome>", io::Error::other(e)))?,
            spilled: spill.map(Spill::into_file).transpose()?,
            preflight,
        })
    }

    /// The fingerprint of the export the check read.
    pub fn fingerprint(&self) -> &str {
        &self.preflight.fingerprint
    }

    fn identities(&self) -> u64 {
        match (&self.spilled, &self.preflight.selection) {
            (Some((_, count)), _) => *count,
            (None, Some(selection)) => selection.identities.len() as u64,
            (None, None) => 0,
        }
    }

    /// The bytes [`write_to`](KeptOutcome::write_to) writes.
    pub fn byte_len(&self) -> u64 {
        let p = &self.preflight;
        let selection = p.selection.as_ref().map_or(0, |s| {
            8 + s.head.len() as u64 * 16 + 8 + s.runs.len() as u64 * 20 + 16 + 8
        });
        let identities = if p.selection.is_some() {
            self.identities() * 8
        } else {
            0
        };
        (MAGIC.len() + 4 + 8) as u64
            + self.json.len() as u64
            + 1
            + selection
            + identities
            + 8
            + p.workout_keys.len() as u64 * 16
    }

    /// Writes the kept form, the spilled identities streamed from their file.
    pub fn write_to(mut self, out: &mut dyn Write) -> io::Result<()> {
        let count = self.identities();
        write_kept(
            &self.preflight,
            &self.json,
            self.spilled.as_mut(),
            count,
            out,
        )
    }
}

fn write_kept(
    p: &Preflight,
    json: &[u8],
    spilled: Option<&mut (File, u64)>,
    count: u64,
    out: &mut dyn Write,
) -> io::Result<()> {
    out.write_all(MAGIC)?;
    out.write_all(&LOGIC.to_le_bytes())?;
    put(out, json.len() as u64)?;
    out.write_all(json)?;
    match &p.selection {
        None => out.write_all(&[0])?,
        Some(selection) => {
            out.write_all(&[1])?;
            put(out, selection.head.len() as u64)?;
            for (start, end) in &selection.head {
                put(out, *start)?;
                put(out, *end)?;
            }
            put(out, selection.runs.len() as u64)?;
            for run in &selection.runs {
                put(out, run.start)?;
                put(out, run.end)?;
                out.write_all(&run.items.to_le_bytes())?;
            }
            put(out, selection.tail.0)?;
            put(out, selection.tail.1)?;
            put(out, count)?;
            match spilled {
                Some((file, _)) => {
                    let copied = io::copy(&mut file.take(count * 8), out)?;
                    if copied != count * 8 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the spilled identities are shorter than written",
                        ));
                    }
                }
                None => {
                    for id in &selection.identities {
                        put(out, *id)?;
                    }
                }
            }
        }
    }
    put(out, p.workout_keys.len() as u64)?;
    for (start, end) in &p.workout_keys {
        out.write_all(&start.to_le_bytes())?;
        out.write_all(&end.to_le_bytes())?;
    }
    Ok(())
}

impl Preflight {
    /// Everything the check found, selection and workout keys included.
    pub fn to_kept(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let count = self.selection.as_ref().map_or(0, |s| s.identities.len());
        let mut out = Vec::with_capacity(64 + json.len() + count * 8);
        // Writing to memory cannot fail.
        let _ = write_kept(self, &json, None, count as u64, &mut out);
        out
    }

    /// The outcome kept by [`to_kept`](Preflight::to_kept) of this logic;
    /// `None` for anything else, damaged bytes included.
    pub fn from_kept(bytes: &[u8]) -> Option<Preflight> {
        let mut at = Cursor(bytes);
        if at.take(4)? != MAGIC || u32::from_le_bytes(at.array()?) != LOGIC {
            return None;
        }
        let json_len = at.len_of(1)?;
        let mut preflight: Preflight = serde_json::from_slice(at.take(json_len)?).ok()?;
        preflight.selection = match at.take(1)?[0] {
            0 => None,
            1 => {
                let head = (0..at.len_of(16)?)
                    .map(|_| Some((at.u64()?, at.u64()?)))
                    .collect::<Option<Vec<_>>>()?;
                let runs = (0..at.len_of(20)?)
                    .map(|_| {
                        Some(Run {
                            start: at.u64()?,
                            end: at.u64()?,
                            items: u32::from_le_bytes(at.array()?),
                        })
                    })
                    .collect::<Option<Vec<_>>>()?;
                let tail = (at.u64()?, at.u64()?);
                let count = at.len_of(8)?;
                let identities = at
                    .take(count * 8)?
                    .chunks_exact(8)
                    .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
                    .collect();
                Some(Selection {
                    head,
                    runs,
                    tail,
                    identities,
                })
            }
            _ => return None,
        };
        preflight.workout_keys = (0..at.len_of(16)?)
            .map(|_| {
                Some((
                    i64::from_le_bytes(at.array()?),
                    i64::from_le_bytes(at.array()?),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        at.0.is_empty().then_some(preflight)
    }
}

fn put(out: &mut dyn Write, value: u64) -> io::Result<()> {
    out.write_all(&value.to_le_bytes())
}

/// Reads what [`Preflight::to_kept`] wrote, refusing to run past the end.
struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    fn u64(&mut self) -> Option<u64> {
        self.array().map(u64::from_le_bytes)
    }

    /// A count of items of `size` bytes each that the rest can hold.
    fn len_of(&mut self, size: usize) -> Option<usize> {
        let n = usize::try_from(self.u64()?).ok()?;
        (n.checked_mul(size)? <= self.0.len()).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damaged_or_foreign_bytes_are_refused() {
        let preflight = Preflight {
            fingerprint: "f".repeat(32),
            workout_keys: vec![(1, 2), (3, 4)],
            selection: Some(Selection {
                head: vec![(0, 10)],
                runs: vec![Run {
                    start: 10,
                    end: 40,
                    items: 2,
                }],
                tail: (40, 52),
                identities: vec![7, 9],
            }),
            ..Preflight::default()
        };
        let bytes = preflight.to_kept();
        assert_eq!(Preflight::from_kept(&bytes), Some(preflight));
        for cut in [0, 3, 8, bytes.len() / 2, bytes.len() - 1] {
            assert_eq!(Preflight::from_kept(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut other_logic = bytes.clone();
        other_logic[4] ^= 0xFF;
        assert_eq!(Preflight::from_kept(&other_logic), None);
        let mut longer = bytes;
        longer.push(0);
        assert_eq!(Preflight::from_kept(&longer), None);
    }

    #[test]
    fn spilled_identities_are_kept_as_if_held()
    -> std::result::Result<(), Box<dyn std::error::Error>> {
        let held = Preflight {
            fingerprint: "a".repeat(32),
            workout_keys: vec![(5, 6)],
            selection: Some(Selection {
                head: vec![(0, 10)],
                runs: vec![Run {
                    start: 10,
                    end: 70,
                    items: 3,
                }],
                tail: (70, 82),
                identities: vec![7, 9, 1 << 62],
            }),
            ..Preflight::default()
        };
        let dir = std::env::temp_dir();
        let mut spill = Spill::new(tempfile::tempfile_in(&dir)?, &dir);
        for id in held.selection.iter().flat_map(|s| s.identities.iter()) {
            spill.push(*id);
        }
        let mut without = held.clone();
        if let Some(selection) = &mut without.selection {
            selection.identities.clear();
        }
        let kept = KeptOutcome::new(without, Some(spill))?;
        let expected = held.to_kept();
        assert_eq!(kept.byte_len(), expected.len() as u64);
        let mut written = Vec::new();
        kept.write_to(&mut written)?;
        assert_eq!(written, expected);
        assert_eq!(Preflight::from_kept(&written), Some(held));
        Ok(())
    }
}
