"""Score a parsed conversation and land it with its item in one transaction.

The conversations' write path (shared/conversations/store.py): object first, then the row, turns
and first review in one transaction, object deleted again if that fails. Here the same
transaction also flips the item to `completed` and moves the batch counters, so a conversation
exists exactly when its item counts as completed, whatever crashes or runs twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol
from uuid import UUID

import asyncpg

from services.generator import metrics
from services.generator.items import ItemRef, adopt, already_booked, book, write_log
from services.generator.parsing import ParsedGeneration
from shared.conversations.document import draft_from_generated, finish_draft
from shared.conversations.scoring import score_conversation, status_for
from shared.conversations.store import (
    DuplicateConversation,
    EncodedDocument,
    ItemAlreadyStored,
    discard,
    encode,
    insert_row,
    upload,
)
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.dedup.service import Check, Deduplicator
from shared.logging import get_logger
from shared.models.conversation import Conversation, ConversationDraft, ConversationStatus
from shared.models.generation import ItemRequest, ItemStatus, NewLog
from shared.storage import ObjectStore

log = get_logger(__name__)
OFFLINE_FLAG = "offline sample: written by the offline provider, not by Claude"
_REFERENCES = ("template_id", "scenario_id", "edge_case_id", "parent_id", "parent_type")


@dataclass(frozen=True)
class Produced:
    """What the call produced, with what it cost so far (every attempt of the item)."""

    parsed: ParsedGeneration
    model: str
    offline: bool
    cost_usd: Decimal
    estimated_cost_usd: Decimal
    duration_ms: int


class LandingHook(Protocol):
    """Work written in the landing's transaction and finished after its commit (the judge)."""

    async def plan(self, conn: asyncpg.Connection, conversation_id: UUID) -> Any:
        """In the landing's transaction, once the conversation row exists."""
        ...

    async def dispatch(self, planned: Any) -> None:
        """After the commit, with what `plan` returned."""
        ...


class _LeaseLost(Exception):
    """The item is no longer ours; roll the landing back."""


def conversation_slug(batch_id: UUID, index: int) -> str:
    """The item's deterministic external conversation_id."""
    return f"gen-{batch_id}-{index:05d}"


def build_draft(ref: ItemRef, request: ItemRequest, produced: Produced) -> ConversationDraft:
    """The conversation draft: §5 score, status by threshold, lineage and generation facts."""
    new = [{"role": t["role"], "content": t["content"]} for t in produced.parsed.turns]
    turns = [*request.kept_turns, *new]
    quality = score_conversation(turns)
    status, flagged = status_for(quality.score, request.quality_threshold)
    flag_reason = (
        f"quality {quality.score} below threshold {request.quality_threshold}" if flagged else None
    )
    tags = ["generated"]
    parameters: dict[str, object] = {**request.parameters, "provider": "anthropic"}
    if produced.offline:
        flagged, flag_reason, tags = True, OFFLINE_FLAG, [*tags, "offline-sample"]
        parameters |= {"provider": "offline", "offline_sample": True}
    return draft_from_generated(
        conversation_id=conversation_slug(ref.batch_id, ref.index),
        title=produced.parsed.title or _fallback_title(request),
        tier=request.tier,
        turns=turns,
        persona=request.persona, emotion=request.emotion, topic=request.topic,
        emotional_arc=request.emotional_arc, category=request.category, tags=tags,
        quality_score=quality.score, quality_metrics=dict(quality.parts),
        status=ConversationStatus(status), is_flagged=flagged, flag_reason=flag_reason,
        system_prompt=_system_prompt(request), model=produced.model,
        temperature=request.temperature, max_tokens=request.max_tokens, parameters=parameters,
        template_id=request.template_id, scenario_id=request.scenario_id,
        edge_case_id=request.edge_case_id, parent_id=request.parent_id,
        parent_type=request.parent_type, generation_job_id=ref.batch_id,
        generation_item_index=ref.index, estimated_cost_usd=produced.estimated_cost_usd,
        actual_cost_usd=produced.cost_usd, generation_duration_ms=produced.duration_ms,
    )  # fmt: skip


def _system_prompt(request: ItemRequest) -> str | None:
    """The request's system prompt, or a kept system turn's text (kept turns stay as they were:
    a revision never puts a new system turn before them)."""
    kept = request.kept_turns
    if kept and kept[0]["role"] == "system":
        return str(kept[0]["content"])
    return None if kept else request.system_prompt or None


def _fallback_title(request: ItemRequest) -> str:
    parts = [part for part in (request.persona, request.topic) if part]
    return " - ".join(parts) or f"Generated {request.tier.value} conversation"


async def land(
    pool: asyncpg.Pool,
    storage: ObjectStore,
    dedup: Deduplicator,
    ref: ItemRef,
    draft: ConversationDraft,
    attempt: NewLog,
    template_id: UUID | None,
    hook: LandingHook | None = None,
) -> UUID | None:
    """Store the conversation (checked for near-duplicates), book its call and complete the
    item, with `hook`'s work in the same transaction; None if it was lost."""
    check = await dedup.check(ref.owner_id, [draft])
    landing = _Landing(check, ref, attempt, hook)
    try:
        return await _store(pool, storage, landing, draft, template_id)
    except asyncpg.ForeignKeyViolationError:
        # A source (template, scenario, edge case, parent) was deleted while the item ran:
        # keep the conversation, without the reference.
        log.warning("generator.item.source_deleted")
        return await _store(pool, storage, landing, detached(draft), None)


def detached(draft: ConversationDraft) -> ConversationDraft:
    """The draft without references to rows that may be gone."""
    cleared = dict.fromkeys(_REFERENCES)
    return finish_draft(draft.model_copy(update=cleared))


@dataclass(frozen=True)
class _Landing:
    check: Check
    ref: ItemRef
    attempt: NewLog
    hook: LandingHook | None


async def _store(
    pool: asyncpg.Pool,
    storage: ObjectStore,
    landing: _Landing,
    draft: ConversationDraft,
    template_id: UUID | None,
) -> UUID | None:
    ref = landing.ref
    doc = encode(ref.owner_id, draft)
    await upload(storage, doc)
    try:
        conversation, planned = await _insert(pool, landing, draft, doc, template_id)
    except (ItemAlreadyStored, DuplicateConversation, _LeaseLost) as exc:
        await discard(storage, doc.key)
        log.info("generator.item.already_landed", reason=type(exc).__name__)
        # The call was still paid for; whoever landed it did the hook's work.
        await book(pool, ref, template_id, landing.attempt, consumed=True)
        return await adopt(pool, ref)
    except BaseException:
        await discard(storage, doc.key)
        raise
    await landing.check.publish()
    if landing.hook is not None:
        await landing.hook.dispatch(planned)
    _observe(draft)
    return conversation.id


async def _insert(
    pool: asyncpg.Pool,
    landing: _Landing,
    draft: ConversationDraft,
    doc: EncodedDocument,
    template_id: UUID | None,
) -> tuple[Conversation, Any]:
    ref, check, attempt = landing.ref, landing.check, landing.attempt
    async with tenant_transaction(pool, ref.owner_id) as conn:
        # The batch row first (lock order), then the rows this landing adds or flips; a call
        # already booked as lost (reserved cost) is booked again only by the difference.
        cost = attempt.cost_usd - await already_booked(conn, ref, attempt)
        await repo.settle(conn, ref.batch_id, cost=cost, completed=1)
        await check.load(conn)
        marked = check.mark(0, draft)
        conversation = await insert_row(conn, ref.owner_id, marked, doc, action="generated")
        item = await repo.finish_item(
            conn, ref.batch_id, ref.index, status=ItemStatus.COMPLETED, lease_id=ref.lease_id,
            conversation_id=conversation.id, add_cost=cost, add_attempt=True, counted=True,
        )  # fmt: skip
        if item is None:
            raise _LeaseLost
        await write_log(conn, ref, template_id, attempt, conversation.id)
        check.accept(0, conversation.id, conversation.created_at)
        await check.save(conn)
        planned = await landing.hook.plan(conn, conversation.id) if landing.hook else None
        return conversation, planned


def _observe(draft: ConversationDraft) -> None:
    metrics.CONVERSATIONS.labels(draft.tier.value, draft.status.value).inc()
    if draft.quality_score is not None:
        metrics.QUALITY.observe(draft.quality_score)
