"""Friendly start-up: one line naming the setting that fixes a taken port, a dead dependency
or a missing migration, and no traceback."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator

import pytest

from shared.db.bootstrap import drop_database, ensure_role_and_database
from shared.preflight import Port, PreflightFailed, check_port, run_checks, wait_for_services
from shared.settings import Settings
from tests.conftest import ADMIN_URL, APP_ROLE
from tests.support.servers import ROOT, free_port
from tests.support.settings import settings_env


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port something is listening on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_taken_port_names_the_setting(taken_port: int) -> None:
    with pytest.raises(PreflightFailed) as caught:
        check_port(Port("127.0.0.1", taken_port, "API_PORT"))
    assert f"port {taken_port} on 127.0.0.1 is already in use" in caught.value.problem
    assert "API_PORT" in caught.value.fix


async def test_unreachable_postgres_names_database_url(settings: Settings) -> None:
    port = free_port()
    broken = settings.model_copy(
        update={"database_url": f"postgresql://convoforge:s3cret@127.0.0.1:{port}/x"}
    )
    with pytest.raises(PreflightFailed) as caught:
        await run_checks(broken, [])
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}/x" in caught.value.problem
    assert "DATABASE_URL" in caught.value.fix
    assert "s3cret" not in str(caught.value)


async def test_unreachable_redis_names_redis_url(settings: Settings) -> None:
    port = free_port()
    broken = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{port}/3"})
    with pytest.raises(PreflightFailed) as caught:
        await run_checks(broken, [])
    assert f"cannot reach Redis at 127.0.0.1:{port}/3" in caught.value.problem
    assert "REDIS_URL" in caught.value.fix


async def test_unmigrated_database_says_run_migrate(settings: Settings) -> None:
    name = f"convoforge_test_premig_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    await ensure_role_and_database(ADMIN_URL, url)
    try:
        with pytest.raises(PreflightFailed) as caught:
            await run_checks(settings.model_copy(update={"database_url": url}), [])
    finally:
        await drop_database(ADMIN_URL, name)
    assert "missing" in caught.value.problem
    assert "0001_schema.sql" in caught.value.problem
    assert "convoforge migrate" in caught.value.fix


async def test_healthy_stack_passes(settings: Settings) -> None:
    await run_checks(settings, [Port("127.0.0.1", free_port(), "API_PORT")])


@pytest.mark.parametrize("service", ["api", "generator"])
def test_second_instance_exits_with_one_line(
    settings: Settings, taken_port: int, service: str
) -> None:
    env = settings_env(settings) | {
        "API_PORT": str(taken_port),
        "GENERATOR_METRICS_PORT": str(taken_port),
        "METRICS_HOST": "127.0.0.1",
    }
    done = subprocess.run(
        [sys.executable, "-m", f"services.{service}"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    setting = "API_PORT" if service == "api" else "GENERATOR_METRICS_PORT"
    assert lines[0].startswith(f"convoforge {service}: port {taken_port}")
    assert setting in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


async def test_a_worker_waits_out_redis_that_is_down_at_start(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    port = free_port()
    down = settings.model_copy(
        update={"redis_url": f"redis://127.0.0.1:{port}/0", "worker_redis_backoff_max_seconds": 0.2}
    )
    waiting = asyncio.create_task(wait_for_services("generator", down))
    await asyncio.sleep(1.0)
    assert not waiting.done(), "the worker gave up instead of waiting for Redis"
    server = await asyncio.create_subprocess_exec(
        "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no", stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        await asyncio.wait_for(waiting, timeout=30)
    finally:
        server.terminate()
        await asyncio.wait_for(server.wait(), timeout=10)
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines  # said once, however long the wait
    assert lines[0].startswith(f"convoforge generator: cannot reach Redis at 127.0.0.1:{port}/0")
    assert lines[0].endswith("waiting for it")


async def test_a_worker_still_refuses_a_database_without_migrations(settings: Settings) -> None:
    name = f"convoforge_test_premig_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    await ensure_role_and_database(ADMIN_URL, url)
    try:
        with pytest.raises(PreflightFailed) as caught:
            await asyncio.wait_for(
                wait_for_services("generator", settings.model_copy(update={"database_url": url})),
                timeout=30,
            )
    finally:
        await drop_database(ADMIN_URL, name)
    assert "missing" in caught.value.problem
