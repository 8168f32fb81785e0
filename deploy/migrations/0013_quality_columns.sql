-- Quality (issue 13, docs/quality.md): the judge's scores as columns, where the 0–10 score came
-- from, the document version a reviewer's edits create, and near-duplicate links.
--
-- quality_overall = 0.4·coherence + 0.4·relevance + 0.2·completeness (each 0–1); once judged,
-- quality_score = 10 × quality_overall and quality_source = 'judge'. The storage spec's 1–5
-- criteria come from the judge or from an imported file (mean over its turn pairs).
ALTER TABLE conversations
    ADD COLUMN coherence_score        real CHECK (coherence_score BETWEEN 0 AND 1),
    ADD COLUMN relevance_score        real CHECK (relevance_score BETWEEN 0 AND 1),
    ADD COLUMN completeness_score     real CHECK (completeness_score BETWEEN 0 AND 1),
    ADD COLUMN quality_overall        real CHECK (quality_overall BETWEEN 0 AND 1),
    ADD COLUMN empathy_score          real CHECK (empathy_score BETWEEN 1 AND 5),
    ADD COLUMN clarity_score          real CHECK (clarity_score BETWEEN 1 AND 5),
    ADD COLUMN appropriateness_score  real CHECK (appropriateness_score BETWEEN 1 AND 5),
    ADD COLUMN brand_voice_score      real CHECK (brand_voice_score BETWEEN 1 AND 5),
    -- {"coherence": {"rationale": "...", "weakest_turns": [3, 7]}, ...} per criterion
    ADD COLUMN judge_rationale        jsonb,
    ADD COLUMN judge_rubric_version   integer,
    ADD COLUMN judge_model            text,
    ADD COLUMN judge_error            text,
    ADD COLUMN judged_at              timestamptz,
    -- NULL exactly when quality_score is NULL.
    ADD COLUMN quality_source         text
                                      CHECK (quality_source IN ('judge', 'structural', 'imported')),
    -- The stored document's current version (1 = as imported/generated; each turn edit adds one).
    ADD COLUMN document_version       integer NOT NULL DEFAULT 1 CHECK (document_version >= 1),
    -- Near-duplicates: the earlier conversation this one nearly copies, and the estimated
    -- Jaccard similarity of their shingles.
    ADD COLUMN duplicate_of           uuid REFERENCES conversations (id) ON DELETE SET NULL,
    ADD COLUMN duplicate_similarity   real CHECK (duplicate_similarity BETWEEN 0 AND 1);

CREATE INDEX conversations_duplicate_of_idx ON conversations (duplicate_of)
    WHERE duplicate_of IS NOT NULL;

-- The migration runs as the table owner under FORCE ROW LEVEL SECURITY, which would hide every
-- tenant's rows from this backfill: lift it for the statement (inside the migration's
-- transaction, so no other session ever sees it lifted).
ALTER TABLE conversations NO FORCE ROW LEVEL SECURITY;
UPDATE conversations
   SET quality_source = CASE source WHEN 'import' THEN 'imported' ELSE 'structural' END
 WHERE quality_score IS NOT NULL;
ALTER TABLE conversations FORCE ROW LEVEL SECURITY;
