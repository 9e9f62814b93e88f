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

/// The files of pending items in `dir`'s store, by name.
fn pending_files(dir: &tempfile::TempDir) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir.path().join("owi.pending"))
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn journal(dir: &tempfile::TempDir) -> rusqlite::Connection {
    rusqlite::Connection::open(owi_store::journal_path(&dir.path().join("owi.sqlite")))
        .unwrap_or_else(|e| panic!("opening the journal: {e}"))
}

/// Listed identities wait in a file of their own, which the row names,
/// not in the row: one file per row, gone once the row is confirmed,
/// written again, discarded or dropped.
#[test]
fn listed_items_wait_in_a_file_the_row_names() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let items: Vec<u64> = (0..20_000u64)
        .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .collect();
    store
        .ledger_pend_ahead("b1", SERVER, USER, Carried::Listed(&items), &[(1, 2)])
        .unwrap();
    let files = pending_files(&dir);
    assert_eq!(files.len(), 1);
    let (in_row, named): (i64, String) = journal(&dir)
        .query_row(
            "SELECT length(items), items_file FROM ledger_pending WHERE batch = 'b1'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!((in_row, &named), (0, &files[0]), "named, not copied");
    let bytes = std::fs::read(dir.path().join("owi.pending").join(&named)).unwrap();
    let written: Vec<u64> = bytes
        .chunks_exact(8)
        .map(|c| u64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(written, items, "as they came");

    // Kept again by its owner: the row's new file replaces the old one.
    store
        .ledger_pend("b1", SERVER, USER, Carried::Listed(&items[..10]), &[(1, 2)])
        .unwrap();
    let again = pending_files(&dir);
    assert_eq!(again.len(), 1);
    assert_ne!(again, files);
    assert!(store.ledger_confirm("b1").unwrap());
    let mut want = items[..10].to_vec();
    want.sort_unstable();
    assert_eq!(store.ledger(SERVER, USER).unwrap().unwrap().items, want);
    assert_eq!(pending_files(&dir), Vec::<String>::new(), "confirmed");

    store
        .ledger_pend("b2", SERVER, USER, Carried::Listed(&[7]), &[])
        .unwrap();
    store.ledger_discard("b2").unwrap();
    store
        .ledger_pend_ahead("b3", SERVER, USER, Carried::Listed(&[8]), &[])
        .unwrap();
    // The next upload to this user drops b3, left sending.
    store
        .ledger_pend_ahead("b4", SERVER, USER, Carried::Listed(&[]), &[])
        .unwrap();
    assert_eq!(
        pending_files(&dir),
        Vec::<String>::new(),
        "discarded, dropped"
    );
}

/// A file of pending items changed, gone, or named with a path (a hand on
/// the files): the import is confirmed with its workouts but without those
/// items, which the next upload sends again, and nothing outside the
/// folder is touched.
#[test]
fn pending_items_damaged_or_gone_stay_out_of_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    let batches = [
        "changed", "gone", "a path", "not ours", "a blob", "cut", "a link",
    ];
    for batch in batches {
        store
            .ledger_pend(batch, SERVER, USER, Carried::Listed(&[3, 1, 2]), &[(4, 5)])
            .unwrap();
    }
    let file_of = |batch: &str| -> std::path::PathBuf {
        let name: String = journal(&dir)
            .query_row(
                "SELECT items_file FROM ledger_pending WHERE batch = ?",
                [batch],
                |r| r.get(0),
            )
            .unwrap();
        dir.path().join("owi.pending").join(name)
    };
    let changed = file_of("changed");
    let mut bytes = std::fs::read(&changed).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&changed, bytes).unwrap();
    std::fs::remove_file(file_of("gone")).unwrap();
    let cut = file_of("cut");
    std::fs::write(&cut, &std::fs::read(&cut).unwrap()[..16]).unwrap();
    // A link to a file of the very same bytes, out of the folder.
    let link = file_of("a link");
    let outside = dir.path().join("outside");
    std::fs::rename(&link, &outside).unwrap();
    std::os::unix::fs::symlink(&outside, &link).unwrap();
    let notes = dir.path().join("owi.pending").join("notes.txt");
    std::fs::write(&notes, b"mine").unwrap();
    journal(&dir)
        .execute_batch(
            "UPDATE ledger_pending SET items_file = '../owi.sqlite' WHERE batch = 'a path';
             UPDATE ledger_pending SET items_file = 'notes.txt' WHERE batch = 'not ours';
             UPDATE ledger_pending SET items_file = x'FF00' WHERE batch = 'a blob';",
        )
        .unwrap();
    // Opened again as it is: the sweep's housekeeping goes on.
    drop(store);
    let store = self::store(&dir);
    for batch in batches {
        assert!(store.ledger_confirm(batch).unwrap(), "{batch}");
    }
    let ledger = store.ledger(SERVER, USER).unwrap().unwrap();
    assert_eq!(ledger.items, Vec::<u64>::new());
    assert_eq!((ledger.workouts, ledger.imports), (vec![(4, 5)], 7));
    assert!(dir.path().join("owi.sqlite").exists(), "left alone");
    assert!(notes.exists(), "left alone");
    assert!(outside.exists(), "left alone");
    // Those the three hands unnamed wait for the sweep.
    assert_eq!(pending_files(&dir).len(), 4);
}

/// A write of pending items refused (their folder cannot be made, as on a
/// full disk) leaves what was pending for the batch as it was.
#[test]
fn a_refused_write_of_pending_items_leaves_the_row_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend("b", SERVER, USER, Carried::Listed(&[2, 1]), &[])
        .unwrap();
    let folder = dir.path().join("owi.pending");
    let aside = dir.path().join("aside");
    std::fs::rename(&folder, &aside).unwrap();
    std::fs::write(&folder, b"").unwrap();
    let refused = store.ledger_pend("b", SERVER, USER, Carried::Listed(&[9]), &[]);
    assert!(refused.is_err());
    std::fs::remove_file(&folder).unwrap();
    std::fs::rename(&aside, &folder).unwrap();
    assert!(store.ledger_confirm("b").unwrap());
    assert_eq!(store.ledger(SERVER, USER).unwrap().unwrap().items, [1, 2]);
    assert_eq!(pending_files(&dir), Vec::<String>::new());
}

/// Items written before migration 13, in the row itself, are still read;
/// and the migration run again (a crash left the main file's version
/// behind) finds its columns there.
#[test]
fn items_pending_in_their_row_from_before_are_still_confirmed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend("old", SERVER, USER, Carried::Listed(&[]), &[])
        .unwrap();
    drop(store);
    let row: Vec<u8> = [6u64, 5].iter().flat_map(|i| i.to_le_bytes()).collect();
    journal(&dir)
        .execute(
            "UPDATE ledger_pending SET items = ? WHERE batch = 'old'",
            [row],
        )
        .unwrap();
    rusqlite::Connection::open(dir.path().join("owi.sqlite"))
        .unwrap()
        .execute_batch("PRAGMA user_version = 12")
        .unwrap();
    let store = self::store(&dir);
    assert!(store.ledger_confirm("old").unwrap());
    assert_eq!(store.ledger(SERVER, USER).unwrap().unwrap().items, [5, 6]);
}

/// Files of items no row names — a process stopped between writing one
/// and its row — are removed by a store opened once they are a day old;
/// a younger one may be another process's, its row on its way.
#[test]
fn pending_files_no_row_names_are_swept_a_day_later() {
    let dir = tempfile::tempdir().unwrap();
    let store = store(&dir);
    store
        .ledger_pend("named", SERVER, USER, Carried::Listed(&[1, 2]), &[])
        .unwrap();
    drop(store);
    let folder = dir.path().join("owi.pending");
    let day_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(2 * 86_400);
    for name in ["items-stray0000000", "items-young0000000", "notes.txt"] {
        std::fs::write(folder.join(name), [0u8; 8]).unwrap();
    }
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        if !path.ends_with("items-young0000000") {
            let file = std::fs::File::options().write(true).open(&path).unwrap();
            file.set_modified(day_ago).unwrap();
        }
    }
    let named = pending_files(&dir)
        .into_iter()
        .filter(|n| {
            !["items-stray0000000", "items-young0000000", "notes.txt"].contains(&n.as_str())
        })
        .collect::<Vec<_>>();
    let store = self::store(&dir);
    let mut left = named.clone();
    left.extend(["items-young0000000".to_string(), "notes.txt".to_string()]);
    left.sort();
    assert_eq!(pending_files(&dir), left);
    assert!(store.ledger_confirm("named").unwrap());
    assert_eq!(store.ledger(SERVER, USER).unwrap().unwrap().items, [1, 2]);
}
