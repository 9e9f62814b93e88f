-- Version 7: what was sent where moves to its own file, `journal`
-- (`owi.journal.sqlite` beside `owi.sqlite`), attached to every connection
-- but the ingest's. An ingest holds one write transaction for its whole run;
-- SQLite locks per file, so the upload history, the multipart journal and
-- the ledger stay writable while it runs (and WAL keeps the previews
-- readable). Unqualified table names find these tables in `journal` once
-- they are gone from `main`, so no query changes.
--
-- Written to be run again after a crash between the copy and the drop:
-- tables are created if missing and rows copied if absent.
CREATE TABLE IF NOT EXISTS journal.uploads (
    id          INTEGER PRIMARY KEY,
    export_key  TEXT NOT NULL,
    source_path TEXT NOT NULL,
    server      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    method      TEXT,
    name        TEXT,
    file_key    TEXT,
    task_id     TEXT,
    parts       INTEGER,
    bytes       INTEGER,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sending', 'sent', 'imported', 'failed', 'cancelled')),
    items       INTEGER,
    error       TEXT,
    batch       TEXT,
    piece       INTEGER,
    pieces      INTEGER,
    fingerprint TEXT,
    cleaned     INTEGER,
    delta       INTEGER,
    filters     TEXT
);
CREATE INDEX IF NOT EXISTS journal.uploads_by_export ON uploads (export_key, server, user_id);
CREATE INDEX IF NOT EXISTS journal.uploads_by_batch ON uploads (batch);
INSERT OR IGNORE INTO journal.uploads
    SELECT id, export_key, source_path, server, user_id, method, name, file_key, task_id, parts,
           bytes, started_at, finished_at, outcome, items, error, batch, piece, pieces,
           fingerprint, cleaned, delta, filters
    FROM main.uploads;

CREATE TABLE IF NOT EXISTS journal.multipart_state (
    upload     INTEGER PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    file_key   TEXT NOT NULL,
    upload_id  TEXT NOT NULL,
    part_size  INTEGER NOT NULL,
    bytes      INTEGER NOT NULL
);
INSERT OR IGNORE INTO journal.multipart_state SELECT * FROM main.multipart_state;

CREATE TABLE IF NOT EXISTS journal.multipart_parts (
    upload  INTEGER NOT NULL REFERENCES multipart_state (upload) ON DELETE CASCADE,
    number  INTEGER NOT NULL,
    etag    TEXT NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;
INSERT OR IGNORE INTO journal.multipart_parts SELECT * FROM main.multipart_parts;

CREATE TABLE IF NOT EXISTS journal.servers (
    origin     TEXT PRIMARY KEY,
    multipart  INTEGER NOT NULL,
    checked_at INTEGER NOT NULL
);
INSERT OR IGNORE INTO journal.servers SELECT * FROM main.servers;

CREATE TABLE IF NOT EXISTS journal.upload_expectations (
    batch     TEXT PRIMARY KEY,
    expected  TEXT NOT NULL
) WITHOUT ROWID;
INSERT OR IGNORE INTO journal.upload_expectations SELECT * FROM main.upload_expectations;

CREATE TABLE IF NOT EXISTS journal.ledgers (
    server      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    items       BLOB NOT NULL,
    workouts    BLOB NOT NULL,
    imports     INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (server, user_id)
);
INSERT OR IGNORE INTO journal.ledgers SELECT * FROM main.ledgers;

CREATE TABLE IF NOT EXISTS journal.ledger_pending (
    batch       TEXT PRIMARY KEY,
    server      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    items       BLOB NOT NULL,
    workouts    BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);
-- Named columns: a journal kept beside a main file made anew has version
-- 12's `kept_check` already.
INSERT OR IGNORE INTO journal.ledger_pending
    (batch, server, user_id, items, workouts, created_at)
    SELECT batch, server, user_id, items, workouts, created_at FROM main.ledger_pending;

-- commit, then:
DROP TABLE main.multipart_parts;
DROP TABLE main.multipart_state;
DROP TABLE main.uploads;
DROP TABLE main.servers;
DROP TABLE main.upload_expectations;
DROP TABLE main.ledgers;
DROP TABLE main.ledger_pending;
