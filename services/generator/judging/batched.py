"""quality_check jobs in Message Batches: the judge's requests built at submission, results
landed exactly like a live judgement (JudgeRun's answer handling, at the batch price).

The structural gate runs when the round is submitted: a refused conversation's item fails
there, under the round's lease, with the reason in its judge_error, and is not sent.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg

from services.generator import items
from services.generator.batch_items import BatchItemRun
from services.generator.judging.gate import structural_problems, structural_score
from services.generator.judging.run import JudgeRun, Refusal, prepare
from services.generator.providers import Fleet
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.db.repositories import quality as quality_repo
from shared.llm.params import message_params
from shared.llm.pricing import CacheTtl
from shared.models.generation import (
    GenerationItem,
    ItemStatus,
    JobMode,
    MessageBatch,
)
from shared.quality.judge import TOOL, TOOL_CHOICE, prefix, transcript
from shared.runtime import WorkerResources


class BatchJudgeRun(BatchItemRun, JudgeRun):
    """A judge item of an open round whose result just arrived."""

    @classmethod
    async def load_judge(
        cls, fleet: Fleet, resources: WorkerResources, owner_id: Any, row: MessageBatch, index: int
    ) -> BatchJudgeRun | None:
        """The run (conversation and pinned rubric loaded) if the item still runs under the
        round's lease; a conversation deleted meanwhile fails the item."""
        base = await cls.load(fleet, resources, owner_id, row, index)
        if base is None:
            return None
        built = await prepare(
            fleet, resources.pool, resources.storage, base.ref, (base.batch, base.item),
            base.budget, cls=cls,
        )  # fmt: skip
        if isinstance(built, Refusal):
            await items.fail(resources.pool, base.ref, built.code, built.message)
            return None
        assert isinstance(built, BatchJudgeRun)
        built.mode = JobMode.BATCH
        return built


async def judge_params(
    conn: asyncpg.Connection,
    fleet: Fleet,
    lease: UUID,
    taken: list[GenerationItem],
    caching: bool,
) -> dict[int, dict[str, Any]]:
    """Each sendable item's Messages body by index; refused items fail here (same transaction)."""
    bodies: dict[int, dict[str, Any]] = {}
    for item in taken:
        request = item.request
        conversation_id, version = request.judge_conversation_id, request.judge_rubric_version
        found = await quality_repo.subject(conn, conversation_id) if conversation_id else None
        rubric = await quality_repo.rubric_version(conn, version) if version else None
        reason = _refusal(found, rubric, fleet)
        if reason is not None or found is None or rubric is None:
            await _refuse(conn, item, lease, reason or "conversation_gone: deleted", found)
            continue
        bodies[item.item_index] = message_params(
            model=fleet.provider.model, system=prefix(rubric),
            messages=[{"role": "user", "content": transcript(found.turns, found.brief)}],
            max_tokens=request.max_tokens, temperature=request.temperature,
            cache_ttl=CacheTtl.ONE_HOUR if caching else None, tools=[TOOL],
            tool_choice=TOOL_CHOICE,
        )  # fmt: skip
    return bodies


def _refusal(found: quality_repo.Subject | None, rubric: object | None, fleet: Fleet) -> str | None:
    if found is None:
        return "conversation_gone: the conversation was deleted before it was judged"
    if rubric is None:
        return "rubric_missing: the pinned rubric version is not stored"
    problems = structural_problems(found.turns, fleet.settings.judge_max_conversation_chars)
    if problems:
        return "structural_gate: not sent to the judge: " + "; ".join(problems)
    return None


async def _refuse(
    conn: asyncpg.Connection,
    item: GenerationItem,
    lease: UUID,
    reason: str,
    found: quality_repo.Subject | None,
) -> None:
    code, _, message = reason.partition(": ")
    await repo.finish_item(
        conn, item.batch_id, item.item_index, status=ItemStatus.FAILED, lease_id=lease,
        error_code=code, error=message,
    )  # fmt: skip
    if found is not None:
        await quality_repo.write_failure(
            conn, found.id, reason, None, structural_score(found.turns)
        )


async def owner_batch_type(resources: WorkerResources, owner: UUID, batch_id: UUID) -> str | None:
    """The job's type (which fleet and request builder its rounds use)."""
    async with tenant_transaction(resources.pool, owner) as conn:
        batch = await repo.get_batch(conn, batch_id)
    return batch.job_type if batch is not None else None
