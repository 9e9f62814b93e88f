-- The bundled server's own database, version 1. Times are RFC 3339 text
-- (UTC) where the API shows them, Unix seconds where they are computed on.

CREATE TABLE accounts (            -- developers who log in to the server
    id            TEXT PRIMARY KEY,
    email         TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,   -- argon2id PHC string
    created_at    TEXT NOT NULL
);

CREATE TABLE api_keys (
    id         TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    key_hash   TEXT NOT NULL,      -- sha256 of the key, hex
    name       TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,   -- sha256 of the token, hex
    account_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE TABLE users (               -- the people whose data is imported
    id                   TEXT PRIMARY KEY,
    created_at           TEXT NOT NULL,
    first_name           TEXT,
    last_name            TEXT,
    email                TEXT UNIQUE,
    last_synced_at       TEXT,
    last_synced_provider TEXT
);

-- The import queue: a job survives a restart.
CREATE TABLE jobs (
    id         TEXT PRIMARY KEY,   -- the task id
    run_id     TEXT NOT NULL,
    user_id    TEXT NOT NULL,
    origin     TEXT NOT NULL,      -- direct | s3
    path       TEXT NOT NULL,      -- the uploaded file on disk, or the object key
    filename   TEXT NOT NULL,
    state      TEXT NOT NULL CHECK (state IN ('queued', 'processing', 'completed', 'failed')),
    error      TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE sync_events (
    seq        INTEGER PRIMARY KEY,
    user_id    TEXT NOT NULL,
    run_id     TEXT NOT NULL,
    json       TEXT NOT NULL       -- the SyncStatusEvent as sent
);

CREATE INDEX jobs_by_state ON jobs (state, created_at);
CREATE INDEX sync_events_by_user ON sync_events (user_id, seq);
