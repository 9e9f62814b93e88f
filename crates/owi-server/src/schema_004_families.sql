-- Version 4: refresh-token families (reuse of a spent token revokes its
-- family) and bounded import retries.
ALTER TABLE refresh_tokens ADD COLUMN family_id TEXT;
ALTER TABLE refresh_tokens ADD COLUMN spent_at INTEGER;  -- Unix seconds; kept to catch reuse
UPDATE refresh_tokens SET family_id = token_hash;          -- each earlier token its own family
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_by_expiry ON refresh_tokens (expires_at);

ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;  -- tries begun
ALTER TABLE jobs ADD COLUMN retry_at INTEGER;                     -- Unix seconds: not claimed before
