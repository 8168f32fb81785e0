"""Shared helpers for the benchmarks: a throwaway database, the API as a real uvicorn process,
seed files, per-process CPU accounting, latency statistics and the results table."""

from __future__ import annotations

import asyncio
import contextlib
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import uvloop

from shared.db.bootstrap import drop_database, ensure_role_and_database
from shared.db.migrate import migrate
from shared.db.repositories import users as users_repo
from shared.models.user import UserRole
from shared.security import mint_key
from tests.support.servers import free_port

REPO = Path(__file__).resolve().parents[1]
ADMIN_DSN = os.environ.get(
    "BENCH_DATABASE_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
APP_ROLE = os.environ.get("BENCH_DATABASE_ROLE", "convoforge:convoforge")
PG_HOSTPORT = os.environ.get("BENCH_DATABASE_HOSTPORT", "127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")


def log(message: str) -> None:
    """Progress on stderr, so stdout holds only the results."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Database


@dataclass(frozen=True)
class BenchDatabase:
    """A migrated database of its own: the app role's DSN and a superuser DSN to the same DB."""

    name: str
    app_dsn: str
    admin_dsn: str


@contextlib.asynccontextmanager
async def bench_database(prefix: str) -> AsyncIterator[BenchDatabase]:
    """Create and migrate `convoforge_bench_<prefix>_<random>`; always dropped afterwards."""
    name = f"convoforge_bench_{prefix}_{uuid.uuid4().hex[:8]}"
    app_dsn = f"postgresql://{APP_ROLE}@{PG_HOSTPORT}/{name}"
    admin_base = ADMIN_DSN.rsplit("/", 1)[0]
    created = False
    try:
        await ensure_role_and_database(ADMIN_DSN, app_dsn)
        created = True
        await migrate(app_dsn)
        yield BenchDatabase(name=name, app_dsn=app_dsn, admin_dsn=f"{admin_base}/{name}")
    finally:
        if created:
            # Shielded: a second Ctrl-C must not leave the database behind.
            await asyncio.shield(drop_database(ADMIN_DSN, name))
            log(f"dropped database {name}")


@dataclass(frozen=True)
class BenchAccount:
    """A user and a working API key."""

    user_id: uuid.UUID
    key: str

    @property
    def headers(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.key}"}


async def create_account(dsn: str, email: str | None = None) -> BenchAccount:
    """A user with an API key (users and api_keys are not tenant tables)."""
    conn = await asyncpg.connect(dsn)
    try:
        user = await users_repo.create_user(
            conn, email=email or f"bench-{uuid.uuid4().hex[:10]}@example.com", role=UserRole.USER
        )
        key = mint_key()
        await users_repo.insert_api_key(conn, user_id=user.id, name="bench", key=key)
        return BenchAccount(user_id=user.id, key=key.plaintext)
    finally:
        await conn.close()


async def postgres_settings(dsn: str) -> dict[str, str]:
    """The server settings that matter for the figures."""
    names = ("server_version", "shared_buffers", "work_mem", "synchronous_commit", "jit")
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT name, setting, unit FROM pg_settings WHERE name = ANY($1)",
                                list(names))  # fmt: skip
        return {row["name"]: f"{row['setting']}{row['unit'] or ''}" for row in rows}
    finally:
        await conn.close()


# ---------------------------------------------------------------------------------------------
# The API as a real process


class ApiServer:
    """`python -m services.api` (uvicorn) in its own process group, killed on exit."""

    def __init__(self, database_url: str, *, workers: int, profile: Path | None = None) -> None:
        self.workers = workers
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._tmp = Path(tempfile.mkdtemp(prefix="convoforge-bench-"))
        self.storage_dir = self._tmp / "storage"
        self.storage_dir.mkdir()
        self._profile = profile
        self._env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DATABASE_ADMIN_URL": "",
            "REDIS_URL": REDIS_URL,
            "QUEUE_PREFIX": f"cfbench-{uuid.uuid4().hex[:8]}",
            "STORAGE_BACKEND": "local",
            "STORAGE_LOCAL_DIR": str(self.storage_dir),
            "API_PORT": str(self.port),
            "API_WORKERS": str(workers),
            "API_RATE_LIMIT_PER_MINUTE": "0",
            "LOG_LEVEL": "WARNING",
            "LOG_FORMAT": "json",
            "LLM_PROVIDER": "offline",
            "PYTHONUNBUFFERED": "1",
        }
        if workers > 1:
            metrics_dir = self._tmp / "prometheus"
            metrics_dir.mkdir()
            self._env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        self._proc: subprocess.Popen[bytes] | None = None
        self._log = self._tmp / "api.log"

    async def __aenter__(self) -> ApiServer:
        command = [sys.executable]
        if self._profile is not None:
            command += ["-m", "cProfile", "-o", str(self._profile)]
        command += ["-m", "services.api"]
        with self._log.open("wb") as out:
            self._proc = subprocess.Popen(  # noqa: ASYNC220 (returns at once; no waiting)
                command, cwd=REPO, env=self._env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches us only; we stop it in order
            )  # fmt: skip
        try:
            await self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self._tmp, ignore_errors=True)

    @property
    def pid(self) -> int:
        """The uvicorn (supervisor) process id."""
        assert self._proc is not None
        return self._proc.pid

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while time.monotonic() < deadline:
                assert self._proc is not None
                if self._proc.poll() is not None:
                    tail = self._log.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"the API exited with {self._proc.returncode}:\n{tail}")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{self.base_url}/healthz") as response:
                        # Every worker must be up before the clock starts.
                        if response.status < 500 and len(self.worker_pids()) >= self.workers:
                            return
                await asyncio.sleep(0.1)
        raise RuntimeError("the API did not become ready within 30 s")

    def worker_pids(self) -> list[int]:
        """The serving processes: uvicorn's children when it supervises workers, else itself."""
        if self._proc is None:
            return []
        children = _children(self._proc.pid)
        if self.workers == 1:
            return [self._proc.pid]
        return [pid for pid in children if _comm(pid).startswith("python")]

    def stop(self) -> None:
        """Stop the process group gracefully, SIGKILL if needed. Under cProfile: SIGINT, which
        uvicorn re-raises after its shutdown as KeyboardInterrupt, so cProfile still writes its
        file (a re-raised SIGTERM would end the process before that)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT if self._profile else signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    try:
        return [int(child) for child in path.read_text().split()]
    except OSError:
        return []


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------
# CPU accounting: where the two cores went during a measured window


_TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime+stime of one process (all its threads), 0 if it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK


class PostgresProcesses:
    """The PostgreSQL processes working for one database: its backends (pg_stat_activity) plus
    the server's shared ones (checkpointer, WAL writer, ...). Other databases' backends, e.g.
    test suites running on the same server, are left out and show up as "other"."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.pids: set[int] = set()

    async def refresh(self) -> list[int]:
        """Add the processes present now (backends that come and go in between are missed)."""
        conn = await asyncpg.connect(ADMIN_DSN)
        try:
            rows = await conn.fetch(
                "SELECT pid FROM pg_stat_activity WHERE datname = $1 "
                "OR (datname IS NULL AND backend_type <> 'client backend')",
                self.database,
            )
        finally:
            await conn.close()
        self.pids.update(row["pid"] for row in rows)
        return sorted(self.pids)


@dataclass
class CpuSnapshot:
    """Cumulative CPU seconds of the API, of PostgreSQL and of this process, at one instant."""

    wall: float
    api: dict[int, float]
    postgres: dict[int, float]
    client: float
    busy: float
    idle: float


def _system_cpu() -> tuple[float, float]:
    """Machine-wide (busy, idle) core-seconds from /proc/stat (idle includes iowait)."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = ticks[3] + ticks[4]
    busy = sum(ticks[:8]) - idle
    return busy / _TICK, idle / _TICK


def cpu_snapshot(api_pids: Iterable[int], postgres_pids: Iterable[int]) -> CpuSnapshot:
    """Read /proc for the API processes, the bench database's postgres processes and us."""
    postgres = {pid: cpu_seconds(pid) for pid in postgres_pids}
    usage = os.times()
    busy, idle = _system_cpu()
    return CpuSnapshot(
        wall=time.monotonic(),
        api={pid: cpu_seconds(pid) for pid in api_pids},
        postgres=postgres,
        client=usage.user + usage.system,
        busy=busy,
        idle=idle,
    )


async def snapshot(api_pids: Iterable[int], postgres: PostgresProcesses) -> CpuSnapshot:
    """cpu_snapshot() after refreshing the list of the database's postgres processes."""
    return cpu_snapshot(api_pids, await postgres.refresh())


@dataclass(frozen=True)
class CpuUsage:
    """CPU seconds spent in a window, by party."""

    wall: float
    api: float
    postgres: float
    client: float
    busy: float
    idle: float

    @property
    def other(self) -> float:
        """Busy core-seconds not accounted to the three parties (kernel threads, others)."""
        return max(0.0, self.busy - self.api - self.postgres - self.client)

    def capacity(self, units: int) -> float:
        """Units per second the machine's cores could sustain for this work alone: units over
        the CPU the three parties spent, spread over every core (ignores other processes)."""
        spent = self.api + self.postgres + self.client
        return units * (os.cpu_count() or 1) / spent if spent else 0.0

    def describe(self, units: int, unit: str) -> str:
        """One line: share of the cores and CPU ms per unit (file or request)."""
        cores = (self.busy + self.idle) or (os.cpu_count() or 1) * self.wall
        parts = []
        for name, seconds in (("api", self.api), ("postgres", self.postgres),
                              ("load generator", self.client), ("other", self.other),
                              ("idle", self.idle)):  # fmt: skip
            per = 1000 * seconds / units if units else 0.0
            parts.append(f"{name} {100 * seconds / cores:4.1f}% ({per:.2f} ms CPU/{unit})")
        return ", ".join(parts)


def cpu_usage(before: CpuSnapshot, after: CpuSnapshot) -> CpuUsage:
    """The difference of two snapshots (processes born in between count from zero)."""

    def delta(a: dict[int, float], b: dict[int, float]) -> float:
        return sum(max(0.0, value - a.get(pid, 0.0)) for pid, value in b.items())

    return CpuUsage(
        wall=after.wall - before.wall,
        api=delta(before.api, after.api),
        postgres=delta(before.postgres, after.postgres),
        client=after.client - before.client,
        busy=after.busy - before.busy,
        idle=after.idle - before.idle,
    )


# ---------------------------------------------------------------------------------------------
# Seed files

_PERSONAS = (
    "Marcus Chen, 58", "Dana Okafor, 34", "Priya Raman, 41", "Lou Bianchi, 67", "Sam Ortiz, 29",
    "Grace Kim, 52", "Tom Becker, 45", "Amara Diallo, 38", "Noah Levi, 61", "Ines Duarte, 26",
)  # fmt: skip
_EMOTIONS = ("fear", "anxiety", "anger", "grief", "shame", "confusion", "relief", "hope", "joy")
_TOPICS = (
    "retirement savings", "market crash", "inheritance", "divorce settlement", "student debt",
    "first home", "job loss", "medical bills", "college fund", "small business loan",
)  # fmt: skip
_TIERS = ("seed_dataset", "scenario", "edge_case")
_STRATEGIES = ("validate", "reframe", "inform", "reassure", "plan")
_TONES = ("warm", "calm", "direct", "gentle")
_USER_LINES = (
    "I just looked at my account and I'm scared. What should I do?",
    "My portfolio dropped twelve percent this month and I can't sleep; should I sell everything?",
    "Honestly I feel stupid for not starting earlier, is it too late for me to catch up?",
    'My brother says index funds are a scam. Who do I believe, "experts" or family?',
    "We got the letter today. The settlement is smaller than the lawyer promised, again.",
)
_ASSISTANT_LINES = (
    "That sounds frightening. Let's slow down and look at it together, one number at a time.",
    "It makes sense to feel this way after a drop like that. Selling now would lock in the loss; "
    "let's check how much of this money you need in the next five years first.",
    "You're not late, and you're not stupid. Starting today beats waiting for the perfect moment."
    " Here's what a realistic catch-up plan looks like.",
    "Family advice comes from love, and it's worth hearing. Let's compare the costs and the risks "
    "side by side so you can decide with numbers rather than volume.",
)


def seed_file(name: str, *, pairs: int, rng: random.Random) -> dict[str, Any]:
    """A valid seed "emotional dataset" file with `pairs` training pairs and varied metadata
    (the shape of tests/support/seed_files.py)."""
    persona = rng.choice(_PERSONAS)
    meta: dict[str, Any] = {
        "dataset_name": name,
        "version": "3.4",
        "vertical": "financial_planning",
        "quality_tier": rng.choice(_TIERS),
        "total_turns": pairs,
        "topic": rng.choice(_TOPICS),
        "tags": ["bench", rng.choice(("synthetic", "reviewed", "draft"))],
    }
    training = []
    for number in range(1, pairs + 1):
        training.append(
            {
                "id": f"{name}_turn{number}",
                "conversation_id": name,
                "turn_number": number,
                "conversation_metadata": {"client_persona": persona},
                "system_prompt": "You are Elena Morales, a fee-only CFP. Be warm and precise.",
                "current_user_input": rng.choice(_USER_LINES),
                "emotional_context": {
                    "detected_emotions": {
                        "primary": rng.choice(_EMOTIONS),
                        "primary_confidence": round(rng.uniform(0.5, 1.0), 2),
                        "intensity": round(rng.uniform(0.1, 1.0), 2),
                    },
                    "underlying_need": "safety",
                },
                "response_strategy": {
                    "primary_strategy": rng.choice(_STRATEGIES),
                    "tone_selection": rng.choice(_TONES),
                },
                "target_response": rng.choice(_ASSISTANT_LINES),
                "training_metadata": {"quality_score": round(rng.uniform(1.0, 5.0), 1)},
            }
        )
    return {
        "dataset_metadata": meta,
        "consultant_profile": {"name": "Elena Morales", "communication_style": {"tone": "warm"}},
        "training_pairs": training,
    }


# ---------------------------------------------------------------------------------------------
# Latency statistics and the results table


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values (0 when there are none)."""
    if not sorted_values:
        return 0.0
    rank = max(0, min(len(sorted_values) - 1, round(fraction * len(sorted_values) + 0.5) - 1))
    return sorted_values[rank]


@dataclass
class Latencies:
    """Request latencies (seconds) and errors of one load phase."""

    samples: list[float] = field(default_factory=list)
    errors: int = 0
    error_examples: list[str] = field(default_factory=list)
    wall: float = 0.0

    def error(self, text: str) -> None:
        """Count a failed request, keeping a few examples."""
        self.errors += 1
        if len(self.error_examples) < 3:
            self.error_examples.append(text[:300])

    def summary(self) -> dict[str, float]:
        """p50/p95/p99/max in ms, and requests per second."""
        values = sorted(self.samples)
        return {
            "n": float(len(values)),
            "p50": 1000 * percentile(values, 0.50),
            "p95": 1000 * percentile(values, 0.95),
            "p99": 1000 * percentile(values, 0.99),
            "max": 1000 * (values[-1] if values else 0.0),
            "rps": len(values) / self.wall if self.wall else 0.0,
        }


@dataclass(frozen=True)
class Row:
    """One line of a results table."""

    figure: str
    value: str
    baseline: str = ""
    ratio: str = ""
    target: str = ""
    verdict: str = ""


def print_table(title: str, rows: Sequence[Row]) -> None:
    """A fixed-width table on stdout."""
    headers = Row("figure", "measured", "baseline", "ratio", "target", "pass/fail")
    table = [headers, *rows]
    keys = ("figure", "value", "baseline", "ratio", "target", "verdict")
    widths = [max(len(getattr(row, key)) for row in table) for key in keys]
    print(f"\n{title}")
    line = "-+-".join("-" * width for width in widths)
    for index, row in enumerate(table):
        print(
            " | ".join(
                getattr(row, key).ljust(width) for key, width in zip(keys, widths, strict=True)
            )
        )
        if index == 0:
            print(line)
    sys.stdout.flush()


def verdict(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def machine_line() -> str:
    """CPU model, core count, memory and Python, for the record."""
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kib / 1024 / 1024:.0f} GiB RAM"
    return (
        f"{model}, {os.cpu_count()} cores{memory}, Linux {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run on uvloop (as uvicorn does); Ctrl-C cancels `main`, whose cleanup runs, then exit 130."""
    try:
        uvloop.run(main)
    except KeyboardInterrupt:
        log("interrupted; cleaned up")
        raise SystemExit(130) from None
