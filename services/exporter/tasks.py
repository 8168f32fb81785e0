"""Exporter jobs: each receives ids, calls the service and returns a short summary."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from services.exporter import service
from shared.runtime import WorkerContext, instrumented, ping_payload


@instrumented("exporter")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)


@instrumented("exporter")
async def run_export(ctx: WorkerContext, export_id: str) -> dict[str, Any]:
    """Stream one export into object storage (idempotent: safe when arq runs it twice)."""
    return await service.run_export(ctx["resources"], UUID(export_id))
