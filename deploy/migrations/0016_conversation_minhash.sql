-- Near-duplicates (issue 13, docs/quality.md#near-duplicates): each conversation's MinHash
-- signatures, the source of truth the Redis LSH index is rebuilt from when it is missing.
--
-- user_signature / assistant_signature: 128 little-endian uint32 MinHash values (512 bytes)
-- over the normalised 3-word shingles of the user turns and of the assistant turns (system
-- prompts excluded); *_shingles = how many distinct shingles (0 = that side has no text).
-- A deleted conversation's row goes with it (hard delete: cascade; soft delete: the API deletes
-- it in the same transaction), so it can no longer be matched. created_at is the
-- conversation's own (the rebuild orders band members by it).
CREATE TABLE conversation_minhash (
    conversation_id       uuid PRIMARY KEY REFERENCES conversations (id) ON DELETE CASCADE,
    owner_id              uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    num_perm              smallint NOT NULL CHECK (num_perm > 0),
    user_signature        bytea NOT NULL,
    user_shingles         integer NOT NULL CHECK (user_shingles >= 0),
    assistant_signature   bytea NOT NULL,
    assistant_shingles    integer NOT NULL CHECK (assistant_shingles >= 0),
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- The rebuild reads a tenant's signatures in one pass.
CREATE INDEX conversation_minhash_owner_idx ON conversation_minhash (owner_id);

ALTER TABLE conversation_minhash ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_minhash FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_minhash USING (owner_id = app_user_id())
    WITH CHECK (owner_id = app_user_id());
