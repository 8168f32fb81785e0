"""Judging after landing: a generation job whose config says `judge` has each new conversation
judged, with its quality_check job written in the landing's own transaction.

So a conversation that lands always has its judge job: a worker killed between the landing's
commit and the enqueue leaves a job whose items are not in Redis, and the reconciler enqueues
them (shared/recovery.py). The job is written under a savepoint: a judging problem is logged
and never rolls the landing back.
"""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from shared.logging import get_logger
from shared.models.generation import BatchJob
from shared.quality.enqueue import JudgeJob, dispatch, plan
from shared.runtime import WorkerResources

log = get_logger(__name__)


@dataclass(frozen=True)
class JudgeAfterLanding:
    """The landing hook of a generation job that judges what it lands."""

    resources: WorkerResources
    owner_id: UUID

    async def plan(self, conn: asyncpg.Connection, conversation_id: UUID) -> JudgeJob | None:
        """Write the judge job in the landing's transaction (under a savepoint)."""
        try:
            async with conn.transaction():
                return await plan(
                    conn, self.owner_id, [conversation_id], self.resources.settings,
                    reason="generated",
                )  # fmt: skip
        except Exception as exc:  # the conversation lands anyway; judging can be asked again
            log.warning(
                "generator.judge.plan_failed", conversation_id=str(conversation_id),
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip
            return None

    async def dispatch(self, job: JudgeJob | None) -> None:
        """Enqueue the job's items after the commit (the reconciler does it if this fails)."""
        if job is None:
            return
        try:
            await dispatch(self.resources.redis, self.resources.settings, job)
        except Exception as exc:
            log.warning(
                "generator.judge.enqueue_failed", batch_id=str(job.batch.id),
                error=f"{type(exc).__name__}: {exc}",
            )  # fmt: skip


def after_landing(resources: WorkerResources, batch: BatchJob) -> JudgeAfterLanding | None:
    """The hook ItemRun lands with (None: the job does not judge)."""
    if batch.job_type != "generation" or not batch.config.get("judge", False):
        return None
    return JudgeAfterLanding(resources, batch.owner_id)
