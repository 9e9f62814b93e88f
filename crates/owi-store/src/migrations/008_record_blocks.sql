-- Version 8: records are stored packed by series, up to 1,024 to a row
-- (`record_block.rs` has the layout), instead of a row each in `records`
-- and `record_beats`. Rows there are packed into blocks by the same
-- transaction (in Rust, after this script), which then drops both tables.
-- Safe to run again on a store that already has the table.
CREATE TABLE IF NOT EXISTS record_blocks (
    id        INTEGER PRIMARY KEY,
    series_id INTEGER NOT NULL,
    count     INTEGER NOT NULL,
    min_start INTEGER NOT NULL,   -- earliest and latest start of its records:
    max_start INTEGER NOT NULL,   -- a time range reads only the blocks it overlaps
    max_id    INTEGER NOT NULL,   -- record ids stay unique across exports
    data      BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS record_blocks_by_series ON record_blocks (series_id, min_start);
