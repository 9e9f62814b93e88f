-- Version 8: what an upload's check would find, kept from the ingest.
--
-- An ingest reads the whole export; so does the check before an upload.
-- The ingest runs the check alongside (owi_export::Checking) and keeps its
-- outcome here, so an export already previewed starts sending at once.
-- `logic` is owi_export::check_logic() of the build that kept it: any other
-- build reads the export again. `file_size` and `file_mtime_ns` must still
-- match the file, beside its quick key. `outcome` is
-- owi_export::Preflight::to_kept (counts, selection, workout keys).
CREATE TABLE IF NOT EXISTS kept_checks (
    quick_key     TEXT PRIMARY KEY,
    fingerprint   TEXT NOT NULL,
    file_size     INTEGER NOT NULL,
    file_mtime_ns INTEGER NOT NULL,
    logic         TEXT NOT NULL,
    outcome       BLOB NOT NULL
);
