-- Resilience (issue 11, workers half): every paid Claude call on the books, and export restarts.

-- An attempt row is written `in_flight` with its worst-case cost (reserved_cost_usd) before the
-- request leaves, under the item lease that sent it, and settled to its real outcome when the
-- answer comes. A call whose worker died is settled by whoever takes the lease over as `lost`,
-- its reserved cost booked as its cost (and in the batch's cost_so_far_usd, against the cap);
-- an answer that still arrives later replaces that estimate with the real figures.
ALTER TABLE generation_logs DROP CONSTRAINT generation_logs_status_check;
ALTER TABLE generation_logs ADD CONSTRAINT generation_logs_status_check
    CHECK (status IN ('success', 'failed', 'rate_limited', 'timeout', 'cancelled',
                      'in_flight', 'lost'));
ALTER TABLE generation_logs
    ADD COLUMN lease_id           uuid,
    ADD COLUMN reserved_cost_usd  numeric(12, 6) NOT NULL DEFAULT 0 CHECK (reserved_cost_usd >= 0),
    ADD COLUMN settled_at         timestamptz;

CREATE INDEX generation_logs_in_flight_idx ON generation_logs (job_id, item_index)
    WHERE status = 'in_flight';

-- An export whose run died is restarted from scratch by another replica: how often, and why.
ALTER TABLE export_logs
    ADD COLUMN restarts        integer NOT NULL DEFAULT 0 CHECK (restarts >= 0),
    ADD COLUMN restart_reason  text;
