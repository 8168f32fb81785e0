"""Exporter jobs."""

from __future__ import annotations

from typing import Any

from shared.runtime import WorkerContext, instrumented, ping_payload


@instrumented("exporter")
async def ping(ctx: WorkerContext) -> dict[str, Any]:
    """Round-trip check: proves this worker reaches PostgreSQL and storage."""
    return await ping_payload(ctx)
