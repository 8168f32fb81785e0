"""Janitor jobs: thin arq entry points over services.janitor.runner (cron, or enqueued by name)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.janitor.context import JanitorDeps
from services.janitor.runner import TASKS, run_task
from shared.runtime import WorkerContext, instrumented, ping_payload

TaskJob = Callable[[WorkerContext], Awaitable[dict[str, Any]]]


@instrumented("janitor")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)


def _task_job(name: str, summary: str) -> TaskJob:
    """The arq job that runs one janitor task, named after it (`expire-exports` →
    `expire_exports`, the function label of the job metrics)."""

    async def job(ctx: WorkerContext) -> dict[str, Any]:
        report = await run_task(JanitorDeps.from_worker(ctx["resources"]), name)
        return report.as_dict()

    job.__name__ = job.__qualname__ = name.replace("-", "_")
    job.__doc__ = summary
    return instrumented("janitor")(job)


# Task name (cron name, arq function name, `convoforge janitor run` name) → job function.
TASK_FUNCTIONS: dict[str, TaskJob] = {
    name: _task_job(name, task.summary) for name, task in TASKS.items()
}
