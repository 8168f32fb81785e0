"""Exporter jobs: each receives ids, calls the service and returns a short summary."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.exporter import service
from shared.events import publish
from shared.runtime import WorkerContext, instrumented, ping_payload


@instrumented("exporter")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)


@instrumented("exporter")
async def run_export(ctx: WorkerContext, export_id: str) -> dict[str, Any]:
    """Stream one export into object storage (idempotent: safe when arq runs it twice)."""
    resources = ctx["resources"]
    result = await service.run_export(resources, UUID(export_id))
    await publish(resources.redis, resources.settings, "export", UUID(export_id), "finished")
    return result
