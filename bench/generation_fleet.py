"""Generation fleet benchmark (DESIGN §10, issue 4): generator replicas vs a rate-limited fake.

    .venv/bin/python bench/generation_fleet.py            # 3 replicas, 50 RPM, 2 s, 100 items
    .venv/bin/python bench/generation_fleet.py --quick    # 20 per 10 s window, 0.5 s, 40 items
    .venv/bin/python bench/generation_fleet.py --dump     # also print every request's offset

Everything is started here and removed afterwards: a database of its own, a queue/limiter
prefix of its own on Redis, the fake Messages API (`python -m tests.fakes.anthropic`, which
enforces the limit itself and counts over-limit requests), and N `python -m services.generator`
processes. A batch goes in through the API (in-process) exactly as a user would send it.

Figures:
- achieved requests/min: a sliding-window limit of L per W seconds lets request i+L start no
  earlier than request i + W, so L·(60/W) / mean(t[i+L] − t[i]) · W is the rate the fleet
  sustained (100 % = every slot used the moment it freed); the fake's own count of requests
  over the limit must be 0;
- CPU per conversation: utime+stime of the generator processes (/proc) from the moment the
  batch is created until it finishes, divided by the conversations landed (and the same with
  the replicas' idle polling subtracted).
Baseline, measured in the same run against the same fake (reset in between): a bare httpx loop
with the same limit, safety margin and concurrency and nothing else (no queue, no database, no
storage, no parsing), in a child process; plus the ideal schedule, computed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import redis.asyncio as redis_asyncio
from _support import (
    REDIS_URL,
    REPO,
    PostgresProcesses,
    Row,
    bench_database,
    cpu_usage,
    create_account,
    log,
    machine_line,
    print_table,
    run,
    snapshot,
    verdict,
)
from pydantic import SecretStr

sys.path.insert(0, str(REPO))  # tests.fakes / tests.support are not installed packages

from shared.settings import Settings
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropicProcess
from tests.support.api import api_client
from tests.support.servers import free_port
from tests.support.settings import settings_env

TARGET_UTILIZATION = 0.95
TARGET_CPU_MS = 20.0
_PROMPT = [{"role": "user", "content": "Write a conversation about an emergency fund. " * 20}]


@dataclass(frozen=True)
class Plan:
    """What one run does."""

    items: int
    limit: int
    window: float
    latency: float
    replicas: int
    max_jobs: int
    margin: float = Settings.model_fields["llm_rate_safety_margin_seconds"].default

    @property
    def rpm(self) -> float:
        """The limit as requests per minute."""
        return self.limit * 60 / self.window

    @property
    def concurrency(self) -> int:
        """Calls the fleet can have in flight (the baseline loop gets the same)."""
        return self.replicas * self.max_jobs


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short window, fewer items")
    parser.add_argument("--items", type=int)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--dump", action="store_true", help="print request arrival offsets")
    parser.add_argument("--bare-loop", nargs=6, metavar=("URL", "N", "L", "W", "C", "MARGIN"),
                        help=argparse.SUPPRESS)  # fmt: skip
    return parser.parse_args()


def _plan(args: argparse.Namespace) -> Plan:
    if args.quick:
        # A 10 s window: the margin must be a smaller share of it (jitter does not shrink).
        return Plan(args.items or 40, 20, 10.0, 0.5, args.replicas, 10, margin=0.25)
    return Plan(args.items or 100, 50, 60.0, 2.0, args.replicas, 10)


# ---------------------------------------------------------------------------------------------
# Rate figures


def utilization(arrivals: Sequence[float], limit: int, window: float) -> float | None:
    """window / mean(t[i+limit] − t[i]): 1.0 when every slot is reused the moment it frees."""
    times = sorted(arrivals)
    gaps = [times[i + limit] - times[i] for i in range(len(times) - limit)]
    if not gaps:
        return None
    return window / (sum(gaps) / len(gaps))


def max_in_window(arrivals: Sequence[float], window: float) -> int:
    """The most requests any `window`-second interval saw."""
    times = sorted(arrivals)
    best, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def ideal_schedule(plan: Plan) -> list[float]:
    """Start times with zero overhead: C slots, `latency` per call, L per W sliding window."""
    slots = [0.0] * plan.concurrency
    starts: list[float] = []
    for index in range(plan.items):
        slot = min(range(len(slots)), key=slots.__getitem__)
        start = slots[slot]
        if index >= plan.limit:
            start = max(start, starts[index - plan.limit] + plan.window)
        starts.append(start)
        slots[slot] = start + plan.latency
    return starts


# ---------------------------------------------------------------------------------------------
# The baseline: a bare httpx loop (child process, so its CPU is its own)


async def bare_loop(url: str, n: int, limit: int, window: float, concurrency: int,
                    margin: float) -> None:  # fmt: skip
    """n Messages calls with an in-memory sliding window; prints its CPU seconds as JSON."""
    granted: deque[float] = deque()
    lock = asyncio.Lock()
    body = orjson.dumps({"model": "bench", "max_tokens": 4096, "messages": _PROMPT})
    headers = {"x-api-key": DEFAULT_API_KEY, "anthropic-version": "2023-06-01",
               "content-type": "application/json"}  # fmt: skip

    async def permit() -> None:
        async with lock:
            while len(granted) >= limit:
                wait = granted[-limit] + window + margin - time.monotonic()
                if wait <= 0:
                    break
                await asyncio.sleep(wait)
            granted.append(time.monotonic())

    async def one(http: httpx.AsyncClient, slots: asyncio.Semaphore) -> None:
        async with slots:
            await permit()
            response = await http.post(f"{url}/v1/messages", content=body, headers=headers)
            orjson.loads(response.content)

    started = resource.getrusage(resource.RUSAGE_SELF)
    async with httpx.AsyncClient(timeout=60) as http:
        slots = asyncio.Semaphore(concurrency)
        await asyncio.gather(*(one(http, slots) for _ in range(n)))
    ended = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (ended.ru_utime - started.ru_utime) + (ended.ru_stime - started.ru_stime)
    print(orjson.dumps({"cpu_s": cpu}).decode(), flush=True)


def run_bare_loop(plan: Plan, url: str) -> float:
    """The baseline loop in a child process; returns its CPU seconds."""
    numbers = (plan.items, plan.limit, plan.window, plan.concurrency, plan.margin)
    command = [sys.executable, __file__, "--bare-loop", url, *map(str, numbers)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, check=True, timeout=3600)
    cpu: float = orjson.loads(done.stdout.splitlines()[-1])["cpu_s"]
    return cpu


# ---------------------------------------------------------------------------------------------
# The fleet


class Replicas:
    """`python -m services.generator` processes."""

    def __init__(self, settings: Settings, count: int, logs: Path) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.ports: list[int] = []
        for number in range(count):
            port = free_port()
            env = {**os.environ, **settings_env(settings),
                   "GENERATOR_METRICS_PORT": str(port), "METRICS_HOST": "127.0.0.1"}  # fmt: skip
            with (logs / f"generator-{number}.log").open("wb") as out:
                self.procs.append(subprocess.Popen(
                    [sys.executable, "-m", "services.generator"], cwd=REPO, env=env,
                    stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                ))  # fmt: skip
            self.ports.append(port)

    @property
    def pids(self) -> list[int]:
        """Process ids of the replicas."""
        return [proc.pid for proc in self.procs]

    async def ready(self) -> None:
        """Wait until every replica serves /metrics (its worker started)."""
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as http:
            for port, proc in zip(self.ports, self.procs, strict=True):
                while True:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError("a generator replica did not start")
                    with contextlib.suppress(httpx.TransportError):
                        await http.get(f"http://127.0.0.1:{port}/metrics")
                        break
                    await asyncio.sleep(0.1)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


async def fake_requests(url: str) -> tuple[list[float], int]:
    """Arrival times the fake recorded and its over-limit count."""
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{url}/_fake/requests")).json()
    return [r["arrived_at"] for r in body["requests"]], int(body["over_limit_count"])


async def reset_fake(url: str) -> None:
    """Forget every request (the window too)."""
    async with httpx.AsyncClient() as http:
        await http.post(f"{url}/_fake/reset")


async def run_batch(plan: Plan, settings: Settings, dsn: str, replicas: Replicas,
                    database: str) -> dict[str, Any]:  # fmt: skip
    """Create the batch through the API and wait for it; CPU measured around it."""
    account = await create_account(dsn)
    postgres = PostgresProcesses(database)
    await asyncio.sleep(3.0)  # past start-up work
    idle_before = await snapshot(replicas.pids, postgres)
    await asyncio.sleep(5.0)
    idle_after = await snapshot(replicas.pids, postgres)
    idle_rate = cpu_usage(idle_before, idle_after).api / (idle_after.wall - idle_before.wall)
    body = {"items": [{"persona": "an anxious investor", "topic": "market volatility"}]
            * plan.items, "concurrency": plan.items}  # fmt: skip
    async with api_client(settings) as api:
        before = await snapshot(replicas.pids, postgres)
        created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
        created.raise_for_status()
        batch_id = created.json()["id"]
        log(f"batch {batch_id}: {plan.items} items queued")
        done = await _wait(api, account.headers, batch_id, plan)
        after = await snapshot(replicas.pids, postgres)
        attempts = await _attempts(api, account.headers, batch_id)
    return {"batch": done, "cpu": cpu_usage(before, after), "idle_rate": idle_rate,
            "attempts": attempts}  # fmt: skip


async def _attempts(api: httpx.AsyncClient, headers: dict[str, str], batch_id: str) -> str:
    """Every Claude attempt of the batch, counted by outcome (from generation_logs)."""
    counts: dict[str, int] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"job_id": batch_id, "limit": 100}
        if cursor:
            params["cursor"] = cursor
        page = (await api.get("/v1/generation-logs", params=params, headers=headers)).json()
        for row in page["items"]:
            key = (
                row["status"]
                if row["status"] == "success"
                else f"{row['status']}:{row['error_code']}"
            )
            counts[key] = counts.get(key, 0) + 1
        cursor = page["next_cursor"]
        if cursor is None:
            return ", ".join(f"{n} {key}" for key, n in sorted(counts.items()))


async def _wait(api: httpx.AsyncClient, headers: dict[str, str], batch_id: str,
                plan: Plan) -> dict[str, Any]:  # fmt: skip
    last = -1
    while True:
        body: dict[str, Any] = (await api.get(f"/v1/generation-jobs/{batch_id}",
                                              headers=headers)).json()  # fmt: skip
        done = body["completed_items"] + body["failed_items"] + body["skipped_items"]
        if done != last and done % max(1, plan.items // 10) == 0:
            log(f"{done}/{plan.items} done, ${body['cost_so_far_usd']:.4f}")
            last = done
        if body["completed_at"] is not None:
            return body
        await asyncio.sleep(0.25)


async def _clean_redis(prefix: str, batch: str | None) -> None:
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    try:
        patterns = [f"{prefix}*"] + ([f"arq:*{batch}*"] if batch else [])
        for pattern in patterns:
            keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
            if keys:
                await client.delete(*keys)
    finally:
        await client.aclose()


# ---------------------------------------------------------------------------------------------
# Report


def _report(plan: Plan, fleet: dict[str, Any], bare: dict[str, Any]) -> None:
    ideal = ideal_schedule(plan)
    fleet_u, bare_u = fleet["utilization"], bare["utilization"]
    ideal_u = utilization(ideal, plan.limit, plan.window) or 1.0
    landed = max(1, fleet["batch"]["completed_items"])
    cpu = fleet["cpu"]
    cpu_ms = 1000 * cpu.api / landed
    idle_ms = 1000 * max(0.0, cpu.api - fleet["idle_rate"] * cpu.wall) / landed
    bare_ms = 1000 * bare["cpu_s"] / plan.items
    span = fleet["span"]
    # The target is for the full run; a 10 s window packs arq's per-poll work into fewer items.
    cpu_verdict = verdict(cpu_ms <= TARGET_CPU_MS) if plan.window >= 60 else "n/a (quick)"
    print(f"\nmachine: {machine_line()}")
    print(f"plan: {plan.replicas} replicas x {plan.max_jobs} jobs, {plan.items} items, limit "
          f"{plan.limit} per {plan.window:g} s ({plan.rpm:g} RPM), fake latency {plan.latency} s, "
          f"limiter safety margin {plan.margin:g} s")  # fmt: skip
    print_table("generation fleet", [
        Row("achieved requests/min (sliding-window use)",
            f"{fleet_u * plan.rpm:.1f} ({100 * fleet_u:.1f} %)",
            f"bare loop {bare_u * plan.rpm:.1f} ({100 * bare_u:.1f} %); ideal "
            f"{ideal_u * plan.rpm:.1f}", f"{fleet_u / bare_u:.3f}",
            f">= {100 * TARGET_UTILIZATION:.0f} % of {plan.rpm:g}",
            verdict(fleet_u >= TARGET_UTILIZATION)),
        Row("requests over the limit (fake's count)", str(fleet["over_limit"]),
            f"bare loop {bare['over_limit']}", "", "0", verdict(fleet["over_limit"] == 0)),
        Row(f"most requests in any {plan.window:g} s", str(fleet["max_window"]),
            f"bare loop {bare['max_window']}", "", f"<= {plan.limit}",
            verdict(fleet["max_window"] <= plan.limit)),
        Row("CPU ms per conversation (generator processes)", f"{cpu_ms:.1f}",
            f"bare loop {bare_ms:.1f} per request", f"{cpu_ms / max(bare_ms, 1e-9):.1f}x",
            f"<= {TARGET_CPU_MS:g}", cpu_verdict),
        Row("  ... without idle polling", f"{idle_ms:.1f}", "", "", "", ""),
        Row("first → last request", f"{span:.1f} s", f"ideal {ideal[-1] - ideal[0]:.1f} s",
            f"{span / max(ideal[-1] - ideal[0], 1e-9):.3f}", "", ""),
        Row("Claude attempts (generation_logs)", fleet["attempts"], "", "", "", ""),
        Row("conversations landed / failed",
            f"{fleet['batch']['completed_items']} / {fleet['batch']['failed_items']}",
            "", "", f"{plan.items} / 0",
            verdict(fleet["batch"]["completed_items"] == plan.items)),
        Row("postgres CPU ms per conversation", f"{1000 * cpu.postgres / landed:.1f}", "", "",
            "", ""),
        Row("cost", f"${fleet['batch']['cost_so_far_usd']:.4f}", "", "", "", ""),
    ])  # fmt: skip


def _rates(arrivals: list[float], over: int, plan: Plan) -> dict[str, Any]:
    arrivals.sort()
    return {
        "utilization": utilization(arrivals, plan.limit, plan.window) or math.nan,
        "over_limit": over,
        "max_window": max_in_window(arrivals, plan.window),
        "span": arrivals[-1] - arrivals[0] if arrivals else 0.0,
    }


async def main(args: argparse.Namespace) -> None:
    """Set up, run the fleet, run the baseline, report, clean up."""
    plan = _plan(args)
    prefix = f"cfbench-gen-{uuid.uuid4().hex[:8]}"
    tmp = Path(tempfile.mkdtemp(prefix="convoforge-genbench-"))
    fake = FakeAnthropicProcess("--rpm", str(plan.limit), "--window-seconds", str(plan.window),
                                "--latency", str(plan.latency))  # fmt: skip
    batch_id: str | None = None
    try:
        url = fake.start()
        async with bench_database("gen") as db:
            settings = Settings(
                environment="test", database_url=db.app_dsn, database_admin_url=None,
                redis_url=REDIS_URL, queue_prefix=prefix, storage_backend="local",
                storage_local_dir=tmp / "storage", llm_provider="anthropic",
                anthropic_api_key=SecretStr(DEFAULT_API_KEY), anthropic_base_url=url,
                llm_requests_per_minute=plan.limit, llm_rate_window_seconds=plan.window,
                llm_rate_safety_margin_seconds=plan.margin,
                generator_max_jobs=plan.max_jobs, log_level="WARNING", log_format="json",
                api_rate_limit_per_minute=0,
            )  # fmt: skip
            replicas = Replicas(settings, plan.replicas, tmp)
            try:
                await replicas.ready()
                log(f"{plan.replicas} replicas up; fake at {url}")
                fleet = await run_batch(plan, settings, db.app_dsn, replicas, db.name)
                batch_id = fleet["batch"]["id"]
            finally:
                replicas.stop()
        arrivals, over = await fake_requests(url)
        if args.dump:
            print("fleet arrivals (s):", [round(t - min(arrivals), 2) for t in sorted(arrivals)])
        fleet |= _rates(arrivals, over, plan)
        await reset_fake(url)
        log("baseline: bare httpx loop against the same fake")
        bare_cpu = await asyncio.to_thread(run_bare_loop, plan, url)
        bare = {"cpu_s": bare_cpu} | _rates(*await fake_requests(url), plan)
        _report(plan, fleet, bare)
    finally:
        fake.stop()
        await _clean_redis(prefix, batch_id)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    arguments = _args()
    if arguments.bare_loop:
        url, n, limit, window, concurrency, margin = arguments.bare_loop
        asyncio.run(bare_loop(url, int(n), int(limit), float(window), int(concurrency),
                              float(margin)))  # fmt: skip
    else:
        run(main(arguments))
