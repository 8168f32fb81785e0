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
    action: str = "imported",
) -> Conversation:
    """Write the object, then one transaction; delete the object again if it fails."""
    doc = encode(owner_id, draft)
    await upload(storage, doc)
    try:
        async with tenant_transaction(pool, owner_id) as conn:
            return await insert_row(conn, owner_id, draft, doc, action=action)
    except BaseException:
        await discard(storage, doc.key)
        raise


async def hard_delete(
    pool: asyncpg.Pool, storage: ObjectStore, owner_id: UUID, conversation_id: UUID
) -> bool:
    """Delete row, turns, reviews and versions, then every version's object; False when there
    was no such row."""
    async with tenant_transaction(pool, owner_id) as conn:
        keys = await repo.delete_row(conn, conversation_id)
    if keys is None:
        return False
    await asyncio.gather(*(discard(storage, key) for key in keys))
    return True
