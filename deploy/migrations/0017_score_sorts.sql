-- Issue 13, the judge's scores in the product (docs/quality.md "Filtering, sorting and stats"):
-- GET /v1/conversations?sort=[-]<score> and the <score>_min/_max filters over the real columns
-- of 0013.
--
-- As for quality_key (0007): under the app role's forced row-level security the keyset
-- condition `(key, id) < ($n, $m)` is an index condition only when every comparison on a column
-- is LEAKPROOF. float4 comparisons are (float4lt, float48ge, ... in pg_proc), coalesce() is not;
-- so each score gets a stored non-null sort key (NULL, "not scored", sorts as -1, below every
-- score, the same rule as quality_score) and one (owner_id, key, id) index per score. The
-- filters compare the score columns themselves (`coherence_score >= $1`, leakproof float48ge).
--
-- Adding the columns rewrites the table once (ACCESS EXCLUSIVE while it runs); each write then
-- maintains eight more small indexes.
ALTER TABLE conversations
    ADD COLUMN coherence_key real GENERATED ALWAYS AS (coalesce(coherence_score, -1)) STORED,
    ADD COLUMN relevance_key real GENERATED ALWAYS AS (coalesce(relevance_score, -1)) STORED,
    ADD COLUMN completeness_key real
        GENERATED ALWAYS AS (coalesce(completeness_score, -1)) STORED,
    ADD COLUMN quality_overall_key real
        GENERATED ALWAYS AS (coalesce(quality_overall, -1)) STORED,
    ADD COLUMN empathy_key real GENERATED ALWAYS AS (coalesce(empathy_score, -1)) STORED,
    ADD COLUMN clarity_key real GENERATED ALWAYS AS (coalesce(clarity_score, -1)) STORED,
    ADD COLUMN appropriateness_key real
        GENERATED ALWAYS AS (coalesce(appropriateness_score, -1)) STORED,
    ADD COLUMN brand_voice_key real GENERATED ALWAYS AS (coalesce(brand_voice_score, -1)) STORED;

CREATE INDEX conversations_owner_coherence_sort_idx
    ON conversations (owner_id, coherence_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_relevance_sort_idx
    ON conversations (owner_id, relevance_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_completeness_sort_idx
    ON conversations (owner_id, completeness_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_quality_overall_sort_idx
    ON conversations (owner_id, quality_overall_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_empathy_sort_idx
    ON conversations (owner_id, empathy_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_clarity_sort_idx
    ON conversations (owner_id, clarity_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_appropriateness_sort_idx
    ON conversations (owner_id, appropriateness_key, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_brand_voice_sort_idx
    ON conversations (owner_id, brand_voice_key, id) WHERE deleted_at IS NULL;


-- GET /v1/conversations/stats counts conversations by quality_source: index-only with this.
CREATE INDEX conversations_owner_quality_source_idx
    ON conversations (owner_id, quality_source) WHERE deleted_at IS NULL;
