"""Prometheus helpers shared by the services (each service defines its own series)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client import multiprocess as prometheus_multiprocess
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


def serve_metrics(host: str, port: int) -> int:
    """Serve /metrics from a background thread; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    bound: int = server.server_address[1]
    return bound
