-- Version 3: what a multipart upload declared at `create` — its size and
-- the part size given back — so part URLs and `complete` are held to it.
ALTER TABLE uploads ADD COLUMN declared_bytes INTEGER;
ALTER TABLE uploads ADD COLUMN part_size INTEGER;
