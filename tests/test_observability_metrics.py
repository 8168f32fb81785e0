"""Every service as a real process: the API under two uvicorn workers, the three arq workers.

Real work goes through each (pings, a generation batch, an export, janitor tasks), then every
`/metrics` is scraped and must show the series docs/operations.md documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from shared.queue import RUN_EXPORT, Service, create_redis, enqueue, job_id, job_state
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.janitor.rows import ago, conversation, insert_export, row, update
from tests.support.factories import Account
from tests.support.servers import ROOT, WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

# Setup starts four services (five interpreters); on a loaded two-core machine that alone
# can take most of a minute, so this module gets more than the suite's 60 s per test.
pytestmark = pytest.mark.timeout(120)
WORKERS: tuple[Service, ...] = ("generator", "exporter", "janitor")
HEALTHZ = ("convoforge_api_requests_total", {"method": "GET", "route": "/healthz", "status": "200"})
# The series docs/operations.md promises per service, present once each has done real work.
EXPECTED: dict[str, tuple[str, ...]] = {
    "api": (
        "convoforge_api_requests_total",
        "convoforge_api_request_duration_seconds",
        "convoforge_api_jobs_enqueued_total",
        "convoforge_api_processes",
    ),
    "generator": (
        "convoforge_worker_jobs_total",
        "convoforge_worker_job_duration_seconds",
        "convoforge_worker_job_start_latency_seconds",
        "convoforge_generation_conversations_total",
        "convoforge_generation_quality_score",
        "convoforge_llm_requests_total",
        "convoforge_llm_request_duration_seconds",
        "convoforge_llm_tokens_total",
        "convoforge_llm_cost_usd_total",
        "convoforge_llm_limiter_wait_seconds",
    ),
    "exporter": (
        "convoforge_worker_jobs_total",
        "convoforge_worker_job_start_latency_seconds",
        "convoforge_export_exports_total",
        "convoforge_export_duration_seconds",
        "convoforge_export_file_size_bytes",
        "convoforge_export_conversations_total",
    ),
    "janitor": (
        "convoforge_worker_jobs_total",
        "convoforge_janitor_runs_total",
        "convoforge_janitor_items_total",
        "convoforge_janitor_run_duration_seconds",
        "convoforge_janitor_last_success_timestamp_seconds",
        "convoforge_janitor_schedule_period_seconds",
        "convoforge_janitor_export_failure_ratio",
        "convoforge_queue_depth",
        "convoforge_queue_oldest_job_age_seconds",
    ),
}


@dataclass
class Stack:
    """The running processes, their ports and where they write."""

    settings: Settings
    ports: dict[str, int]
    processes: dict[str, WorkerProcess]
    metrics_dir: Path
    api_keys: list[str]

    def url(self, service: str) -> str:
        """Base URL of a service's HTTP endpoint."""
        return f"http://127.0.0.1:{self.ports[service]}"


def _seed_stale_counts(directory: Path) -> Path:
    """What a previous API run leaves behind: counts that must not leak into this run."""
    stale = directory / "counter_999999.db"
    values = MmapedDict(str(stale))  # type: ignore[no-untyped-call]
    key = mmap_key(
        "convoforge_api_requests", HEALTHZ[0], list(HEALTHZ[1]), list(HEALTHZ[1].values()), "x"
    )
    values.write_value(key, 1000.0, time.time())  # type: ignore[no-untyped-call]
    values.close()  # type: ignore[no-untyped-call]
    return stale


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """API (2 uvicorn workers, multiprocess metrics) plus the three workers, on a queue prefix
    of their own."""
    here = tmp_path_factory.mktemp("stack")
    stack_settings = settings.model_copy(
        update={"queue_prefix": f"{settings.queue_prefix}-obs", "log_level": "INFO",
                "janitor_sample_interval_seconds": 0.5}
    )  # fmt: skip
    metrics_dir = here / "api-metrics"
    metrics_dir.mkdir()
    _seed_stale_counts(metrics_dir)
    names: tuple[str, ...] = ("api", *WORKERS)
    ports = {name: free_port() for name in names}
    env = {**settings_env(stack_settings), "METRICS_HOST": "127.0.0.1"}
    api_env = {"API_HOST": "127.0.0.1", "API_PORT": str(ports["api"]), "API_WORKERS": "2",
               "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}  # fmt: skip
    processes = {"api": WorkerProcess("api", {**env, **api_env}, here / "api.log")}
    for worker in WORKERS:
        port_env = {f"{worker.upper()}_METRICS_PORT": str(ports[worker])}
        processes[worker] = WorkerProcess(worker, {**env, **port_env}, here / f"{worker}.log")
    stack = Stack(stack_settings, ports, processes, metrics_dir, [])
    try:
        for name in names:
            wait_http(stack.url(name) + ("/healthz" if name == "api" else "/metrics"), timeout=45)
        yield stack
    finally:
        for process in processes.values():
            process.stop()


def _sample(text: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


def _names(text: str) -> set[str]:
    return {family.name for family in text_string_to_metric_families(text)} | {
        sample.name for family in text_string_to_metric_families(text) for sample in family.samples
    }


def _healthz_per_process(directory: Path) -> dict[str, float]:
    counts = {}
    for path in directory.glob("counter_*.db"):
        merged = MultiProcessCollector.merge([str(path)])  # type: ignore[no-untyped-call]
        for family in merged:
            for sample in family.samples:
                if sample.name == HEALTHZ[0] and sample.labels == HEALTHZ[1]:
                    counts[path.stem] = sample.value
    return counts


# Runs first, while the workers have done nothing: the known series are already there at 0.
IDLE_SERIES: dict[str, tuple[str, dict[str, str]]] = {
    "exporter": ("convoforge_export_exports_total", {"format": "jsonl", "status": "failed"}),
    "generator": ("convoforge_generation_conversations_total",
                  {"tier": "template", "outcome": "failed"}),
    "janitor": ("convoforge_janitor_runs_total", {"task": "reconcile", "outcome": "error"}),
}  # fmt: skip


@pytest.mark.parametrize("worker", WORKERS)
async def test_idle_worker_exposes_its_series_at_zero(stack: Stack, worker: str) -> None:
    async with httpx.AsyncClient(base_url=stack.url(worker)) as http:
        text = (await http.get("/metrics")).text
    name, labels = IDLE_SERIES[worker]
    assert _sample(text, name, labels) == 0.0, f"{worker} exposes no {name}{labels} when idle"


async def test_api_totals_are_summed_over_worker_processes(stack: Stack) -> None:
    assert not (stack.metrics_dir / "counter_999999.db").exists()  # cleaned at start
    sent = 1  # the fixture's readiness probe
    async with httpx.AsyncClient(base_url=stack.url("api")) as http:
        while len(_healthz_per_process(stack.metrics_dir)) < 2 and sent < 2000:
            # New connections, many at once, so the kernel spreads them over both workers.
            fresh = [httpx.AsyncClient(base_url=stack.url("api")) for _ in range(20)]
            answers = await asyncio.gather(*(client.get("/healthz") for client in fresh))
            await asyncio.gather(*(client.aclose() for client in fresh))
            assert {answer.status_code for answer in answers} == {200}
            sent += len(answers)
        per_process = _healthz_per_process(stack.metrics_dir)
        assert len(per_process) == 2, per_process
        assert sum(per_process.values()) == sent
        for _ in range(6):  # whichever worker answers the scrape, the totals are the same
            text = (await http.get("/metrics")).text
            assert _sample(text, *HEALTHZ) == sent
            assert _sample(text, "convoforge_api_processes", {}) == 2


async def _scrape(url: str) -> str:
    # A connection of its own each time: a kept-alive one may belong to a killed worker.
    async with httpx.AsyncClient() as http:
        return (await http.get(url)).text


async def test_a_dead_api_worker_is_marked_dead_and_replaced(stack: Stack) -> None:
    live = sorted(stack.metrics_dir.glob("gauge_livesum_*.db"))
    assert len(live) == 2
    victim = int(live[0].stem.rsplit("_", 1)[1])
    metrics = stack.url("api") + "/metrics"
    before = _sample(await _scrape(metrics), *HEALTHZ)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while True:  # uvicorn's supervisor notices the death and starts a replacement
        text = await _scrape(metrics)
        files = {p.stem for p in stack.metrics_dir.glob("gauge_livesum_*.db")}
        replaced = _sample(text, "convoforge_api_processes", {}) == 2
        if replaced and f"gauge_livesum_{victim}" not in files:
            break
        assert time.monotonic() < deadline, files
        await asyncio.sleep(0.2)
    assert len(files) == 2  # the dead worker's live gauge was dropped, so 2 and not 3
    assert _sample(text, *HEALTHZ) == before  # while its counts still count


async def _wait_job(stack: Stack, service: Service, jid: str) -> Any:
    redis = create_redis(stack.settings)
    try:
        deadline = time.monotonic() + 30
        while True:
            state = await job_state(redis, stack.settings, service, jid)
            if state.status == "complete":
                assert state.success, state.result
                return state.result
            assert time.monotonic() < deadline, f"{service} never finished {jid}"
            await asyncio.sleep(0.1)
    finally:
        await redis.aclose()


async def _enqueue(stack: Stack, service: Service, function: str, jid: str, *args: Any) -> str:
    redis = create_redis(stack.settings)
    try:
        await enqueue(redis, stack.settings, service, function, *args, job_id=jid)
    finally:
        await redis.aclose()
    return jid


async def _run_janitor_task(stack: Stack, task: str) -> None:
    """Enqueue a janitor task by its cron name; cron jobs keep no result, so watch the counter."""
    metrics = stack.url("janitor") + "/metrics"
    done = {"task": task, "outcome": "ok"}
    before = _sample(await _scrape(metrics), "convoforge_janitor_runs_total", done) or 0
    await _enqueue(stack, "janitor", task, job_id(task, uuid.uuid4().hex))
    deadline = time.monotonic() + 30
    while (_sample(await _scrape(metrics), "convoforge_janitor_runs_total", done) or 0) <= before:
        assert time.monotonic() < deadline, f"the janitor never ran {task}"
        await asyncio.sleep(0.1)


async def _generate(http: httpx.AsyncClient, account: Account) -> None:
    body = {"items": [{"persona": "an anxious investor", "topic": "market volatility"}] * 2}
    created = await http.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    deadline = time.monotonic() + 40
    while True:
        batch = (await http.get(f"/v1/generation-jobs/{created.json()['id']}",
                                headers=account.headers)).json()  # fmt: skip
        if batch["status"] in {"completed", "failed"} and batch["completed_at"]:
            assert batch["completed_items"] == 2, batch
            return
        assert time.monotonic() < deadline, batch
        await asyncio.sleep(0.2)


async def _export_then_expire(
    stack: Stack, db: asyncpg.Pool, http: httpx.AsyncClient, account: Account
) -> None:
    owner = account.user.id
    storage = LocalObjectStore(stack.settings.storage_local_dir, base_url="http://x",
                               signing_secret=b"x")  # fmt: skip
    await conversation(db, storage, owner)
    export_id = await insert_export(db, owner, status="queued")
    jid = await _enqueue(stack, "exporter", RUN_EXPORT, job_id("export", export_id), str(export_id))
    await _wait_job(stack, "exporter", jid)
    done = await row(db, owner, "export_logs", export_id)
    assert done is not None
    assert done["status"] == "completed", done
    assert await storage.head(done["object_key"]) is not None

    await update(db, owner, "export_logs", export_id, expires_at=ago(minutes=1))
    await _run_janitor_task(stack, "expire-exports")
    expired = await row(db, owner, "export_logs", export_id)
    assert expired is not None
    assert expired["status"] == "expired"
    assert await storage.head(done["object_key"]) is None
    download = await http.get(f"/v1/exports/{export_id}/download", headers=account.headers)
    assert download.status_code == 410, download.text


async def test_every_service_shows_its_documented_series_after_real_work(
    stack: Stack, db: asyncpg.Pool, account: Account
) -> None:
    stack.api_keys.append(account.key)
    async with httpx.AsyncClient(base_url=stack.url("api"), timeout=10) as http:
        for service in WORKERS:
            queued = await http.post("/v1/ops/ping", json={"service": service},
                                     headers=account.headers)  # fmt: skip
            assert queued.status_code == 202, queued.text
            await _wait_job(stack, service, queued.json()["job_id"])
        await _generate(http, account)
        await _export_then_expire(stack, db, http, account)
        await _run_janitor_task(stack, "reconcile")
        await asyncio.sleep(1.0)  # one more janitor sample
        scraped = {"api": (await http.get("/metrics")).text}
        for service in WORKERS:
            scraped[service] = (await http.get(f"{stack.url(service)}/metrics")).text
    documented = (ROOT / "docs" / "operations.md").read_text()
    for name, series in EXPECTED.items():
        exposed = _names(scraped[name])
        missing = [metric for metric in series if metric not in exposed]
        assert missing == [], f"{name} lacks {missing}"
        undocumented = [metric for metric in series if f"`{metric}`" not in documented]
        assert undocumented == [], f"docs/operations.md does not list {undocumented}"
    janitor = scraped["janitor"]
    assert _sample(janitor, "convoforge_janitor_runs_total",
                   {"task": "expire-exports", "outcome": "ok"}) == 1  # fmt: skip
    assert _sample(janitor, "convoforge_queue_depth", {"queue": "generator"}) is not None
    assert _sample(janitor, "convoforge_janitor_schedule_period_seconds",
                   {"task": "reconcile"}) == 3600  # fmt: skip


def test_every_log_line_is_json_with_ids_and_no_secrets(stack: Stack) -> None:
    lines = []
    for process in stack.processes.values():
        for raw in process.output().splitlines():
            if raw.strip():
                lines.append(json.loads(raw))  # fails on any non-JSON line
    finished = [line for line in lines if line.get("event") == "janitor.task.finished"]
    assert finished
    assert all(line.get("job_id") and line.get("task") for line in finished)
    blob = "\n".join(json.dumps(line) for line in lines)
    assert stack.api_keys
    for key in stack.api_keys:
        assert key not in blob
    assert "X-Amz-Signature" not in blob
    assert "signature=" not in blob
