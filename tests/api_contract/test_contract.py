"""The OpenAPI document is the contract: schemathesis against a live API with auth, and a
generated Python client that type-checks.

Every operation is exercised (its examples, then bounded fuzzing): each response's status code
must be documented for that operation, and its media type, body schema and headers must match
the declaration. NUL characters are left to tests/contract/ (issue-11-api's input hardening),
so this suite checks the documentation, not string sanitising.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.settings import Settings
from tests.support.factories import Account
from tests.support.servers import VENV_BIN
from tests.support.settings import settings_env
from tests.support.stack import LiveStack, live_stack

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_schema_conformance,response_headers_conformance"
)


@pytest.fixture(scope="module")
def api(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    """The API as a real process (uvicorn) on the session's database."""
    with live_stack(settings_env(settings), tmp_path_factory.mktemp("contract"), ("api",)) as s:
        yield s


@pytest.mark.timeout(180)
def test_every_operation_answers_as_documented(api: LiveStack, account: Account) -> None:
    done = subprocess.run(
        [str(VENV_BIN / "schemathesis"), "run", f"{api.base_url}/openapi.json",
         "--header", f"Authorization: Bearer {account.key}", "--checks", CHECKS,
         "--phases", "examples,fuzzing", "--max-examples", "8", "--seed", "16",
         "--generation-allow-x00", "false", "--continue-on-failure", "--no-color"],
        capture_output=True, text=True, timeout=170,
    )  # fmt: skip
    report = done.stdout[-8000:]
    assert done.returncode == 0, report
    assert "Tested: " in done.stdout


def test_generated_client_type_checks(api: LiveStack, tmp_path: Path) -> None:
    spec = tmp_path / "openapi.json"
    spec.write_text(json.dumps(httpx.get(f"{api.base_url}/openapi.json").json()))
    generated = subprocess.run(
        [str(VENV_BIN / "openapi-python-client"), "generate", "--path", str(spec),
         "--output-path", str(tmp_path / "client"), "--meta", "none"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path,
    )  # fmt: skip
    assert generated.returncode == 0, generated.stdout + generated.stderr
    package = tmp_path / "client"
    modules = {p.stem for p in (package / "api").rglob("*.py")}
    assert {"list_conversations", "get_export", "create_job", "download_export"} <= modules
    assert (package / "models" / "error_response.py").is_file()
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir",
         str(tmp_path / ".mypy"), "--config-file", "/dev/null", str(package)],
        capture_output=True, text=True, timeout=170, cwd=tmp_path,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout[-5000:]
