"""Prometheus helpers shared by the services (each service defines its own series)."""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector


def registry_for_scrape() -> CollectorRegistry | None:
    """In multiprocess mode (several uvicorn workers) a registry that sums every process."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return None
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


def serve_metrics(host: str, port: int) -> int:
    """Serve /metrics from a background thread; returns the bound port."""
    server, _thread = start_http_server(port, addr=host)
    bound: int = server.server_address[1]
    return bound
