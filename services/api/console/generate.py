"""Generate: plan a batch, see its estimate, start it; the job page with live progress."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.forms import field_errors
from services.api.console.render import render, set_flash
from services.api.console.routing import ConsoleRoute
from services.api.deps import HttpDep, PoolDep, QueueDep, ResourcesDep, SettingsDep
from services.api.events import service as events
from services.api.generation import service
from services.api.generation.schemas import JobIn
from services.api.templates import service as sources
from shared.db.repositories import generation as repo
from shared.errors import ValidationFailed
from shared.models.generation import TERMINAL_BATCH

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
_PLAN_TIERS = ("template", "scenario", "edge_case")


def _int(form: FormData, name: str, default: int = 0) -> Any:
    raw = str(form.get(name) or "").strip()
    return raw if raw else default


def job_body(form: FormData) -> JobIn:
    """The form as a JobIn: a tier plan, or N conversations for each chosen template."""
    common: dict[str, Any] = {"concurrency": _int(form, "concurrency", 5)}
    cap = str(form.get("cost_cap_usd") or "").strip()
    if cap:
        common["cost_cap_usd"] = cap
    context = {
        key: str(form.get(key) or "").strip() or None for key in ("persona", "emotion", "topic")
    }
    context = {key: value for key, value in context.items() if value}
    if form.get("mode") == "templates":
        per = _int(form, "per_template", 1)
        chosen = [str(value) for value in form.getlist("template_ids")]
        try:
            count = int(per)
        except ValueError:
            count = 0
        items = [
            {"template_id": tid, **context}
            for tid in chosen
            for _ in range(max(0, min(count, 1000)))
        ]
        return JobIn.model_validate({"items": items, **common})
    plan = {tier: _int(form, f"plan_{tier}") for tier in _PLAN_TIERS}
    defaults = {"defaults": context} if context else {}
    return JobIn.model_validate({"plan": plan, **defaults, **common})


async def _templates(conn: Any, owner: UUID) -> list[Any]:
    rows, _, _ = await sources.page(
        conn,
        "templates",
        owner,
        filters={"is_active": True},
        cursor=None,
        limit=100,
        name_query=None,
    )
    return rows


@router.get("/generate")
async def generate_page(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
    """The batch form (twin of POST /v1/generation-jobs/estimate and /v1/generation-jobs)."""
    context = {
        "title": "Generate",
        "templates": await _templates(conn, session.user_id),
        "errors": {},
        "form": {},
    }
    return render(request, "generate.html", context)


@router.post("/generate/estimate")
async def estimate(
    request: Request, session: CsrfDep, conn: ConsoleConnDep, settings: SettingsDep, http: HttpDep
) -> Response:
    """The estimate partial (htmx): calls, tokens, cost, time, or what is wrong."""
    form = await request.form()
    context: dict[str, Any] = {"estimate": None, "errors": {}, "settings": settings}
    try:
        context["estimate"] = await service.estimate(
            conn, http, session.user_id, job_body(form), settings
        )
    except (ValidationError, ValidationFailed) as exc:
        context["errors"] = field_errors(exc)
    return render(request, "_estimate.html", context)


@router.post("/generate")
async def start(
    request: Request,
    session: CsrfDep,
    conn: ConsoleConnDep,
    pool: PoolDep,
    queue: QueueDep,
    settings: SettingsDep,
) -> Response:
    """Twin of POST /v1/generation-jobs: opens the job page."""
    form = await request.form()
    try:
        job = await service.create(pool, queue, settings, session.user_id, job_body(form))
    except (ValidationError, ValidationFailed) as exc:
        context = {
            "title": "Generate",
            "templates": await _templates(conn, session.user_id),
            "errors": field_errors(exc),
            "form": dict(form),
            "chosen": form.getlist("template_ids"),
        }
        return render(request, "generate.html", context, status_code=422)
    response = RedirectResponse(f"/console/jobs/{job.id}", status_code=303)
    set_flash(response, f"Job started: {job.total_items} conversation(s).")
    return response


@router.get("/jobs/{id}")
async def job_page(
    request: Request,
    id: UUID,
    session: SessionDep,
    conn: ConsoleConnDep,
    queue: QueueDep,
    settings: SettingsDep,
) -> Response:
    """Twin of GET /v1/generation-jobs/{id} (+ its failed items and the limiter)."""
    job = await service.detail(conn, session.user_id, id)
    failed = await repo.page_items(conn, id, status="failed", after_index=None, limit=50)
    context = {
        "title": "Generation job",
        "job": job,
        "failed": [service.item_out(item) for item in failed],
        "limiter": await service.rate_limit(queue, settings),
        "terminal": job.status in TERMINAL_BATCH,
    }
    template = "_job.html" if request.headers.get("hx-request") else "job.html"
    return render(request, template, context)


@router.get("/jobs/{id}/events")
async def job_events(
    request: Request, id: UUID, session: SessionDep, resources: ResourcesDep
) -> StreamingResponse:
    """The job's SSE stream (the same as GET /v1/generation-jobs/{id}/events, by cookie)."""
    load = events.loader(resources, session.user_id, "generation", id)
    await load()
    body = events.stream(resources, "generation", id, load, request.headers.get("last-event-id"))
    return StreamingResponse(body, media_type="text/event-stream", headers=events.SSE_HEADERS)


@router.post("/jobs/{id}/cancel")
async def cancel(
    id: UUID, session: CsrfDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> Response:
    """Twin of POST /v1/generation-jobs/{id}/cancel."""
    done = await service.cancel(pool, queue, settings, session.user_id, id)
    response = RedirectResponse(f"/console/jobs/{id}", status_code=303)
    set_flash(response, f"Cancelled: {done.affected_items} queued item(s) skipped.")
    return response


@router.post("/jobs/{id}/retry-failed")
async def retry_failed(
    id: UUID, session: CsrfDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> Response:
    """Twin of POST /v1/generation-jobs/{id}/retry-failed."""
    done = await service.retry_failed(pool, queue, settings, session.user_id, id)
    response = RedirectResponse(f"/console/jobs/{id}", status_code=303)
    set_flash(response, f"Retrying {done.affected_items} failed item(s).")
    return response
