"""Real servers the tests talk to: free ports, moto's S3 server, worker processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
KIT = ROOT.parent / "shared"
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_http(url: str, *, timeout: float = 20.0) -> None:
    """Poll until `url` answers at all (any status)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3-compatible server on loopback; yields its endpoint URL."""
    port = free_port()
    proc = subprocess.Popen(
        [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_http(url + "/moto-api/")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def swift_env() -> dict[str, str]:
    """Start OpenStack Swift's S3 layer with the kit's script; its client settings."""
    script = KIT / "tools" / "s3-swift.sh"
    subprocess.run(["bash", str(script), "start"], check=True, capture_output=True)
    out = subprocess.run(["bash", str(script), "env"], check=True, capture_output=True, text=True)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


class WorkerProcess:
    """`python -m services.<name>` as a real child process."""

    def __init__(self, service: str, env: Mapping[str, str], log_path: Path) -> None:
        self.service = service
        self.log_path = log_path
        self._log = log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", f"services.{service}"],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def stop(self, *, kill: bool = False) -> None:
        """SIGTERM (graceful) or SIGKILL, then reap."""
        if self.proc.poll() is None:
            (self.proc.kill if kill else self.proc.terminate)()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def output(self) -> str:
        """What the process logged so far."""
        return self.log_path.read_text(errors="replace")
