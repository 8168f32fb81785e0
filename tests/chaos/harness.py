"""Faults on demand: PostgreSQL and Redis of our own (to stop, wipe and restart), real worker
processes (to SIGKILL), and a fake Claude that records every request it answers.

Used by tests/chaos/ and bench/chaos.py. Nothing here touches the machine's own PostgreSQL or
Redis: each server is started on a free loopback port, in a temporary directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from shared.db.bootstrap import ensure_role_and_database
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropic
from tests.support.servers import WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

PG_ROOT = Path("/usr/lib/postgresql")


def _as_postgres(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run its tools as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _pg_bin(name: str) -> str:
    found = sorted(PG_ROOT.glob(f"*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found under {PG_ROOT}: run deploy/local/services.sh")
    return str(found[-1])


class PrivatePostgres:
    """A PostgreSQL cluster of our own: initdb in a temporary directory, on a free port."""

    def __init__(self) -> None:
        # Not under pytest's tmp_path: the postgres user must be able to reach it.
        self.root = Path(tempfile.mkdtemp(prefix="convoforge-chaos-pg-"))
        self.data = self.root / "pgdata"
        self.port = free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--no-sync")  # fmt: skip

    @property
    def admin_url(self) -> str:
        """The superuser DSN (set-up only)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def app_url(self, database: str) -> str:
        """The app role's DSN for `database`."""
        return f"postgresql://convoforge:convoforge@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(_as_postgres([_pg_bin(tool), *args]), check=True, capture_output=True)

    def start(self) -> None:
        """Start and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.root / "pg.log"),
                  "-o", options, "-w", "start")  # fmt: skip

    def stop(self) -> None:
        """Stop at once, as a crash would (`-m immediate`)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def remove(self) -> None:
        """Stop if running, and delete the cluster."""
        subprocess.run(_as_postgres([_pg_bin("pg_ctl"), "-D", str(self.data), "-m", "immediate",
                                     "stop"]), capture_output=True)  # fmt: skip
        shutil.rmtree(self.root, ignore_errors=True)

    async def new_database(self) -> str:
        """A migrated database of its own; returns the app DSN."""
        url = self.app_url(f"chaos_{uuid.uuid4().hex[:10]}")
        await ensure_role_and_database(self.admin_url, url)
        await migrate(url)
        return url


class PrivateRedis:
    """A redis-server of our own with an append-only file in `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        root.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        """Its DSN."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start (reloading the append-only file, if any) and wait for PONG."""
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "everysec", "--dir", str(self.root)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 20
        while not self._pong():
            if time.monotonic() > deadline:
                raise RuntimeError("private redis-server did not start")
            time.sleep(0.05)

    def _pong(self) -> bool:
        ping = subprocess.run(
            ["redis-cli", "-p", str(self.port), "ping"], capture_output=True, text=True
        )
        return ping.stdout.strip() == "PONG"

    def stop(self) -> None:
        """SIGTERM (Redis flushes its append-only file) and wait."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)

    def wipe(self) -> None:
        """Lose every key: what a Redis restarted without persistence comes back with."""
        shutil.rmtree(self.root / "appendonlydir", ignore_errors=True)


def chaos_settings(database_url: str, redis_url: str, fake_url: str, root: Path,
                   **changes: Any) -> Settings:  # fmt: skip
    """Settings for the processes under test: short heartbeats and recovery periods."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_admin_url": None,
        "redis_url": redis_url,
        "storage_backend": "local",
        "storage_local_dir": root / "storage",
        "llm_provider": "anthropic",
        "anthropic_api_key": SecretStr(DEFAULT_API_KEY),
        "anthropic_base_url": fake_url,
        "llm_requests_per_minute": 10_000,
        "llm_timeout_seconds": 10.0,
        "llm_backoff_base_seconds": 0.2,
        "generator_job_timeout_seconds": 30.0,
        "generator_heartbeat_seconds": 1.0,
        "generator_max_jobs": 10,
        "export_heartbeat_seconds": 0.2,
        "export_batch_size": 4,
        "recovery_interval_seconds": 1.0,
        "recovery_export_stale_seconds": 2.0,
        "worker_redis_backoff_max_seconds": 1.0,
        "metrics_host": "127.0.0.1",
        "queue_prefix": f"chaos-{uuid.uuid4().hex[:8]}",
        "environment": "development",
        # The books count every request the fake answered as a generation attempt; the judge's
        # own calls are a quality_check job's (tests/quality/ covers the judge under faults).
        "judge_after_generation": False,
        "judge_after_edit": False,
    }
    return Settings(**(values | changes))


class Fleet:
    """Worker processes of one test, each with its own metrics port and log file."""

    def __init__(self, settings: Settings, logs: Path) -> None:
        self.settings = settings
        self.logs = logs
        self.processes: list[tuple[WorkerProcess, int]] = []

    def start(self, service: str, **env: str) -> tuple[WorkerProcess, int]:
        """`python -m services.<service>`; returns once its metrics port answers."""
        port = free_port()
        values = settings_env(self.settings) | {f"{service.upper()}_METRICS_PORT": str(port)}
        name = f"{service}-{len(self.processes)}.log"
        process = WorkerProcess(service, values | env, self.logs / name)
        wait_http(f"http://127.0.0.1:{port}/healthz", timeout=30)
        self.processes.append((process, port))
        return process, port

    def alive(self) -> list[bool]:
        """Whether each process started so far is still running."""
        return [process.proc.poll() is None for process, _ in self.processes]

    def stop(self) -> None:
        """Stop every process still running."""
        for process, _ in self.processes:
            process.stop()


def readyz(port: int) -> int:
    """The status of a worker's /readyz."""
    return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code


def answered(fake: FakeAnthropic) -> int:
    """Messages requests the fake has received (answered, or answering now)."""
    return len(fake.requests)


def in_flight(fake: FakeAnthropic) -> int:
    """Requests the fake is still working on (no answer sent yet)."""
    return sum(1 for request in fake.requests if request.status is None)


async def until(check: Callable[[], Awaitable[bool]], *, within: float, what: str) -> float:
    """Poll `check` until it holds; returns the seconds it took (fails after `within`)."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > within:
            raise AssertionError(f"{what}: not within {within:g}s")
        await asyncio.sleep(0.1)
    return time.monotonic() - started
