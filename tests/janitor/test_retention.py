"""conversation-retention: expired and long-rejected conversations are deleted or archived."""

from __future__ import annotations

from dataclasses import replace

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.models.user import User
from tests.janitor.rows import ago, conversation, row, update


async def test_delete_mode_removes_rows_and_objects(deps: JanitorDeps, owner: User) -> None:
    expired = await conversation(deps.pool, deps.storage, owner.id)
    old_rejected = await conversation(deps.pool, deps.storage, owner.id)
    young_rejected = await conversation(deps.pool, deps.storage, owner.id)
    kept = await conversation(deps.pool, deps.storage, owner.id)
    await update(deps.pool, owner.id, "conversations", expired.id, expires_at=ago(minutes=1))
    await update(deps.pool, owner.id, "conversations", old_rejected.id,
                 status="rejected", reviewed_at=ago(days=31))  # fmt: skip
    await update(deps.pool, owner.id, "conversations", young_rejected.id,
                 status="rejected", reviewed_at=ago(days=5))  # fmt: skip
    await update(deps.pool, owner.id, "conversations", kept.id, expires_at=ago(days=-3))

    report = await run_task(deps, "conversation-retention")

    assert (report.outcome, report.counts["deleted"], report.counts["failed"]) == ("ok", 2, 0)
    for gone in (expired, old_rejected):
        assert await row(deps.pool, owner.id, "conversations", gone.id) is None
        assert await deps.storage.head(gone.object_key) is None
    for present in (young_rejected, kept):
        assert await row(deps.pool, owner.id, "conversations", present.id) is not None
        assert await deps.storage.head(present.object_key) is not None
    assert (await run_task(deps, "conversation-retention")).counts["deleted"] == 0


async def test_archive_mode_keeps_everything_but_archives(
    local_deps: JanitorDeps, owner: User
) -> None:
    deps = replace(
        local_deps,
        settings=local_deps.settings.model_copy(update={"janitor_retention_mode": "archive"}),
    )
    rejected = await conversation(deps.pool, deps.storage, owner.id)
    await update(deps.pool, owner.id, "conversations", rejected.id,
                 status="rejected", reviewed_at=ago(days=45))  # fmt: skip

    report = await run_task(deps, "conversation-retention")

    assert report.counts["archived"] == 1
    stored = await row(deps.pool, owner.id, "conversations", rejected.id)
    assert stored is not None
    assert (stored["status"], stored["expires_at"]) == ("archived", None)
    assert await deps.storage.head(rejected.object_key) is not None
    async with tenant_transaction(deps.pool, owner.id) as conn:
        history = await conversations_repo.reviews(conn, rejected.id)
    assert history[-1].action == "retention_archived"
    assert history[-1].from_status is not None
    assert history[-1].from_status.value == "rejected"
    assert (await run_task(deps, "conversation-retention")).counts["archived"] == 0
