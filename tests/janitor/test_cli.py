"""`convoforge janitor run JOB` runs one task now, in the operator's process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

from services.janitor.context import JanitorDeps, redis_key
from services.janitor.lock import RedisLock
from shared.models.user import User
from shared.settings import Settings
from tests.janitor.rows import ago, insert_export, row
from tests.support.servers import ROOT
from tests.support.settings import settings_env


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", "janitor", *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_run_prints_the_report(local_deps: JanitorDeps, owner: User) -> None:
    export_id = await insert_export(local_deps.pool, owner.id, expires_at=ago(hours=1))
    done = _cli(local_deps.settings, "run", "expire-exports")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["task"] == "expire-exports"
    assert report["outcome"] == "ok"
    assert report["counts"]["expired"] == 1
    assert (await row(local_deps.pool, owner.id, "export_logs", export_id) or {})[
        "status"
    ] == "expired"


async def test_run_sweeps_dead_uploads_of_the_configured_store(local_deps: JanitorDeps) -> None:
    settings = local_deps.settings  # the session's local store, as `open_storage` opens it
    partial_dir = settings.storage_local_dir.resolve() / ".partial"
    partial_dir.mkdir(parents=True, exist_ok=True)
    dead, running = partial_dir / uuid.uuid4().hex, partial_dir / uuid.uuid4().hex
    for path in (dead, running):
        path.write_bytes(b"half")
    long_ago = time.time() - settings.janitor_stale_upload_age_seconds - 60
    os.utime(dead, (long_ago, long_ago))
    done = _cli(settings, "run", "abort-stale-uploads")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert (report["outcome"], report["counts"]["aborted"]) == ("ok", 1)
    assert not dead.exists()
    assert running.exists()
    running.unlink()


async def test_run_refuses_while_another_replica_runs_it(local_deps: JanitorDeps) -> None:
    lock = RedisLock(local_deps.redis, redis_key(local_deps.settings, "lock", "reconcile"), ttl=30)
    assert await lock.acquire()
    try:
        busy = _cli(local_deps.settings, "run", "reconcile")
    finally:
        await lock.release()
    assert busy.returncode == 1
    assert "another janitor is running reconcile" in busy.stderr


def test_list_and_unknown_job(settings: Settings) -> None:
    listed = _cli(settings, "list")
    assert listed.returncode == 0, listed.stderr
    assert "expire-exports" in listed.stdout
    assert "0 2 * * *" in listed.stdout
    assert "abort-stale-uploads      45 * * * *" in listed.stdout
    unknown = _cli(settings, "run", "sweep-everything")
    assert unknown.returncode == 2
    assert "invalid choice" in unknown.stderr
