"""Janitor jobs: thin arq entry points over services.janitor.runner (cron, or enqueued by name)."""

from __future__ import annotations

from typing import Any

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.runtime import WorkerContext, instrumented, ping_payload


@instrumented("janitor")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)


async def _run(ctx: WorkerContext, name: str) -> dict[str, Any]:
    report = await run_task(JanitorDeps.from_worker(ctx["resources"]), name)
    return report.as_dict()


@instrumented("janitor")
async def expire_exports(ctx: WorkerContext) -> dict[str, Any]:
    """Expire completed exports past expires_at."""
    return await _run(ctx, "expire-exports")


@instrumented("janitor")
async def prune_audit_logs(ctx: WorkerContext) -> dict[str, Any]:
    """Archive and delete old export logs."""
    return await _run(ctx, "prune-audit-logs")


@instrumented("janitor")
async def conversation_retention(ctx: WorkerContext) -> dict[str, Any]:
    """Apply conversation retention."""
    return await _run(ctx, "conversation-retention")


@instrumented("janitor")
async def reconcile(ctx: WorkerContext) -> dict[str, Any]:
    """Reconcile objects and rows."""
    return await _run(ctx, "reconcile")


@instrumented("janitor")
async def recover_stuck_jobs(ctx: WorkerContext) -> dict[str, Any]:
    """Recover stuck exports and generation batches."""
    return await _run(ctx, "recover-stuck-jobs")


@instrumented("janitor")
async def export_failure_ratio(ctx: WorkerContext) -> dict[str, Any]:
    """Measure the export failure ratio."""
    return await _run(ctx, "export-failure-ratio")


@instrumented("janitor")
async def abort_stale_uploads(ctx: WorkerContext) -> dict[str, Any]:
    """Abort the unfinished uploads of exporters that died."""
    return await _run(ctx, "abort-stale-uploads")


# Task name (cron name, arq function name, `convoforge janitor run` name) → job function.
TASK_FUNCTIONS = {
    "expire-exports": expire_exports,
    "prune-audit-logs": prune_audit_logs,
    "conversation-retention": conversation_retention,
    "reconcile": reconcile,
    "recover-stuck-jobs": recover_stuck_jobs,
    "export-failure-ratio": export_failure_ratio,
    "abort-stale-uploads": abort_stale_uploads,
}
