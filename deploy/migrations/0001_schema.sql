-- Convoforge schema (DESIGN.md §3). Applied once by `convoforge migrate`; never edit an applied
-- file: add a new numbered file instead (the runner refuses a changed checksum).

CREATE EXTENSION IF NOT EXISTS pg_trgm;

-- Shared trigger: keep updated_at honest on every UPDATE.
CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

-- The tenant a transaction acts for; NULL (no rows visible) when unset.
CREATE FUNCTION app_user_id() RETURNS uuid LANGUAGE sql STABLE AS $$
    SELECT NULLIF(current_setting('app.user_id', true), '')::uuid
$$;

CREATE TABLE users (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email       text NOT NULL,
    role        text NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT users_email_lower CHECK (email = lower(email) AND email <> '')
);
CREATE UNIQUE INDEX users_email_key ON users (email);

CREATE TABLE api_keys (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name          text NOT NULL DEFAULT 'default',
    prefix        text NOT NULL,
    key_hash      bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX api_keys_prefix_key ON api_keys (prefix);
CREATE UNIQUE INDEX api_keys_hash_key ON api_keys (key_hash);
CREATE INDEX api_keys_user_idx ON api_keys (user_id);

CREATE TABLE templates (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                    text NOT NULL CHECK (name <> ''),
    description             text,
    category                text,
    tier                    text NOT NULL DEFAULT 'template'
                            CHECK (tier IN ('template', 'scenario', 'edge_case')),
    system_prompt           text NOT NULL DEFAULT '',
    user_prompt_template    text NOT NULL,
    variables               jsonb NOT NULL DEFAULT '[]'::jsonb,
    tone                    text,
    complexity_baseline     smallint CHECK (complexity_baseline BETWEEN 1 AND 10),
    style_notes             text,
    quality_threshold       numeric(3, 1) NOT NULL DEFAULT 6.0
                            CHECK (quality_threshold BETWEEN 0 AND 10),
    applicable_personas     text[] NOT NULL DEFAULT '{}',
    applicable_emotions     text[] NOT NULL DEFAULT '{}',
    applicable_topics       text[] NOT NULL DEFAULT '{}',
    default_temperature     numeric(3, 2) CHECK (default_temperature BETWEEN 0 AND 1),
    default_max_tokens      integer CHECK (default_max_tokens > 0),
    usage_count             integer NOT NULL DEFAULT 0,
    rating                  numeric(3, 2),
    success_rate            numeric(5, 4),
    version                 integer NOT NULL DEFAULT 1,
    is_active               boolean NOT NULL DEFAULT true,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX templates_owner_name_key ON templates (owner_id, name);
CREATE INDEX templates_owner_active_idx ON templates (owner_id, is_active, tier);

CREATE TABLE scenarios (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name <> ''),
    description         text,
    parent_template_id  uuid REFERENCES templates (id) ON DELETE SET NULL,
    context             text,
    topic               text,
    persona             text,
    emotional_arc       text,
    complexity          smallint CHECK (complexity BETWEEN 1 AND 10),
    objectives          text[] NOT NULL DEFAULT '{}',
    constraints         text[] NOT NULL DEFAULT '{}',
    parameter_values    jsonb NOT NULL DEFAULT '{}'::jsonb,
    estimated_turns     smallint CHECK (estimated_turns > 0),
    tags                text[] NOT NULL DEFAULT '{}',
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('draft', 'active', 'archived')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX scenarios_owner_name_key ON scenarios (owner_id, name);
CREATE INDEX scenarios_owner_status_idx ON scenarios (owner_id, status);

CREATE TABLE edge_cases (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name                text NOT NULL CHECK (name <> ''),
    description         text,
    category            text,
    trigger_condition   text,
    expected_behavior   text,
    test_input          text,
    expected_output     text,
    risk_level          text NOT NULL DEFAULT 'medium'
                        CHECK (risk_level IN ('low', 'medium', 'high', 'critical')),
    priority            smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
    parent_template_id  uuid REFERENCES templates (id) ON DELETE SET NULL,
    tested              boolean NOT NULL DEFAULT false,
    last_tested_at      timestamptz,
    status              text NOT NULL DEFAULT 'active'
                        CHECK (status IN ('draft', 'active', 'archived')),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX edge_cases_owner_name_key ON edge_cases (owner_id, name);
CREATE INDEX edge_cases_owner_status_idx ON edge_cases (owner_id, status);

CREATE TABLE batch_jobs (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_type                text NOT NULL CHECK (job_type IN ('generation', 'export', 'cleanup')),
    status                  text NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'running', 'completed', 'failed', 'cancelled')),
    total_items             integer NOT NULL DEFAULT 0 CHECK (total_items >= 0),
    completed_items         integer NOT NULL DEFAULT 0 CHECK (completed_items >= 0),
    failed_items            integer NOT NULL DEFAULT 0 CHECK (failed_items >= 0),
    skipped_items           integer NOT NULL DEFAULT 0 CHECK (skipped_items >= 0),
    progress_percent        numeric(5, 2) NOT NULL DEFAULT 0
                            CHECK (progress_percent BETWEEN 0 AND 100),
    started_at              timestamptz,
    completed_at            timestamptz,
    estimated_completion_at timestamptz,
    heartbeat_at            timestamptz,
    priority                smallint NOT NULL DEFAULT 5,
    concurrency             smallint NOT NULL DEFAULT 3 CHECK (concurrency > 0),
    cost_cap_usd            numeric(12, 6) CHECK (cost_cap_usd > 0),
    cost_so_far_usd         numeric(12, 6) NOT NULL DEFAULT 0,
    stop_reason             text,
    error                   text,
    config                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    results                 jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_by              uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX batch_jobs_owner_created_idx ON batch_jobs (owner_id, created_at DESC, id DESC);
CREATE INDEX batch_jobs_running_heartbeat_idx ON batch_jobs (heartbeat_at)
    WHERE status = 'running';

CREATE TABLE conversations (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id                uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    conversation_id         text NOT NULL CHECK (conversation_id <> ''),
    title                   text,
    description             text,
    persona                 text,
    emotion                 text,
    topic                   text,
    intent                  text,
    tone                    text,
    emotional_arc           text,
    tier                    text NOT NULL CHECK (tier IN ('template', 'scenario', 'edge_case')),
    status                  text NOT NULL DEFAULT 'pending_review'
                            CHECK (status IN ('pending_review', 'needs_revision', 'approved',
                                              'rejected', 'archived')),
    source                  text NOT NULL DEFAULT 'import' CHECK (source IN ('import', 'generated')),
    category                text[] NOT NULL DEFAULT '{}',
    tags                    text[] NOT NULL DEFAULT '{}',
    quality_score           numeric(3, 1) CHECK (quality_score BETWEEN 0 AND 10),
    quality_metrics         jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_flagged              boolean NOT NULL DEFAULT false,
    flag_reason             text,
    turn_count              integer NOT NULL DEFAULT 0 CHECK (turn_count >= 0),
    total_tokens            integer NOT NULL DEFAULT 0 CHECK (total_tokens >= 0),
    estimated_cost_usd      numeric(12, 6),
    actual_cost_usd         numeric(12, 6),
    generation_duration_ms  integer CHECK (generation_duration_ms >= 0),
    template_id             uuid REFERENCES templates (id) ON DELETE SET NULL,
    scenario_id             uuid REFERENCES scenarios (id) ON DELETE SET NULL,
    edge_case_id            uuid REFERENCES edge_cases (id) ON DELETE SET NULL,
    parent_id               uuid REFERENCES conversations (id) ON DELETE SET NULL,
    parent_type             text CHECK (parent_type IN ('template', 'scenario', 'edge_case',
                                                        'conversation')),
    generation_job_id       uuid REFERENCES batch_jobs (id) ON DELETE SET NULL,
    generation_item_index   integer,
    parameters              jsonb NOT NULL DEFAULT '{}'::jsonb,
    model                   text,
    temperature             numeric(3, 2),
    max_tokens              integer,
    system_prompt           text,
    object_key              text NOT NULL,
    byte_size               bigint NOT NULL CHECK (byte_size >= 0),
    sha256                  text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    starting_emotion        text,
    starting_intensity      numeric(4, 3),
    ending_emotion          text,
    ending_intensity        numeric(4, 3),
    reviewed_by             uuid REFERENCES users (id) ON DELETE SET NULL,
    reviewed_at             timestamptz,
    review_notes            text,
    export_count            integer NOT NULL DEFAULT 0,
    last_exported_at        timestamptz,
    expires_at              timestamptz,
    deleted_at              timestamptz,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now(),
    search_vector           tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', coalesce(title, '')), 'A') ||
        setweight(to_tsvector('simple', coalesce(persona, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(emotion, '')), 'B') ||
        setweight(to_tsvector('simple', coalesce(topic, '')), 'B')
    ) STORED
);
-- One conversation_id per owner, among rows not soft-deleted.
CREATE UNIQUE INDEX conversations_owner_slug_key ON conversations (owner_id, conversation_id)
    WHERE deleted_at IS NULL;
-- A generation item lands at most one conversation, whatever arq retries.
CREATE UNIQUE INDEX conversations_generation_item_key
    ON conversations (generation_job_id, generation_item_index)
    WHERE generation_job_id IS NOT NULL;
CREATE INDEX conversations_owner_created_idx ON conversations (owner_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_status_created_idx
    ON conversations (owner_id, status, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_tier_created_idx
    ON conversations (owner_id, tier, created_at DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_quality_idx
    ON conversations (owner_id, quality_score DESC, id DESC) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_title_idx
    ON conversations (owner_id, title, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_owner_status_idx
    ON conversations (owner_id, status, id) WHERE deleted_at IS NULL;
CREATE INDEX conversations_review_queue_idx ON conversations (owner_id, created_at, id)
    WHERE status = 'pending_review' AND deleted_at IS NULL;
CREATE INDEX conversations_search_idx ON conversations USING gin (search_vector);
CREATE INDEX conversations_title_trgm_idx ON conversations USING gin (title gin_trgm_ops);
CREATE INDEX conversations_tags_idx ON conversations USING gin (tags);
CREATE INDEX conversations_category_idx ON conversations USING gin (category);
CREATE INDEX conversations_quality_metrics_idx ON conversations USING gin (quality_metrics jsonb_path_ops);
CREATE INDEX conversations_status_expires_idx ON conversations (status, expires_at)
    WHERE expires_at IS NOT NULL;
CREATE INDEX conversations_deleted_idx ON conversations (deleted_at) WHERE deleted_at IS NOT NULL;
CREATE INDEX conversations_job_idx ON conversations (generation_job_id)
    WHERE generation_job_id IS NOT NULL;

CREATE TABLE conversation_turns (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id     uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    owner_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    turn_number         integer NOT NULL CHECK (turn_number > 0),
    role                text NOT NULL CHECK (role IN ('system', 'user', 'assistant')),
    content             text NOT NULL,
    token_count         integer NOT NULL DEFAULT 0 CHECK (token_count >= 0),
    char_count          integer NOT NULL DEFAULT 0 CHECK (char_count >= 0),
    word_count          integer NOT NULL DEFAULT 0 CHECK (word_count >= 0),
    sentence_count      integer NOT NULL DEFAULT 0 CHECK (sentence_count >= 0),
    detected_emotion    text,
    emotion_confidence  numeric(4, 3) CHECK (emotion_confidence BETWEEN 0 AND 1),
    emotion_intensity   numeric(4, 3) CHECK (emotion_intensity BETWEEN 0 AND 1),
    strategy            text,
    tone                text,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (conversation_id, turn_number)
);
CREATE INDEX conversation_turns_owner_idx ON conversation_turns (owner_id);

CREATE TABLE conversation_reviews (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    conversation_id  uuid NOT NULL REFERENCES conversations (id) ON DELETE CASCADE,
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    action           text NOT NULL,
    from_status      text,
    to_status        text NOT NULL,
    reviewer_id      uuid REFERENCES users (id) ON DELETE SET NULL,
    notes            text,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_reviews_conversation_idx
    ON conversation_reviews (conversation_id, created_at, id);
CREATE INDEX conversation_reviews_owner_idx ON conversation_reviews (owner_id);

-- One row per planned conversation of a generation batch: the unit arq retries.
CREATE TABLE generation_items (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_id         uuid NOT NULL REFERENCES batch_jobs (id) ON DELETE CASCADE,
    item_index       integer NOT NULL CHECK (item_index >= 0),
    status           text NOT NULL DEFAULT 'queued'
                     CHECK (status IN ('queued', 'running', 'completed', 'failed', 'skipped',
                                       'cancelled')),
    request          jsonb NOT NULL,
    attempts         integer NOT NULL DEFAULT 0,
    conversation_id  uuid REFERENCES conversations (id) ON DELETE SET NULL,
    cost_usd         numeric(12, 6) NOT NULL DEFAULT 0,
    error_code       text,
    error            text,
    started_at       timestamptz,
    finished_at      timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (batch_id, item_index)
);
CREATE INDEX generation_items_batch_status_idx ON generation_items (batch_id, status);

CREATE TABLE generation_logs (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    job_id            uuid REFERENCES batch_jobs (id) ON DELETE SET NULL,
    item_index        integer,
    conversation_id   uuid REFERENCES conversations (id) ON DELETE SET NULL,
    template_id       uuid REFERENCES templates (id) ON DELETE SET NULL,
    attempt           integer NOT NULL CHECK (attempt > 0),
    model             text NOT NULL,
    parameters        jsonb NOT NULL DEFAULT '{}'::jsonb,
    prompt_sha256     text,
    request_excerpt   jsonb,
    response_excerpt  jsonb,
    input_tokens      integer NOT NULL DEFAULT 0,
    output_tokens     integer NOT NULL DEFAULT 0,
    cost_usd          numeric(12, 6) NOT NULL DEFAULT 0,
    duration_ms       integer NOT NULL DEFAULT 0,
    status            text NOT NULL
                      CHECK (status IN ('success', 'failed', 'rate_limited', 'timeout', 'cancelled')),
    error_code        text,
    error_message     text,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX generation_logs_owner_created_idx ON generation_logs (owner_id, created_at DESC, id DESC);
CREATE INDEX generation_logs_job_idx ON generation_logs (job_id, created_at);
CREATE INDEX generation_logs_conversation_idx ON generation_logs (conversation_id)
    WHERE conversation_id IS NOT NULL;

CREATE TABLE export_logs (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    batch_job_id        uuid REFERENCES batch_jobs (id) ON DELETE SET NULL,
    format              text NOT NULL CHECK (format IN ('jsonl', 'json', 'csv', 'markdown')),
    scope               text NOT NULL CHECK (scope IN ('selected', 'filtered', 'all_approved', 'all')),
    config              jsonb NOT NULL DEFAULT '{}'::jsonb,
    filters             jsonb NOT NULL DEFAULT '{}'::jsonb,
    selected_ids        uuid[] NOT NULL DEFAULT '{}',
    conversation_count  integer NOT NULL DEFAULT 0,
    turn_count          integer NOT NULL DEFAULT 0,
    object_key          text,
    file_name           text,
    byte_size           bigint,
    sha256              text,
    compressed          boolean NOT NULL DEFAULT false,
    status              text NOT NULL DEFAULT 'queued'
                        CHECK (status IN ('queued', 'processing', 'completed', 'failed', 'expired',
                                          'cancelled')),
    progress_percent    numeric(5, 2) NOT NULL DEFAULT 0,
    error               text,
    quality_stats       jsonb NOT NULL DEFAULT '{}'::jsonb,
    tier_distribution   jsonb NOT NULL DEFAULT '{}'::jsonb,
    render_failures     jsonb NOT NULL DEFAULT '[]'::jsonb,
    heartbeat_at        timestamptz,
    started_at          timestamptz,
    completed_at        timestamptz,
    expires_at          timestamptz,
    download_count      integer NOT NULL DEFAULT 0,
    last_downloaded_at  timestamptz,
    created_by          uuid REFERENCES users (id) ON DELETE SET NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX export_logs_owner_created_idx ON export_logs (owner_id, created_at DESC, id DESC);
CREATE INDEX export_logs_status_expires_idx ON export_logs (status, expires_at);
CREATE INDEX export_logs_processing_heartbeat_idx ON export_logs (heartbeat_at)
    WHERE status IN ('queued', 'processing');

-- updated_at triggers.
CREATE TRIGGER users_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER api_keys_updated_at BEFORE UPDATE ON api_keys
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER templates_updated_at BEFORE UPDATE ON templates
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER scenarios_updated_at BEFORE UPDATE ON scenarios
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER edge_cases_updated_at BEFORE UPDATE ON edge_cases
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER batch_jobs_updated_at BEFORE UPDATE ON batch_jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER conversations_updated_at BEFORE UPDATE ON conversations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER generation_items_updated_at BEFORE UPDATE ON generation_items
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER export_logs_updated_at BEFORE UPDATE ON export_logs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Row-level security on every tenant table. The services connect as the owning, ordinary role,
-- so FORCE makes the policy apply to it too; a transaction sees only app.user_id's rows.
DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['templates', 'scenarios', 'edge_cases', 'batch_jobs', 'conversations',
                             'conversation_turns', 'conversation_reviews', 'generation_items',
                             'generation_logs', 'export_logs']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (owner_id = app_user_id()) '
            'WITH CHECK (owner_id = app_user_id())', t);
    END LOOP;
END;
$$;
