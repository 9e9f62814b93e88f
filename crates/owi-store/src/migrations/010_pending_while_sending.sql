-- Version 10: an import's items may be kept pending while it is still being
-- sent, so that write overlaps the upload instead of following it.
--
-- A batch is listed here from then until its upload is sent
-- (`Store::ledger_sent`); its pending row is never confirmed meanwhile: the
-- upload may not have gone. The mark is a table of its own, not a column of
-- `ledger_pending`: changing a row rewrites it, and reads all of its items
-- (23 MB for 3 million; in a file of their own since migration 13) to do so. A batch left here by a process that
-- stopped mid-upload is dropped by the next upload to the same server and
-- user; its owner, if it lives on, finds it gone when its upload is sent and
-- keeps the items again.
CREATE TABLE IF NOT EXISTS journal.ledger_sending (
    batch TEXT PRIMARY KEY
);
