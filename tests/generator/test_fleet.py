"""Real `python -m services.generator` replicas against the fake Claude API with a small limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from uuid import UUID

import asyncpg
import httpx
import pytest

from shared.settings import Settings
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropicProcess
from tests.generator.harness import (
    conversations,
    fake_settings,
    items,
    logs,
    plain_items,
    wait_batch,
)
from tests.support.api import api_client
from tests.support.factories import Account
from tests.support.servers import WorkerProcess, free_port
from tests.support.settings import settings_env

# A short window makes the test quick; its safety margin is a larger share of it than in
# production (0.25 s of 60 s) because scheduling jitter on a busy test machine does not shrink
# with the window.
LIMIT, WINDOW, MARGIN = 5, 2.0, 0.5


class LimitedFake:
    """The fake as its own process (no GIL shared with the test), enforcing LIMIT per WINDOW."""

    def __init__(self) -> None:
        self.process = FakeAnthropicProcess(
            "--rpm", str(LIMIT), "--window-seconds", str(WINDOW), "--latency", "0.3"
        )
        self.base_url = self.process.start()

    def script(self, *steps: str) -> None:
        """Scripted answers for the next requests."""
        httpx.post(f"{self.base_url}/_fake/config", json={"script": list(steps)}).raise_for_status()

    def record(self) -> tuple[list[float], int]:
        """Arrival times of every request and the fake's over-limit count."""
        body = httpx.get(f"{self.base_url}/_fake/requests").json()
        return [r["arrived_at"] for r in body["requests"]], int(body["over_limit_count"])


@pytest.fixture
def limited_fake() -> Iterator[LimitedFake]:
    """A fake that enforces LIMIT requests per WINDOW seconds itself."""
    fake = LimitedFake()
    try:
        yield fake
    finally:
        fake.process.stop()


@pytest.fixture
def fleet_settings(settings: Settings, limited_fake: LimitedFake) -> Settings:
    """Replica settings: the fake's limit, short timeouts so a killed replica's jobs return fast."""
    return fake_settings(
        settings, limited_fake.base_url, DEFAULT_API_KEY,
        llm_requests_per_minute=LIMIT, llm_rate_window_seconds=WINDOW,
        llm_rate_safety_margin_seconds=MARGIN, llm_timeout_seconds=2.0,
        generator_job_timeout_seconds=6.0, generator_heartbeat_seconds=0.5, generator_max_jobs=3,
        # The session database holds other tests' unfinished batches: leave them alone.
        recovery_enabled=False,
    )  # fmt: skip


def _replica(settings: Settings, logs_dir: Path, name: str) -> tuple[WorkerProcess, int]:
    port = free_port()
    env = settings_env(settings) | {
        "GENERATOR_METRICS_PORT": str(port),
        "METRICS_HOST": "127.0.0.1",
    }
    return WorkerProcess("generator", env, logs_dir / f"{name}.log"), port


def _max_per_window(arrivals: list[float]) -> int:
    times = sorted(arrivals)
    return max((sum(1 for t in times[i:] if t - start < WINDOW) for i, start in enumerate(times)),
               default=0)  # fmt: skip


async def _metrics(port: int) -> str:
    async with httpx.AsyncClient() as http:
        return (await http.get(f"http://127.0.0.1:{port}/metrics")).text


def _jobs_run(text: str) -> float:
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("convoforge_worker_jobs_total") and 'function="generate_item"' in line
    )


async def test_two_replicas_share_the_limit_and_account_for_every_item(
    fleet_settings: Settings, limited_fake: LimitedFake, account: Account, pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:  # fmt: skip
    limited_fake.script("529", "malformed")
    replicas = [_replica(fleet_settings, tmp_path, f"replica-{n}") for n in range(2)]
    try:
        async with api_client(fleet_settings) as api:
            created = await api.post("/v1/generation-jobs", json=plain_items(10),
                                     headers=account.headers)  # fmt: skip
            assert created.status_code == 202, created.text
            batch_id = created.json()["id"]
            done = await wait_batch(api, account.headers, batch_id, within=40)
        scraped = [await _metrics(port) for _, port in replicas]
    finally:
        for process, _ in replicas:
            process.stop()

    arrivals, over_limit = limited_fake.record()
    assert over_limit == 0
    assert _max_per_window(arrivals) <= LIMIT
    assert all(_jobs_run(text) > 0 for text in scraped), "both replicas generate"
    metrics = "".join(scraped)
    for series in (
        'convoforge_llm_requests_total{model="claude-sonnet-4-5-20250929",outcome="success"}',
        'convoforge_llm_requests_total{model="claude-sonnet-4-5-20250929",outcome="overloaded"}',
        'convoforge_generation_conversations_total{outcome="pending_review",tier="template"}',
        'convoforge_generation_conversations_total{outcome="failed",tier="template"}',
        "convoforge_llm_tokens_total",
        "convoforge_llm_cost_usd_total",
        "convoforge_llm_limiter_wait_seconds_bucket",
        "convoforge_generation_quality_score_bucket",
    ):
        assert series in metrics, series
    assert (done["completed_items"], done["failed_items"]) == (9, 1)
    for item in await items(pool, account.user.id, batch_id):
        assert item["status"] in ("completed", "failed")
        assert item["status"] == "completed" or item["error_code"] == "no_json"
    assert len(await conversations(pool, account.user.id, batch_id)) == 9


async def test_killing_a_replica_mid_batch_loses_and_duplicates_nothing(
    fleet_settings: Settings, limited_fake: LimitedFake, account: Account, pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:  # fmt: skip
    first, _ = _replica(fleet_settings, tmp_path, "killed")
    second: WorkerProcess | None = None
    try:
        async with api_client(fleet_settings) as api:
            created = await api.post("/v1/generation-jobs", json=plain_items(10),
                                     headers=account.headers)  # fmt: skip
            batch_id = created.json()["id"]
            await _until_mid_batch(pool, account.user.id, batch_id)
            first.stop(kill=True)  # SIGKILL: in-flight calls, leases and arq jobs abandoned
            second, _ = _replica(fleet_settings, tmp_path, "successor")
            done = await wait_batch(api, account.headers, batch_id, within=45)
    finally:
        first.stop(kill=True)
        if second is not None:
            second.stop()

    assert (done["status"], done["completed_items"], done["failed_items"]) == ("completed", 10, 0)
    landed = await conversations(pool, account.user.id, batch_id)
    assert sorted(c["generation_item_index"] for c in landed) == list(range(10))
    attempts = await logs(pool, account.user.id, batch_id)
    assert Decimal(str(done["cost_so_far_usd"])) == sum(a["cost_usd"] for a in attempts)
    assert limited_fake.record()[1] == 0


async def _until_mid_batch(pool: asyncpg.Pool, owner: UUID, batch_id: str) -> None:
    """Wait until some items landed and at least one is running (mid-call when killed)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        states = [i["status"] for i in await items(pool, owner, batch_id)]
        if states.count("completed") >= 3 and "running" in states:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the first replica never got going")
