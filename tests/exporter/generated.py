"""Generated conversations for the export tests: template and parent references, reviews."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import asyncpg

from shared.conversations.document import draft_from_generated
from shared.conversations.store import store_conversation
from shared.db.pool import tenant_transaction
from shared.models.conversation import Conversation
from shared.storage import ObjectStore

ALTERNATING = [
    {"role": "user", "content": "I keep putting off my budget. <script>alert(1)</script>"},
    {"role": "assistant", "content": "Let's start small: one category this week. </blockquote>"},
    {"role": "user", "content": "Okay, groceries — \"roughly\" $400, maybe '=400'?"},
    {"role": "assistant", "content": "That works. 'Track' it daily, then review on Sunday."},
]


async def store_generated(
    pool: asyncpg.Pool,
    storage: ObjectStore,
    owner_id: UUID,
    *,
    slug: str,
    turns: Sequence[dict[str, str]] = ALTERNATING,
    tier: str = "scenario",
    parent: Conversation | None = None,
) -> Conversation:
    """A generated conversation from a template, approved with a review by its owner."""
    draft = draft_from_generated(
        conversation_id=slug, title=f"Generated {slug}", tier=tier,  # type: ignore[arg-type]
        turns=list(turns), system_prompt="You are a calm budgeting coach.",
        persona="busy parent", quality_score=7.5, model="claude-test-model",
        quality_metrics={"coherence": 8.0, "empathy": 7.0},
    )  # fmt: skip
    conv = await store_conversation(pool, storage, owner_id, draft, dedup=None)
    async with tenant_transaction(pool, owner_id) as conn:
        template_id = await conn.fetchval(
            "INSERT INTO templates (owner_id, name, user_prompt_template) "
            "VALUES ($1, $2, 'Talk about {{topic}}') RETURNING id",
            owner_id, f"template for {slug}",
        )  # fmt: skip
        await conn.execute(
            """UPDATE conversations SET template_id = $2, parent_id = $3, parent_type = $4,
                      status = 'approved', reviewed_by = $5, reviewed_at = now()
                WHERE id = $1""",
            conv.id, template_id, parent.id if parent else None,
            "conversation" if parent else None, owner_id,
        )  # fmt: skip
        await conn.execute(
            """INSERT INTO conversation_reviews (conversation_id, owner_id, action, from_status,
                   to_status, reviewer_id, notes)
               VALUES ($1, $2, 'approve', 'pending_review', 'approved', $2, 'Good, "clear" <b>')""",
            conv.id, owner_id,
        )  # fmt: skip
    return conv
