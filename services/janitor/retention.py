"""conversation-retention: expired and long-rejected conversations are deleted (or archived)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from services.janitor import repository as repo
from services.janitor.context import Counts, JanitorDeps, for_each_owner
from shared.conversations.store import hard_delete
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.dedup.service import Deduplicator
from shared.logging import get_logger

log = get_logger(__name__)


async def conversation_retention(deps: JanitorDeps, counts: Counts) -> None:
    """Past expires_at, or rejected longer than the retention: delete row + object, or archive."""
    settings = deps.settings
    archive = settings.janitor_retention_mode == "archive"
    rejected_before = datetime.now(UTC) - timedelta(days=settings.janitor_rejected_retention_days)
    counts.add("archived" if archive else "deleted", 0)
    counts.add("failed", 0)

    async def owner_work(owner: UUID) -> None:
        after: UUID | None = None
        while True:
            async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
                ids = await repo.retention_candidates(
                    conn,
                    rejected_before=rejected_before,
                    archive_mode=archive,
                    after=after,
                    limit=settings.janitor_batch_size,
                )
            if not ids:
                return
            for conversation_id in ids:
                await _apply(deps, counts, owner, conversation_id, archive=archive)
            after = ids[-1]

    await for_each_owner(deps, counts, owner_work)


async def _apply(
    deps: JanitorDeps, counts: Counts, owner: UUID, conversation_id: UUID, *, archive: bool
) -> None:
    try:
        if archive:
            done = await _archive(deps, owner, conversation_id)
        else:
            # Row first, then object (the shared delete path); an object left behind by a
            # storage failure is an orphan that reconcile removes.
            dedup = Deduplicator(deps.pool, deps.redis, deps.settings)
            done = await hard_delete(deps.pool, deps.storage, owner, conversation_id, dedup=dedup)
    except Exception as exc:
        counts.add("failed")
        log.warning(
            "janitor.conversation_retention.failed",
            conversation_id=str(conversation_id),
            error=str(exc),
        )
        return
    counts.add(("archived" if archive else "deleted") if done else "already_gone")


async def _archive(deps: JanitorDeps, owner: UUID, conversation_id: UUID) -> bool:
    async with tenant_transaction(deps.pool, owner) as conn:
        previous = await repo.archive_conversation(conn, conversation_id)
        if previous is None:
            return False
        await conversations_repo.add_review(
            conn,
            owner_id=owner,
            conversation_id=conversation_id,
            action="retention_archived",
            from_status=previous,
            to_status="archived",
            reviewer_id=None,
            notes="archived by the janitor's conversation-retention task",
        )
    return True
