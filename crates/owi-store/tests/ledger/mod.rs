//! The ledger of what reached each server's user: pending until the server
//! confirms an import, merged then, discarded on failure, kept whatever
//! happens to exports, history and the schema.

use owi_store::{Carried, Ledger, NewUpload, Outcome, Store};

const SERVER: &str = "http://127.0.0.1:8000";
const USER: &str = "3f1e0c52-8f0e-4d43-9a7b-0b5d1c1f2a10";

fn store(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("owi.sqlite")).unwrap_or_else(|e| panic!("opening: {e}"))
}

#[test]
fn items_join_the_ledger_only_when_their_import_is_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend(
            "b1",
            SERVER,
            USER,
            Carried::Listed(&[30, 10, 20, 10]),
            &[(5, 9), (1, 2)],
        )
        .unwrap();
    assert_eq!(
        store.ledger(SERVER, USER).unwrap(),
        None,
        "pending is not sent"
    );
    assert!(store.ledger_confirm("b1").unwrap());
    assert!(!store.ledger_confirm("b1").unwrap(), "confirmed once");
    let ledger = store.ledger(SERVER, USER).unwrap().unwrap();
    assert_eq!(ledger.items, [10, 20, 30]);
    assert_eq!(ledger.workouts, [(1, 2), (5, 9)]);
    assert_eq!(ledger.imports, 1);

    store
        .ledger_pend("b2", SERVER, USER, Carried::Listed(&[20, 40]), &[])
        .unwrap();
    store
        .ledger_pend("b3", SERVER, USER, Carried::Listed(&[99]), &[(7, 8)])
        .unwrap();
    store.ledger_confirm("b2").unwrap();
    store.ledger_discard("b3").unwrap();
    assert!(
        !store.ledger_confirm("b3").unwrap(),
        "a discarded import adds nothing"
    );
    let ledger = store.ledger(SERVER, USER).unwrap().unwrap();
    assert_eq!(ledger.items, [10, 20, 30, 40]);
    assert_eq!(ledger.workouts, [(1, 2), (5, 9)]);
    let summary = store.ledger_summary(SERVER, USER).unwrap().unwrap();
    assert_eq!(
        (summary.items, summary.workouts, summary.imports),
        (4, 2, 2)
    );
    assert_eq!(store.ledger(SERVER, "another-user").unwrap(), None);
    assert_eq!(store.ledger("http://elsewhere:8000", USER).unwrap(), None);
}

#[test]
fn the_ledger_outlives_exports_history_and_a_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("owi.sqlite");
    {
        let store = Store::open(&path).unwrap();
        store
            .ledger_pend("b1", SERVER, USER, Carried::Listed(&[1, 2, 3]), &[(4, 5)])
            .unwrap();
        store.ledger_confirm("b1").unwrap();
    }
    let want = Ledger {
        items: vec![1, 2, 3],
        workouts: vec![(4, 5)],
        imports: 1,
        updated_at: 0,
    };
    let found = |store: &Store| {
        let mut ledger = store.ledger(SERVER, USER).unwrap().unwrap();
        ledger.updated_at = 0;
        ledger
    };
    {
        let db = rusqlite::Connection::open(&path).unwrap();
        db.execute_batch("DELETE FROM exports;").unwrap();
        let journal = rusqlite::Connection::open(owi_store::journal_path(&path)).unwrap();
        journal
            .execute_batch("DELETE FROM uploads; DELETE FROM upload_expectations;")
            .unwrap();
    }
    assert_eq!(found(&Store::open(&path).unwrap()), want);

    // A database from before the journal file (version 6: everything in
    // one file) moves its history and ledger over and keeps them.
    let old = dir.path().join("v6.sqlite");
    {
        let store = Store::open(&old).unwrap();
        store
            .ledger_pend("b", SERVER, USER, Carried::Listed(&[1, 2, 3]), &[(4, 5)])
            .unwrap();
        store.ledger_confirm("b").unwrap();
    }
    {
        let db = rusqlite::Connection::open(&old).unwrap();
        db.execute(
            "ATTACH DATABASE ?1 AS journal",
            [owi_store::journal_path(&old).to_string_lossy()],
        )
        .unwrap();
        db.execute_batch(
            "INSERT INTO journal.uploads (export_key, source_path, server, user_id, started_at, outcome)
               VALUES ('k', '/e.zip', 's', 'u', 1, 'imported');
             CREATE TABLE main.uploads AS SELECT * FROM journal.uploads;
             CREATE TABLE main.multipart_state AS SELECT * FROM journal.multipart_state;
             CREATE TABLE main.multipart_parts AS SELECT * FROM journal.multipart_parts;
             CREATE TABLE main.servers AS SELECT * FROM journal.servers;
             CREATE TABLE main.upload_expectations AS SELECT * FROM journal.upload_expectations;
             CREATE TABLE main.ledgers AS SELECT * FROM journal.ledgers;
             CREATE TABLE main.ledger_pending AS
                 SELECT batch, server, user_id, items, workouts, created_at
                 FROM journal.ledger_pending;
             PRAGMA main.user_version = 6;",
        )
        .unwrap();
    }
    for leftover in ["", "-wal", "-shm"] {
        let file = format!("{}{leftover}", owi_store::journal_path(&old).display());
        let _ = std::fs::remove_file(file);
    }
    let store = Store::open(&old).unwrap();
    assert_eq!(store.uploads(10).unwrap().len(), 1, "history kept");
    assert_eq!(found(&store), want, "ledger kept");
}

/// Items kept while their upload is on its way: never confirmed before it
/// is sent; a row a stopped process left still sending is dropped by the
/// next upload to that user, and its owner, if alive, is told so.
#[test]
fn items_kept_ahead_of_their_upload_are_confirmed_only_once_it_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend_ahead("b1", SERVER, USER, Carried::Listed(&[3, 1, 2]), &[(1, 2)])
        .unwrap();
    assert!(!store.ledger_confirm("b1").unwrap(), "still being sent");
    assert_eq!(store.ledger(SERVER, USER).unwrap(), None);
    assert!(store.ledger_sent("b1").unwrap());
    assert!(!store.ledger_sent("b1").unwrap(), "sent once");
    assert!(store.ledger_confirm("b1").unwrap());
    assert_eq!(
        store.ledger(SERVER, USER).unwrap().unwrap().items,
        [1, 2, 3]
    );

    // b2 was left sending by a process that stopped; an upload to another
    // user is not this user's next.
    store
        .ledger_pend_ahead("b2", SERVER, USER, Carried::Listed(&[7]), &[])
        .unwrap();
    store
        .ledger_pend_ahead("other", SERVER, "another-user", Carried::Listed(&[8]), &[])
        .unwrap();
    store
        .ledger_pend_ahead("b3", SERVER, USER, Carried::Listed(&[9]), &[])
        .unwrap();
    assert!(
        !store.ledger_sent("b2").unwrap(),
        "dropped by the next upload"
    );
    assert!(store.ledger_sent("other").unwrap());
    assert!(store.ledger_sent("b3").unwrap());

    // Kept again whole by its owner, and a discarded one gone.
    store
        .ledger_pend("b2", SERVER, USER, Carried::Listed(&[7]), &[])
        .unwrap();
    store
        .ledger_pend_ahead("b4", SERVER, USER, Carried::Listed(&[10]), &[])
        .unwrap();
    store.ledger_discard("b4").unwrap();
    assert!(!store.ledger_sent("b4").unwrap());
    for batch in ["b2", "b3"] {
        assert!(store.ledger_confirm(batch).unwrap(), "{batch}");
    }
    assert_eq!(
        store.ledger(SERVER, USER).unwrap().unwrap().items,
        [1, 2, 3, 7, 9]
    );
}

/// Items kept ahead of an upload whose process stopped, with no upload to
/// that user since, or left by an upload that ended without the ledger
/// settling them: dropped by a store opened a day later, not sooner.
#[test]
fn items_kept_ahead_of_an_upload_a_day_gone_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend_ahead("old", SERVER, USER, Carried::Listed(&[1]), &[])
        .unwrap();
    store
        .ledger_pend_ahead("new", SERVER, "another-user", Carried::Listed(&[2]), &[])
        .unwrap();
    // Sent, its import still awaited; and one whose upload ended without
    // the ledger settling it (a full disk then).
    for (batch, outcome) in [("sent", Outcome::Sent), ("settled", Outcome::Imported)] {
        store
            .ledger_pend(batch, SERVER, USER, Carried::Listed(&[3]), &[])
            .unwrap();
        let upload = NewUpload {
            export_key: "k",
            source_path: "/e.zip",
            server: SERVER,
            user_id: USER,
            batch,
            piece: (1, 1),
            fingerprint: "f",
            cleaned: true,
            delta: None,
            filters: "",
        };
        let id = store.upload_started(&upload).unwrap();
        store.upload_ended(id, outcome, None, None).unwrap();
    }
    drop(store);
    let journal =
        rusqlite::Connection::open(owi_store::journal_path(&dir.path().join("owi.sqlite")))
            .unwrap();
    journal
        .execute(
            "UPDATE ledger_pending SET created_at = created_at - 2 * 86400
             WHERE batch IN ('old', 'sent', 'settled')",
            [],
        )
        .unwrap();
    let store = self::store(&dir);
    assert!(!store.ledger_sent("old").unwrap(), "dropped");
    assert!(store.ledger_sent("new").unwrap(), "a fresh one kept");
    assert!(
        store.ledger_confirm("sent").unwrap(),
        "awaited: only confirmed or discarded"
    );
    assert!(!store.ledger_confirm("settled").unwrap(), "dropped");
    let left: i64 = journal
        .query_row("SELECT count(*) FROM ledger_pending", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 1);
}

/// A main file made anew beside the journal (the exports' file deleted by
/// hand): the journal, in its newest form, is taken as it is.
#[test]
fn a_journal_outlives_its_main_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend("b", SERVER, USER, Carried::Listed(&[2, 1]), &[])
        .unwrap();
    store.ledger_confirm("b").unwrap();
    drop(store);
    for file in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{file}", dir.path().join("owi.sqlite").display()));
    }
    let store = self::store(&dir);
    assert_eq!(store.ledger(SERVER, USER).unwrap().unwrap().items, [1, 2]);
}
