"""Enqueue -> start latency (DESIGN.md §10, issue 16): every worker, next to a bare arq job.

Runs the API and the three workers as real processes against a private Redis (so the idle
command counts are theirs alone) and a database of its own, then measures, one job at a time:

- a ping job on each worker (`POST /v1/ops/ping`), from the enqueue/start/finish times arq
  records for the job;
- a one-item offline generation job (`POST /v1/generation-jobs`): enqueue -> start from the
  generator's own start-latency histogram (item jobs keep no arq result), enqueue -> done from
  the batch row (created -> completed, which includes the API's insert-then-enqueue);
- a 10-conversation export (`POST /v1/exports`), from arq's times for the export job;
- a bare arq job (a no-op function, plain `arq.Worker`) at the same poll delay, and at arq's
  default 0.5 s (the baseline the issue measured);
- the idle cost of each worker on its own: CPU % and Redis commands per second.

    flock /tmp/convoforge-bench.lock .venv/bin/python bench/latency.py [--rounds 40]

Targets: enqueue -> start p50 <= 50 ms and p95 <= 100 ms for every worker.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from _support import (
    BenchAccount,
    Row,
    bench_database,
    cpu_seconds,
    create_account,
    log,
    machine_line,
    percentile,
    print_table,
    run,
    seed_file,
    verdict,
)
from arq.connections import ArqRedis, RedisSettings
from arq.jobs import Job, JobResult
from arq.worker import Worker
from redis.asyncio import Redis

from tests.support.servers import ROOT, WorkerProcess, free_port, wait_http

WORKERS = ("generator", "exporter", "janitor")
TARGET_P50_MS, TARGET_P95_MS = 50.0, 100.0
IDLE_SECONDS = 10.0
START_METRIC = "convoforge_worker_job_start_latency_seconds"


@contextlib.contextmanager
def private_redis(workdir: Path) -> Any:
    """A redis-server of our own on a free loopback port; yields its URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            with contextlib.suppress(OSError, subprocess.CalledProcessError):
                subprocess.run(["redis-cli", "-p", str(port), "ping"], check=True,
                               capture_output=True)  # fmt: skip
                break
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def stack_env(database_url: str, redis_url: str, workdir: Path, api_port: int) -> dict[str, str]:
    """The settings every process of the stack reads."""
    return {
        "DATABASE_URL": database_url,
        "DATABASE_ADMIN_URL": "",
        "REDIS_URL": redis_url,
        "QUEUE_PREFIX": "cflatency",
        "STORAGE_BACKEND": "local",
        "STORAGE_LOCAL_DIR": str(workdir / "storage"),
        "API_PORT": str(api_port),
        "API_RATE_LIMIT_PER_MINUTE": "0",
        "LLM_PROVIDER": "offline",
        "LOG_LEVEL": "WARNING",
        "LOG_FORMAT": "json",
        "METRICS_HOST": "127.0.0.1",
        **{f"{name.upper()}_METRICS_PORT": str(free_port()) for name in WORKERS},
    }


def metrics_url(env: dict[str, str], service: str) -> str:
    """A worker's /metrics, which answers once the worker is up."""
    return f"http://127.0.0.1:{env[f'{service.upper()}_METRICS_PORT']}/metrics"


def start(service: str, env: dict[str, str], workdir: Path) -> WorkerProcess:
    """`python -m services.<service>` with the stack's settings."""
    return WorkerProcess(service, env, workdir / f"{service}.log")


async def wait_result(redis: ArqRedis, jid: str, queue: str) -> JobResult:
    """arq's record of a finished job (enqueue, start and finish times)."""
    job = Job(jid, redis, _queue_name=queue)
    async with asyncio.timeout(60):
        while True:
            info = await job.result_info()
            if info is not None:
                return info
            await asyncio.sleep(0.01)


def timings(result: JobResult) -> tuple[float, float]:
    """(enqueue -> start, enqueue -> done) in ms."""
    start = (result.start_time - result.enqueue_time).total_seconds() * 1000
    done = (result.finish_time - result.enqueue_time).total_seconds() * 1000
    return start, done


Sampler = Callable[[], Awaitable[tuple[float, float]]]


async def sample(name: str, rounds: int, once: Sampler) -> tuple[str, list[float], list[float]]:
    """Run `once` sequentially `rounds` times (after one warm-up)."""
    await once()
    starts, dones = [], []
    for _ in range(rounds):
        started, done = await once()
        starts.append(started)
        dones.append(done)
    log(f"{name}: p50 start {percentile(sorted(starts), 0.5):.1f} ms")
    return name, sorted(starts), sorted(dones)


def rows_for(name: str, starts: list[float], dones: list[float], *, target: bool) -> list[Row]:
    """The result table's rows for one kind of job."""
    p50, p95 = percentile(starts, 0.5), percentile(starts, 0.95)
    ok = p50 <= TARGET_P50_MS and p95 <= TARGET_P95_MS
    return [
        Row(
            f"{name}: enqueue->start p50 / p95",
            f"{p50:.1f} / {p95:.1f} ms",
            target=f"<= {TARGET_P50_MS:.0f} / {TARGET_P95_MS:.0f} ms" if target else "baseline",
            verdict=verdict(ok) if target else "",
        ),
        Row(
            f"{name}: enqueue->done p50 / p95",
            f"{percentile(dones, 0.5):.1f} / {percentile(dones, 0.95):.1f} ms",
        ),
    ]


class Stack:
    """The API and the three workers, plus what the samplers need to talk to them."""

    def __init__(self, env: dict[str, str], account: BenchAccount, redis: ArqRedis) -> None:
        self.env = env
        self.base = f"http://127.0.0.1:{env['API_PORT']}"
        self.http = httpx.AsyncClient(base_url=self.base, headers=account.headers, timeout=30)
        self.redis = redis

    def queue(self, service: str) -> str:
        """A service's arq queue name."""
        return f"{self.env['QUEUE_PREFIX']}:{service}"

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST and return the JSON body, failing loudly."""
        response = await self.http.post(path, json=body)
        if response.status_code >= 300:
            raise RuntimeError(f"{path}: {response.status_code} {response.text[:300]}")
        data: dict[str, Any] = response.json()
        return data

    def ping(self, service: str) -> Sampler:
        """One ping job on `service`."""

        async def once() -> tuple[float, float]:
            jid = (await self.post("/v1/ops/ping", {"service": service}))["job_id"]
            return timings(await wait_result(self.redis, jid, self.queue(service)))

        return once

    async def finished(self, path: str) -> dict[str, Any]:
        """Poll a job or export (every 10 ms) until it has finished."""
        async with asyncio.timeout(60):
            while True:
                body: dict[str, Any] = (await self.http.get(path)).json()
                if body["status"] in ("completed", "failed", "cancelled"):
                    if body["status"] != "completed":
                        raise RuntimeError(f"{path}: {body['status']} {body.get('error')}")
                    return body
                await asyncio.sleep(0.01)

    async def start_latency_total(self, service: str) -> tuple[float, float]:
        """The worker's own enqueue -> start histogram: (sum in ms, count) so far."""
        text = (await self.http.get(metrics_url(self.env, service))).text
        values = {}
        for line in text.splitlines():
            if line.startswith(f'{START_METRIC}_sum{{service="{service}"}}'):
                values["sum"] = float(line.split()[-1]) * 1000
            elif line.startswith(f'{START_METRIC}_count{{service="{service}"}}'):
                values["count"] = float(line.split()[-1])
        return values.get("sum", 0.0), values.get("count", 0.0)

    async def generation(self) -> tuple[float, float]:
        """A one-item offline generation job; its item job keeps no arq result, so the start
        latency is the generator's own histogram (jobs run one at a time: delta = this job)."""
        before_sum, before_count = await self.start_latency_total("generator")
        template = {"user_prompt_template": "A short talk about {{topic}}."}
        body = {"items": [{"template": template, "topic": "budgeting"}]}
        batch = (await self.post("/v1/generation-jobs", body))["id"]
        done = await self.finished(f"/v1/generation-jobs/{batch}")
        after_sum, after_count = await self.start_latency_total("generator")
        if after_count - before_count != 1:
            raise RuntimeError(f"expected one item job start, saw {after_count - before_count}")
        return after_sum - before_sum, row_timings(done)[1]

    async def export(self) -> tuple[float, float]:
        """A 10-conversation JSONL export of everything (arq's own times for its job)."""
        body = {"config": {"scope": "all", "format": "jsonl"}}
        export_id = (await self.post("/v1/exports", body))["id"]
        await self.finished(f"/v1/exports/{export_id}")
        jid = f"export:{export_id}"
        return timings(await wait_result(self.redis, jid, self.queue("exporter")))


def row_timings(body: dict[str, Any]) -> tuple[float, float]:
    """(created -> started, created -> completed) in ms, from the row the API reports.

    The row is written just before the enqueue (the design's order), so these include the
    API's commit-then-enqueue step: a slight overestimate of enqueue -> start.
    """
    created = datetime.fromisoformat(body["created_at"])
    started = datetime.fromisoformat(body["started_at"])
    completed = datetime.fromisoformat(body["completed_at"])
    return (started - created).total_seconds() * 1000, (completed - created).total_seconds() * 1000


async def noop(ctx: dict[str, Any]) -> None:
    """The bare arq job."""


@contextlib.asynccontextmanager
async def bare_worker(redis_url: str, queue: str, poll_delay: float) -> AsyncIterator[None]:
    """A plain arq Worker with one no-op function, in this process."""
    worker = Worker(
        functions=[noop], queue_name=queue, redis_settings=RedisSettings.from_dsn(redis_url),
        poll_delay=poll_delay, handle_signals=False, keep_result=60,
    )  # fmt: skip
    task = asyncio.create_task(worker.async_run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await worker.close()


async def bare_job(redis: ArqRedis, queue: str) -> tuple[float, float]:
    """One no-op job on the bare worker."""
    jid = uuid.uuid4().hex
    await redis.enqueue_job("noop", _job_id=jid, _queue_name=queue)
    return timings(await wait_result(redis, jid, queue))


async def idle_cost(env: dict[str, str], workdir: Path, redis_url: str) -> list[Row]:
    """Each worker alone on the private Redis for IDLE_SECONDS: CPU % and commands/s."""
    rows = []
    client = Redis.from_url(redis_url)
    try:
        for service in WORKERS:
            proc = start(service, env, workdir)
            try:
                wait_http(metrics_url(env, service), timeout=90)
                await asyncio.sleep(2)  # start-up work (cron set-up, first heartbeat) done
                before_cmds = int((await client.info("stats"))["total_commands_processed"])
                before_cpu, t0 = cpu_seconds(proc.proc.pid), time.monotonic()
                await asyncio.sleep(IDLE_SECONDS)
                elapsed = time.monotonic() - t0
                cpu = (cpu_seconds(proc.proc.pid) - before_cpu) / elapsed * 100
                after_cmds = int((await client.info("stats"))["total_commands_processed"])
                rate = (after_cmds - before_cmds - 1) / elapsed  # minus our own INFO
            finally:
                proc.stop()
            rows.append(Row(f"{service} idle: CPU / Redis commands", f"{cpu:.1f} % / {rate:.0f}/s"))
    finally:
        await client.aclose()
    return rows


async def import_conversations(stack: Stack, count: int) -> None:
    """`count` seed files through the API, for the export."""
    rng = random.Random(16)
    items = [seed_file(f"latency-{i}", pairs=5, rng=rng) for i in range(count)]
    result = await stack.post("/v1/conversations/batch", {"items": items})
    if result["created"] != count:
        raise RuntimeError(f"import failed: {result}")


async def measure(rounds: int, workdir: Path, redis_url: str) -> list[Row]:
    """Every figure, in one run."""
    rows: list[Row] = []
    async with bench_database("latency") as db:
        account = await create_account(db.app_dsn)
        env = stack_env(db.app_dsn, redis_url, workdir, free_port())
        poll = float(os.environ.get("QUEUE_POLL_DELAY_SECONDS", "0.02"))
        rows += await idle_cost(env, workdir, redis_url)
        procs = [start(service, env, workdir) for service in ("api", *WORKERS)]
        redis = ArqRedis.from_url(redis_url)
        try:
            wait_http(f"http://127.0.0.1:{env['API_PORT']}/healthz", timeout=90)
            for service in WORKERS:
                wait_http(metrics_url(env, service), timeout=90)
            stack = Stack(env, account, redis)
            await import_conversations(stack, 10)
            results = [await sample(f"ping {svc}", rounds, stack.ping(svc)) for svc in WORKERS]
            results.append(await sample("generation, 1 item (offline)", rounds, stack.generation))
            results.append(await sample("export, 10 conversations", rounds, stack.export))
            for name, starts, dones in results:
                rows += rows_for(name, starts, dones, target=True)
            for delay in (poll, 0.5):
                queue = f"bare-{delay}"
                async with bare_worker(redis_url, queue, delay):
                    _, starts, dones = await sample(
                        f"bare arq {delay}", rounds, functools.partial(bare_job, redis, queue)
                    )
                rows += rows_for(f"bare arq job, poll_delay {delay} s", starts, dones, target=False)
            await stack.http.aclose()
        finally:
            await redis.aclose()
            for proc in procs:
                proc.stop()
    return rows


def show_logs(workdir: Path) -> None:
    """The tail of each process's log, after a failure."""
    for path in sorted(workdir.glob("*.log")):
        log(f"{path.name}: {path.read_text(errors='replace')[-1500:]}")


async def main() -> None:
    """Parse arguments, measure, print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="convoforge-latency-"))
    try:
        with private_redis(workdir) as redis_url:
            rows = await measure(args.rounds, workdir, redis_url)
    except BaseException:
        show_logs(workdir)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    poll = os.environ.get("QUEUE_POLL_DELAY_SECONDS", "0.02")
    print_table(
        f"Enqueue -> start, {args.rounds} sequential jobs each; QUEUE_POLL_DELAY_SECONDS={poll}; "
        f"{machine_line()} (shared, busy machine)",
        rows,
    )


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    run(main())
