"""reconcile: objects with no row (after a grace period) are deleted; rows with no object flagged.

Objects are written before their rows (DESIGN.md §4), so a young object without a row may be a
write in flight: only objects older than JANITOR_ORPHAN_GRACE_SECONDS are orphans. Rows are
checked only if they were created before the listing started, so a row whose object was
written after the listing passed is never flagged by mistake.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from uuid import UUID

from services.janitor import repository as repo
from services.janitor.context import Counts, JanitorDeps, chunks, owner_ids
from shared.conversations.versions import is_document_name
from shared.db.pool import acquire, tenant_transaction
from shared.logging import bound_context, get_logger
from shared.storage import ObjectInfo

log = get_logger(__name__)
CONVERSATIONS_PREFIX = "conversations/"
EXPORTS_PREFIX = "exports/"
_CHUNK = 1000
_PARALLEL_DELETES = 16


@dataclass
class Listing:
    """Objects under one prefix, grouped by the owner their key names."""

    by_owner: dict[UUID, dict[str, ObjectInfo]] = field(default_factory=lambda: defaultdict(dict))
    unrecognized: int = 0


async def reconcile(deps: JanitorDeps, counts: Counts) -> None:
    """Both directions, for conversation documents and export files."""
    for action in ("orphans_deleted", "missing_flagged", "export_orphans_deleted"):
        counts.add(action, 0)
    counts.add("export_missing_failed", 0)
    async with acquire(deps.pool) as conn:
        started = await repo.database_now(conn)
    users = set(await owner_ids(deps.pool))
    orphan_before = started - timedelta(seconds=deps.settings.janitor_orphan_grace_seconds)
    for prefix in (CONVERSATIONS_PREFIX, EXPORTS_PREFIX):
        listing = await _list(deps, prefix)
        counts.add("unrecognized_objects", listing.unrecognized)
        for owner in sorted(users | set(listing.by_owner)):
            objects = listing.by_owner.get(owner, {})
            with bound_context(owner_id=owner):
                try:
                    if prefix == CONVERSATIONS_PREFIX:
                        await _conversations(deps, counts, owner, objects, owner in users,
                                             started, orphan_before)  # fmt: skip
                    else:
                        await _exports(deps, counts, owner, objects, owner in users,
                                       started, orphan_before)  # fmt: skip
                except Exception as exc:
                    counts.add("owner_failed")
                    log.warning("janitor.reconcile.owner_failed", error=str(exc), exc_info=True)


async def _list(deps: JanitorDeps, prefix: str) -> Listing:
    listing = Listing()
    async for info in deps.storage.list_prefix(prefix):
        owner = _owner_of(info.key, prefix)
        if owner is None:
            listing.unrecognized += 1
            continue
        listing.by_owner[owner][info.key] = info
    return listing


def _owner_of(key: str, prefix: str) -> UUID | None:
    """`{prefix}{owner}/…`; for conversations exactly `{owner}/{uuid}/conversation.json.gz` or
    a later version's `{owner}/{uuid}/conversation.<hex>.json.gz` (kept while the row exists)."""
    parts = key[len(prefix) :].split("/")
    if prefix == CONVERSATIONS_PREFIX and (len(parts) != 3 or not is_document_name(parts[2])):
        return None
    if len(parts) < 2 or (prefix == CONVERSATIONS_PREFIX and _uuid(parts[1]) is None):
        return None
    return _uuid(parts[0])


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None


async def _conversations(
    deps: JanitorDeps, counts: Counts, owner: UUID, objects: dict[str, ObjectInfo],
    known: bool, started: datetime, orphan_before: datetime,
) -> None:  # fmt: skip
    by_id: dict[UUID, list[str]] = defaultdict(list)  # a conversation's versions share its id
    for key in objects:
        by_id[UUID(key.split("/")[2])].append(key)
    existing: set[UUID] = set()
    if known and by_id:
        async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
            for ids in chunks(list(by_id), _CHUNK):
                existing |= await repo.existing_conversation_ids(conn, list(ids))
    orphans = [key for cid, keys in by_id.items() if cid not in existing for key in keys]
    await _delete_orphans(deps, counts, [objects[k] for k in orphans], orphan_before, "orphans")
    if known:
        missing = await _rows_missing_objects(deps, owner, set(objects), started)
        if missing:
            async with tenant_transaction(deps.pool, owner) as conn:
                flagged = await repo.flag_missing_objects(conn, missing)
            counts.add("missing_flagged", flagged)
            log.warning("janitor.reconcile.objects_missing", flagged=flagged)


async def _rows_missing_objects(
    deps: JanitorDeps, owner: UUID, listed: set[str], started: datetime
) -> list[UUID]:
    missing: list[UUID] = []
    after: UUID | None = None
    own_prefix = f"{CONVERSATIONS_PREFIX}{owner}/"
    while True:
        async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
            rows = await repo.conversation_objects(
                conn, created_before=started, after=after, limit=deps.settings.janitor_batch_size
            )
        if not rows:
            return missing
        for row in rows:
            if row.object_key.startswith(own_prefix):
                gone = row.object_key not in listed
            else:  # a key outside the listed layout: ask storage directly
                gone = await deps.storage.head(row.object_key) is None
            if gone:
                missing.append(row.id)
        after = rows[-1].id


async def _exports(
    deps: JanitorDeps, counts: Counts, owner: UUID, objects: dict[str, ObjectInfo],
    known: bool, started: datetime, orphan_before: datetime,
) -> None:  # fmt: skip
    wanted: set[str] = set()
    if known and objects:
        async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
            for keys in chunks(list(objects), _CHUNK):
                wanted |= await repo.existing_export_keys(conn, list(keys))
    orphans = [info for key, info in objects.items() if key not in wanted]
    await _delete_orphans(deps, counts, orphans, orphan_before, "export_orphans")
    if not known:
        return
    async with tenant_transaction(deps.pool, owner, readonly=True) as conn:
        rows = await repo.completed_export_objects(conn, completed_before=started)
    missing = [
        row.id
        for row in rows
        if row.object_key not in objects and await deps.storage.head(row.object_key) is None
    ]
    if missing:
        async with tenant_transaction(deps.pool, owner) as conn:
            failed = await repo.fail_exports_missing_file(conn, missing)
        counts.add("export_missing_failed", failed)
        log.warning("janitor.reconcile.export_files_missing", failed=failed)


def written_before(last_modified: datetime, before: datetime) -> bool:
    """Whether an object was written before `before`, allowing for whole-second timestamps.

    Swift's S3 layer rounds Last-Modified up to the next whole second, so an object written
    0.3 s before the cutoff can look 0.7 s younger than it is; a whole-second stamp only says
    the write happened in the second before it.
    """
    if last_modified.microsecond == 0:
        return last_modified <= before.replace(microsecond=0) + timedelta(seconds=1)
    return last_modified < before


async def _delete_orphans(
    deps: JanitorDeps, counts: Counts, orphans: list[ObjectInfo], before: datetime, label: str
) -> None:
    old = [info for info in orphans if written_before(info.last_modified, before)]
    counts.add(f"{label}_in_grace", len(orphans) - len(old))
    # A few deletes in flight at once: object stores answer each in milliseconds, not less.
    for batch in chunks(old, _PARALLEL_DELETES):
        await asyncio.gather(*(_delete_one(deps, counts, info, label) for info in batch))


async def _delete_one(deps: JanitorDeps, counts: Counts, info: ObjectInfo, label: str) -> None:
    try:
        await deps.storage.delete(info.key)
    except Exception as exc:
        counts.add("failed")
        log.warning("janitor.reconcile.delete_failed", key=info.key, error=str(exc))
        return
    counts.add(f"{label}_deleted")
    log.info("janitor.reconcile.orphan_deleted", key=info.key, size=info.size)
