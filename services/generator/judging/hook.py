"""Judging after landing: a generation job whose config says `judge` enqueues each new one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from shared.logging import get_logger
from shared.models.generation import BatchJob
from shared.quality.enqueue import enqueue_judging
from shared.runtime import WorkerResources

log = get_logger(__name__)


def after_landing(
    resources: WorkerResources, batch: BatchJob
) -> Callable[[UUID], Awaitable[None]] | None:
    """The hook ItemRun calls with each landed conversation (None: the job does not judge)."""
    if batch.job_type != "generation" or not batch.config.get("judge", False):
        return None

    async def judge(conversation_id: UUID) -> None:
        try:
            await enqueue_judging(
                resources.pool, resources.redis, resources.settings, batch.owner_id,
                [conversation_id], reason="generated",
            )  # fmt: skip
        except Exception as exc:  # the conversation landed; judging can be asked for again
            log.warning(
                "generator.judge.enqueue_failed", conversation_id=str(conversation_id),
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip

    return judge
