-- Economy (issue 15): each attempt records its cache usage, the price entry it was priced with,
-- whether it ran live or in a Message Batch, and its list-price cost (for `saved_usd`). Open
-- Message Batches live here so that any replica can poll a batch another one submitted.

ALTER TABLE generation_logs
    ADD COLUMN cache_write_tokens  integer NOT NULL DEFAULT 0 CHECK (cache_write_tokens >= 0),
    ADD COLUMN cache_read_tokens   integer NOT NULL DEFAULT 0 CHECK (cache_read_tokens >= 0),
    ADD COLUMN cache_ttl           text CHECK (cache_ttl IN ('5m', '1h')),
    ADD COLUMN price_entry         text,
    ADD COLUMN prices              jsonb,
    ADD COLUMN mode                text NOT NULL DEFAULT 'live' CHECK (mode IN ('live', 'batch')),
    ADD COLUMN list_cost_usd       numeric(12, 6) NOT NULL DEFAULT 0 CHECK (list_cost_usd >= 0);

-- One row per submitted Message Batch (a job has one per round: the first submission, then
-- resubmissions of errored/expired items). The row is written before the create call and gets
-- the provider's id after it; its items run under `lease_id` until their results land.
CREATE TABLE message_batches (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id           uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id             uuid NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
    round              integer NOT NULL CHECK (round > 0),
    provider_batch_id  text UNIQUE,
    status             text NOT NULL DEFAULT 'submitting'
                       CHECK (status IN ('submitting', 'in_progress', 'canceling', 'ended',
                                         'failed')),
    item_indexes       integer[] NOT NULL,
    lease_id           uuid NOT NULL,
    request_counts     jsonb NOT NULL DEFAULT '{}'::jsonb,
    landed             integer NOT NULL DEFAULT 0 CHECK (landed >= 0),
    polls              integer NOT NULL DEFAULT 0,
    error              text,
    submitted_at       timestamptz,
    ended_at           timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, round)
);
CREATE INDEX message_batches_open_idx ON message_batches (job_id)
    WHERE status IN ('submitting', 'in_progress', 'canceling');
CREATE TRIGGER message_batches_updated_at BEFORE UPDATE ON message_batches
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

ALTER TABLE message_batches ENABLE ROW LEVEL SECURITY;
ALTER TABLE message_batches FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON message_batches USING (owner_id = app_user_id())
    WITH CHECK (owner_id = app_user_id());
