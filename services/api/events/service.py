"""Server-Sent Events for a job's progress: what the public API and the console both stream.

Workers append a notice to the job's Redis Stream (shared/events.py) whenever it changes; this
module turns notices into SSE: on each one it renders the job's status from PostgreSQL (the
same object as GET /v1/...), sends it as `event: progress` when it changed, and `event: end`
with the terminal status before closing. Event ids are stream ids, so `Last-Event-ID` resumes
after the last notice the client saw. PostgreSQL is also re-read every few seconds without a
notice, so changes nobody announced (a cancel, the janitor's recovery) still arrive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import orjson
import redis.exceptions
from pydantic import BaseModel

from services.api.exports import service as exports_service
from services.api.exports.schemas import ExportDetail
from services.api.generation import service as generation_service
from services.api.resources import ApiResources
from shared import events
from shared.db.pool import tenant_transaction
from shared.events import EventKind
from shared.logging import get_logger
from shared.models.export import ExportStatus
from shared.models.generation import TERMINAL_BATCH

log = get_logger(__name__)
# Without a notice the status is re-read this often; XREAD waits at most this long per call
# (below the Redis client's 5 s socket timeout).
POLL_SECONDS = 3.0
_TERMINAL_EXPORT = frozenset(
    {ExportStatus.COMPLETED, ExportStatus.FAILED, ExportStatus.EXPIRED, ExportStatus.CANCELLED}
)
_REDIS_DOWN = (redis.exceptions.RedisError, OSError)


@dataclass(frozen=True)
class Status:
    """A job's status object and whether it is final."""

    body: bytes
    terminal: bool


Loader = Callable[[], Awaitable[Status]]


def _status(model: BaseModel, terminal: bool) -> Status:
    return Status(orjson.dumps(model.model_dump(mode="json")), terminal)


def loader(resources: ApiResources, owner_id: UUID, kind: EventKind, job_id: UUID) -> Loader:
    """Reads the job's status in a short transaction of its own (404 when not the caller's)."""

    async def load() -> Status:
        async with tenant_transaction(resources.pool, owner_id, readonly=True) as conn:
            if kind == "generation":
                job = await generation_service.detail(conn, owner_id, job_id)
                return _status(job, job.status in TERMINAL_BATCH)
            export = await exports_service.get(conn, job_id)
            return _status(ExportDetail.of(export), export.status in _TERMINAL_EXPORT)

    return load


def frame(event: str, event_id: str, data: bytes) -> bytes:
    """One SSE event (the JSON data is a single line)."""
    return b"event: %s\nid: %s\ndata: %s\n\n" % (event.encode(), event_id.encode(), data)


async def stream(
    resources: ApiResources,
    kind: EventKind,
    job_id: UUID,
    load: Loader,
    last_event_id: str | None,
) -> AsyncIterator[bytes]:
    """The event stream of one job, from its current state (or `last_event_id`) to its end."""
    settings = resources.settings
    resumed = events.valid_event_id(last_event_id)
    cursor = resumed or await _latest(resources, kind, job_id)
    if resumed:
        cursor = await _catch_up(resources, kind, job_id, cursor)
    yield b"retry: 2000\n\n"
    sent: bytes | None = None
    last_write = last_read = time.monotonic()
    status = await load()
    while True:
        if status.terminal:
            yield frame("end", cursor, status.body)
            return
        if status.body != sent:
            yield frame("progress", cursor, status.body)
            sent, last_write = status.body, time.monotonic()
        notices = await _wait(resources, kind, job_id, cursor)
        if notices:
            cursor = notices[-1].id
        now = time.monotonic()
        if now - last_write >= settings.sse_heartbeat_seconds:
            yield b": heartbeat\n\n"
            last_write = now
        if notices or now - last_read >= POLL_SECONDS:
            status, last_read = await load(), now


async def _latest(resources: ApiResources, kind: EventKind, job_id: UUID) -> str:
    try:
        return await events.latest_id(resources.redis, resources.settings, kind, job_id)
    except _REDIS_DOWN as exc:
        log.warning("api.events.redis_unavailable", error=str(exc))
        return events.START_ID


async def _catch_up(resources: ApiResources, kind: EventKind, job_id: UUID, after: str) -> str:
    """The newest id after a resumed client's: what it missed collapses into one status."""
    try:
        missed = await events.read_after(
            resources.redis, resources.settings, kind, job_id, after, block_ms=0
        )
    except _REDIS_DOWN:
        return after
    return missed[-1].id if missed else after


async def _wait(
    resources: ApiResources, kind: EventKind, job_id: UUID, after: str
) -> list[events.Notice]:
    """Notices after `after`, waiting up to POLL_SECONDS; none while Redis is down."""
    try:
        return await events.read_after(
            resources.redis, resources.settings, kind, job_id, after,
            block_ms=int(POLL_SECONDS * 1000),
        )  # fmt: skip
    except _REDIS_DOWN as exc:
        log.warning("api.events.redis_unavailable", error=str(exc))
        await asyncio.sleep(POLL_SECONDS)
        return []


SSE_HEADERS: dict[str, Any] = {
    "Cache-Control": "no-store",
    "X-Accel-Buffering": "no",  # proxies (nginx) must pass events through as they come
}
