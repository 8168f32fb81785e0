"""A fake Claude Messages API over real HTTP on loopback, for tests and benchmarks.

In-process: ``with FakeAnthropic(FakeConfig(rpm=5)) as fake: fake.base_url``.
Subprocess: ``python -m tests.fakes.anthropic --port 0 --rpm 50 --latency 2.0`` prints
``FAKE_ANTHROPIC_URL=http://127.0.0.1:PORT`` once it listens.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.fakes import _anthropic_routes as routes
from tests.fakes._anthropic_content import (
    AUTH_ERROR,
    CREDIT_MESSAGE,
    OVERLOADED_ERROR,
    RATE_LIMIT_ERROR,
    SERVER_ERROR,
    SPEND_LIMIT_MESSAGE,
    TOO_LARGE_ERROR,
    error_body,
    validate_body,
)
from tests.fakes._anthropic_routes import json_response, read_body
from tests.fakes._anthropic_state import (
    DEFAULT_API_KEY,
    FakeConfig,
    FakeState,
    RecordedRequest,
    ScriptStep,
)

__all__ = [
    "DEFAULT_API_KEY",
    "FakeAnthropic",
    "FakeAnthropicProcess",
    "FakeConfig",
    "RecordedRequest",
    "ScriptStep",
    "create_app",
    "main",
]

_REPO_ROOT = Path(__file__).resolve().parents[2]


async def _wait(request: Request, state: FakeState, seconds: float) -> bool:
    """Sleep up to ``seconds``; return False if the client went away first."""
    if seconds <= 0:
        return True
    deadline = time.monotonic() + seconds
    receiver = asyncio.ensure_future(request.receive())
    try:
        while (left := deadline - time.monotonic()) > 0 and not state.closing:
            done, _ = await asyncio.wait({receiver}, timeout=min(left, 0.05))
            if done:
                if receiver.result()["type"] == "http.disconnect":
                    return False
                receiver = asyncio.ensure_future(request.receive())
        return True
    finally:
        receiver.cancel()


async def _messages(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    record = state.open_record(request.headers)
    response = await _answer(request, state, record)
    if record.status is None and record.outcome != "disconnected":
        record.status = response.status_code
    return response


async def _answer(request: Request, state: FakeState, record: RecordedRequest) -> Response:
    cfg = state.config
    if request.headers.get("x-api-key") != cfg.api_key:
        record.outcome = "auth"
        return json_response(401, AUTH_ERROR)
    if not request.headers.get("anthropic-version"):
        record.outcome = "invalid"
        return json_response(
            400, error_body("invalid_request_error", "anthropic-version: header is required")
        )
    raw = await read_body(request, cfg.max_body_bytes)
    if raw is None:
        record.outcome = "too_large"
        return json_response(413, TOO_LARGE_ERROR)
    wait = state.admit()
    if wait is not None:
        record.outcome, record.over_limit = "over_limit", True
        headers = {**state.rate_headers(), "retry-after": str(max(1, math.ceil(wait)))}
        return json_response(429, RATE_LIMIT_ERROR, headers)
    return await _accepted(request, state, record, raw)


async def _accepted(
    request: Request, state: FakeState, record: RecordedRequest, raw: bytes
) -> Response:
    try:
        record.body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        record.outcome = "invalid"
        return json_response(
            400, error_body("invalid_request_error", "There was an error parsing the body")
        )
    problem = validate_body(record.body)
    if problem is not None:
        record.outcome = "invalid"
        return json_response(
            400, error_body("invalid_request_error", problem), state.rate_headers()
        )
    step = state.next_step()
    record.outcome = step.kind
    latency = step.latency if step.latency is not None else state.config.latency
    if step.kind == "timeout":
        latency = max(latency, state.config.timeout_sleep)
    if not await _wait(request, state, latency):
        record.outcome = "disconnected"
    return _scripted(state, step.kind, record)


def _scripted(state: FakeState, kind: str, record: RecordedRequest) -> Response:
    request_id = {"request-id": f"req_fake_{record.seq:020d}"}
    if kind in ("500", "529"):
        body = SERVER_ERROR if kind == "500" else OVERLOADED_ERROR
        return json_response(int(kind), body, state.rate_headers() | request_id)
    if kind in ("429", "spend_limit_429", "credit_429"):
        body = {
            "429": RATE_LIMIT_ERROR,
            "spend_limit_429": error_body("rate_limit_error", SPEND_LIMIT_MESSAGE),
            "credit_429": error_body("rate_limit_error", CREDIT_MESSAGE),
        }[kind]
        retry = {"retry-after": str(state.config.scripted_retry_after)}
        return json_response(429, body, state.rate_headers() | request_id | retry)
    message = _message(state, kind, record.body, record.seq)
    return json_response(200, message, state.rate_headers() | request_id)


def _message(state: FakeState, kind: str, body: Mapping[str, Any], seq: int) -> dict[str, Any]:
    message = routes.cached_message(state, kind, body, seq)
    usage = message["usage"]
    # Cache reads do not count against the input-tokens-per-minute limit; writes do.
    state.add_tokens(
        usage["input_tokens"] + usage["cache_creation_input_tokens"], usage["output_tokens"]
    )
    return message


async def _config(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    if request.method == "POST":
        try:
            state.configure(orjson.loads(await request.body()))
        except (ValueError, TypeError, AttributeError) as exc:
            return json_response(400, error_body("invalid_request_error", str(exc)))
    return json_response(200, {**asdict(state.config), "script_remaining": len(state.script)})


async def _requests(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    with state.lock:
        records = [r.to_json() for r in state.records]
        over = state.over_limit_count
    with state.batch_store.lock:
        creates = len(state.batch_store.created)
    body = {"requests": records, "over_limit_count": over, "total": len(records)}
    return json_response(200, body | {"batch_creates": creates})


async def _reset(request: Request) -> Response:
    request.app.state.fake.reset()
    return json_response(200, {"ok": True})


async def _health(request: Request) -> Response:
    return json_response(200, {"ok": True})


_GET_POST = ["GET", "POST"]


def create_app(state: FakeState) -> Starlette:
    """Build the Starlette app around ``state``."""
    app = Starlette(
        routes=[
            Route("/v1/messages", _messages, methods=["POST"]),
            Route("/v1/messages/count_tokens", routes.count_tokens, methods=["POST"]),
            Route("/v1/messages/batches", routes.batches_root, methods=["GET", "POST"]),
            Route("/v1/messages/batches/{batch_id}", routes.batch, methods=["GET"]),
            Route(
                "/v1/messages/batches/{batch_id}/{action}", routes.batch, methods=["GET", "POST"]
            ),
            Route("/_fake/config", _config, methods=["GET", "POST"]),
            Route("/_fake/requests", _requests, methods=["GET"]),
            Route("/_fake/reset", _reset, methods=["POST"]),
            Route("/_fake/health", _health, methods=["GET"]),
        ]
    )
    app.state.fake = state
    return app


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


class _Server(uvicorn.Server):
    """uvicorn server that cuts slow (latency/timeout) responses short when shutting down."""

    def __init__(self, config: uvicorn.Config, state: FakeState) -> None:
        super().__init__(config)
        self.fake_state = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.fake_state.closing = True
        await super().shutdown(sockets)


def _server(state: FakeState, loop: str) -> uvicorn.Server:
    config = uvicorn.Config(
        create_app(state),
        lifespan="off",
        ws="none",
        loop=loop,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return _Server(config, state)


class FakeAnthropic:
    """The fake served by uvicorn in a background thread of this process."""

    def __init__(self, config: FakeConfig | None = None, *, host: str = "127.0.0.1") -> None:
        self.state = FakeState(config or FakeConfig())
        self.host = host
        self.base_url = ""
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Start serving on a free port and return the base URL."""
        sock = _bind(self.host, 0)
        self.base_url = f"http://{self.host}:{sock.getsockname()[1]}"
        self._server = _server(self.state, "asyncio")
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-anthropic", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("fake Anthropic server did not start")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving; in-flight slow responses are cut short."""
        if self._server is None or self._thread is None:
            return
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._server = self._thread = None

    @property
    def api_key(self) -> str:
        """The key the fake accepts."""
        return self.state.config.api_key

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every recorded request."""
        with self.state.lock:
            return list(self.state.records)

    @property
    def over_limit_count(self) -> int:
        """Requests that arrived while the window was already full."""
        return self.state.over_limit_count

    def configure(self, **changes: Any) -> None:
        """Change settings at runtime (same keys as ``POST /_fake/config``)."""
        self.state.configure(changes)

    def script(self, *steps: str | ScriptStep) -> None:
        """Replace the queue of scripted responses."""
        self.state.configure({"script": list(steps)})

    def script_batches(self, *kinds: str) -> None:
        """Outcomes (succeeded/errored/expired/canceled) of the next batch requests, in order."""
        self.state.configure({"batch_script": list(kinds)})

    @property
    def batch_creates(self) -> list[list[str]]:
        """The custom_ids of every batch created, in order."""
        with self.state.batch_store.lock:
            return [list(ids) for ids in self.state.batch_store.created]

    def reset(self) -> None:
        """Restore start-up settings and forget every request."""
        self.state.reset()

    def __enter__(self) -> FakeAnthropic:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def __aenter__(self) -> FakeAnthropic:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


class FakeAnthropicProcess:
    """The fake as a child process (``python -m tests.fakes.anthropic``)."""

    def __init__(self, *args: str) -> None:
        self.args = args
        self.base_url = ""
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> str:
        """Spawn the server (free port unless ``--port`` is given); wait until it answers."""
        port_args = [] if "--port" in self.args else ["--port", "0"]
        command = [sys.executable, "-m", "tests.fakes.anthropic", *port_args, *self.args]
        self._proc = subprocess.Popen(command, cwd=_REPO_ROOT, stdout=subprocess.PIPE)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().decode().strip()
        self.base_url = line.removeprefix("FAKE_ANTHROPIC_URL=")
        deadline = time.monotonic() + timeout
        while line and time.monotonic() < deadline and self._proc.poll() is None:
            try:
                if httpx.get(f"{self.base_url}/_fake/health", timeout=1).status_code == 200:
                    return self.base_url
            except httpx.TransportError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("fake Anthropic subprocess did not start")

    def stop(self) -> None:
        """Terminate the child and wait for it."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        if self._proc.stdout is not None:
            self._proc.stdout.close()
        self._proc = None


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Fake Claude Messages API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rpm", type=int, default=50)
    parser.add_argument("--window-seconds", type=float, default=60.0)
    parser.add_argument("--latency", type=float, default=2.0)
    parser.add_argument("--timeout-sleep", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--api-key", default=os.environ.get("FAKE_ANTHROPIC_API_KEY", DEFAULT_API_KEY)
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Serve the fake in the foreground until interrupted."""
    args = _parse_args(argv)
    config = FakeConfig(
        api_key=args.api_key,
        rpm=args.rpm,
        window_seconds=args.window_seconds,
        latency=args.latency,
        timeout_sleep=args.timeout_sleep,
        seed=args.seed,
    )
    sock = _bind(args.host, args.port)
    print(f"FAKE_ANTHROPIC_URL=http://{args.host}:{sock.getsockname()[1]}", flush=True)
    _server(FakeState(config), "auto").run(sockets=[sock])


if __name__ == "__main__":
    main()
