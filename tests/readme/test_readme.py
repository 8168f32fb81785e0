"""The README's walkthrough runs verbatim, top to bottom, on a fresh stack on a port not 8000."""

from __future__ import annotations

import os
import re
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from shared.db.bootstrap import drop_database, ensure_role_and_database
from shared.db.migrate import migrate
from shared.settings import Settings
from tests.conftest import ADMIN_URL, APP_ROLE
from tests.support.servers import ROOT, VENV_BIN
from tests.support.settings import settings_env
from tests.support.stack import live_stack

FENCE = re.compile(r"^```bash walkthrough\n(.*?)^```", re.DOTALL | re.MULTILINE)


def walkthrough_blocks(text: str) -> list[str]:
    """Every ```bash walkthrough block, in order (other sections' blocks are not run)."""
    return FENCE.findall(text)


@pytest.fixture
async def fresh_database() -> AsyncIterator[str]:
    """An empty, migrated database of the walkthrough's own (no users, no keys)."""
    name = f"convoforge_test_readme_{uuid.uuid4().hex[:8]}"
    url = f"postgresql://{APP_ROLE}@127.0.0.1:5432/{name}"
    await ensure_role_and_database(ADMIN_URL, url)
    await migrate(url)
    yield url
    await drop_database(ADMIN_URL, name)


def test_readme_has_the_walkthrough_blocks() -> None:
    blocks = walkthrough_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 4
    script = "\n".join(blocks)
    for step in ("conversations import", "/generation-jobs", "jobs watch", "/exports", "download"):
        assert step in script
    assert ":8000" not in script.replace("${API_PORT:-8000}", "")


@pytest.mark.timeout(240)
def test_walkthrough_runs_verbatim(settings: Settings, fresh_database: str, tmp_path: Path) -> None:
    base = settings_env(settings) | {"DATABASE_URL": fresh_database}
    base["STORAGE_LOCAL_DIR"] = str(tmp_path / "storage")
    script = "set -euo pipefail\n" + "\n".join(walkthrough_blocks((ROOT / "README.md").read_text()))
    with live_stack(base, tmp_path, ("api", "generator", "exporter")) as stack:
        assert stack.env["API_PORT"] != "8000"
        env = {**os.environ, **stack.env, "OUT": str(tmp_path / "out"), "COLUMNS": "120"}
        env["PATH"] = f"{VENV_BIN}:{env.get('PATH', '')}"
        done = subprocess.run(
            ["bash", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=200
        )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-3000:]}\nstderr:\n{done.stderr[-3000:]}"
    downloaded = list((tmp_path / "out").glob("training-data-all-*.jsonl"))
    assert len(downloaded) == 1
    lines = downloaded[0].read_text().splitlines()
    assert len(lines) == 2 + 4  # the two imported files (one approved + bulk) and 4 generated
    assert (tmp_path / "out" / "copy.jsonl").read_bytes() == downloaded[0].read_bytes()
