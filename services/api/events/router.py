"""Routes of the job event streams: GET /v1/generation-jobs/{id}/events, /v1/exports/{id}/events."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header
from fastapi.responses import StreamingResponse

from services.api.deps import PrincipalDep, ResourcesDep
from services.api.events import service
from shared.events import EventKind

router = APIRouter(tags=["events"])

_SSE_DOC: dict[Any, Any] = {
    200: {
        "content": {"text/event-stream": {}},
        "description": "`event: progress` (data: the job's status object) on every change, "
        "`: heartbeat` comments, then `event: end` with the terminal status; every event has an "
        "`id`, and a reconnect with `Last-Event-ID` gets what it missed, the end included.",
    },
    404: {"description": "no such job (or another tenant's)"},
}
LastEventId = Annotated[str | None, Header(alias="Last-Event-ID", max_length=64)]


async def _respond(
    resources: Any, owner_id: UUID, kind: EventKind, job_id: UUID, last_event_id: str | None
) -> StreamingResponse:
    load = service.loader(resources, owner_id, kind, job_id)
    await load()  # a 404 (or any error) is answered before the stream starts
    body = service.stream(resources, kind, job_id, load, last_event_id)
    return StreamingResponse(body, media_type="text/event-stream", headers=service.SSE_HEADERS)


@router.get(
    "/v1/generation-jobs/{job_id}/events", response_class=StreamingResponse, responses=_SSE_DOC
)
async def generation_events(
    job_id: UUID, me: PrincipalDep, resources: ResourcesDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The job's progress as Server-Sent Events until it finishes."""
    return await _respond(resources, me.user_id, "generation", job_id, last_event_id)


@router.get("/v1/exports/{export_id}/events", response_class=StreamingResponse, responses=_SSE_DOC)
async def export_events(
    export_id: UUID, me: PrincipalDep, resources: ResourcesDep, last_event_id: LastEventId = None
) -> StreamingResponse:
    """The export's progress as Server-Sent Events until it finishes."""
    return await _respond(resources, me.user_id, "export", export_id, last_event_id)
