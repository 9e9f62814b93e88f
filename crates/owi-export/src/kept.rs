//! A check's outcome as bytes, so the local store can keep what an ingest
//! found ([`Checking`](crate::Checking)) for a later upload, and
//! [`check_logic`], which names the logic that found it: an outcome kept
//! by another logic is never used.
//!
//! The counts travel as JSON; the selection (head, runs, end, one identity
//! per item) and the workout keys, millions of numbers, as little-endian
//! integers.

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

impl Preflight {
    /// Everything the check found, selection and workout keys included.
    pub fn to_kept(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).unwrap_or_default();
        let ids = self.selection.as_ref().map_or(0, |s| s.identities.len());
        let mut out = Vec::with_capacity(64 + json.len() + ids * 8 + self.workout_keys.len() * 16);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&LOGIC.to_le_bytes());
        put(&mut out, json.len() as u64);
        out.extend_from_slice(&json);
        match &self.selection {
            None => out.push(0),
            Some(selection) => {
                out.push(1);
                put(&mut out, selection.head.len() as u64);
                for (start, end) in &selection.head {
                    put(&mut out, *start);
                    put(&mut out, *end);
                }
                put(&mut out, selection.runs.len() as u64);
                for run in &selection.runs {
                    put(&mut out, run.start);
                    put(&mut out, run.end);
                    out.extend_from_slice(&run.items.to_le_bytes());
                }
                put(&mut out, selection.tail.0);
                put(&mut out, selection.tail.1);
                put(&mut out, selection.identities.len() as u64);
                for id in &selection.identities {
                    put(&mut out, *id);
                }
            }
        }
        put(&mut out, self.workout_keys.len() as u64);
        for (start, end) in &self.workout_keys {
            out.extend_from_slice(&start.to_le_bytes());
            out.extend_from_slice(&end.to_le_bytes());
        }
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
                let identities = (0..at.len_of(8)?)
                    .map(|_| at.u64())
                    .collect::<Option<Vec<_>>>()?;
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

fn put(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
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
}
