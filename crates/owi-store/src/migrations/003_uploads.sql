-- Version 3: what was sent where. One row per upload of an export to a
-- server's user; the outcome follows it to the end of the server's import.
CREATE TABLE uploads (
    id          INTEGER PRIMARY KEY,
    export_key  TEXT NOT NULL,   -- quick key of the file sent (size + first/last MiB hash)
    source_path TEXT NOT NULL,
    server      TEXT NOT NULL,   -- the server's origin, http://host:port
    user_id     TEXT NOT NULL,
    method      TEXT,            -- direct | s3 | multipart, once chosen
    name        TEXT,            -- the unique name it went under
    file_key    TEXT,            -- the object key (S3 paths)
    task_id     TEXT,            -- the server's run id
    parts       INTEGER,
    bytes       INTEGER,
    started_at  INTEGER NOT NULL,  -- Unix seconds
    finished_at INTEGER,
    outcome     TEXT NOT NULL CHECK (outcome IN ('sending', 'sent', 'imported', 'failed', 'cancelled')),
    items       INTEGER,         -- what the server says it imported
    error       TEXT
);

CREATE INDEX uploads_by_export ON uploads (export_key, server, user_id);
