"""The one place a turn edit asks for the new text to be judged.

Issue 13's judge (branch issue-13-judge) provides the `shared/quality/` function that enqueues a
judge run for conversation ids; it is not on this branch yet. Until it is merged, an edited
conversation keeps the structural score the edit computed (quality_source = 'structural').
"""

from __future__ import annotations

from uuid import UUID

from shared.logging import get_logger
from shared.queue import ArqRedis

log = get_logger(__name__)


async def after_edit(queue: ArqRedis, owner_id: UUID, conversation_id: UUID) -> None:
    """Call site for enqueueing the judge after an edit (wire `shared.quality` in at merge)."""
    log.info("conversations.edit.judge_not_wired", conversation_id=str(conversation_id))
