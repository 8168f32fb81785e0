"""Export: the dialog (scope with live counts, format, options, preview), progress, history."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData, QueryParams

from services.api.console import filters as list_view
from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.forms import field_errors
from services.api.console.render import render
from services.api.console.routing import ConsoleRoute
from services.api.conversations import service as conversations
from services.api.deps import PoolDep, ResourcesDep
from services.api.events import service as events
from services.api.exports import service
from services.api.exports.history_csv import history_csv
from services.api.exports.schemas import ExportDetail, ExportRequest
from shared.db.repositories.exports import HistoryFilters
from shared.errors import ValidationFailed
from shared.models.conversation import ConversationStatus, Tier
from shared.models.export import ExportFormat, ExportStatus
from shared.models.query import ConversationFilters

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
APPROVED = ConversationFilters(status=[ConversationStatus.APPROVED])
FORMATS = [
    (
        "jsonl",
        "JSONL (chat messages)",
        'Recommended for fine-tuning: one {"messages": [...]} per line, what OpenAI-style '
        "trainers read as is.",
    ),
    ("json", "JSON document", "One document with a summary; for programs and archives."),
    ("csv", "CSV (one row per turn)", "For spreadsheets and reviewers; UTF-8 with BOM."),
    ("markdown", "Markdown", "For reading and sharing."),
]
OPTIONS = [
    ("include_metadata", "Metadata"),
    ("include_quality_scores", "Quality scores"),
    ("include_timestamps", "Timestamps"),
    ("include_approval_history", "Approval history"),
    ("include_parent_references", "Parent references"),
    ("include_full_content", "Full content"),
    ("compress", "Compress (gzip)"),
]
_DEFAULT_ON = {"include_quality_scores", "include_full_content"}


async def _count(conn: Any, owner: UUID, filters: ConversationFilters) -> int:
    return (await conversations.list_page(conn, owner, filters, "-created_at", None, 1)).total


def _ids(values: list[Any]) -> list[UUID]:
    ids = []
    for value in values:
        try:
            ids.append(UUID(str(value)))
        except ValueError:
            continue
    return list(dict.fromkeys(ids))


async def dialog(
    request: Request,
    session: Any,
    conn: Any,
    *,
    selected: list[UUID] | None = None,
    filter_query: str = "",
) -> Response:
    """The export dialog, its scope counts computed now."""
    owner = session.user_id
    filtered = list_view.parse(QueryParams(filter_query)).filters if filter_query else None
    counts = {
        "all_approved": await _count(conn, owner, APPROVED),
        "all": await _count(conn, owner, ConversationFilters()),
        "filtered": await _count(conn, owner, filtered) if filtered else None,
        "selected": len(selected or []),
    }
    scope = "selected" if selected else "filtered" if filtered else "all_approved"
    context = {
        "title": "Export",
        "counts": counts,
        "scope": scope,
        "selected": selected or [],
        "filter_query": filter_query,
        "formats": FORMATS,
        "options": OPTIONS,
        "default_on": _DEFAULT_ON,
        "tiers": list(Tier),
    }
    return render(request, "export_dialog.html", context)


def export_request(form: FormData) -> ExportRequest:
    """The dialog's form as the body of POST /v1/exports."""
    scope = str(form.get("scope") or "all_approved")
    config: dict[str, Any] = {name: form.get(name) == "on" for name, _ in OPTIONS}
    config["format"] = str(form.get("format") or "jsonl")
    body: dict[str, Any] = {}
    if scope == "tier":
        scope = "filtered"
        body["filters"] = {"tier": [str(form.get("tier") or "")], "status": ["approved"]}
    elif scope == "filtered":
        body["filters"] = list_view.parse(
            QueryParams(str(form.get("filter_query") or ""))
        ).filters.model_dump(exclude_defaults=True)
    elif scope == "selected":
        body["conversation_ids"] = [str(id) for id in _ids(form.getlist("ids"))]
    return ExportRequest.model_validate({"config": {**config, "scope": scope}, **body})


@router.get("/exports/new")
async def new_export(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
    """The dialog; `?filter=<list query>` offers the current filter of the conversations page."""
    return await dialog(
        request, session, conn, filter_query=str(request.query_params.get("filter") or "")[:4000]
    )


@router.post("/exports/preview")
async def preview(request: Request, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """Twin of POST /v1/exports/preview: the first three conversations, rendered (htmx)."""
    form = await request.form()
    context: dict[str, Any] = {"preview": None, "errors": {}}
    try:
        context["preview"] = await service.preview(conn, session.user_id, export_request(form))
    except (ValidationError, ValidationFailed) as exc:
        context["errors"] = field_errors(exc)
    return render(request, "_export_preview.html", context)


@router.post("/exports")
async def create(request: Request, session: CsrfDep, resources: ResourcesDep) -> Response:
    """Twin of POST /v1/exports: opens the export's progress page."""
    form = await request.form()
    try:
        body = export_request(form)
    except ValidationError as exc:
        raise ValidationFailed(
            "the export settings have problems",
            details=[{"path": k, "message": v} for k, v in field_errors(exc).items()],
        ) from exc
    export = await service.request_export(resources, session.user_id, body)
    return RedirectResponse(f"/console/exports/{export.id}", status_code=303)


def _history_filters(params: QueryParams) -> HistoryFilters:
    formats = [f for f in params.getlist("format") if f in {m.value for m in ExportFormat}]
    statuses = [s for s in params.getlist("status") if s in {m.value for m in ExportStatus}]
    return HistoryFilters(formats=formats, statuses=statuses)


@router.get("/exports")
async def history(
    request: Request, session: SessionDep, conn: ConsoleConnDep, cursor: str | None = None
) -> Response:
    """Twin of GET /v1/exports: the export history, newest first."""
    filters = _history_filters(request.query_params)
    page = await service.history(conn, filters, cursor, 25)
    context = {
        "title": "Exports",
        "page": page,
        "filters": filters,
        "formats": list(ExportFormat),
        "statuses": list(ExportStatus),
        "now": datetime.now(UTC),
        "cursor": cursor,
    }
    return render(request, "exports.html", context)


@router.get("/exports/history.csv")
async def history_file(request: Request, session: SessionDep, pool: PoolDep) -> StreamingResponse:
    """Twin of GET /v1/exports/history.csv."""
    name = f"export-history-{datetime.now(UTC):%Y-%m-%d}.csv"
    return StreamingResponse(
        history_csv(pool, session.user_id, _history_filters(request.query_params)),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/exports/{id}")
async def export_page(
    request: Request, id: UUID, session: SessionDep, conn: ConsoleConnDep
) -> Response:
    """Twin of GET /v1/exports/{id}: progress, then the download button."""
    export = ExportDetail.of(await service.get(conn, id))
    template = "_export_status.html" if request.headers.get("hx-request") else "export.html"
    return render(request, template, {"title": "Export", "e": export})


@router.get("/exports/{id}/events")
async def export_events(
    request: Request, id: UUID, session: SessionDep, resources: ResourcesDep
) -> StreamingResponse:
    """The export's SSE stream (as GET /v1/exports/{id}/events, by cookie)."""
    load = events.loader(resources, session.user_id, "export", id)
    await load()
    body = events.stream(resources, "export", id, load, request.headers.get("last-event-id"))
    return StreamingResponse(body, media_type="text/event-stream", headers=events.SSE_HEADERS)


@router.get("/exports/{id}/download")
async def download(
    id: UUID, session: SessionDep, conn: ConsoleConnDep, resources: ResourcesDep
) -> Response:
    """Twin of GET /v1/exports/{id}/download: to the signed URL of the file."""
    link = await service.download_link(conn, resources.storage, resources.settings, id)
    return RedirectResponse(link.url, status_code=302, headers={"Cache-Control": "no-store"})
