-- Version 2: presigned uploads the server is waiting for. Each one is the
-- promise of a run: the import of the object, once it lands, carries the
-- task id chosen here (multipart `complete` returns it).
CREATE TABLE uploads (
    id         INTEGER PRIMARY KEY,
    key        TEXT NOT NULL,      -- the object key, {user_id}/raw/{name}
    user_id    TEXT NOT NULL,
    task_id    TEXT NOT NULL,
    filename   TEXT NOT NULL,      -- as the client named it
    kind       TEXT NOT NULL CHECK (kind IN ('post', 'multipart')),
    upload_id  TEXT,               -- multipart only
    state      TEXT NOT NULL CHECK (state IN ('pending', 'received', 'aborted', 'expired')),
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);

CREATE INDEX uploads_by_key ON uploads (key, state);
