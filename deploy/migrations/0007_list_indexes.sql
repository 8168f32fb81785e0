-- GET /v1/conversations at 100K rows (bench/list.py, docs/benchmarks-conversations.md "List").
--
-- The app role runs under FORCE ROW LEVEL SECURITY. PostgreSQL must apply the tenant policy
-- before any condition of the query that could leak the rows it is shown, and an index condition
-- is applied while the index is read, before the policy; so a query condition only becomes an
-- index condition when it is leakproof: every function applied to a column in it must be
-- LEAKPROOF. A function of parameters alone does not count (contain_leaked_vars in PostgreSQL's
-- clauses.c only objects to a leaky function with a column beneath it), so `x = lower($1)` is
-- fine but `lower(x) = ...` is not. lower() is not leakproof, so `lower(persona) = lower($1)`
-- could never use an index: these filters were sequential scans (45-61 ms for the count at 100K
-- rows). Stored lowercase copies compared with plain text equality (texteq, leakproof) can.
--
-- The same holds for the keyset condition of the quality and title sorts (0005):
-- `(coalesce(quality_score, -1), id) < ($n, $m)` is leaky twice over (coalesce is not known to
-- be leakproof, and no numeric comparison is LEAKPROOF), so it was a Filter on the ordered index
-- walk and page N read every row of the pages before it (180 ms for a cursor 31,866 rows deep).
-- Stored sort keys make it an index condition again: the title as text (text comparisons are
-- leakproof) and the quality in tenths as a smallint (quality_score is numeric(3,1), so this is
-- exact; NULL sorts as -1.0, as before). The title key is the title's first 200 characters
-- (ties by id): the key travels in the next-page cursor, which must stay a short query
-- parameter whatever the title (imported titles have no length limit), and a whole long title
-- could exceed a btree entry's maximum size.
--
-- Adding the columns rewrites the table once (ACCESS EXCLUSIVE while it runs); they cost a few
-- expressions per write.
ALTER TABLE conversations
    ADD COLUMN persona_key text GENERATED ALWAYS AS (lower(persona)) STORED,
    ADD COLUMN emotion_key text GENERATED ALWAYS AS (lower(emotion)) STORED,
    ADD COLUMN topic_key text GENERATED ALWAYS AS (lower(topic)) STORED,
    ADD COLUMN title_key text GENERATED ALWAYS AS (left(coalesce(title, ''), 200)) STORED,
    ADD COLUMN quality_key smallint
        GENERATED ALWAYS AS ((coalesce(quality_score, -1) * 10)::smallint) STORED;

CREATE INDEX conversations_owner_quality_sort_idx
    ON conversations (owner_id, quality_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_title_sort_idx
    ON conversations (owner_id, title_key, id) WHERE deleted_at IS NULL;
DROP INDEX conversations_owner_quality_key_idx;
DROP INDEX conversations_owner_title_key_idx;

-- (owner, key, created_at, id): the page in created_at order (the default sort, either direction,
-- with its keyset condition in the index) and an index-only count(*); quality_score is included
-- so that a count with quality_min/quality_max stays index-only too (emotion + quality_min at
-- 100K rows: 7-16 ms with heap fetches, 2 ms without). Other sorts walk their own index and
-- filter on the key, or read the filter's rows and sort them, whichever the planner finds cheaper.
CREATE INDEX conversations_owner_persona_idx
    ON conversations (owner_id, persona_key, created_at, id) INCLUDE (quality_score)
    WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_emotion_idx
    ON conversations (owner_id, emotion_key, created_at, id) INCLUDE (quality_score)
    WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_topic_idx
    ON conversations (owner_id, topic_key, created_at, id) INCLUDE (quality_score)
    WHERE deleted_at IS NULL;

-- q: `search_vector @@ websearch_to_tsquery('simple', $n)`. The @@ operator's function,
-- ts_match_vq, is not LEAKPROOF in a stock PostgreSQL and only a superuser can mark it, which the
-- set-up step does when its admin connection is one (shared/db/bootstrap.py; the reasoning is in
-- docs/conversations.md). Without that, search stays correct but cannot use this index.
-- btree_gin (a trusted extension: the database owner may create it) lets one GIN index answer
-- the tenant and the words together; it replaces the unscoped index of 0001, which also covered
-- soft-deleted rows that no query reads.
CREATE EXTENSION IF NOT EXISTS btree_gin;
CREATE INDEX conversations_owner_search_idx
    ON conversations USING gin (owner_id, search_vector) WHERE deleted_at IS NULL;
DROP INDEX conversations_search_idx;
