//! The check an ingest keeps for a later upload: the same outcome as the
//! upload's own read of the export, and never served for another file, a
//! file touched since, a partial read or another build's logic.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use owi_export::names::Category;
use owi_export::time::parse_date;
use owi_export::{
    Choice, ExportSource, Identity, KeptCheck, Kinds, Preflight, ReadOptions, SentItems, Share,
    preflight_choosing,
};
use owi_sample::{Dtd, SampleSpec, generate};
use owi_store::{Carried, Store};

use crate::util::{Res, force_ingest, ingest, raw, raw_journal};

mod pending;
use pending::{SERVER, USER};

/// What an upload of everything to a user with nothing from us reads.
fn read_check(path: &Path) -> Res<Preflight> {
    let source = ExportSource::open(path)?;
    let everything = Share::default();
    Ok(preflight_choosing(
        &source,
        ReadOptions::default(),
        choice(&everything, None),
    )?)
}

fn sample(dir: &Path, locale: &str, zip: bool, junk: u64, dtd: Dtd) -> Res<(PathBuf, PathBuf)> {
    sized(dir, (4_000, 12), locale, zip, junk, dtd)
}

fn sized(
    dir: &Path,
    (records, workouts): (u64, u64),
    locale: &str,
    zip: bool,
    junk: u64,
    dtd: Dtd,
) -> Res<(PathBuf, PathBuf)> {
    let manifest = generate(
        &SampleSpec {
            records,
            workouts,
            seed: 11,
            locale: locale.into(),
            zip,
            junk_values: junk,
            dtd,
        },
        dir,
    )?;
    Ok((manifest.xml_path, manifest.zip_path.unwrap_or_default()))
}

#[test]
fn the_kept_check_is_what_reading_the_export_finds() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let mut inputs = Vec::new();
    for (name, locale, junk, dtd) in [
        ("plain", "en_US", 0, Dtd::Version14),
        ("junk", "fr_FR", 40, Dtd::Ios16),
        ("ru", "ru_RU", 3, Dtd::Version14),
    ] {
        let (xml, zip) = sample(&dir.path().join(name), locale, true, junk, dtd)?;
        inputs.extend([xml, zip]);
    }
    let public = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/public-samples");
    for name in ["apple-health-parser", "healthkit-to-sqlite"] {
        let found = public.join(name).join("export.zip");
        assert!(found.is_file(), "missing public sample {}", found.display());
        inputs.push(found);
    }
    // Clinical documents (one undated), a correlation holding records of
    // other categories, the profile before the export date, an element
    // this reader does not know.
    let odd = dir.path().join("odd").join("export.xml");
    std::fs::create_dir_all(dir.path().join("odd"))?;
    std::fs::write(&odd, include_str!("odd.xml"))?;
    inputs.push(odd);
    let mut store = Store::open(&dir.path().join("owi.sqlite"))?;
    for input in &inputs {
        let ctx = input.display().to_string();
        assert_eq!(store.kept_check(input)?, None, "{ctx}: not read yet");
        ingest(&mut store, input)?;
        let kept = store
            .kept_check(input)?
            .ok_or(format!("{ctx}: nothing kept"))?;
        let read = read_check(input)?;
        assert!(read.selection.is_some() && read.tally.is_some(), "{ctx}");
        assert!(kept.has_log(), "{ctx}");
        for_ledgers_as_read(input, kept.clone())?;
        for_shares_as_read(input, kept.clone(), &shares())?;
        assert_eq!(kept.into_preflight(), Some(read), "{ctx}");
    }
    Ok(())
}

/// Ledgers of what an earlier upload sent: most of the export, every other
/// item, all of it, and items this export no longer holds.
fn ledgers(everything: &[Identity]) -> Vec<(&'static str, SentItems)> {
    let most = everything.len() * 9 / 10;
    let gone = (1..=5u64).map(|n| n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    vec![
        (
            "most",
            everything[..most]
                .iter()
                .copied()
                .chain(gone.clone())
                .collect(),
        ),
        (
            "every other",
            everything.iter().step_by(2).copied().collect(),
        ),
        ("all", everything.iter().copied().collect()),
        ("none of it", gone.collect()),
    ]
}

/// The kept check chosen again for each ledger is what reading the export
/// with that ledger finds, and marks the same items of it.
fn for_ledgers_as_read(input: &Path, kept: KeptCheck) -> Res<()> {
    let ctx = input.display().to_string();
    let source = Arc::new(ExportSource::open(input)?);
    let everything = kept.clone().into_preflight().ok_or("a damaged log")?;
    let everything = everything.selection.unwrap_or_default();
    let no_filters = Share::default();
    let identities = everything.identities().ok_or("a damaged log")?;
    for (name, sent) in ledgers(&identities) {
        let mut read_sent = sent.clone();
        let read = preflight_choosing(
            &source,
            ReadOptions::default(),
            choice(&no_filters, Some(&mut read_sent)),
        )?;
        let mut chosen_sent = sent;
        let chosen = kept
            .clone()
            .choose(
                source.clone(),
                choice(&no_filters, Some(&mut chosen_sent)),
                ReadOptions::default(),
            )?
            .ok_or(format!("{ctx}, {name}: no log to choose from"))?;
        assert_eq!(chosen, read, "{ctx}, ledger of {name}");
        assert_eq!(chosen_sent.unseen(), read_sent.unseen(), "{ctx}, {name}");
    }
    Ok(())
}

/// Filters a person may choose, each alone and with others.
fn shares() -> Vec<(&'static str, Share)> {
    let categories = |list: &[Category]| Kinds {
        kinds: Default::default(),
        categories: list.iter().copied().collect(),
    };
    let kinds = |list: &[&str]| list.iter().copied().collect::<Kinds>();
    let mut shares = vec![
        (
            "only heart and vitals",
            Share {
                only: Some(categories(&[Category::Heart, Category::Vitals])),
                ..Share::default()
            },
        ),
        (
            "except activity",
            Share {
                except: categories(&[Category::Activity]),
                ..Share::default()
            },
        ),
        (
            "only runs, systolic, clinical, with the profile",
            Share {
                only: Some(kinds(&[
                    "HKWorkoutActivityTypeRunning",
                    "HKQuantityTypeIdentifierBloodPressureSystolic",
                    "ClinicalRecord",
                ])),
                include_me: true,
                ..Share::default()
            },
        ),
        (
            "all workouts, step count and nutrition, except cycling",
            Share {
                only: Some(Kinds {
                    kinds: ["Workout", "HKQuantityTypeIdentifierStepCount"]
                        .map(String::from)
                        .into(),
                    categories: [Category::Nutrition].into(),
                }),
                except: kinds(&["HKWorkoutActivityTypeCycling"]),
                ..Share::default()
            },
        ),
        (
            "with the profile",
            Share {
                include_me: true,
                ..Share::default()
            },
        ),
    ];
    // Cuts through the public samples (2016 to 2019) and the generator's
    // exports (2023 into 2024) alike.
    let (from, to) = (parse_date("2016-11-15"), parse_date("2023-09-30"));
    shares.push((
        "a season of heart data",
        Share {
            only: Some(categories(&[Category::Heart])),
            from,
            to,
            ..Share::default()
        },
    ));
    shares.push((
        "clinical documents and food, until a day",
        Share {
            only: Some(kinds(&[
                "ClinicalRecord",
                "Audiogram",
                "VisionPrescription",
                "HKCorrelationTypeIdentifierFood",
            ])),
            to,
            ..Share::default()
        },
    ));
    shares.push((
        "from a day on, with the profile",
        Share {
            from,
            include_me: true,
            ..Share::default()
        },
    ));
    shares
}

/// The kept check chosen again with each filter, for a user with nothing
/// and one with every other item, is what reading the export with them
/// finds, and marks the same items of the ledger.
fn for_shares_as_read(input: &Path, kept: KeptCheck, shares: &[(&str, Share)]) -> Res<()> {
    let ctx = input.display().to_string();
    let source = Arc::new(ExportSource::open(input)?);
    let everything = kept.clone().into_preflight().ok_or("a damaged log")?;
    let everything = everything.selection.unwrap_or_default();
    let identities = everything.identities().ok_or("a damaged log")?;
    let every_other: SentItems = identities.iter().step_by(2).copied().collect();
    for (name, share) in shares {
        for sent in [None, Some(every_other.clone())] {
            let ctx = format!("{ctx}, {name}, ledger: {}", sent.is_some());
            let (mut read_sent, mut chosen_sent) = (sent.clone(), sent);
            let read = preflight_choosing(
                &source,
                ReadOptions::default(),
                choice(share, read_sent.as_mut()),
            )?;
            let chosen = kept
                .clone()
                .choose(
                    source.clone(),
                    choice(share, chosen_sent.as_mut()),
                    ReadOptions::default(),
                )?
                .ok_or(format!("{ctx}: no log to choose from"))?;
            assert_eq!(chosen, read, "{ctx}");
            if share.only.is_none() && share.except.is_empty() {
                // Days and the profile leave nothing out by kind but
                // clinical documents.
                let by_kind = read.left_out.kinds.keys();
                assert!(
                    by_kind
                        .clone()
                        .all(|k| owi_export::share::PRIVATE_KINDS.contains(&k.as_str())),
                    "{ctx}: {:?}",
                    read.left_out.kinds
                );
            }
            assert_eq!(
                chosen_sent.map(|s| s.unseen()),
                read_sent.map(|s| s.unseen()),
                "{ctx}"
            );
        }
    }
    Ok(())
}

fn choice<'a>(share: &'a Share, sent: Option<&'a mut SentItems>) -> Choice<'a> {
    Choice {
        share,
        sent,
        tally: true,
    }
}

/// The ingest hands the check its items batch by batch from another
/// thread: an export of many record batches (16,384 records each) and
/// workout batches (256 each) keeps what one read finds, with names,
/// series and samples running across the batches' edges.
#[test]
fn a_check_kept_across_many_batches_is_what_reading_finds() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sized(dir.path(), (40_000, 600), "de_DE", false, 5, Dtd::Ios16)?;
    let mut store = Store::open(&dir.path().join("owi.sqlite"))?;
    ingest(&mut store, &xml)?;
    let kept = store.kept_check(&xml)?.ok_or("nothing kept")?;
    for_ledgers_as_read(&xml, kept.clone())?;
    let kept = kept.into_preflight().ok_or("a damaged log")?;
    let read = read_check(&xml)?;
    let tally = read.tally.as_ref().ok_or("no tally")?;
    let count = |group: &str| -> u64 {
        let rows = tally.rows.iter().filter(|r| r.group == group);
        rows.map(|r| r.items).sum()
    };
    assert!(count("workouts") >= 600, "the sample spans workout batches");
    let records: u64 = tally.rows.iter().map(|r| r.items).sum::<u64>() - count("workouts");
    assert!(records > 2 * 16_384, "the sample spans record batches");
    assert_eq!(kept, read);
    Ok(())
}

/// Moves the file's modification time on, its bytes unchanged.
fn touch(path: &Path) -> Res<()> {
    let file = std::fs::File::options().append(true).open(path)?;
    file.set_modified(std::time::SystemTime::now() + std::time::Duration::from_secs(5))?;
    Ok(())
}

#[test]
fn a_kept_check_is_never_served_stale() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, zip) = sample(dir.path(), "en_US", true, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    ingest(&mut store, &xml)?;
    assert!(store.kept_check(&xml)?.is_some());
    // Another file with the same XML was never read itself.
    assert_eq!(store.kept_check(&zip)?, None);

    // Kept by a build whose check logic differs.
    raw_journal(&db)?.execute("UPDATE kept_checks SET logic = logic || '-older'", [])?;
    assert_eq!(store.kept_check(&xml)?, None, "another logic's outcome");
    force_ingest(&mut store, &xml)?;
    assert!(
        store.kept_check(&xml)?.is_some(),
        "kept again by this logic"
    );

    // The file touched since it was read.
    touch(&xml)?;
    assert_eq!(store.kept_check(&xml)?, None, "a touched file");

    // The export row gone (deleted, or replaced by a partial read).
    force_ingest(&mut store, &xml)?;
    assert!(store.kept_check(&xml)?.is_some());
    raw(&db)?.execute("UPDATE exports SET state = 'partial'", [])?;
    assert_eq!(store.kept_check(&xml)?, None, "no complete read behind it");
    Ok(())
}

/// A load whose writer fails after the whole export was read (a trigger
/// refuses its workouts, which end the document, as a full disk would)
/// keeps no check of the batches it did store: the check kept before
/// stays as it was.
#[test]
fn a_load_that_fails_after_the_read_keeps_no_check_of_its_part() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sized(dir.path(), (40_000, 5), "en_US", false, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    ingest(&mut store, &xml)?;
    let before = store.kept_check(&xml)?.ok_or("nothing kept")?;
    raw(&db)?.execute_batch(
        "CREATE TRIGGER refuse BEFORE INSERT ON workouts
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )?;
    assert!(
        force_ingest(&mut store, &xml).is_err(),
        "the writer's failure is the ingest's"
    );
    assert_eq!(
        store.kept_check(&xml)?,
        Some(before),
        "not replaced by the check of what was stored before the failure"
    );
    Ok(())
}

/// A check whose export is gone (the same XML, read again from its zip,
/// replaces it) is dropped: it would never be served again.
#[test]
fn the_check_of_an_export_gone_is_dropped() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, zip) = sample(dir.path(), "en_US", true, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    ingest(&mut store, &xml)?;
    assert!(store.kept_check(&xml)?.is_some());
    ingest(&mut store, &zip)?;
    assert_eq!(
        store.exports()?.len(),
        1,
        "the zip's read replaced the XML's"
    );
    let journal = raw_journal(&db)?;
    let mut keys = journal.prepare("SELECT quick_key FROM kept_checks")?;
    let keys: Vec<String> = keys
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    assert_eq!(keys, vec![owi_store::quick_key(&zip)?]);
    Ok(())
}

/// A check kept by a build before version 11, in the main file, moves to
/// the journal file and is served as it was.
#[test]
fn a_check_kept_in_the_main_file_moves_to_the_journal() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sample(dir.path(), "en_US", false, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let kept = {
        let mut store = Store::open(&db)?;
        ingest(&mut store, &xml)?;
        store.kept_check(&xml)?.ok_or("nothing kept")?
    };
    {
        let old = raw(&db)?;
        old.execute(
            "ATTACH DATABASE ?1 AS journal",
            [owi_store::journal_path(&db).to_string_lossy()],
        )?;
        // Without the id and the column naming it that version 12 added.
        old.execute_batch(
            "CREATE TABLE main.kept_checks AS
                 SELECT quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome
                 FROM journal.kept_checks;
             DROP TABLE journal.kept_checks;
             ALTER TABLE journal.ledger_pending DROP COLUMN kept_check;
             PRAGMA main.user_version = 10;",
        )?;
    }
    let store = Store::open(&db)?;
    assert_eq!(store.kept_check(&xml)?, Some(kept));
    let in_main: i64 = raw(&db)?.query_row(
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'kept_checks'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(in_main, 0, "gone from the main file");
    Ok(())
}

/// A log damaged in the database file: served (its frame is whole), but
/// found out when used, the ledger left as it was, so the export is read.
#[test]
fn a_damaged_log_is_found_when_used() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sample(dir.path(), "en_US", false, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    ingest(&mut store, &xml)?;
    let whole = store.kept_check(&xml)?.ok_or("nothing kept")?;
    let whole = whole.into_preflight().ok_or("a damaged log")?;
    let ids = whole
        .selection
        .clone()
        .unwrap_or_default()
        .identities()
        .ok_or("listed")?
        .to_vec();

    let raw = raw_journal(&db)?;
    let mut outcome: Vec<u8> =
        raw.query_row("SELECT outcome FROM kept_checks", [], |r| r.get(0))?;
    // The log (some 14 bytes for each of 4,000 items) ends a few hundred
    // bytes of kinds' names before the workout keys (16 bytes each,
    // counted); no decoding survives 32 bytes of 0xFF.
    let in_log = outcome.len() - 8 - 16 * whole.workout_keys.len() - 20_000;
    outcome[in_log..in_log + 32].fill(0xFF);
    raw.execute("UPDATE kept_checks SET outcome = ?", [&outcome])?;
    let damaged = store
        .kept_check(&xml)?
        .ok_or("the frame is whole: served")?;
    assert!(damaged.has_log());

    let mut sent: SentItems = ids.iter().step_by(3).copied().collect();
    let source = Arc::new(ExportSource::open(&xml)?);
    let no_filters = Share::default();
    let chosen = damaged.clone().choose(
        source.clone(),
        choice(&no_filters, Some(&mut sent)),
        ReadOptions::default(),
    )?;
    assert_eq!(chosen, None);
    assert_eq!(sent.unseen(), sent.len(), "the ledger untouched");
    // Everything is what was kept, its identities left in the log: the
    // damage shows when they are taken out.
    let everything = damaged
        .clone()
        .choose(source, choice(&no_filters, None), ReadOptions::default())?
        .and_then(|p| p.selection)
        .ok_or("everything, as kept")?;
    assert_eq!(everything.items(), ids.len() as u64);
    assert_eq!(everything.identities(), None);
    assert!(everything.in_kept_log() && !everything.identities_whole());
    assert_eq!(damaged.into_preflight(), None);

    // An upload's items pending in that log come to nothing in the ledger
    // (the next upload sends them again), its workouts all the same.
    let (row, _) = store.kept_check_row(&xml)?.ok_or("served")?;
    assert!(store.ledger_pend("b", SERVER, USER, Carried::KeptLog(row), &[(1, 2)])?);
    assert!(store.ledger_confirm("b")?);
    let ledger = store.ledger(SERVER, USER)?.ok_or("confirmed")?;
    assert_eq!((ledger.items, ledger.workouts), (vec![], vec![(1, 2)]));
    Ok(())
}

#[test]
fn a_damaged_export_keeps_no_check() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sample(dir.path(), "en_US", false, 0, Dtd::Version14)?;
    let bytes = std::fs::read(&xml)?;
    let cut = dir.path().join("cut.xml");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3])?;
    let mut store = Store::open(&dir.path().join("owi.sqlite"))?;
    let _ = store.ingest(&cut, owi_store::IngestOptions::default());
    assert_eq!(store.kept_check(&cut)?, None);
    Ok(())
}
