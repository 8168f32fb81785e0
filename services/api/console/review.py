"""One conversation: transcript, metadata, scores, history, decisions; and the review queue."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.render import render, set_flash
from services.api.console.routing import ConsoleRoute
from services.api.console.score_breakdown import breakdown
from services.api.conversations import service, workflow
from services.api.conversations.schemas import ConversationDetail, ConversationOut
from services.api.edits import service as edits
from services.api.generation import regenerate as regeneration
from shared.db.repositories import conversation_queries as queries
from shared.db.repositories import conversations as repo
from shared.errors import ValidationFailed
from shared.models.conversation import Conversation, ConversationStatus
from shared.models.query import ConversationFilters, SortKey
from shared.models.scores import SCORE_COLUMNS

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PENDING = ConversationFilters(status=[ConversationStatus.PENDING_REVIEW])
EVERYTHING = ConversationFilters()
# The queue walks oldest first; browsing walks the list's default order, newest first.
_QUEUE_SORT: SortKey = "created_at"
_BROWSE_SORT: SortKey = "-created_at"
_DECISIONS = {
    "approved": ConversationStatus.APPROVED,
    "rejected": ConversationStatus.REJECTED,
    "needs_revision": ConversationStatus.NEEDS_REVISION,
    "archived": ConversationStatus.ARCHIVED,
    "pending_review": ConversationStatus.PENDING_REVIEW,
}
_REVERSE: dict[str, SortKey] = {"created_at": "-created_at", "-created_at": "created_at"}


async def neighbour(
    conn: Any, owner: UUID, current: Conversation, *, queue: bool, forward: bool
) -> UUID | None:
    """The next (or previous) conversation after `current` in the queue or the list.

    Read through the list's repository query, one row and no count: the service's list_page
    would count every match to report a total this page does not show.
    """
    filters = PENDING if queue else EVERYTHING
    base: SortKey = _QUEUE_SORT if queue else _BROWSE_SORT
    sort: SortKey = base if forward else _REVERSE[base]
    after = (current.created_at, current.id)
    page = await queries.list_page(conn, owner, filters, sort, after, 1, ConversationOut)
    return page.items[0].id if page.items else None


async def first_pending(conn: Any, owner: UUID) -> UUID | None:
    """The oldest conversation waiting for review."""
    page = await queries.list_page(conn, owner, PENDING, _QUEUE_SORT, None, 1, ConversationOut)
    return page.items[0].id if page.items else None


def _scores(conversation: Conversation) -> list[tuple[str, Any]]:
    """Every other score the conversation has: its columns named *score* (the judge's are in
    the breakdown), then quality_metrics."""
    columns = [
        (name, value)
        for name, value in conversation.model_dump().items()
        if "score" in name
        and name not in SCORE_COLUMNS
        and value is not None
        and not isinstance(value, dict)
    ]
    metrics: list[tuple[str, Any]] = []
    for name, value in conversation.quality_metrics.items():
        if isinstance(value, dict):
            metrics.extend(
                (f"{name}.{k}", v) for k, v in value.items() if not isinstance(v, dict | list)
            )
        elif value is not None and not isinstance(value, list):
            metrics.append((name, value))
    return columns + metrics


async def page(
    request: Request,
    session: Any,
    conn: Any,
    id: UUID,
    queue: bool,
    form_error: dict[str, str] | None = None,
    status_code: int = 200,
    **extra: Any,
) -> Response:
    """The review page; `form_error` puts messages next to fields, `extra` refills forms."""
    detail = await service.detail(conn, id)
    owner = session.user_id
    context: dict[str, Any] = {
        "title": detail.title or detail.conversation_id,
        "queue": queue,
        "original": await service.original_of(conn, detail),
        "next_id": await neighbour(conn, owner, detail, queue=queue, forward=True),
        "prev_id": await neighbour(conn, owner, detail, queue=queue, forward=False),
        "form_error": form_error or {},
        "allowed": {status.value for status in workflow.ALLOWED[detail.status]},
        "regen": {},
        "regen_fields": await regeneration.parameter_fields(conn, detail),
        **await edit_context(conn, detail),
        **extra,
    }
    return render(request, "conversation.html", context, status_code=status_code)


async def edit_context(conn: Any, detail: ConversationDetail) -> dict[str, Any]:
    """What the transcript, versions and history partials need."""
    return {
        "c": detail,
        "editable": detail.status in edits.EDITABLE,
        "scores": _scores(detail),
        "breakdown": breakdown(detail),
        "versions": await edits.list_versions(conn, detail.id),
        "reviews": await repo.reviews(conn, detail.id),
    }


@router.get("/conversations/{id}")
async def conversation_page(
    request: Request, id: UUID, session: SessionDep, conn: ConsoleConnDep, queue: bool = False
) -> Response:
    """Twin of GET /v1/conversations/{id} and its /reviews."""
    return await page(request, session, conn, id, queue)


@router.get("/review")
async def review_queue(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
    """The queue: opens the oldest pending conversation, or says the queue is empty."""
    first = await first_pending(conn, session.user_id)
    if first is None:
        return render(request, "review_empty.html", {"title": "Review queue"})
    return RedirectResponse(f"/console/conversations/{first}?queue=1", status_code=303)


@router.post("/conversations/{id}/status")
async def decide(request: Request, id: UUID, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """Twin of POST /v1/conversations/{id}/status; in the queue the next one opens."""
    form = await request.form()
    queue = form.get("queue") == "1"
    target = _DECISIONS.get(str(form.get("status")))
    if target is None:
        raise ValidationFailed(
            "unknown decision",
            details=[{"path": "status", "message": "not a status", "type": "enum"}],
        )
    notes = str(form.get("notes") or "").strip()[:10_000] or None
    try:
        async with conn.transaction():
            updated = await service.transition(
                conn, session.user_id, session.user_id, id, target, notes
            )
    except ValidationFailed as exc:
        return await page(request, session, conn, id, queue, {target.value: exc.message}, 422)
    label = target.value.replace("_", " ")
    if not queue:
        response = RedirectResponse(f"/console/conversations/{id}", status_code=303)
        set_flash(response, f"Marked {label}.")
        return response
    following = await neighbour(conn, session.user_id, updated, queue=True, forward=True)
    following = following or await first_pending(conn, session.user_id)
    location = f"/console/conversations/{following}?queue=1" if following else "/console/review"
    response = RedirectResponse(location, status_code=303)
    set_flash(response, f"“{updated.title or updated.conversation_id}” marked {label}.")
    return response


@router.get("/conversations/{id}/download")
async def download(id: UUID, _: SessionDep, conn: ConsoleConnDep) -> Response:
    """The conversation with its turns as JSON (the body of GET /v1/conversations/{id})."""
    detail = await service.detail(conn, id)
    body = orjson.dumps(detail.model_dump(mode="json"), option=orjson.OPT_INDENT_2)
    name = f"{detail.conversation_id}.json".replace('"', "")
    headers = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(body, media_type="application/json", headers=headers)
