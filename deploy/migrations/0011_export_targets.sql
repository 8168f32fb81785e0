-- Export targets (issue 14, docs/export.md): new formats, partial outcomes, warnings, splits,
-- and the saved export configurations (presets, a user's default format, the last-used config).

ALTER TABLE export_logs DROP CONSTRAINT export_logs_format_check;
ALTER TABLE export_logs ADD CONSTRAINT export_logs_format_check
    CHECK (format IN ('jsonl', 'json', 'csv', 'markdown', 'parquet', 'txt'));

-- partial: completed, but some conversations could not be rendered (render_failure_count).
-- warnings: what a reader of the file should know (e.g. CSV cells too long for a spreadsheet).
-- split_counts: {"train": n, "validation": m} for a train/validation split, else NULL.
ALTER TABLE export_logs
    ADD COLUMN partial       boolean NOT NULL DEFAULT false,
    ADD COLUMN warnings      jsonb NOT NULL DEFAULT '[]'::jsonb,
    ADD COLUMN split_counts  jsonb;

-- Named export configurations a user runs again (POST /v1/exports with preset_id).
CREATE TABLE export_presets (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id    uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    config      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (owner_id, name)
);
CREATE INDEX export_presets_owner_name_idx ON export_presets (owner_id, name, id);

-- One row per user: the default format for new exports and the config of the last export
-- requested (the console's export dialog opens with it).
CREATE TABLE export_preferences (
    owner_id        uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    default_format  text CHECK (default_format IN ('jsonl', 'json', 'csv', 'markdown', 'parquet',
                                                   'txt')),
    last_config     jsonb,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TRIGGER export_presets_updated_at BEFORE UPDATE ON export_presets
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER export_preferences_updated_at BEFORE UPDATE ON export_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['export_presets', 'export_preferences']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY tenant_isolation ON %I USING (owner_id = app_user_id()) '
            'WITH CHECK (owner_id = app_user_id())', t);
    END LOOP;
END;
$$;
