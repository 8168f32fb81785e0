"""Prometheus helpers shared by the services (each service defines its own series)."""

from __future__ import annotations

import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import orjson
from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client import multiprocess as prometheus_multiprocess
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def registry_for_scrape() -> CollectorRegistry | None:
    """In multiprocess mode (several uvicorn workers) a registry that sums every process."""
    if not os.environ.get(MULTIPROC_ENV):
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def prepare_multiprocess_dir(processes: int) -> Path | None:
    """Before worker processes start: an empty metrics directory, exported in the environment.

    With PROMETHEUS_MULTIPROC_DIR set, its stale `*.db` files (an earlier run's counts and dead
    pids) are removed so totals start from zero; with several processes and no directory set,
    a private temporary one is made, since per-process counters would otherwise be scraped one
    process at a time. Call it in the parent before any worker process imports the app.
    """
    configured = os.environ.get(MULTIPROC_ENV)
    if not configured and processes <= 1:
        return None
    path = Path(configured) if configured else Path(tempfile.mkdtemp(prefix="convoforge-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink(missing_ok=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def mark_process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (its counters keep counting towards the totals)."""
    path = os.environ.get(MULTIPROC_ENV)
    if path and Path(path).is_dir():
        prometheus_multiprocess.mark_process_dead(pid, path)  # type: ignore[no-untyped-call]


# A worker's readiness: the parts it depends on that are down, with why (empty: ready).
Problems = Callable[[], dict[str, str]]
Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes are not worth a log line."""


def probe_app(problems: Problems) -> Wsgi:
    """/metrics, /healthz (the process answers) and /readyz (503 naming what is down)."""
    metrics_app = make_wsgi_app()

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return list(metrics_app(environ, start_response))
        down = problems() if path == "/readyz" else {}
        body = orjson.dumps({"status": "unavailable" if down else "ok", "down": down})
        status = "503 Service Unavailable" if down else "200 OK"
        start_response(status, [("Content-Type", "application/json")])
        return [body]

    return app


def serve_metrics(host: str, port: int, problems: Problems = dict) -> int:
    """Serve /metrics, /healthz and /readyz from a background thread; returns the bound port."""
    server = make_server(
        host, port, probe_app(problems), ThreadingWSGIServer, handler_class=_QuietHandler
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bound: int = server.server_address[1]
    return bound
