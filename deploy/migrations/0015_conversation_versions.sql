-- Turn edits (issue 13, docs/conversations.md "Editing a turn"): every version of a
-- conversation's stored document. conversations.object_key/byte_size/sha256/document_version
-- always describe the current version; this table keeps them for every version, so an earlier
-- document stays readable (GET /v1/conversations/{id}/file?version=N). A conversation that was
-- never edited has no rows here: its version 1 is the conversations row itself, and the first
-- edit records version 1 from that row before it adds version 2.
CREATE TABLE conversation_versions (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version          integer NOT NULL CHECK (version >= 1),
    object_key       text NOT NULL,
    byte_size        bigint NOT NULL CHECK (byte_size >= 0),
    sha256           text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    turn_count       integer NOT NULL CHECK (turn_count >= 0),
    total_tokens     integer NOT NULL CHECK (total_tokens >= 0),
    created_by       uuid REFERENCES users (id) ON DELETE SET NULL,
    change_summary   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, version)
);
CREATE INDEX conversation_versions_owner_idx ON conversation_versions (owner_id);

ALTER TABLE conversation_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE conversation_versions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON conversation_versions USING (owner_id = app_user_id())
    WITH CHECK (owner_id = app_user_id());

-- A review-history entry for an edit carries the unified diff of the turn's text and the
-- document version the edit created (NULL for workflow transitions).
ALTER TABLE conversation_reviews
    ADD COLUMN diff             text,
    ADD COLUMN document_version integer CHECK (document_version >= 1);
