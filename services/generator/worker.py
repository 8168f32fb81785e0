"""arq worker settings for the generator (the only generator module that imports arq)."""

from __future__ import annotations

from typing import Any, cast

from arq.worker import Function, Retry, func

from services.generator import batch_tasks, metrics, tasks
from services.generator.engine import Deferred
from services.generator.llm.offline import OFFLINE_MODEL
from services.generator.providers import announce
from services.generator.recovery import BATCH_RUNS, ITEMS
from shared import recovery
from shared.queue import GENERATE_ITEM, PING, QUALITY_CHECK, RUN_MESSAGE_BATCHES, worker_settings
from shared.resilience import run_resilient_worker
from shared.runtime import WorkerContext, start_worker, stop_worker
from shared.settings import Settings, get_settings

# Room the job needs beyond one call (limiter check, landing) so its own deadline comes first.
_MIN_JOB_HEADROOM_SECONDS = 4.0


async def generate_item(ctx: WorkerContext, batch_id: str, item_index: int) -> dict[str, Any]:
    """arq entry point: a `Deferred` item goes back on the queue with `Retry(defer=...)`."""
    try:
        return await tasks.generate_item(ctx, batch_id, item_index)
    except Deferred as deferred:
        raise Retry(defer=deferred.seconds) from deferred


async def quality_check(ctx: WorkerContext, batch_id: str, item_index: int) -> dict[str, Any]:
    """arq entry point of one judge item (same deferral contract as generate_item)."""
    try:
        return await tasks.quality_check(ctx, batch_id, item_index)
    except Deferred as deferred:
        raise Retry(defer=deferred.seconds) from deferred


async def run_message_batches(ctx: WorkerContext, batch_id: str) -> dict[str, Any]:
    """arq entry point of a batch-mode job: it defers itself between polls."""
    try:
        return await batch_tasks.run_message_batches(ctx, batch_id)
    except Deferred as deferred:
        raise Retry(defer=deferred.seconds) from deferred


def check(settings: Settings) -> None:
    """Refuse a job timeout that cannot fit one Claude call."""
    need = settings.llm_timeout_seconds + _MIN_JOB_HEADROOM_SECONDS
    if settings.generator_job_timeout_seconds < need:
        raise ValueError(
            f"GENERATOR_JOB_TIMEOUT_SECONDS must be at least LLM_TIMEOUT_SECONDS + "
            f"{_MIN_JOB_HEADROOM_SECONDS:g} ({need:g})"
        )


def functions(settings: Settings) -> list[Function]:
    """The job functions with their arq options (results of item jobs are in PostgreSQL)."""
    return [
        func(cast(Any, tasks.ping), name=PING),
        func(
            cast(Any, generate_item),
            name=GENERATE_ITEM,
            timeout=settings.generator_job_timeout_seconds,
            keep_result=0,
            max_tries=tasks.MAX_JOB_TRIES,
        ),
        func(
            cast(Any, quality_check),
            name=QUALITY_CHECK,
            timeout=settings.generator_job_timeout_seconds,
            keep_result=0,
            max_tries=tasks.MAX_JOB_TRIES,
        ),
        func(
            cast(Any, run_message_batches),
            name=RUN_MESSAGE_BATCHES,
            timeout=settings.generator_job_timeout_seconds,
            keep_result=0,
            max_tries=tasks.MAX_JOB_TRIES,
        ),
    ]


async def on_startup(ctx: WorkerContext) -> None:
    """Build the typed context and say which Claude provider this replica uses."""
    await start_worker(ctx, "generator", get_settings().generator_metrics_port)
    current = get_settings()
    metrics.initialise(OFFLINE_MODEL if current.offline_llm else current.llm_model)
    announce(get_settings())
    resources = ctx["resources"]
    resources.background.extend(recovery.start(resources, ITEMS, BATCH_RUNS))


async def on_shutdown(ctx: WorkerContext) -> None:
    """Close the context."""
    await stop_worker(ctx)


def settings(current: Settings | None = None) -> dict[str, Any]:
    """The worker's arq settings."""
    current = current or get_settings()
    check(current)
    return worker_settings(
        current,
        "generator",
        functions=functions(current),
        on_startup=on_startup,
        on_shutdown=on_shutdown,
        max_jobs=current.generator_max_jobs,
        job_timeout=current.generator_job_timeout_seconds,
    )


def main() -> None:
    """Run the worker until SIGINT/SIGTERM."""
    current = get_settings()
    run_resilient_worker(
        settings(current), redis_backoff_cap=current.worker_redis_backoff_max_seconds
    )
