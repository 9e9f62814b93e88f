-- Version 10: an import's items may be kept pending while it is still being
-- sent, so that write overlaps the upload instead of following it.
--
-- `sending` is 1 from then until the upload is sent (`Store::ledger_sent`).
-- A row still sending is never confirmed: its upload may not have gone.
-- One left by a process that stopped mid-upload is dropped by the next
-- upload to the same server and user; its owner, if it lives on, finds it
-- gone when its upload is sent and keeps the items again.
ALTER TABLE journal.ledger_pending ADD COLUMN sending INTEGER NOT NULL DEFAULT 0;
