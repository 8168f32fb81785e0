"""Friendly start-up: each service checks what it needs and says in one line what to fix.

A port already taken, PostgreSQL or Redis out of reach, or a database missing migrations would
otherwise surface as a few screens of tracebacks from deep inside uvicorn, asyncpg or arq.
`preflight(...)` runs before a service starts and exits with status 2 and one line naming the
setting that fixes the problem. Workers (`preflight_worker`) exit so only for a set-up mistake
(a taken port, missing migrations); PostgreSQL or Redis out of reach is an outage, which they
name in one line and then wait out.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import asyncpg
import redis.asyncio as redis_asyncio
import redis.exceptions

from shared.db.migrate import load_migrations
from shared.settings import Settings

_TIMEOUT = 3.0


class PreflightFailed(Exception):
    """One start-up problem and what fixes it."""

    def __init__(self, problem: str, fix: str, *, unreachable: bool = False) -> None:
        super().__init__(f"{problem}; {fix}")
        self.problem = problem
        self.fix = fix
        # An outage (not a mistake in the set-up): a worker waits for it instead of exiting.
        self.unreachable = unreachable


@dataclass(frozen=True)
class Port:
    """A TCP port the service will listen on, and the setting that chooses it."""

    host: str
    port: int
    setting: str


def where(url: str) -> str:
    """`host:port` of a DSN, never its credentials."""
    parts = urlsplit(url)
    return f"{parts.hostname or '?'}:{parts.port or '?'}{parts.path}"


def check_port(port: Port) -> None:
    """The port is free to listen on."""
    with socket.socket(socket.AF_INET6 if ":" in port.host else socket.AF_INET) as sock:
        # As uvicorn and prometheus-client do: a port in TIME_WAIT after a restart is free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((port.host, port.port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise PreflightFailed(f"cannot listen on {port.host}:{port.port} ({exc.strerror})",
                                      f"set {port.setting} to another port") from exc  # fmt: skip
            raise PreflightFailed(
                f"port {port.port} on {port.host} is already in use (is Convoforge already "
                "running?)",
                f"stop the other process or set {port.setting} to a free port",
            ) from exc


async def check_postgres(settings: Settings) -> None:
    """PostgreSQL answers and every migration file has been applied."""
    try:
        conn = await asyncpg.connect(settings.database_url, timeout=_TIMEOUT)
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise PreflightFailed(
            f"cannot reach PostgreSQL at {where(settings.database_url)} ({_reason(exc)})",
            "start it (`make services`) or set DATABASE_URL",
            unreachable=True,
        ) from exc
    try:
        applied = await _applied_migrations(conn)
    finally:
        await conn.close()
    missing = [m.name for m in load_migrations() if m.name not in applied]
    if missing:
        raise PreflightFailed(
            f"the database is missing {len(missing)} migration(s), first {missing[0]}",
            "run `convoforge migrate` (make run does) against the same DATABASE_URL",
        )


async def _applied_migrations(conn: asyncpg.Connection) -> set[str]:
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    if not exists:
        return set()
    return {row["name"] for row in await conn.fetch("SELECT name FROM schema_migrations")}


async def check_redis(settings: Settings) -> None:
    """Redis answers PING."""
    client = redis_asyncio.Redis.from_url(
        settings.redis_url, socket_connect_timeout=_TIMEOUT, socket_timeout=_TIMEOUT
    )
    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        raise PreflightFailed(
            f"cannot reach Redis at {where(settings.redis_url)} ({_reason(exc)})",
            "start it (`make services`) or set REDIS_URL",
            unreachable=True,
        ) from exc
    finally:
        await client.aclose()


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]


async def run_checks(settings: Settings, ports: Sequence[Port]) -> None:
    """Every check, in the order a person would fix them."""
    for port in ports:
        check_port(port)
    await check_postgres(settings)
    await check_redis(settings)


def preflight(service: str, settings: Settings, ports: Sequence[Port] = ()) -> None:
    """Run the checks; on a problem print one line to stderr and exit with status 2."""
    try:
        asyncio.run(run_checks(settings, ports))
    except PreflightFailed as failure:
        _say(service, failure)
        raise SystemExit(2) from None


def _say(service: str, failure: PreflightFailed, suffix: str = "") -> None:
    print(f"convoforge {service}: {failure.problem}; {failure.fix}{suffix}", file=sys.stderr)


async def wait_for_services(service: str, settings: Settings) -> None:
    """PostgreSQL and Redis checks that wait out an outage (one line, then capped backoff).

    Workers ride out outages of any length (issue 11), including one that is already going on
    when they start; a set-up mistake (missing migrations) still raises.
    """
    delay, said = 0.5, ""
    while True:
        try:
            await check_postgres(settings)
            await check_redis(settings)
            return
        except PreflightFailed as failure:
            if not failure.unreachable:
                raise
            if str(failure) != said:
                _say(service, failure, "; waiting for it")
                said = str(failure)
        await asyncio.sleep(delay)
        delay = min(delay * 2, settings.worker_redis_backoff_max_seconds)


def preflight_worker(service: str, settings: Settings) -> None:
    """A worker's checks: its metrics port (unless 0 = any), migrations; waits for PG/Redis."""
    port = int(getattr(settings, f"{service}_metrics_port"))
    ports = [Port(settings.metrics_host, port, f"{service.upper()}_METRICS_PORT")] if port else []
    try:
        for taken in ports:
            check_port(taken)
        asyncio.run(wait_for_services(service, settings))
    except PreflightFailed as failure:
        _say(service, failure)
        raise SystemExit(2) from None
