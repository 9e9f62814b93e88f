-- Version 6: the ledger — what reached each user of each server from us —
-- so the next upload of a newer export sends only what the server does not
-- have (owi_export::identity tells items apart).
--
-- An import's items wait in `ledger_pending` until the server confirms it
-- (every piece's run completed and the read-back found its data); then they
-- are merged into `ledgers`, one sorted set per server and user. Nothing here
-- refers to `exports` or `uploads`: deleting either leaves the ledger whole.
CREATE TABLE ledgers (
    server      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    items       BLOB NOT NULL,     -- distinct identities, sorted, 8 bytes little-endian each
    workouts    BLOB NOT NULL,     -- distinct workouts' start, end (UTC seconds), sorted, 16 bytes each
    imports     INTEGER NOT NULL,  -- confirmed imports merged in
    updated_at  INTEGER NOT NULL,  -- Unix seconds of the last one
    PRIMARY KEY (server, user_id)
);

CREATE TABLE ledger_pending (
    batch       TEXT PRIMARY KEY,
    server      TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    items       BLOB NOT NULL,
    workouts    BLOB NOT NULL,
    created_at  INTEGER NOT NULL
);

-- What an upload carried: only what was new (1) or everything (0), and the
-- person's filters in words.
ALTER TABLE uploads ADD COLUMN delta INTEGER;
ALTER TABLE uploads ADD COLUMN filters TEXT;
