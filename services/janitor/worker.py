"""arq worker settings for the janitor (the only janitor module that imports arq)."""

from __future__ import annotations

from typing import Any

from arq import run_worker

from services.janitor import tasks
from shared.queue import worker_settings
from shared.runtime import WorkerContext, start_worker, stop_worker
from shared.settings import get_settings


async def on_startup(ctx: WorkerContext) -> None:
    """Build the typed context."""
    await start_worker(ctx, "janitor", get_settings().janitor_metrics_port)


async def on_shutdown(ctx: WorkerContext) -> None:
    """Close the context."""
    await stop_worker(ctx)


def settings() -> dict[str, Any]:
    """The worker's arq settings."""
    return worker_settings(
        get_settings(),
        "janitor",
        functions=[tasks.ping],
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def main() -> None:
    """Run the worker until SIGINT/SIGTERM."""
    run_worker(settings())
