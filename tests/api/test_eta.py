"""Estimates and ETAs true for the provider in use; exports report an ETA and a duration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import httpx
import pytest

from services.api.openapi_examples import SEED_FILE
from shared.db.pool import tenant_transaction
from tests.support.factories import Account


async def test_offline_estimate_does_not_assume_the_rate_limit(
    client: httpx.AsyncClient, account: Account
) -> None:
    template = {"user_prompt_template": "Talk about {{topic}}."}
    body = {"items": [{"template": template, "topic": f"t{i}"} for i in range(90)]}
    response = await client.post("/v1/generation-jobs/estimate", json=body, headers=account.headers)
    estimate = response.json()
    assert (estimate["provider"], estimate["model"]) == ("offline", "offline-sample")
    # 90 requests at 50/min would be 108 s; the offline provider skips the limiter.
    assert estimate["estimated_duration_seconds"] == pytest.approx(4.5)
    assert estimate["cost_usd"] == 0


async def _export(client: httpx.AsyncClient, account: Account) -> str:
    created = await client.post("/v1/conversations", json=SEED_FILE, headers=account.headers)
    assert created.status_code == 201, created.text
    body = {"config": {"scope": "all", "format": "jsonl"}}
    response = await client.post("/v1/exports", json=body, headers=account.headers)
    assert response.status_code == 202, response.text
    export_id: str = response.json()["id"]
    return export_id


async def _set(
    pool: asyncpg.Pool, account: Account, export_id: str, sql: str, *args: object
) -> None:
    async with tenant_transaction(pool, account.user.id) as conn:
        await conn.execute(f"UPDATE export_logs SET {sql} WHERE id = $1", UUID(export_id), *args)


async def test_export_eta_while_processing_and_duration_when_done(
    client: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    export_id = await _export(client, account)
    url = f"/v1/exports/{export_id}"
    queued = (await client.get(url, headers=account.headers)).json()
    assert (queued["eta_seconds"], queued["duration_seconds"]) == (None, None)

    started = datetime.now(UTC) - timedelta(seconds=30)
    await _set(db, account, export_id,
               "status = 'processing', started_at = $2, progress_percent = 25",
               started)  # fmt: skip
    running = (await client.get(url, headers=account.headers)).json()
    assert running["eta_seconds"] == pytest.approx(90, abs=5)  # 30 s for 25 % -> 90 s left
    assert running["duration_seconds"] is None

    await _set(db, account, export_id,
               "status = 'completed', progress_percent = 100, completed_at = $2",
               started + timedelta(seconds=42.5))  # fmt: skip
    done = (await client.get(url, headers=account.headers)).json()
    assert done["eta_seconds"] is None
    assert done["duration_seconds"] == pytest.approx(42.5)
