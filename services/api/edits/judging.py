"""The one place a turn edit asks for the new text to be judged.

The edit cleared the judge's scores (they judged the old text) and set the structural score;
with JUDGE_AFTER_EDIT on, a quality_check job judges the new version, after the edit's commit.
"""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.logging import get_logger
from shared.quality.enqueue import enqueue_judging
from shared.queue import ArqRedis
from shared.settings import Settings

log = get_logger(__name__)


async def after_edit(
    pool: asyncpg.Pool, queue: ArqRedis, settings: Settings, owner_id: UUID, conversation_id: UUID
) -> None:
    """Enqueue judging of the edited conversation (unless JUDGE_AFTER_EDIT is off)."""
    if not settings.judge_after_edit:
        return
    job = await enqueue_judging(pool, queue, settings, owner_id, [conversation_id], reason="edit")
    if job is not None:
        log.info("conversations.edit.judging", conversation_id=str(conversation_id),
                 job_id=str(job.batch.id))  # fmt: skip
