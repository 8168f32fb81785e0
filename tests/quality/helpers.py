"""Judge test helpers: import a conversation, judge it, read its judge columns and calls."""

from __future__ import annotations

import uuid
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson

from tests.generator.harness import rows, wait_batch
from tests.support.factories import Account
from tests.support.seed_files import seed_file

JUDGE_COLUMNS = (
    "coherence_score, relevance_score, completeness_score, quality_overall, empathy_score, "
    "clarity_score, appropriateness_score, brand_voice_score, judge_rationale, "
    "judge_rubric_version, judge_model, judge_error, judged_at, quality_score, quality_source, "
    "status, is_flagged, flag_reason, template_id"
)


async def imported(
    api: httpx.AsyncClient,
    account: Account,
    *,
    user_text: str = "I just looked at my account and I'm scared. What should I do?",
    assistant_text: str = "That sounds frightening. Let's slow down and look at it together.",
    pairs: int = 3,
) -> str:
    """Import a seed file whose turns carry the given text; returns the conversation's id."""
    body = seed_file(
        f"judge-{uuid.uuid4().hex[:8]}", pairs=pairs, user_text=user_text,
        assistant_text=assistant_text,
    )  # fmt: skip
    response = await api.post(
        "/v1/conversations", content=orjson.dumps(body), headers=account.headers
    )
    assert response.status_code == 201, response.text
    conversation_id: str = response.json()["id"]
    return conversation_id


async def score(api: httpx.AsyncClient, account: Account, conversation_id: str) -> dict[str, Any]:
    """POST /score and wait for the job to finish; returns the finished job."""
    response = await api.post(f"/v1/conversations/{conversation_id}/score", headers=account.headers)
    assert response.status_code == 202, response.text
    return await wait_batch(api, account.headers, response.json()["id"])


async def judged(pool: asyncpg.Pool, account: Account, conversation_id: str) -> dict[str, Any]:
    """The conversation's judge columns."""
    found = await rows(
        pool, account.user.id, f"SELECT {JUDGE_COLUMNS} FROM conversations WHERE id = $1",
        UUID(conversation_id),
    )  # fmt: skip
    return found[0]


async def judge_logs(pool: asyncpg.Pool, account: Account, job_id: str) -> list[dict[str, Any]]:
    """A quality_check job's attempt rows, oldest first."""
    return await rows(
        pool, account.user.id,
        "SELECT item_index, status, purpose, model, error_code, input_tokens, output_tokens, "
        "cache_write_tokens, cache_read_tokens, cost_usd, conversation_id "
        "FROM generation_logs WHERE job_id = $1 ORDER BY created_at, id",
        UUID(job_id),
    )  # fmt: skip


async def job_items(pool: asyncpg.Pool, account: Account, job_id: str) -> list[dict[str, Any]]:
    """A job's items in index order."""
    return await rows(
        pool, account.user.id,
        "SELECT item_index, status, error_code, error, attempts, conversation_id "
        "FROM generation_items WHERE batch_id = $1 ORDER BY item_index",
        UUID(job_id),
    )  # fmt: skip
