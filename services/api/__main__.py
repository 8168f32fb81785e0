"""`python -m services.api`: serve the API with uvicorn (API_WORKERS processes)."""

from __future__ import annotations

import os
import shutil

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from services.api.app import create_app
from services.api.metrics import PROCESSES
from shared.logging import configure_logging, get_logger
from shared.metrics import MULTIPROC_ENV, mark_process_dead, prepare_multiprocess_dir
from shared.preflight import Port, preflight
from shared.settings import Settings, get_settings


def create_worker_app() -> FastAPI:
    """The app factory each uvicorn worker process calls; counts the process as live."""
    app = create_app()
    PROCESSES.set(1)
    return app


class MetricsMultiprocess(Multiprocess):
    """uvicorn's worker supervisor, plus prometheus bookkeeping when a worker goes away.

    mark_process_dead drops the dead pid's live gauges (its counters stay in the totals);
    this hooks uvicorn's supervisor (0.54) where it reaps and replaces workers.
    """

    def _pids(self) -> set[int]:
        return {process.pid for process in self.processes if process.pid is not None}

    def _reap(self, pids: set[int]) -> None:
        for pid in pids:
            mark_process_dead(pid)

    def keep_subprocess_alive(self) -> None:
        before = self._pids()
        super().keep_subprocess_alive()
        self._reap(before - self._pids())

    def restart_all(self) -> None:
        before = self._pids()
        super().restart_all()
        self._reap(before - self._pids())

    def join_all(self) -> None:
        super().join_all()
        self._reap(self._pids())


def banner(settings: Settings) -> str:
    """The line that says where the API listens and which base URL its links use."""
    return (
        f"convoforge api: listening on http://{settings.api_host}:{settings.api_port} "
        f"(docs at /docs); download links use {settings.public_base_url} (PUBLIC_BASE_URL)"
    )


def main() -> None:
    """Run uvicorn; with several workers, metrics are shared through PROMETHEUS_MULTIPROC_DIR."""
    settings = get_settings()
    preflight("api", settings, [Port(settings.api_host, settings.api_port, "API_PORT")])
    # Through the logger, so the line is JSON like every other one when LOG_FORMAT=json.
    configure_logging(settings)
    get_logger(__name__).info(
        "api.listening", message=banner(settings), public_base_url=settings.public_base_url
    )
    operator_dir = MULTIPROC_ENV in os.environ  # theirs to keep; a temporary one is ours
    metrics_dir = prepare_multiprocess_dir(settings.api_workers)
    config = uvicorn.Config(
        "services.api.__main__:create_worker_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=None,
        access_log=False,
        proxy_headers=True,
    )
    try:
        if config.workers > 1:
            MetricsMultiprocess(config, sockets=[config.bind_socket()]).run()
        else:
            uvicorn.Server(config).run()
    finally:
        if metrics_dir is not None and not operator_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
