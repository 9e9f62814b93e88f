//! The items of an upload pending in the ledger as the kept check whose
//! log holds them, and what that does to the check's life.

use std::path::Path;

use owi_sample::Dtd;
use owi_store::{Carried, KeptRow, Store};

use super::{read_check, sample, touch};
use crate::util::{Res, force_ingest, ingest, raw, raw_journal};

pub const SERVER: &str = "http://127.0.0.1:8000";
pub const USER: &str = "u";

/// How many checks the journal holds, of any file.
fn kept_rows(db: &Path) -> Res<i64> {
    Ok(raw_journal(db)?.query_row("SELECT count(*) FROM kept_checks", [], |r| r.get(0))?)
}

/// Names the check served for `xml` in `batch`'s pending row (as if still
/// sending, with `ahead`), then reads the file again: a newer check is
/// served, and the one named stays beside it.
fn named_then_replaced(store: &mut Store, xml: &Path, batch: &str, ahead: bool) -> Res<KeptRow> {
    let (named, _) = store.kept_check_row(xml)?.ok_or("nothing kept")?;
    let items = Carried::KeptLog(named);
    let pended = match ahead {
        true => store.ledger_pend_ahead(batch, SERVER, USER, items, &[])?,
        false => store.ledger_pend(batch, SERVER, USER, items, &[])?,
    };
    assert!(pended, "{batch}");
    touch(xml)?;
    force_ingest(store, xml)?;
    let db = store.path().to_path_buf();
    assert_eq!(kept_rows(&db)?, 2, "{batch}: the one named stays");
    Ok(named)
}

/// An upload of everything a kept check chose keeps its items pending as
/// that check, not a copy of them: confirmed, the ledger holds what a read
/// of the export finds. The check stays while an upload names it, though a
/// newer read of the file replaces it, and goes once that upload is
/// confirmed or discarded; one gone cannot be named.
#[test]
fn items_pending_in_a_kept_log_keep_it_until_settled() -> Res<()> {
    let dir = tempfile::tempdir()?;
    let (xml, _) = sample(dir.path(), "en_US", false, 0, Dtd::Version14)?;
    let db = dir.path().join("owi.sqlite");
    let mut store = Store::open(&db)?;
    ingest(&mut store, &xml)?;
    let mut read = read_check(&xml)?
        .selection
        .and_then(|s| s.identities().map(|ids| ids.to_vec()))
        .ok_or("a selection")?;
    read.sort_unstable();

    let (first, _) = store.kept_check_row(&xml)?.ok_or("nothing kept")?;
    assert!(store.ledger_pend_ahead("b1", SERVER, USER, Carried::KeptLog(first), &[(5, 6)])?);
    let listed: i64 = raw_journal(&db)?.query_row(
        "SELECT length(items) + (items_file IS NOT NULL) FROM ledger_pending
         WHERE kept_check IS NOT NULL",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(listed, 0, "no identities copied");
    // Migration 12 again, as after a crash that left the main file's
    // version behind the journal's: what it did stands.
    drop(store);
    raw(&db)?.execute_batch("PRAGMA user_version = 11")?;
    let mut store = Store::open(&db)?;
    assert_eq!(store.kept_check_row(&xml)?.map(|(row, _)| row), Some(first));
    touch(&xml)?;
    force_ingest(&mut store, &xml)?;
    let (second, _) = store.kept_check_row(&xml)?.ok_or("kept again")?;
    assert_ne!(second, first, "the newer read's check is served");
    assert_eq!(kept_rows(&db)?, 2, "the one named stays");
    assert!(store.ledger_sent("b1")?);
    assert!(store.ledger_confirm("b1")?);
    let ledger = store.ledger(SERVER, USER)?.ok_or("confirmed")?;
    assert_eq!((ledger.items, ledger.workouts), (read, vec![(5, 6)]));
    assert_eq!(kept_rows(&db)?, 1, "settled, the older check goes");

    assert!(
        !store.ledger_pend("b2", SERVER, USER, Carried::KeptLog(first), &[])?,
        "a check gone"
    );
    assert!(!store.ledger_confirm("b2")?, "nothing pending");
    assert_eq!(named_then_replaced(&mut store, &xml, "b3", false)?, second);
    store.ledger_discard("b3")?;
    assert_eq!(kept_rows(&db)?, 1, "discarded, the older check goes");

    // Left sending by a process that stopped, dropped by the next upload
    // to the user: the check it named goes with it.
    named_then_replaced(&mut store, &xml, "b4", true)?;
    store.ledger_pend_ahead("b5", SERVER, USER, Carried::Listed(&[1]), &[])?;
    assert_eq!(kept_rows(&db)?, 1, "dropped, the older check goes");

    // Written again as identities: the check it named goes.
    named_then_replaced(&mut store, &xml, "b6", false)?;
    store.ledger_pend("b6", SERVER, USER, Carried::Listed(&[1]), &[])?;
    assert_eq!(kept_rows(&db)?, 1, "no longer named, the older check goes");
    Ok(())
}
