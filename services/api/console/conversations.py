"""The conversations table: filters in the URL, sorting, keyset pages, bulk actions."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, BackgroundTasks, Request, Response
from fastapi.responses import RedirectResponse
from starlette.datastructures import FormData, QueryParams

from services.api.console import filters as list_view
from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.exports import dialog
from services.api.console.render import render, set_flash
from services.api.console.routing import ConsoleRoute
from services.api.conversations import service
from services.api.deps import DedupDep, PoolDep, QueueDep, SettingsDep
from services.api.quality import service as quality
from services.api.quality.schemas import ScoreIn
from shared.db.repositories.minhash import Stored
from shared.errors import ValidationFailed
from shared.models.conversation import ConversationStatus, Tier
from shared.models.query import ConversationFilters
from shared.models.scores import QualitySource

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
MAX_BULK = 1000
_ACTIONS = ("approve", "reject", "archive", "delete", "export", "score")
_CONFIRM = ("archive", "delete")
_DONE = {"approve": "Approved", "reject": "Rejected", "archive": "Archived", "delete": "Deleted"}


@router.get("/conversations")
async def conversations_page(
    request: Request, session: SessionDep, conn: ConsoleConnDep
) -> Response:
    """Twin of GET /v1/conversations; an htmx request gets the results partial alone."""
    view = list_view.parse(request.query_params)
    page = await service.list_page(
        conn, session.user_id, view.filters, view.sort, view.cursor, view.limit
    )
    context: dict[str, Any] = {
        "title": "Conversations",
        "view": view,
        "page": page,
        "first": view.start if page.items else 0,
        "last": view.start + len(page.items) - 1,
        "sort_link": list_view.sort_link,
        "statuses": list(ConversationStatus),
        "tiers": list(Tier),
        "page_sizes": list_view.PAGE_SIZES,
        "quality_sources": list(QualitySource),
        "sort_choices": list_view.SORT_CHOICES,
        "query_string": str(request.query_params),
    }
    template = (
        "_conversation_results.html" if request.headers.get("hx-request") else "conversations.html"
    )
    return render(request, template, context)


async def matching_ids(conn: Any, owner: UUID, filters: ConversationFilters) -> list[UUID]:
    """Every id the filters match, up to MAX_BULK (pages of the list service)."""
    ids: list[UUID] = []
    cursor = None
    while len(ids) < MAX_BULK:
        page = await service.list_page(conn, owner, filters, "-created_at", cursor, 100)
        ids.extend(item.id for item in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    return ids[:MAX_BULK]


def _ids(form: FormData) -> list[UUID]:
    ids = []
    for value in form.getlist("ids"):
        try:
            ids.append(UUID(str(value)))
        except ValueError as exc:
            raise ValidationFailed(
                "invalid selection",
                details=[{"path": "ids", "message": "not a conversation id", "type": "uuid"}],
            ) from exc
    return list(dict.fromkeys(ids))


@router.post("/conversations/bulk")
async def bulk(
    request: Request,
    session: CsrfDep,
    conn: ConsoleConnDep,
    dedup: DedupDep,
    background: BackgroundTasks,
    pool: PoolDep,
    queue: QueueDep,
    settings: SettingsDep,
) -> Response:
    """Twin of POST /v1/conversations/bulk-action (plus a step to confirm or give a reason)."""
    form = await request.form()
    action = str(form.get("action") or "")
    query = str(form.get("query") or "")[:4000]
    back = f"/console/conversations?{query}" if query else "/console/conversations"
    if action not in _ACTIONS:
        raise ValidationFailed(
            "choose an action",
            details=[{"path": "action", "message": "unknown action", "type": "enum"}],
        )
    if form.get("all_matching"):
        ids = await matching_ids(conn, session.user_id, list_view.parse(QueryParams(query)).filters)
    else:
        ids = _ids(form)[:MAX_BULK]
    if not ids:
        response = RedirectResponse(back, status_code=303)
        set_flash(response, "Select at least one conversation first.")
        return response
    if action == "export":
        return await dialog(request, session, conn, selected=ids)
    if action == "score":  # one quality_check job for the selection: open its page
        job = await quality.score(pool, queue, settings, session.user_id, ids, ScoreIn())
        if job is not None:
            return RedirectResponse(f"/console/jobs/{job.batch.id}", status_code=303)
        response = RedirectResponse(back, status_code=303)
        set_flash(response, "None of the selected conversations could be scored.")
        return response
    reason = str(form.get("reason") or "").strip()[:10_000] or None
    needs_step = (action in _CONFIRM and not form.get("confirm")) or (
        action == "reject" and not reason
    )
    if needs_step:
        context = {
            "title": "Confirm",
            "action": action,
            "ids": ids,
            "query": query,
            "reason": reason,
        }
        return render(request, "bulk_confirm.html", context)
    removed: list[Stored] = []
    results = await service.bulk(
        conn, session.user_id, session.user_id, action, ids, reason, removed
    )
    background.add_task(dedup.forget, session.user_id, removed)  # after the commit
    failed = [r for r in results if not r.ok]
    response = RedirectResponse(back, status_code=303)
    note = f"{_DONE[action]} {len(results) - len(failed)} conversation(s)."
    if failed:
        first = (failed[0].error or {}).get("message", "")
        note += f" {len(failed)} could not be changed ({first})."
    set_flash(response, note)
    return response
