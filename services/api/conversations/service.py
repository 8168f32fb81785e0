"""Conversation business rules: import, review workflow, bulk actions, deletes, stats, links."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.api import pagination
from services.api.conversations import workflow
from services.api.conversations.schemas import (
    BatchItemResult,
    BulkItemResult,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    FileLink,
    Stats,
)
from shared.conversations import store
from shared.conversations.seed_format import parse_seed_bytes, parse_seed_document
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversation_queries as queries
from shared.db.repositories import conversation_stats as stat_counters
from shared.db.repositories import conversations as repo
from shared.db.repositories import score_queries
from shared.db.repositories.minhash import Stored
from shared.dedup.service import Check, Deduplicator, detach
from shared.errors import DomainError, NotFound
from shared.models.conversation import Conversation, ConversationDraft
from shared.models.conversation import ConversationStatus as S
from shared.models.query import ConversationFilters, SortKey
from shared.storage import ObjectStore

# Uploads of a batch run concurrently; the database work is one transaction with a savepoint
# per item, so one bad item never blocks the others and a 1,000-file batch is one commit.
_UPLOAD_CONCURRENCY = 16
QUALITY_HISTOGRAM = "quality"  # migration 0018: quality_score in ten 1-point buckets
_BULK_TARGETS = {"approve": S.APPROVED, "reject": S.REJECTED, "archive": S.ARCHIVED}


def _not_found(id: UUID) -> NotFound:
    return NotFound("conversation not found", details={"id": str(id)})


async def import_one(
    pool: asyncpg.Pool, storage: ObjectStore, dedup: Deduplicator, owner_id: UUID, raw: bytes
) -> ConversationDetail:
    """Validate one file, check it for near-duplicates and store it atomically."""
    draft = parse_seed_bytes(raw)
    stored = await store.store_conversation(pool, storage, owner_id, draft, dedup=dedup)
    async with tenant_transaction(pool, owner_id) as conn:
        return await detail(conn, stored.id)


async def import_batch(
    pool: asyncpg.Pool, storage: ObjectStore, dedup: Deduplicator, owner_id: UUID,
    items: list[Any],
) -> list[BatchItemResult]:  # fmt: skip
    """Store every valid item (near-duplicates marked); report each item's outcome in order."""
    results: dict[int, BatchItemResult] = {}
    drafts: dict[int, ConversationDraft] = {}
    for index, item in enumerate(items):
        try:
            drafts[index] = parse_seed_document(item)
        except DomainError as exc:
            results[index] = BatchItemResult(index=index, ok=False, error=exc.to_body()["error"])
    check = await dedup.check(owner_id, list(drafts.values()))
    docs = {index: store.encode(owner_id, draft) for index, draft in drafts.items()}
    await _upload_all(storage, list(docs.values()))
    committed = False
    try:
        async with tenant_transaction(pool, owner_id) as conn:
            await check.load(conn)
            for position, (index, doc) in enumerate(docs.items()):
                results[index] = await _insert_with_savepoint(
                    conn, owner_id, drafts[index], doc, index, check, position
                )
            await check.save(conn)
        committed = True
    finally:
        # Objects whose row did not commit are deleted again: all of them if the commit failed.
        orphans = [doc.key for i, doc in docs.items() if not committed or not results[i].ok]
        await asyncio.gather(*(store.discard(storage, key) for key in orphans))
    await check.publish()
    return [results[index] for index in range(len(items))]


async def _upload_all(storage: ObjectStore, docs: list[store.EncodedDocument]) -> None:
    gate = asyncio.Semaphore(_UPLOAD_CONCURRENCY)

    async def one(doc: store.EncodedDocument) -> None:
        async with gate:
            await store.upload(storage, doc)

    try:
        await asyncio.gather(*(one(doc) for doc in docs))
    except BaseException:
        await asyncio.gather(*(store.discard(storage, doc.key) for doc in docs))
        raise


async def _insert_with_savepoint(
    conn: asyncpg.Connection,
    owner_id: UUID,
    draft: ConversationDraft,
    doc: store.EncodedDocument,
    index: int,
    check: Check,
    position: int,
) -> BatchItemResult:
    marked = check.mark(position, draft)
    try:
        async with conn.transaction():
            stored = await store.insert_row(conn, owner_id, marked, doc, action="imported")
    except DomainError as exc:
        return BatchItemResult(index=index, ok=False, error=exc.to_body()["error"])
    check.accept(position, stored.id, stored.created_at)
    return BatchItemResult(index=index, ok=True, id=stored.id)


async def get_visible(conn: asyncpg.Connection, id: UUID, *, lock: bool = False) -> Conversation:
    """The caller's conversation or a 404 (another tenant's id looks exactly the same)."""
    found = await repo.get(conn, id, for_update=lock)
    if found is None:
        raise _not_found(id)
    return found


async def detail(conn: asyncpg.Connection, id: UUID) -> ConversationDetail:
    """A conversation with its turns."""
    found = await get_visible(conn, id)
    turns = await repo.turns(conn, id)
    return ConversationDetail(**found.model_dump(), turns=turns)


async def original_of(conn: asyncpg.Connection, found: Conversation) -> Conversation | None:
    """The earlier conversation this one nearly copies, if it is marked and still visible."""
    if found.duplicate_of is None:
        return None
    return await repo.get(conn, found.duplicate_of)


async def list_page(
    conn: asyncpg.Connection,
    owner_id: UUID,
    filters: ConversationFilters,
    sort: SortKey,
    cursor_token: str | None,
    limit: int,
) -> ConversationPage:
    """A filtered, sorted page with the total count and the next cursor.

    `total` is exact as of the first page: counted there (or, when that page holds every match,
    its length) and carried in the cursor to the following pages, which then need no count(*),
    the most expensive part of a list request at 100K rows. A cursor used with other filters
    than its total counted (or one made before totals were carried) is counted again.
    """
    cursor = pagination.decode_cursor(sort, cursor_token) if cursor_token else None
    after = cursor.key if cursor else None
    page = await queries.list_page(conn, owner_id, filters, sort, after, limit, ConversationOut)
    digest = pagination.filters_digest(filters)
    total = cursor.total_for(digest) if cursor else None
    if total is None:
        if cursor is None and not page.has_more:
            total = len(page.items)
        else:
            total = await queries.count(conn, owner_id, filters)
    last = page.last_key
    next_cursor = None
    if page.has_more and last:
        next_cursor = pagination.encode(sort, last, total=total, digest=digest)
    return ConversationPage(items=page.items, next_cursor=next_cursor, total=total)


async def patch(conn: asyncpg.Connection, id: UUID, changes: dict[str, Any]) -> ConversationOut:
    """Edit metadata; an empty patch returns the row unchanged."""
    if not changes:
        return ConversationOut(**(await get_visible(conn, id)).model_dump())
    updated = await queries.update_fields(conn, id, changes)
    if updated is None:
        raise _not_found(id)
    return ConversationOut(**updated.model_dump())


async def transition(
    conn: asyncpg.Connection,
    owner_id: UUID,
    reviewer: UUID,
    id: UUID,
    target: S,
    notes: str | None,
) -> Conversation:
    """Apply one workflow transition and record it in the review history."""
    current = await get_visible(conn, id, lock=True)
    workflow.check_transition(current.status, target)
    workflow.check_notes(target, notes)
    updated = await queries.set_status(conn, id, target.value, reviewer, notes)
    await repo.add_review(
        conn,
        owner_id=owner_id,
        conversation_id=id,
        action=workflow.ACTION_NAMES[target],
        from_status=current.status.value,
        to_status=target.value,
        reviewer_id=reviewer,
        notes=notes,
    )
    return updated


async def bulk(
    conn: asyncpg.Connection,
    owner_id: UUID,
    reviewer: UUID,
    action: str,
    ids: list[UUID],
    reason: str | None,
    removed: list[Stored] | None = None,
) -> list[BulkItemResult]:
    """Apply an action to each id; a failing id is reported and the others go on.

    Deleted conversations' signatures are appended to `removed`, for the caller to take out of
    the near-duplicate index once the transaction has committed.
    """
    results = []
    for id in ids:
        try:
            async with conn.transaction():
                results.append(
                    await _bulk_one(conn, owner_id, reviewer, action, id, reason, removed)
                )
        except DomainError as exc:
            results.append(BulkItemResult(id=id, ok=False, error=exc.to_body()["error"]))
    return results


async def _bulk_one(
    conn: asyncpg.Connection,
    owner_id: UUID,
    reviewer: UUID,
    action: str,
    id: UUID,
    reason: str | None,
    removed: list[Stored] | None,
) -> BulkItemResult:
    if action == "delete":
        gone = await soft_delete(conn, id)
        if removed is not None:
            removed.extend(gone)
        return BulkItemResult(id=id, ok=True)
    updated = await transition(conn, owner_id, reviewer, id, _BULK_TARGETS[action], reason)
    return BulkItemResult(id=id, ok=True, status=updated.status)


async def soft_delete(conn: asyncpg.Connection, id: UUID) -> list[Stored]:
    """Hide a conversation and take it out of the near-duplicate index (its copies unlinked)."""
    if not await queries.soft_delete(conn, id):
        raise _not_found(id)
    return await detach(conn, [id])


async def delete(
    pool: asyncpg.Pool, storage: ObjectStore, dedup: Deduplicator, owner_id: UUID, id: UUID,
    *, hard: bool,
) -> None:  # fmt: skip
    """Soft delete (hidden from lists and exports), or remove row, turns and object."""
    if hard:
        if not await store.hard_delete(pool, storage, owner_id, id, dedup=dedup):
            raise _not_found(id)
        return
    async with tenant_transaction(pool, owner_id) as conn:
        removed = await soft_delete(conn, id)
    await dedup.forget(owner_id, removed)


async def stats(conn: asyncpg.Connection, owner_id: UUID) -> Stats:
    """Totals by status and tier, histogram, approval rate (approved / reviewed), from the
    counters the triggers of migration 0018 keep (no scan of the conversations); the judge's
    score distributions and the counts by quality_source from score_queries (counters too once
    its histograms are registered, else one pass)."""
    counters = await stat_counters.read_and_maintain(conn, owner_id)
    scored = await score_queries.score_stats(conn, owner_id, counters)
    by_status = counters.counts(stat_counters.STATUS)
    approved = by_status.get(S.APPROVED, 0)
    reviewed = approved + by_status.get(S.REJECTED, 0)
    mean = counters.mean(QUALITY_HISTOGRAM)
    return Stats(
        total=counters.total,
        by_status={status.value: by_status.get(status.value, 0) for status in S},
        by_tier=counters.counts(stat_counters.TIER),
        quality_histogram=counters.histogram(QUALITY_HISTOGRAM, 10),
        approval_rate=round(approved / reviewed, 4) if reviewed else None,
        mean_quality=round(mean, 2) if mean is not None else None,
        scores=scored["scores"],
        by_quality_source=scored["by_quality_source"],
    )


async def file_link(
    conn: asyncpg.Connection, storage: ObjectStore, id: UUID, ttl_seconds: int
) -> FileLink:
    """A presigned (S3) or signed (local) URL for the stored document."""
    found = await get_visible(conn, id)
    filename = f"{found.conversation_id}.json.gz"
    url = await storage.presign_get(found.object_key, expires_in=ttl_seconds, filename=filename)
    return FileLink(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds))
