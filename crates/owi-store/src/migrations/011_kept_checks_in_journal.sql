-- Version 11: the checks kept from ingests move to the journal file.
--
-- An ingest holds the main file's write lock until it commits, and its
-- commit (with SQLite's checkpoint of the whole load) takes a third of a
-- second per GB. Kept in `journal`, the check is written while that commit
-- runs instead of after it. Unqualified names find the table there.
--
-- Written to be run again after a crash between the copy and the drop.
CREATE TABLE IF NOT EXISTS journal.kept_checks (
    quick_key     TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    file_size     INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL,
    logic         TEXT NOT NULL,
    outcome       BLOB NOT NULL
);
INSERT OR IGNORE INTO journal.kept_checks
    (quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome)
    SELECT quick_key, fingerprint, file_size, file_mtime_ns, logic, outcome
    FROM main.kept_checks;
-- commit, then:
DROP TABLE IF EXISTS main.kept_checks;
