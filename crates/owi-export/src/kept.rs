//! A check's outcome as bytes, so the local store can keep what an ingest
//! found ([`Checking`](crate::Checking)) for a later upload, and
//! [`check_logic`], which names the logic that found it: an outcome kept
//! by another logic is never used.
//!
//! The counts travel as JSON; the selection (head, runs, end, one identity
//! per item that goes, or an ingest's log of every item judged:
//! `judged.rs`) and the workout keys, millions of numbers, as little-endian
//! integers.

use std::fs::File;
use std::io::{self, Read, Write};
use std::ops::Range;
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::identity::Identity;
use crate::judged::LogReader;
use crate::preflight::Preflight;
use crate::selection::{GoingIdentities, Run, Selection};
use crate::spill::{Spill, Spilled};

/// Bump whenever the reader, the check or the chooser changes what a check
/// finds for the same export. The ledger reads the log of a check kept by
/// any logic ([`KeptCheck::went_of_kept`]) for an upload still pending: a
/// change to the kept form itself needs a store migration that lists the
/// identities of such uploads first.
const LOGIC: u32 = 3;
const MAGIC: &[u8; 4] = b"OWIC";

/// The check's logic, as the store keeps it beside an outcome: this
/// constant and the crate's version, so a release never trusts another's.
pub fn check_logic() -> String {
    format!("{LOGIC}/{}", env!("CARGO_PKG_VERSION"))
}

/// A check's outcome on its way into the store: written as
/// [`Preflight::to_kept`] writes it, or with the log of every item judged
/// in place of the selection's identities, streamed from the file it waits
/// in ([`Checking::spill_to`](crate::Checking::spill_to)).
pub struct KeptOutcome {
    preflight: Preflight,
    json: Vec<u8>,
    spilled: Option<(File, Spilled)>,
}

impl std::fmt::Debug for KeptOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptOutcome")
            .field("fingerprint", &self.preflight.fingerprint)
            .field(
                "spilled",
                &self.spilled.as_ref().map(|(_, spilled)| spilled),
            )
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

    /// The bytes [`write_to`](KeptOutcome::write_to) writes.
    pub fn byte_len(&self) -> u64 {
        let p = &self.preflight;
        let selection = p.selection.as_ref().map_or(0, |s| {
            let items = match &self.spilled {
                Some((_, spilled)) => 16 + spilled.bytes + spilled.after_log_len(),
                None => 8 + s.items() * 8,
            };
            8 + s.head.len() as u64 * 16 + 8 + s.runs.len() as u64 * 20 + 16 + 1 + items
        });
        (MAGIC.len() + 4 + 8) as u64
            + self.json.len() as u64
            + 1
            + selection
            + 8
            + p.workout_keys.len() as u64 * 16
    }

    /// Writes the kept form, the spilled log streamed from its file.
    pub fn write_to(mut self, out: &mut dyn Write) -> io::Result<()> {
        write_kept(&self.preflight, &self.json, self.spilled.as_mut(), out)
    }
}

/// How the items of a kept selection follow its runs.
const IDENTITIES: u8 = 0;
const LOG: u8 = 1;

fn write_kept(
    p: &Preflight,
    json: &[u8],
    spilled: Option<&mut (File, Spilled)>,
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
            match spilled {
                Some((file, spilled)) => {
                    out.write_all(&[LOG])?;
                    put(out, spilled.items)?;
                    put(out, spilled.bytes)?;
                    let copied = io::copy(&mut file.take(spilled.bytes), out)?;
                    if copied != spilled.bytes {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the spilled log is shorter than written",
                        ));
                    }
                    put(out, spilled.kinds.len() as u64)?;
                    for kind in &spilled.kinds {
                        put(out, kind.len() as u64)?;
                        out.write_all(kind.as_bytes())?;
                    }
                    put(out, spilled.profile.len() as u64)?;
                    for (from, end) in &spilled.profile {
                        put(out, *from)?;
                        put(out, *end)?;
                    }
                }
                None => {
                    out.write_all(&[IDENTITIES])?;
                    // A damaged log's selection is written without them:
                    // read back, its count disagrees with the runs'.
                    let listed = selection.identities().unwrap_or_default();
                    put(out, listed.len() as u64)?;
                    for id in listed.iter() {
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
        let count = self.selection.as_ref().map_or(0, Selection::items) as usize;
        let mut out = Vec::with_capacity(64 + json.len() + count * 8);
        // Writing to memory cannot fail.
        let _ = write_kept(self, &json, None, &mut out);
        out
    }

    /// The outcome kept by [`to_kept`](Preflight::to_kept) (or an ingest)
    /// of this logic; `None` for anything else, damaged bytes included.
    pub fn from_kept(bytes: &[u8]) -> Option<Preflight> {
        KeptCheck::from_kept(bytes.to_vec()).and_then(KeptCheck::into_preflight)
    }
}

/// A kept check read back: the outcome, and the log of every item judged
/// when an ingest wrote one, from which an upload with filters, or to a
/// user who has part of the export already, is chosen without another read
/// ([`KeptCheck::choose`]). The log stays where it was read (tens of
/// megabytes) and is read once, by whichever use comes: the identities of
/// what goes are taken from it only when asked for
/// ([`into_preflight`](KeptCheck::into_preflight)), and a damaged log is
/// found then.
#[derive(Clone, PartialEq)]
pub struct KeptCheck {
    /// Its selection holds no identities while a log is held.
    pub(crate) preflight: Preflight,
    pub(crate) log: Option<KeptLog>,
}

/// A log where it was read: its bytes' range in them, what the outcome
/// says it holds, the kinds its items name and where the profile lies.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct KeptLog {
    bytes: Vec<u8>,
    range: Range<usize>,
    items: u64,
    went: u64,
    pub(crate) kinds: Vec<String>,
    pub(crate) profile: Vec<(u64, u64)>,
}

impl std::fmt::Debug for KeptCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeptCheck")
            .field("fingerprint", &self.preflight.fingerprint)
            .field("log_bytes", &self.log.as_ref().map(|l| l.range.len()))
            .finish_non_exhaustive()
    }
}

impl KeptCheck {
    /// What [`KeptOutcome::write_to`] or [`Preflight::to_kept`] wrote, of
    /// this logic; `None` for anything else, damaged bytes included.
    pub fn from_kept(bytes: Vec<u8>) -> Option<KeptCheck> {
        KeptCheck::read_kept(bytes, Some(LOGIC))
    }

    /// The identities of what went, as [`into_went`](KeptCheck::into_went)
    /// gives them, from a check kept by any logic whose form this one
    /// reads: what an upload carried stays true after an upgrade, and the
    /// ledger may still be waiting to confirm it.
    pub fn went_of_kept(bytes: Vec<u8>) -> Option<Vec<Identity>> {
        KeptCheck::read_kept(bytes, None)?.into_went()
    }

    /// The kept form, refused unless `logic`, when given, kept it.
    fn read_kept(bytes: Vec<u8>, logic: Option<u32>) -> Option<KeptCheck> {
        let mut at = Cursor(&bytes);
        if at.take(4)? != MAGIC {
            return None;
        }
        let kept_by = u32::from_le_bytes(at.array()?);
        if logic.is_some_and(|logic| kept_by != logic) {
            return None;
        }
        let json_len = at.len_of(1)?;
        let mut preflight: Preflight = serde_json::from_slice(at.take(json_len)?).ok()?;
        // Its bytes are moved in once read.
        let mut log: Option<KeptLog> = None;
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
                let in_runs: u64 = runs.iter().map(|r| u64::from(r.items)).sum();
                let identities = match at.take(1)?[0] {
                    IDENTITIES => {
                        let count = at.len_of(8)?;
                        at.take(count * 8)?
                            .chunks_exact(8)
                            .map(|c| {
                                u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                            })
                            .collect()
                    }
                    LOG => {
                        let items = at.u64()?;
                        let len = at.len_of(1)?;
                        let start = bytes.len() - at.0.len();
                        at.take(len)?;
                        let kinds = (0..at.len_of(8)?)
                            .map(|_| {
                                let len = at.len_of(1)?;
                                String::from_utf8(at.take(len)?.to_vec()).ok()
                            })
                            .collect::<Option<Vec<_>>>()?;
                        let profile = (0..at.len_of(16)?)
                            .map(|_| Some((at.u64()?, at.u64()?)).filter(|(s, e)| s <= e))
                            .collect::<Option<Vec<_>>>()?;
                        log = Some(KeptLog {
                            bytes: Vec::new(),
                            range: start..start + len,
                            items,
                            went: in_runs,
                            kinds,
                            profile,
                        });
                        Vec::new()
                    }
                    _ => return None,
                };
                if log.is_none() && in_runs != identities.len() as u64 {
                    return None;
                }
                Some(Selection {
                    head,
                    runs,
                    tail,
                    identities: identities.into(),
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
        if !at.0.is_empty() {
            return None;
        }
        let log = log.map(|log| KeptLog { bytes, ..log });
        Some(KeptCheck { preflight, log })
    }

    /// Whether a log was kept, so [`choose`](KeptCheck::choose)
    /// can choose from it.
    pub fn has_log(&self) -> bool {
        self.log.is_some()
    }

    /// The bytes of XML the check read.
    pub fn xml_bytes(&self) -> u64 {
        self.preflight.stats.bytes
    }

    pub fn fingerprint(&self) -> &str {
        &self.preflight.fingerprint
    }

    /// The check of everything for a user who has nothing from us;
    /// `None` when its log is damaged.
    pub fn into_preflight(self) -> Option<Preflight> {
        let mut preflight = self.preflight;
        if let (Some(log), Some(selection)) = (&self.log, &mut preflight.selection) {
            selection.identities = log.went_identities()?.into();
        }
        Some(preflight)
    }

    /// The identity of every item that goes in
    /// [`into_preflight`](KeptCheck::into_preflight)'s selection, in
    /// document order; `None` when its log is damaged or nothing was
    /// chosen.
    pub fn into_went(self) -> Option<Vec<Identity>> {
        match (self.log, self.preflight.selection?.identities) {
            (Some(log), _) => log.went_identities(),
            (None, GoingIdentities::Listed(listed)) => Some(listed),
            (None, GoingIdentities::Logged(log)) => log.went_identities(),
        }
    }

    /// The same, its identities left in the log until asked for
    /// ([`Selection::identities`]), where damage is found.
    pub(crate) fn into_logged(self) -> Preflight {
        let mut preflight = self.preflight;
        if let (Some(log), Some(selection)) = (self.log, &mut preflight.selection) {
            selection.identities = GoingIdentities::Logged(Arc::new(log));
        }
        preflight
    }

    /// The log, when one was kept and it is whole (a pass over it): what
    /// goes can be chosen from it.
    pub(crate) fn whole_log(&self) -> Option<&KeptLog> {
        self.log.as_ref().filter(|log| log.is_whole())
    }
}

impl KeptLog {
    /// How many of its items went.
    pub(crate) fn went(&self) -> u64 {
        self.went
    }

    /// The identity of each item that went, in order; `None` when the
    /// log is damaged.
    pub(crate) fn went_identities(&self) -> Option<Vec<Identity>> {
        let mut identities = Vec::with_capacity(usize::try_from(self.went).unwrap_or(0));
        self.walk(|identity| identities.push(identity))?;
        Some(identities)
    }

    /// Whether it holds what the outcome says (a pass over it).
    pub(crate) fn is_whole(&self) -> bool {
        self.walk(|_| {}).is_some()
    }

    /// Its bytes: the items, as `judged.rs` writes them.
    pub(crate) fn log(&self) -> &[u8] {
        &self.bytes[self.range.clone()]
    }

    /// Hands over the identity of each item that went; `None` when the
    /// log is damaged: it holds other counts than the outcome says, or
    /// names a kind it does not list.
    fn walk(&self, mut went: impl FnMut(Identity)) -> Option<()> {
        let (mut items, mut going) = (0, 0);
        let known = |kind: &u32| (*kind as usize) < self.kinds.len();
        for item in LogReader::new(self.log()) {
            let item = item.ok()?;
            if !known(&item.kind) || !item.nested.as_ref().is_none_or(|n| n.iter().all(known)) {
                return None;
            }
            items += 1;
            if item.went {
                going += 1;
                went(item.identity);
            }
        }
        (items == self.items && going == self.went).then_some(())
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
    use crate::judged::JudgedItem;

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
                identities: vec![7, 9].into(),
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
        // What went is read whichever logic kept it.
        assert_eq!(KeptCheck::went_of_kept(other_logic), Some(vec![7, 9]));
        let mut longer = bytes;
        longer.push(0);
        assert_eq!(Preflight::from_kept(&longer), None);
    }

    #[test]
    fn a_spilled_log_is_kept_with_the_selection_it_makes()
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
                tail: (90, 102),
                identities: vec![7, 9, 1 << 62].into(),
            }),
            ..Preflight::default()
        };
        let dir = std::env::temp_dir();
        let mut spill = Spill::new(tempfile::tempfile_in(&dir)?, &dir);
        let kind = spill.kind("HeartRate");
        spill.profile(0, 4);
        let items = [
            (7, 10, 30, true),
            (9, 30, 50, true),
            (1 << 62, 50, 70, true),
        ];
        for (identity, from, end, went) in items.into_iter().chain([(3, 70, 90, false)]) {
            spill.push(&JudgedItem {
                identity,
                from,
                end,
                went,
                group: "heart",
                day: Some(20_000),
                kind,
                nested: None,
            });
        }
        let mut without = held.clone();
        if let Some(selection) = &mut without.selection {
            selection.identities = Vec::new().into();
        }
        let kept = KeptOutcome::new(without, Some(spill))?;
        let len = kept.byte_len();
        let mut written = Vec::new();
        kept.write_to(&mut written)?;
        assert_eq!(len, written.len() as u64);
        let back = KeptCheck::from_kept(written.clone()).ok_or("refused")?;
        assert!(back.has_log());
        let log = back.log.as_ref().ok_or("no log")?;
        assert_eq!(
            (&log.kinds[..], &log.profile[..]),
            (&["HeartRate".to_string()][..], &[(0, 4)][..])
        );
        let log_len = back.whole_log().map_or(0, |l| l.log().len());
        // The kinds and the profile follow the log.
        let after_log = 8 + 8 + "HeartRate".len() + 8 + 16;
        assert_eq!(back.into_preflight(), Some(held));
        // A log whose items disagree with the runs is damage.
        let mut wrong = written.clone();
        let run_items = wrong.len() - 8 - 16 - after_log - log_len - 8 - 8 - 1 - 16 - 4;
        wrong[run_items] = 2;
        let wrong = KeptCheck::from_kept(wrong).ok_or("its frame is whole")?;
        assert!(wrong.whole_log().is_none());
        assert_eq!(wrong.into_preflight(), None);
        // So is a log cut short inside an item, its length told to match.
        let log_at = written.len() - 8 - 16 - after_log - log_len;
        let mut cut = written[..log_at + log_len - 3].to_vec();
        cut[log_at - 8..log_at].copy_from_slice(&(log_len as u64 - 3).to_le_bytes());
        cut.extend_from_slice(&written[log_at + log_len..]);
        let cut = KeptCheck::from_kept(cut).ok_or("its frame is whole")?;
        assert!(cut.whole_log().is_none());
        assert_eq!(cut.into_preflight(), None);
        Ok(())
    }
}
