"""Export: the dialog (scope with live counts, format, options, preview), progress, history."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pyarrow import parquet
from pydantic import ValidationError
from starlette.datastructures import FormData, QueryParams

from services.api.console import export_form as form_io
from services.api.console import filters as list_view
from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.render import render
from services.api.console.routing import ConsoleRoute
from services.api.conversations import service as conversations
from services.api.deps import PoolDep, ResourcesDep
from services.api.events import service as events
from services.api.export_presets import service as presets
from services.api.export_presets.schemas import PresetIn
from services.api.exports import service
from services.api.exports.history_csv import history_csv
from services.api.exports.schemas import ExportDetail, PreviewOut
from shared.db.repositories.exports import HistoryFilters
from shared.errors import DomainError, ValidationFailed
from shared.models.conversation import ConversationStatus, Tier
from shared.models.export import ExportFormat, ExportScope, ExportStatus
from shared.models.query import ConversationFilters

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
_CONTEXT_SCOPES = {ExportScope.ALL_APPROVED.value, ExportScope.ALL.value}


@dataclass
class DialogState:
    """What the dialog shows besides its counts: the controls' values and any outcome."""

    values: dict[str, Any]
    scope: str | None = None
    preset_id: str = ""
    notice: str | None = None
    problems: list[tuple[str, str]] = field(default_factory=list)
    last_used: bool = False


async def _counts(
    conn: Any, owner: UUID, filtered: ConversationFilters | None, selected: int
) -> dict[str, int | None]:
    """Scope sizes: all and all-approved from the stats counters, the filter by its count."""
    stats = await conversations.stats(conn, owner)
    matching = None
    if filtered is not None:
        page = await conversations.list_page(conn, owner, filtered, "-created_at", None, 1)
        matching = page.total
    return {"all_approved": stats.by_status.get(ConversationStatus.APPROVED.value, 0),
            "all": stats.total, "filtered": matching, "selected": selected}  # fmt: skip


async def dialog(
    request: Request,
    session: Any,
    conn: Any,
    *,
    selected: list[UUID] | None = None,
    filter_query: str = "",
    state: DialogState | None = None,
    status_code: int = 200,
) -> Response:
    """The export dialog, its scope counts computed now; the last-used config when fresh."""
    owner = session.user_id
    filtered = list_view.parse(QueryParams(filter_query)).filters if filter_query else None
    counts = await _counts(conn, owner, filtered, len(selected or []))
    scope = "selected" if selected else "filtered" if filtered else "all_approved"
    if state is None:
        last = form_io.stored_config((await presets.preferences(conn)).last_config)
        state = DialogState(values=form_io.values_of(last), last_used=last is not None)
        if last is not None and scope == "all_approved":  # a selection or filter comes first
            state.scope = str(last["scope"])
    offered = {*_CONTEXT_SCOPES, form_io.TIER_SCOPE, scope}
    if state.scope in offered:
        scope = state.scope
    context = {
        "title": "Export",
        "counts": counts,
        "scope": scope,
        "selected": selected or [],
        "filter_query": filter_query,
        "formats": form_io.FORMATS,
        "targets": form_io.TARGETS,
        "strata": form_io.STRATA,
        "options": form_io.OPTIONS,
        "tiers": list(Tier),
        "v": state.values,
        "recommendation": form_io.recommendation(state.values),
        "presets": (await presets.list_presets(conn)).items,
        "state": state,
    }
    return render(request, "export_dialog.html", context, status_code=status_code)


async def _redisplay(
    request: Request, session: Any, conn: Any, form: FormData, state: DialogState, status: int
) -> Response:
    """The dialog again with what the form held (scope, selection, filter)."""
    state.scope = state.scope or str(form.get("scope") or "")
    return await dialog(
        request, session, conn, selected=form_io.selected_ids(form.getlist("ids")),
        filter_query=str(form.get("filter_query") or "")[:4000], state=state, status_code=status,
    )  # fmt: skip


def _form_state(form: FormData, **kwargs: Any) -> DialogState:
    values = form_io.values_of(form_io.config_from(form))
    return DialogState(values=values, preset_id=str(form.get("preset_id") or ""), **kwargs)


@router.get("/exports/new")
async def new_export(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
    """The dialog; `?filter=<list query>` offers the current filter of the conversations page."""
    return await dialog(
        request, session, conn, filter_query=str(request.query_params.get("filter") or "")[:4000]
    )


@router.post("/exports/dialog")
async def load_preset(request: Request, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """The dialog filled in with a saved preset's config (twin of GET /v1/export-presets/{id})."""
    form = await request.form()
    chosen = form_io.selected_ids([form.get("preset_id")])
    if not chosen:
        state = _form_state(form, problems=[("preset_id", "choose a preset to load")])
        return await _redisplay(request, session, conn, form, state, 422)
    preset = await presets.get(conn, chosen[0])
    config = preset.config.model_dump(mode="json")
    notice = f"Loaded preset “{preset.name}”."
    state = DialogState(
        values=form_io.values_of(config), scope=config["scope"], preset_id=str(preset.id),
        notice=notice,
    )  # fmt: skip
    return await _redisplay(request, session, conn, form, state, 200)


@router.post("/exports/presets")
async def save_preset(request: Request, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """Save the dialog's config as a named preset (twin of POST /v1/export-presets)."""
    form = await request.form()
    try:
        config = form_io.export_request(form).spec
        body = PresetIn.model_validate({"name": str(form.get("preset_name") or ""),
                                        "config": config.model_dump(mode="json")})  # fmt: skip
        preset = await presets.create(conn, session.user_id, body)
    except (ValidationError, DomainError) as exc:
        status = exc.status_code if isinstance(exc, DomainError) else 422
        state = _form_state(form, problems=form_io.problems(exc))
        return await _redisplay(request, session, conn, form, state, status)
    state = _form_state(form, notice=f"Saved preset “{preset.name}”.")
    state.preset_id = str(preset.id)
    return await _redisplay(request, session, conn, form, state, 200)


@router.post("/exports/preview")
async def preview(request: Request, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """Twin of POST /v1/exports/preview: the first three conversations, rendered (htmx)."""
    form = await request.form()
    values = form_io.values_of(form_io.config_from(form))
    context: dict[str, Any] = {"preview": None, "problems": [], "values": values,
                               "recommendation": form_io.recommendation(values)}  # fmt: skip
    try:
        found = await service.preview(conn, session.user_id, form_io.export_request(form))
        context["preview"], context["shown"] = found, readable_preview(found)
    except (ValidationError, ValidationFailed) as exc:
        context["problems"] = form_io.problems(exc)
    return render(request, "_export_preview.html", context)


def readable_preview(found: PreviewOut) -> str:
    """The preview as text: a Parquet file's rows as JSON lines, other formats as they are."""
    if found.content_encoding != "base64":
        return found.content
    table = parquet.read_table(io.BytesIO(base64.b64decode(found.content)))
    lines = [f"# {field.name}: {field.type}" for field in table.schema]
    lines += [json.dumps(row, ensure_ascii=False, default=str) for row in table.to_pylist()]
    return "\n".join(lines)


@router.post("/exports")
async def create(
    request: Request, session: CsrfDep, conn: ConsoleConnDep, resources: ResourcesDep
) -> Response:
    """Twin of POST /v1/exports: opens the export's progress page (the dialog again, with
    every problem listed, when the settings do not go together or match nothing)."""
    form = await request.form()
    try:
        export = await service.request_export(
            resources, session.user_id, form_io.export_request(form)
        )
    except (ValidationError, ValidationFailed) as exc:
        state = _form_state(form, problems=form_io.problems(exc))
        return await _redisplay(request, session, conn, form, state, 422)
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
