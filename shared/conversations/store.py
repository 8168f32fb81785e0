"""The one atomic write path for a conversation: object first, then row + turns + review."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import uuid
from dataclasses import dataclass
from uuid import UUID

import asyncpg
import orjson

from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as repo
from shared.dedup.service import Deduplicator, detach
from shared.errors import Conflict
from shared.logging import get_logger
from shared.models.conversation import Conversation, ConversationDraft
from shared.storage import ObjectStore

log = get_logger(__name__)
DOCUMENT_NAME = "conversation.json.gz"
# Level 6 is zlib's default trade-off; documents are small, so CPU per import stays < 1 ms.
_GZIP_LEVEL = 6


class DuplicateConversation(Conflict):
    """The owner already has a conversation with this conversation_id."""

    code = "duplicate_conversation"


class ItemAlreadyStored(Conflict):
    """A generation item already landed its conversation (a re-run of the same job)."""

    code = "item_already_stored"


@dataclass(frozen=True)
class EncodedDocument:
    """A document ready to upload: key, gzip bytes and their digest."""

    id: UUID
    key: str
    body: bytes
    sha256: str


def object_key(owner_id: UUID, conversation_uuid: UUID) -> str:
    """Where a conversation's document lives."""
    return f"conversations/{owner_id}/{conversation_uuid}/{DOCUMENT_NAME}"


def encode(owner_id: UUID, draft: ConversationDraft) -> EncodedDocument:
    """Gzip the canonical document; sha256 and size are of the stored (gzip) bytes."""
    if not draft.document:
        raise ValueError("a conversation draft must carry its canonical document")
    conversation_uuid = uuid.uuid4()
    body = gzip.compress(orjson.dumps(draft.document), compresslevel=_GZIP_LEVEL, mtime=0)
    digest = hashlib.sha256(body).hexdigest()
    return EncodedDocument(conversation_uuid, object_key(owner_id, conversation_uuid), body, digest)


async def upload(storage: ObjectStore, doc: EncodedDocument) -> None:
    """Put the document object."""
    await storage.put(doc.key, doc.body, content_type="application/gzip")


async def discard(storage: ObjectStore, key: str) -> None:
    """Delete an object whose row never committed; shielded so a cancel cannot skip it."""
    try:
        await asyncio.shield(storage.delete(key))
    except Exception as exc:  # the janitor's reconcile removes what this could not
        log.warning("conversations.store.discard_failed", key=key, error=str(exc))


async def insert_row(
    conn: asyncpg.Connection, owner_id: UUID, draft: ConversationDraft, doc: EncodedDocument,
    *, action: str,
) -> Conversation:  # fmt: skip
    """Insert row + turns + review; unique violations become typed conflicts."""
    try:
        return await repo.insert(
            conn, id=doc.id, owner_id=owner_id, draft=draft, object_key=doc.key,
            byte_size=len(doc.body), sha256=doc.sha256, action=action,
        )  # fmt: skip
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "conversations_generation_item_key":
            raise ItemAlreadyStored("this generation item already has its conversation") from exc
        raise DuplicateConversation(
            f"a conversation with conversation_id {draft.conversation_id!r} already exists",
            details={"conversation_id": draft.conversation_id},
        ) from exc


async def store_conversation(
    pool: asyncpg.Pool,
    storage: ObjectStore,
    owner_id: UUID,
    draft: ConversationDraft,
    *,
    dedup: Deduplicator | None,
    action: str = "imported",
) -> Conversation:
    """Near-duplicate check, the object, then one transaction; the object goes if that fails.

    Every import passes `dedup`; None (no check, no signature) is for test fixtures only.
    """
    check = await dedup.check(owner_id, [draft]) if dedup else None
    doc = encode(owner_id, draft)
    await upload(storage, doc)
    try:
        async with tenant_transaction(pool, owner_id) as conn:
            if check is None:
                return await insert_row(conn, owner_id, draft, doc, action=action)
            await check.load(conn)
            stored = await insert_row(conn, owner_id, check.mark(0, draft), doc, action=action)
            check.accept(0, stored.id, stored.created_at)
            await check.save(conn)
    except BaseException:
        await discard(storage, doc.key)
        raise
    await check.publish()
    return stored


async def hard_delete(
    pool: asyncpg.Pool,
    storage: ObjectStore,
    owner_id: UUID,
    conversation_id: UUID,
    *,
    dedup: Deduplicator | None = None,
) -> bool:
    """Delete row, turns, reviews, versions and signature, then every version's object; False
    when there was no such row.

    Its copies are unlinked (duplicate_of and duplicate_similarity both cleared); with `dedup`
    it also leaves the Redis index at once (without, its band entries point at nothing and
    lookups ignore them).
    """
    async with tenant_transaction(pool, owner_id) as conn:
        removed = await detach(conn, [conversation_id])
        keys = await repo.delete_row(conn, conversation_id)
    if keys is None:
        return False
    if dedup is not None:
        await dedup.forget(owner_id, removed)
    await asyncio.gather(*(discard(storage, key) for key in keys))
    return True
