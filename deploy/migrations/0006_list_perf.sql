-- GET /v1/conversations?flagged=true: the page and its count(*) were sequential scans at 100K rows
-- (bench/list.py). is_flagged = true is a leakproof comparison, so the index stays usable under
-- the forced row-level security of the app role.
CREATE INDEX conversations_owner_flagged_idx
    ON conversations (owner_id, created_at DESC, id DESC) WHERE is_flagged AND deleted_at IS NULL;

-- A conversation's turns and reviews are read with the tenant's RLS condition (owner_id = the
-- app user) plus conversation_id. With an index on owner_id alone the planner may AND a bitmap of
-- *every* turn of the tenant with the conversation's few rows: measured 5-7 ms per GET (and per
-- single-file import, which reads the turns back) at 120K turns, growing with the tenant's data.
-- Leading with owner_id keeps the one-column index's use (deleting a user's rows) and answers
-- both conditions, in order, from one index.
CREATE INDEX conversation_turns_owner_conversation_idx
    ON conversation_turns (owner_id, conversation_id, turn_number);
DROP INDEX conversation_turns_owner_idx;
CREATE INDEX conversation_reviews_owner_conversation_idx
    ON conversation_reviews (owner_id, conversation_id, created_at, id);
DROP INDEX conversation_reviews_owner_idx;
