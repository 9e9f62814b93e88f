-- Version 4: split exports and resumable multipart uploads.
--
-- An export larger than the server takes goes as several pieces, one
-- `uploads` row each, tied together by the attempt's `batch`.
ALTER TABLE uploads ADD COLUMN batch TEXT;
ALTER TABLE uploads ADD COLUMN piece INTEGER;        -- 1-based
ALTER TABLE uploads ADD COLUMN pieces INTEGER;
ALTER TABLE uploads ADD COLUMN fingerprint TEXT;     -- xxh3-128 of the export's XML
ALTER TABLE uploads ADD COLUMN cleaned INTEGER;      -- 1: DTD and illegal characters blanked

CREATE INDEX uploads_by_batch ON uploads (batch);

-- A multipart upload in flight, kept until it completes or is aborted, so
-- one interrupted by a dropped network, a killed process or a reboot
-- resumes with the parts the store already holds.
CREATE TABLE multipart_state (
    upload     INTEGER PRIMARY KEY REFERENCES uploads (id) ON DELETE CASCADE,
    name       TEXT NOT NULL,
    file_key   TEXT NOT NULL,
    upload_id  TEXT NOT NULL,
    part_size  INTEGER NOT NULL,
    bytes      INTEGER NOT NULL
);

CREATE TABLE multipart_parts (
    upload  INTEGER NOT NULL REFERENCES multipart_state (upload) ON DELETE CASCADE,
    number  INTEGER NOT NULL,
    etag    TEXT NOT NULL,
    PRIMARY KEY (upload, number)
) WITHOUT ROWID;

-- What each server was found to offer, so it is asked once.
CREATE TABLE servers (
    origin     TEXT PRIMARY KEY,
    multipart  INTEGER NOT NULL,   -- 1: has the S3 multipart path
    checked_at INTEGER NOT NULL
);
