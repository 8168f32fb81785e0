"""Each worker service runs as a real process: the API enqueues a ping, the worker answers."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.support.factories import Account
from tests.support.servers import ROOT, WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

SERVICES = ("generator", "exporter", "janitor")


@pytest.fixture(scope="module")
def workers(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, int]]:
    """One process per worker service, each with its own metrics port."""
    logs = tmp_path_factory.mktemp("worker-logs")
    ports = {service: free_port() for service in SERVICES}
    env = settings_env(settings)
    processes = [
        WorkerProcess(
            service,
            {**env, f"{service.upper()}_METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"},
            logs / f"{service}.log",
        )
        for service, port in ports.items()
    ]
    try:
        for _service, port in ports.items():
            wait_http(f"http://127.0.0.1:{port}/metrics")
        yield ports
    finally:
        for process in processes:
            process.stop()


async def _wait_done(
    client: httpx.AsyncClient, account: Account, service: str, job: str
) -> dict[str, Any]:
    for _ in range(200):
        response = await client.get(f"/v1/ops/jobs/{service}/{job}", headers=account.headers)
        assert response.status_code == 200, response.text
        if response.json()["status"] == "complete":
            return dict(response.json())
        await asyncio.sleep(0.05)
    raise AssertionError(f"{service} never ran {job}")


@pytest.mark.parametrize("service", SERVICES)
async def test_api_enqueues_and_worker_answers(
    workers: dict[str, int], client: httpx.AsyncClient, account: Account, service: str
) -> None:
    queued = await client.post("/v1/ops/ping", json={"service": service}, headers=account.headers)
    assert queued.status_code == 202
    job = queued.json()["job_id"]
    done = await _wait_done(client, account, service, job)
    assert done["success"] is True
    result = done["result"]
    assert result["service"] == service
    assert result["db_role"] == "convoforge"
    assert result["storage"] == "local"


@pytest.mark.parametrize("service", SERVICES)
async def test_worker_metrics_count_the_job(
    workers: dict[str, int], client: httpx.AsyncClient, account: Account, service: str
) -> None:
    queued = await client.post("/v1/ops/ping", json={"service": service}, headers=account.headers)
    await _wait_done(client, account, service, queued.json()["job_id"])
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"http://127.0.0.1:{workers[service]}/metrics")).text
    line = f'convoforge_worker_jobs_total{{function="ping",outcome="ok",service="{service}"}}'
    assert line in text
    assert "convoforge_worker_job_start_latency_seconds_bucket" in text


async def test_unknown_job_is_404(
    workers: dict[str, int], client: httpx.AsyncClient, account: Account
) -> None:
    response = await client.get("/v1/ops/jobs/generator/ping:nope", headers=account.headers)
    assert response.status_code == 404


def test_cli_ping_round_trip(workers: dict[str, int], settings: Settings, db: object) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "shared.cli", "ping", "exporter", "--timeout", "20"],
        cwd=ROOT,
        env={**settings_env(settings), "PATH": str(Path(sys.executable).parent)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "'service': 'exporter'" in out.stdout
