-- The Claude judge (issue 13, docs/quality.md "Judge" and "Rubric"): per-tenant rubric versions,
-- a per-template flag threshold, the quality_check job type, and the purpose of each Claude call.

-- A tenant's edited rubrics. Version 1 is the built-in default (shared/quality/rubric.py) that
-- every tenant starts from and is not stored; each edit adds the next version, none is changed
-- or removed, so the version recorded on a score (conversations.judge_rubric_version) always
-- names the exact text the judge was given.
CREATE TABLE quality_rubrics (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    version     integer NOT NULL CHECK (version >= 2),
    -- {"coherence": {"description": "...", "levels": {"0": "...", ..., "1": "..."}}, ...}
    criteria    jsonb NOT NULL,
    note        text,
    created_by  uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, version)
);

ALTER TABLE quality_rubrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE quality_rubrics FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON quality_rubrics USING (owner_id = app_user_id())
    WITH CHECK (owner_id = app_user_id());

-- quality_overall (0–1) below this sends a judged conversation of the template to
-- needs_revision; NULL: the JUDGE_FLAG_THRESHOLD setting.
ALTER TABLE templates
    ADD COLUMN judge_flag_threshold real CHECK (judge_flag_threshold BETWEEN 0 AND 1);

-- A quality_check job: one generation_items row per conversation to judge, run by the
-- generator through the same leases, limiter, retries, cost cap and attempt rows as generation.
ALTER TABLE batch_jobs DROP CONSTRAINT batch_jobs_job_type_check;
ALTER TABLE batch_jobs ADD CONSTRAINT batch_jobs_job_type_check
    CHECK (job_type IN ('generation', 'export', 'cleanup', 'quality_check'));

-- What a Claude call was for: writing a conversation, or judging one.
ALTER TABLE generation_logs
    ADD COLUMN purpose text NOT NULL DEFAULT 'generation'
                       CHECK (purpose IN ('generation', 'judge'));
