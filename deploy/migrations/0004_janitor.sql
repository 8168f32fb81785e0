-- Janitor (DESIGN.md §7): how often a stuck job was recovered, and indexes for the sweeps.

-- recover-stuck-jobs re-enqueues a stuck batch or export at most JANITOR_MAX_RECOVERIES times,
-- then fails it with a reason; the count survives restarts of every process.
ALTER TABLE batch_jobs ADD COLUMN recovery_count integer NOT NULL DEFAULT 0
    CHECK (recovery_count >= 0);
ALTER TABLE export_logs ADD COLUMN recovery_count integer NOT NULL DEFAULT 0
    CHECK (recovery_count >= 0);

-- prune-audit-logs: finished export logs by age.
CREATE INDEX export_logs_prune_idx ON export_logs (owner_id, created_at, id)
    WHERE status IN ('expired', 'failed', 'cancelled');
-- export-failure-ratio: exports that finished recently.
CREATE INDEX export_logs_finished_idx ON export_logs (owner_id, (coalesce(completed_at, updated_at)))
    WHERE status IN ('completed', 'failed', 'expired');
-- conversation-retention: rejected conversations by age.
CREATE INDEX conversations_rejected_age_idx
    ON conversations (owner_id, (coalesce(reviewed_at, updated_at)))
    WHERE status = 'rejected';
-- recover-stuck-jobs: queued/running generation batches by last sign of life.
CREATE INDEX batch_jobs_stuck_idx ON batch_jobs ((coalesce(heartbeat_at, started_at, created_at)))
    WHERE status IN ('queued', 'running');
