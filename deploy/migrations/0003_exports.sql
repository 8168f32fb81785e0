-- Exports (DESIGN.md §6, docs/export.md): what a run needs to be safe when arq runs it twice.

-- run_id: the attempt that owns the row right now. A re-run (arq retry after a crash, a janitor
-- re-enqueue) takes over by writing a new run_id; heartbeats and completion only succeed for the
-- current run_id, so a superseded or cancelled run can never mark the export completed.
-- exported_ids: the conversations the file holds, written with the completion; export_count is
-- bumped from it afterwards, exactly once (counts_applied_at), off the file's critical path.
ALTER TABLE export_logs
    ADD COLUMN run_id                uuid,
    ADD COLUMN attempts              integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    ADD COLUMN render_failure_count  integer NOT NULL DEFAULT 0 CHECK (render_failure_count >= 0),
    ADD COLUMN exported_ids          uuid[],
    ADD COLUMN counts_applied_at     timestamptz;

-- History filters: (owner, format/status, created_at) with the keyset order of the list.
CREATE INDEX export_logs_owner_status_created_idx
    ON export_logs (owner_id, status, created_at DESC, id DESC);
CREATE INDEX export_logs_owner_format_created_idx
    ON export_logs (owner_id, format, created_at DESC, id DESC);

-- Bumping export_count is bookkeeping, not an edit: it must not move updated_at (which the
-- conversation list sorts and the export formats print). Every other UPDATE still does.
DROP TRIGGER conversations_updated_at ON conversations;
CREATE TRIGGER conversations_updated_at BEFORE UPDATE ON conversations
    FOR EACH ROW WHEN (NEW.export_count IS NOT DISTINCT FROM OLD.export_count)
    EXECUTE FUNCTION set_updated_at();

-- A job carries only the export id (`run_export(export_id)`, also re-enqueued so by the janitor),
-- and row-level security hides export_logs until app.user_id is set: this map finds the tenant.
-- Like job_owners (0002) it is not a tenant table and holds nothing but ids; a trigger fills it.
-- (No backfill: exports did not exist before this migration.)
CREATE TABLE export_owners (
    export_id  uuid PRIMARY KEY REFERENCES export_logs (id) ON DELETE CASCADE,
    owner_id   uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE
);

CREATE FUNCTION record_export_owner() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO export_owners (export_id, owner_id) VALUES (NEW.id, NEW.owner_id);
    RETURN NEW;
END;
$$;

CREATE TRIGGER export_logs_record_owner AFTER INSERT ON export_logs
    FOR EACH ROW EXECUTE FUNCTION record_export_owner();
