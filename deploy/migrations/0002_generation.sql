-- Generation (DESIGN.md §5): item leases, cost reservations, per-batch dispatch, and the job→owner
-- map that lets a generator find which tenant a `generate_item(batch_id, index)` job acts for.

-- A job carries only (batch_id, item_index). Row-level security hides batch_jobs until
-- app.user_id is set, so the worker needs the owner first: this map is not a tenant table
-- (like users/api_keys) and holds nothing but ids. Filled by a trigger, so no caller can forget.
CREATE TABLE job_owners (
    job_id    uuid PRIMARY KEY REFERENCES batch_jobs (id) ON DELETE CASCADE,
    owner_id  uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE FUNCTION record_job_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO job_owners (job_id, owner_id) VALUES (NEW.id, NEW.owner_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER batch_jobs_record_owner AFTER INSERT ON batch_jobs
    FOR EACH ROW EXECUTE FUNCTION record_job_owner();

-- lease_id/lease_until: which run holds a running item (fencing token) and until when; a run
-- whose lease expired (killed worker) loses every later write. reserved_cost_usd: the worst-case
-- cost of the call in flight, counted against the batch's cost cap until the real cost is known.
-- parked: the item waits for a slot under the batch's concurrency and has no queued job.
ALTER TABLE generation_items
    ADD COLUMN template_id        uuid REFERENCES templates (id) ON DELETE SET NULL,
    ADD COLUMN tier               text NOT NULL DEFAULT 'template'
                                  CHECK (tier IN ('template', 'scenario', 'edge_case')),
    ADD COLUMN lease_id           uuid,
    ADD COLUMN lease_until        timestamptz,
    ADD COLUMN reserved_cost_usd  numeric(12, 6) NOT NULL DEFAULT 0 CHECK (reserved_cost_usd >= 0),
    ADD COLUMN parked             boolean NOT NULL DEFAULT false,
    ADD COLUMN dispatched_at      timestamptz;

CREATE INDEX generation_items_template_idx ON generation_items (template_id, status)
    WHERE template_id IS NOT NULL;
CREATE INDEX generation_items_parked_idx ON generation_items (batch_id, item_index)
    WHERE status = 'queued' AND parked;
CREATE INDEX generation_items_running_idx ON generation_items (batch_id, lease_until)
    WHERE status = 'running';
CREATE INDEX generation_items_failed_idx ON generation_items (batch_id, item_index)
    WHERE status = 'failed';

-- Per-template statistics (average quality of what a template produced).
CREATE INDEX conversations_template_idx ON conversations (template_id, quality_score)
    WHERE template_id IS NOT NULL;

CREATE INDEX templates_owner_created_idx ON templates (owner_id, created_at DESC, id DESC);
CREATE INDEX scenarios_owner_created_idx ON scenarios (owner_id, created_at DESC, id DESC);
CREATE INDEX edge_cases_owner_created_idx ON edge_cases (owner_id, created_at DESC, id DESC);
CREATE INDEX batch_jobs_owner_type_created_idx
    ON batch_jobs (owner_id, job_type, created_at DESC, id DESC);
CREATE INDEX generation_logs_owner_status_created_idx
    ON generation_logs (owner_id, status, created_at DESC, id DESC);
