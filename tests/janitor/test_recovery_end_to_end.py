"""A generation batch whose jobs Redis lost is recovered by the janitor and finished by a real
generator process."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest

from services.janitor.context import JanitorDeps
from services.janitor.recovery import item_job_id
from services.janitor.runner import run_task
from shared.queue import queue_name
from tests.janitor.rows import ago, update
from tests.support.api import api_client
from tests.support.factories import Account
from tests.support.servers import WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

pytestmark = pytest.mark.timeout(120)  # starts a generator process


async def _batch(api: Any, account: Account, batch_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/generation-jobs/{batch_id}", headers=account.headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_batch_that_lost_its_jobs_completes_after_recovery(
    local_deps: JanitorDeps, account: Account, tmp_path: Path
) -> None:
    deps = local_deps
    async with api_client(deps.settings) as api:
        body = {"items": [{"persona": "an anxious investor", "topic": "market volatility"}] * 2}
        created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
        assert created.status_code == 202, created.text
        batch_id = created.json()["id"]

        # Redis loses the queue (a flush, a failover without persistence) before any worker ran.
        jobs = [item_job_id(UUID(batch_id), index) for index in range(2)]
        await deps.redis.delete(queue_name(deps.settings, "generator"),
                                *(f"arq:job:{jid}" for jid in jobs))  # fmt: skip
        await update(deps.pool, account.user.id, "batch_jobs", UUID(batch_id),
                     created_at=ago(hours=1))  # fmt: skip

        report = await run_task(deps, "recover-stuck-jobs")
        assert report.counts["items_requeued"] == 2

        port = free_port()
        env = {**settings_env(deps.settings), "GENERATOR_METRICS_PORT": str(port),
               "METRICS_HOST": "127.0.0.1"}  # fmt: skip
        generator = WorkerProcess("generator", env, tmp_path / "generator.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics", timeout=45)
            deadline = time.monotonic() + 45
            while (batch := await _batch(api, account, batch_id))["completed_at"] is None:
                assert time.monotonic() < deadline, (batch, generator.output()[-2000:])
                await asyncio.sleep(0.2)
        finally:
            generator.stop()
    assert (batch["status"], batch["completed_items"]) == ("completed", 2)
