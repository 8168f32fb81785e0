"""Turn edits: a new version of the stored document, atomically; versions and their files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import asyncpg

from services.api.conversations import workflow
from services.api.conversations.schemas import ConversationDetail, FileLink
from services.api.conversations.service import detail, get_visible
from services.api.edits import judging
from services.api.edits.schemas import VersionList, VersionOut
from shared.conversations import versions
from shared.conversations.store import discard
from shared.conversations.text_stats import measure
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as repo
from shared.db.repositories import versions as versions_repo
from shared.dedup import recheck
from shared.dedup.service import Deduplicator
from shared.errors import Conflict, NotFound
from shared.models.conversation import Conversation, ConversationVersion
from shared.models.conversation import ConversationStatus as S
from shared.queue import ArqRedis
from shared.settings import Settings
from shared.storage import ObjectStore

# Approved content may already be exported and archived content is final: reopen it first.
EDITABLE = frozenset({S.PENDING_REVIEW, S.NEEDS_REVISION})


class VersionMismatch(Conflict):
    """The edit was made against a version that is no longer current."""

    code = "version_mismatch"


@dataclass(frozen=True)
class Edit:
    """Who changes which turn of which conversation to what."""

    owner_id: UUID
    editor_id: UUID
    conversation_id: UUID
    turn_number: int
    content: str
    expected_version: int | None = None


async def edit_turn(
    pool: asyncpg.Pool, storage: ObjectStore, queue: ArqRedis, settings: Settings,
    dedup: Deduplicator, edit: Edit,
) -> ConversationDetail:  # fmt: skip
    """Write the next version's object, then row, turn, version, history and near-duplicate
    marks in one transaction.

    The row lock is held from reading the current version to the commit, so two edits of one
    conversation run one after the other and neither is lost. A failure anywhere deletes the
    new object again and leaves the old version current.
    """
    uploaded: str | None = None
    try:
        async with tenant_transaction(pool, edit.owner_id) as conn:
            current = await _editable(conn, edit)
            document = await versions.read(storage, current.object_key)
            edited = versions.edit_turn(document, edit.turn_number, edit.content)
            if edited.old_content == edit.content:  # nothing changed: no new version
                return await detail(conn, current.id)
            marks = await recheck.prepare(dedup, edit.owner_id, current.id, _turns(edited))
            encoded = versions.encode(edit.owner_id, current.id, edited.document)
            await storage.put(encoded.key, encoded.body, content_type="application/gzip")
            uploaded = encoded.key
            await _commit_version(conn, current, edit, edited, encoded)
            await marks.apply(conn, current.created_at)
            result = await detail(conn, current.id)
    except BaseException:
        if uploaded is not None:
            await discard(storage, uploaded)
        raise
    await marks.publish()
    await judging.after_edit(pool, queue, settings, edit.owner_id, edit.conversation_id)
    return result


def _turns(edited: versions.EditedDocument) -> list[tuple[str, object]]:
    return [(turn.get("role", ""), turn.get("content")) for turn in edited.document["turns"]]


async def _editable(conn: asyncpg.Connection, edit: Edit) -> Conversation:
    """The locked row, when this edit may change it."""
    current = await get_visible(conn, edit.conversation_id, lock=True)
    if edit.expected_version is not None and edit.expected_version != current.document_version:
        raise VersionMismatch(
            f"the conversation is at version {current.document_version}, not "
            f"{edit.expected_version}: reload it and edit again",
            details={"current_version": current.document_version,
                     "expected_version": edit.expected_version},
        )  # fmt: skip
    if current.status not in EDITABLE:
        allowed = sorted(status.value for status in EDITABLE)
        raise Conflict(
            f"a conversation in {current.status.value} cannot be edited; allowed: "
            f"{', '.join(allowed)}",
            code="not_editable", details={"status": current.status.value, "allowed": allowed},
        )  # fmt: skip
    if not 1 <= edit.turn_number <= current.turn_count:
        raise NotFound(
            f"turn {edit.turn_number} does not exist: the conversation has "
            f"{current.turn_count} turns (numbered 1 to {current.turn_count})",
            details={"turn_number": edit.turn_number, "turn_count": current.turn_count},
        )
    return current


async def _commit_version(
    conn: asyncpg.Connection, current: Conversation, edit: Edit,
    edited: versions.EditedDocument, encoded: versions.EncodedVersion,
) -> Conversation:  # fmt: skip
    new_version = current.document_version + 1
    version = ConversationVersion(
        version=new_version, object_key=encoded.key, byte_size=len(encoded.body),
        sha256=encoded.sha256, turn_count=edited.turn_count, total_tokens=edited.total_tokens,
        created_by=edit.editor_id, change_summary=f"edited turn {edit.turn_number}",
        created_at=datetime.now(UTC),
    )  # fmt: skip
    await versions_repo.record_current(conn, current)
    await versions_repo.insert(conn, current, version)
    await versions_repo.update_turn(conn, current.id, edit.turn_number, _turn_fields(edit.content))
    target = workflow.after_edit(current.status)
    changes: dict[str, Any] = {
        "quality_score": edited.quality.score, "quality_metrics": dict(edited.quality.parts),
        "quality_source": "structural", "status": target.value,
    }  # fmt: skip
    if edited.role == "system":
        changes["system_prompt"] = edit.content
    updated = await versions_repo.point_at(conn, current.id, version, changes)
    diff = versions.turn_diff(
        edit.turn_number, edited.old_content, edit.content,
        old_version=current.document_version, new_version=new_version,
    )  # fmt: skip
    await repo.add_review(
        conn, owner_id=current.owner_id, conversation_id=current.id,
        action="edit",
        from_status=current.status.value, to_status=target.value, reviewer_id=edit.editor_id,
        notes=f"edited turn {edit.turn_number}", diff=diff, document_version=new_version,
    )  # fmt: skip
    return updated


def _turn_fields(content: str) -> dict[str, Any]:
    stats = measure(content)
    return {
        "content": content, "token_count": stats.token_count, "char_count": stats.char_count,
        "word_count": stats.word_count, "sentence_count": stats.sentence_count,
    }  # fmt: skip


async def list_versions(conn: asyncpg.Connection, conversation_id: UUID) -> VersionList:
    """Every version, oldest first; a never-edited conversation has its version 1 only."""
    current = await get_visible(conn, conversation_id)
    recorded = await versions_repo.listed(conn, conversation_id)
    if not recorded:
        recorded = [_original(current)]
    items = [_version_out(v, current.document_version) for v in recorded]
    return VersionList(items=items, current_version=current.document_version)


def _version_out(v: ConversationVersion, current_version: int) -> VersionOut:
    return VersionOut(
        version=v.version, created_at=v.created_at, created_by=v.created_by,
        byte_size=v.byte_size, sha256=v.sha256, turn_count=v.turn_count,
        total_tokens=v.total_tokens, summary=v.change_summary,
        current=v.version == current_version,
    )  # fmt: skip


def _original(current: Conversation) -> ConversationVersion:
    return ConversationVersion(
        version=current.document_version, object_key=current.object_key,
        byte_size=current.byte_size, sha256=current.sha256, turn_count=current.turn_count,
        total_tokens=current.total_tokens, created_by=None,
        change_summary=f"original ({current.source.value})", created_at=current.created_at,
    )  # fmt: skip


async def version_key(conn: asyncpg.Connection, conversation_id: UUID, version: int) -> str:
    """The object key of one version of the document; 404 for a version that does not exist."""
    current = await get_visible(conn, conversation_id)
    if version == current.document_version:
        return current.object_key
    found = await versions_repo.get(conn, conversation_id, version)
    if found is None:
        raise NotFound(
            f"version {version} does not exist: the conversation has versions 1 to "
            f"{current.document_version}",
            details={"version": version, "current_version": current.document_version},
        )
    return found.object_key


async def file_link(
    conn: asyncpg.Connection, storage: ObjectStore, id: UUID, version: int, ttl_seconds: int
) -> FileLink:
    """A signed URL for one version of the stored document."""
    key = await version_key(conn, id, version)
    found = await get_visible(conn, id)
    filename = f"{found.conversation_id}.v{version}.json.gz"
    url = await storage.presign_get(key, expires_in=ttl_seconds, filename=filename)
    return FileLink(url=url, expires_at=datetime.now(UTC) + timedelta(seconds=ttl_seconds))


async def read_version(
    conn: asyncpg.Connection, storage: ObjectStore, id: UUID, version: int
) -> dict[str, Any]:
    """One version's stored document, decoded (404 for a version that does not exist)."""
    return await versions.read(storage, await version_key(conn, id, version))
