-- Keyset pagination sorts on non-null expressions (NULL quality/title sort as -1 / ''), so the
-- list's ORDER BY and cursor comparison can use one index in either direction.
CREATE INDEX conversations_owner_quality_key_idx
    ON conversations (owner_id, (coalesce(quality_score, -1)), id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_title_key_idx
    ON conversations (owner_id, (coalesce(title, '')), id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_status_key_idx
    ON conversations (owner_id, status, id) WHERE deleted_at IS NULL;
DROP INDEX conversations_owner_quality_idx;
DROP INDEX conversations_owner_title_idx;
DROP INDEX conversations_owner_status_idx;
