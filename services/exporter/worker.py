"""arq worker settings for the exporter (the only exporter module that imports arq)."""

from __future__ import annotations

import gc
from typing import Any, cast

from arq import run_worker
from arq.worker import Function, Retry, func

from services.exporter import metrics, tasks
from services.exporter.service import RetryLater
from shared.queue import PING, RUN_EXPORT, worker_settings
from shared.runtime import WorkerContext, start_worker, stop_worker
from shared.settings import Settings, get_settings


async def run_export(ctx: WorkerContext, export_id: str) -> dict[str, Any]:
    """arq entry point: `RetryLater` puts the job back on the queue with `Retry(defer=...)`."""
    try:
        return await tasks.run_export(ctx, export_id)
    except RetryLater as later:
        raise Retry(defer=later.seconds) from later


def functions(settings: Settings) -> list[Function]:
    """The job functions with their arq options."""
    return [
        func(cast(Any, tasks.ping), name=PING),
        func(cast(Any, run_export), name=RUN_EXPORT, timeout=settings.export_job_timeout_seconds),
    ]


async def on_startup(ctx: WorkerContext) -> None:
    """Build the typed context and tune the garbage collector for streaming exports."""
    await start_worker(ctx, "exporter", get_settings().exporter_metrics_port)
    metrics.initialise()
    tune_gc()


def tune_gc() -> None:
    """An export allocates millions of short-lived, acyclic objects (rows, turns, lines).

    With the default thresholds the cyclic collector runs every 700 allocations and its full
    passes walk every long-lived object (imports, schemas): ~20 % of an export's CPU. Freezing
    what start-up built and collecting young objects less often removes nearly all of it; memory
    stays flat because reference counting frees these objects, not the collector.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


async def on_shutdown(ctx: WorkerContext) -> None:
    """Close the context."""
    await stop_worker(ctx)


def settings(current: Settings | None = None) -> dict[str, Any]:
    """The worker's arq settings."""
    current = current or get_settings()
    return worker_settings(
        current,
        "exporter",
        functions=functions(current),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=current.exporter_max_jobs,
        job_timeout=current.export_job_timeout_seconds,
    )


def main() -> None:
    """Run the worker until SIGINT/SIGTERM."""
    run_worker(settings())
