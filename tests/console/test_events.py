"""SSE job events across two API replicas: live progress, heartbeats, end, Last-Event-ID replay."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import orjson
import pytest

from shared.settings import Settings
from tests.console.conftest import Stack, start_stack
from tests.support.factories import Account
from tests.support.seed_files import seed_file
from tests.support.servers import WorkerProcess, free_port
from tests.support.settings import settings_env

Event = dict[str, Any]
# Starting processes on a busy 2-core machine takes a while; the module's set-up counts too.
pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def replicas(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Two API processes; no worker yet (a test starts the generator once it listens)."""
    logs = tmp_path_factory.mktemp("sse-stack")
    env = {"SSE_HEARTBEAT_SECONDS": "1", "GENERATOR_HEARTBEAT_SECONDS": "1"}
    stack = start_stack(settings, logs, apis=2, workers=(), env=env)
    yield stack
    stack.stop()


async def _events(response: httpx.Response) -> AsyncIterator[Event]:
    """Parse the stream: events (with id/event/data) and comments (as {"comment": ...})."""
    event: Event = {}
    async for line in response.aiter_lines():
        if line == "":
            if event:
                yield event
            event = {}
        elif line.startswith(":"):
            yield {"comment": line[1:].strip()}
        else:
            name, _, value = line.partition(": ")
            event[name] = orjson.loads(value) if name == "data" else value


async def _collect(url: str, account: Account, last_id: str | None = None) -> list[Event]:
    headers = dict(account.headers)
    if last_id:
        headers["Last-Event-ID"] = last_id
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client,
        client.stream("GET", url, headers=headers) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [event async for event in _events(response)]


async def test_both_replicas_stream_one_job_to_its_end(
    replicas: Stack, account: Account, settings: Settings, tmp_path: Any
) -> None:
    a, b = replicas.urls
    async with httpx.AsyncClient(base_url=a, headers=account.headers) as api:
        made = await api.post(
            "/v1/templates", json={"name": "P", "user_prompt_template": "Help me save."}
        )
        assert made.status_code == 201
        job = await api.post(
            "/v1/generation-jobs", json={"plan": {"template": 3}, "concurrency": 1}
        )
        assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    path = f"/v1/generation-jobs/{job_id}/events"
    streams = asyncio.gather(_collect(a + path, account), _collect(b + path, account))
    await asyncio.sleep(2)  # both listen while the job is still queued
    env = {
        **settings_env(settings),
        "GENERATOR_METRICS_PORT": str(free_port()),
        "METRICS_HOST": "127.0.0.1",
    }
    generator = WorkerProcess("generator", env, tmp_path / "generator.log")
    try:
        on_a, on_b = await asyncio.wait_for(streams, timeout=180)
    finally:
        generator.stop()
    for stream in (on_a, on_b):
        real = [e for e in stream if "event" in e]
        assert all(e.get("id") for e in real)
        assert real[-1]["event"] == "end"
        assert real[-1]["data"]["status"] == "completed"
        assert real[-1]["data"]["completed_items"] == 3
        progress = [e["data"]["completed_items"] for e in real if e["event"] == "progress"]
        assert progress == sorted(progress)
        assert len(progress) >= 2
    first_id = next(e["id"] for e in on_a if e.get("event") == "progress")
    replay = await asyncio.wait_for(_collect(b + path, account, last_id=first_id), timeout=30)
    ends = [e for e in replay if e.get("event") == "end"]
    assert len(ends) == 1
    assert ends[0]["data"]["status"] == "completed"
    assert ends[0]["id"] == on_a[-1]["id"] == on_b[-1]["id"]


async def test_heartbeats_while_queued_and_end_after_cancel(
    replicas: Stack, account: Account
) -> None:
    a, b = replicas.urls
    async with httpx.AsyncClient(base_url=a, headers=account.headers) as api:
        created = await api.post("/v1/conversations", json=seed_file("sse-export"))
        assert created.status_code == 201
        export = await api.post("/v1/exports", json={"config": {"scope": "all"}})
        assert export.status_code == 202, export.text
    export_id = export.json()["id"]
    path = f"/v1/exports/{export_id}/events"
    listening = asyncio.create_task(_collect(b + path, account))
    await asyncio.sleep(3)  # no exporter runs: the export waits, the stream beats
    async with httpx.AsyncClient(base_url=a, headers=account.headers) as api:
        assert (await api.post(f"/v1/exports/{export_id}/cancel")).status_code == 200
    events = await asyncio.wait_for(listening, timeout=30)
    assert {"comment": "heartbeat"} in events
    assert events[1]["event"] == "progress"
    assert events[1]["data"]["status"] == "queued"
    assert events[-1]["event"] == "end"
    assert events[-1]["data"]["status"] == "cancelled"
    late = await _collect(a + path, account, last_id="0-0")
    assert [e["event"] for e in late if "event" in e] == ["end"]


async def test_streams_are_authenticated_and_tenant_scoped(
    replicas: Stack, account: Account
) -> None:
    a = replicas.url
    async with httpx.AsyncClient(base_url=a) as api:
        missing = await api.get("/v1/generation-jobs/00000000-0000-0000-0000-000000000000/events")
        assert missing.status_code == 401
        other = await api.get(
            "/v1/exports/00000000-0000-0000-0000-000000000000/events", headers=account.headers
        )
        assert other.status_code == 404
