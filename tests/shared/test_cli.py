"""The `convoforge` console script against the session database."""

from __future__ import annotations

import subprocess
import sys

import httpx

from shared.settings import Settings
from tests.support.servers import ROOT
from tests.support.settings import settings_env

CLI = [sys.executable, "-m", "shared.cli"]


def _run(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args],
        cwd=ROOT,
        env=settings_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def test_user_key_lifecycle(settings: Settings, client: httpx.AsyncClient) -> None:
    created = _run(settings, "create-user", "Ops@Example.com", "--admin")
    assert created.returncode == 0, created.stderr
    assert "ops@example.com (admin)" in created.stdout

    minted = _run(settings, "create-api-key", "ops@example.com", "--name", "ci")
    assert minted.returncode == 0, minted.stderr
    key = minted.stdout.strip().splitlines()[-1]
    me = await client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status_code == 200
    assert me.json()["role"] == "admin"

    prefix = me.json()["key_prefix"]
    revoked = _run(settings, "revoke-api-key", prefix)
    assert revoked.returncode == 0, revoked.stderr
    again = await client.get("/v1/me", headers={"Authorization": f"Bearer {key}"})
    assert again.status_code == 401


async def test_errors_are_clear_and_nonzero(settings: Settings, client: httpx.AsyncClient) -> None:
    assert _run(settings, "create-user", "dup@example.com").returncode == 0
    duplicate = _run(settings, "create-user", "dup@example.com")
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr
    missing = _run(settings, "create-api-key", "nobody@example.com")
    assert missing.returncode == 1
    assert "no user with email" in missing.stderr
    unknown = _run(settings, "revoke-api-key", "cf_ffffffff")
    assert unknown.returncode == 1


def test_migrate_is_idempotent(settings: Settings) -> None:
    result = _run(settings, "migrate")
    assert result.returncode == 0, result.stderr
    assert "applied 0 migration(s)" in result.stdout
