"""Job progress events: workers append to a Redis Stream per job, API replicas read it.

A stream per job (`{prefix}:events:{kind}:{id}`) gives every API replica the same ordered log:
its entry ids are the SSE event ids, so a client that reconnects with `Last-Event-ID` is served
what it missed by an XREAD after that id. The entries are notifications ("this job changed"),
not the status itself: the API renders the status from PostgreSQL, the one source of truth, so
a lost or duplicated notification can delay an update but never show a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from uuid import UUID

import redis.exceptions

from shared.logging import get_logger
from shared.queue import ArqRedis
from shared.settings import Settings

log = get_logger(__name__)

EventKind = Literal["generation", "export"]
# Streams outlive their job long enough for any client to reconnect, then expire on their own.
STREAM_TTL_SECONDS = 7 * 86_400
START_ID = "0-0"
_STREAM_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
_REDIS_ERRORS = (redis.exceptions.RedisError, OSError)


@dataclass(frozen=True)
class Notice:
    """One stream entry: its id and what the publisher said happened."""

    id: str
    reason: str


def stream_key(settings: Settings, kind: EventKind, job_id: UUID) -> str:
    """The Redis key of one job's event stream."""
    return f"{settings.queue_prefix}:events:{kind}:{job_id}"


def valid_event_id(value: str | None) -> str | None:
    """A client's Last-Event-ID when it has the shape of a stream id, else None."""
    if value and _STREAM_ID.match(value.strip()):
        return value.strip()
    return None


async def publish(
    redis: ArqRedis, settings: Settings, kind: EventKind, job_id: UUID, reason: str
) -> str | None:
    """Append a notice; never raises (progress events must not fail the work they report)."""
    key = stream_key(settings, kind, job_id)
    try:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.xadd(key, {"reason": reason}, maxlen=settings.sse_stream_max_events)
            pipe.expire(key, STREAM_TTL_SECONDS)
            entry_id, _ = await pipe.execute()
    except _REDIS_ERRORS as exc:
        log.warning("events.publish_failed", kind=kind, job_id=str(job_id), error=str(exc))
        return None
    return _text(entry_id)


async def latest_id(redis: ArqRedis, settings: Settings, kind: EventKind, job_id: UUID) -> str:
    """The id of the newest entry, or START_ID for an empty or missing stream."""
    entries = await redis.xrevrange(stream_key(settings, kind, job_id), count=1)
    return _text(entries[0][0]) if entries else START_ID


async def read_after(
    redis: ArqRedis,
    settings: Settings,
    kind: EventKind,
    job_id: UUID,
    after: str,
    *,
    block_ms: int,
) -> list[Notice]:
    """Entries newer than `after`, waiting up to `block_ms` for the first one (0: no wait)."""
    key = stream_key(settings, kind, job_id)
    answer = await redis.xread({key: after}, block=block_ms or None, count=100)
    notices: list[Notice] = []
    for _, entries in answer or []:
        for entry_id, fields in entries:
            reason = fields.get(b"reason", b"") if isinstance(fields, dict) else b""
            notices.append(Notice(id=_text(entry_id), reason=_text(reason)))
    return notices


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
