"""`make run`'s supervisor: a crashing process is restarted with backoff, the others stay up."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from services.supervisor.runner import Entry, parse_procfile
from tests.support.servers import ROOT

CRASHER = "import sys; print('boom', flush=True); sys.exit(3)"
STEADY = "import os, time; print('steady pid', os.getpid(), flush=True); time.sleep(120)"


def _wait_for(path: Path, pattern: str, count: int, timeout: float = 20.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = path.read_text()
        if len(re.findall(pattern, text)) >= count:
            return text
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} x {pattern!r} not seen in {timeout}s:\n{text}")
        time.sleep(0.05)


def test_a_crashing_process_is_restarted_and_never_takes_the_others_down(tmp_path: Path) -> None:
    procfile = tmp_path / "Procfile"
    procfile.write_text(
        f'crasher: {sys.executable} -c "{CRASHER}"\nsteady: {sys.executable} -c "{STEADY}"\n'
    )
    out = tmp_path / "out.log"
    with out.open("w") as sink:
        supervisor = subprocess.Popen(
            [sys.executable, "-m", "services.supervisor", str(procfile), "--first-backoff", "0.05",
             "--max-backoff", "0.2", "--grace", "5"],
            cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            text = _wait_for(out, r"crasher +\| boom", 4)
            assert supervisor.poll() is None
            assert "exited with code 3; restarting in 0.05s" in text
            assert "restarting in 0.2s" in text  # the delay doubled up to its cap
            [steady_pid] = re.findall(r"steady pid (\d+)", text)  # started once, never again
            os.kill(int(steady_pid), 0)  # still running
            supervisor.send_signal(signal.SIGTERM)
            assert supervisor.wait(timeout=10) == 0
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
    with pytest.raises(ProcessLookupError):
        os.kill(int(steady_pid), 0)


def test_procfile_parsing_keeps_quoted_arguments_and_rejects_garbage() -> None:
    entries = parse_procfile('# comment\n\napi: python -m services.api\nx: sh -c "a; b"\n')

    assert entries == [
        Entry("api", ["python", "-m", "services.api"]),
        Entry("x", ["sh", "-c", "a; b"]),
    ]
    with pytest.raises(ValueError, match="line 1"):
        parse_procfile("no colon here")


def test_the_projects_procfile_parses() -> None:
    names = [entry.name for entry in parse_procfile((ROOT / "deploy" / "Procfile").read_text())]

    assert names == ["api", "generator", "exporter", "janitor"]
