"""`convoforge jobs|exports|conversations` against a live API and workers, over HTTP."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from shared.settings import Settings
from tests.support.factories import Account
from tests.support.seed_files import FIXTURES, seed_file
from tests.support.servers import ROOT, free_port
from tests.support.settings import settings_env
from tests.support.stack import LiveStack, live_stack


@pytest.fixture(scope="module")
def stack(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """API, generator and exporter processes on the session's database and Redis."""
    logs = tmp_path_factory.mktemp("cli-stack")
    with live_stack(settings_env(settings), logs, ("api", "generator", "exporter")) as running:
        yield running


def cli(stack: LiveStack, account: Account | None, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the console script with the key in CONVOFORGE_API_KEY and the URL in the env."""
    env = {**stack.env, "CONVOFORGE_API_URL": stack.base_url, "COLUMNS": "200"}
    if account is not None:
        env["CONVOFORGE_API_KEY"] = account.key
    return subprocess.run(
        [sys.executable, "-m", "shared.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=90,
    )  # fmt: skip


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    """stdout of a --json command."""
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_import_reports_each_bad_file_and_imports_the_rest(
    stack: LiveStack, account: Account, tmp_path: Path
) -> None:
    folder = tmp_path / "seeds"
    (folder / "nested").mkdir(parents=True)
    (folder / "a.json").write_text(json.dumps(seed_file("cli-a")))
    (folder / "nested" / 'b, "quoted" 🙂.json').write_text(json.dumps(seed_file("cli-b")))
    (folder / "missing-fields.json").write_bytes(
        (FIXTURES / "invalid-missing-fields.json").read_bytes()
    )
    (folder / "truncated.json").write_bytes((FIXTURES / "invalid-truncated.json").read_bytes())
    (folder / "notes.txt").write_text("not a conversation")  # not *.json: not picked up
    single = tmp_path / "<script>.json"
    single.write_text(json.dumps(seed_file("cli-c", user_text="<script>alert(1)</script>")))

    done = cli(stack, account, "conversations", "import", str(folder), str(single))
    assert done.returncode == 1
    assert "imported 3 of 5 file(s)" in done.stdout
    assert "missing-fields.json" in done.stderr
    assert "validation_failed" in done.stderr
    assert "truncated.json: not JSON" in done.stderr
    assert "2 file(s) were not imported" in done.stderr

    again = cli(stack, account, "conversations", "import", "--json", str(folder / "a.json"))
    assert again.returncode == 1  # the same conversation_id is a conflict, reported per file
    (outcome,) = json.loads(again.stdout)
    assert outcome["ok"] is False
    assert "409" not in outcome["error"]
    assert outcome["error"].startswith("conflict") or "exists" in outcome["error"]


def test_jobs_list_show_watch_and_refused_actions(stack: LiveStack, account: Account) -> None:
    template = {"user_prompt_template": 'A talk about {{topic}}, with "quotes", commas\nand 🙂.'}
    body = {"items": [{"template": template, "topic": f"t{i}"} for i in range(3)]}
    created = httpx.post(f"{stack.base_url}/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]

    finished = as_json(cli(stack, account, "jobs", "watch", job_id, "--json", "--interval", "0.2"))
    assert (finished["status"], finished["completed_items"]) == ("completed", 3)
    bar = cli(stack, account, "jobs", "watch", job_id, "--interval", "0.2")
    assert bar.returncode == 0
    assert "3/3" in bar.stderr
    listed = as_json(cli(stack, account, "jobs", "list", "--json", "--status", "completed"))
    assert [job["id"] for job in listed["items"]] == [job_id]
    table = cli(stack, account, "jobs", "show", job_id)
    assert table.returncode == 0
    assert job_id in table.stdout
    assert "completed" in table.stdout

    retry = cli(stack, account, "jobs", "retry-failed", job_id)
    assert retry.returncode == 1
    assert "HTTP 409 nothing_to_retry" in retry.stderr
    other = cli(stack, account, "jobs", "show", "00000000-0000-4000-8000-000000000000")
    assert other.returncode == 1
    assert "HTTP 404 not_found" in other.stderr


def test_export_create_wait_and_download(
    stack: LiveStack, account: Account, tmp_path: Path
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    for i in range(3):
        (seeds / f"{i}.json").write_text(json.dumps(seed_file(f"cli-export-{i}")))
    assert cli(stack, account, "conversations", "import", str(seeds)).returncode == 0

    export = as_json(cli(stack, account, "exports", "create", "--scope", "all", "--format",
                         "csv", "--wait", "--json", "--interval", "0.2"))  # fmt: skip
    assert export["status"] == "completed"
    assert export["conversation_count"] == 3
    assert export["duration_seconds"] is not None
    saved = as_json(cli(stack, account, "exports", "download", export["id"], "-o",
                        str(tmp_path), "--json"))  # fmt: skip
    path = Path(saved["path"])
    assert path.name == export["file_name"]
    assert path.parent == tmp_path
    assert hashlib.sha256(path.read_bytes()).hexdigest() == export["sha256"]
    assert not list(tmp_path.glob("*.part"))


def test_missing_key_bad_key_and_unreachable_api(stack: LiveStack, account: Account) -> None:
    no_key = cli(stack, None, "jobs", "list")
    assert no_key.returncode == 1
    assert "no API key" in no_key.stderr
    bad = cli(stack, None, "jobs", "list", "--api-key", "cf_nope_nope")
    assert bad.returncode == 1
    assert "HTTP 401 unauthorized" in bad.stderr
    gone = cli(
        stack, account, "exports", "watch", "x", "--api-url", f"http://127.0.0.1:{free_port()}"
    )
    assert gone.returncode == 1
    assert "cannot reach the API" in gone.stderr
    assert "Traceback" not in no_key.stderr + bad.stderr + gone.stderr
