"""Templates, scenarios and edge cases: lists, create/edit forms, archive, live prompt preview."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError

from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.forms import Spec, field_errors, form_text, values_from
from services.api.console.render import render, set_flash
from services.api.console.routing import ConsoleRoute
from services.api.templates import service
from services.api.templates.schemas import (
    EdgeCaseIn,
    EdgeCasePatch,
    ResolveIn,
    ScenarioIn,
    ScenarioPatch,
    TemplateIn,
    TemplatePatch,
)
from shared.db.repositories.templates import Kind
from shared.errors import ValidationFailed
from shared.models.conversation import Tier
from shared.models.template import RiskLevel, SourceStatus, Template, VariableSpec

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


def _choices(enum: Any) -> tuple[tuple[str, str], ...]:
    return tuple((member.value, member.value.replace("_", " ")) for member in enum)


TEMPLATE_FIELDS = [
    Spec("name", "Name", required=True),
    Spec("description", "Description", "textarea"),
    Spec("tier", "Tier", "select", _choices(Tier)),
    Spec("category", "Category"),
    Spec("system_prompt", "System prompt", "textarea"),
    Spec(
        "user_prompt_template",
        "User prompt template",
        "textarea",
        required=True,
        hint="Use {{placeholders}}; persona, emotion and topic are filled from each request.",
    ),
    Spec(
        "variables",
        "Variables",
        "variables",
        hint="One per line: name, name* (required), name=default, name=default | allowed, values",
    ),
    Spec("tone", "Tone"),
    Spec("quality_threshold", "Quality threshold (0–10)", "number"),
    Spec("applicable_personas", "Personas", "csv", hint="comma-separated"),
    Spec("applicable_emotions", "Emotions", "csv", hint="comma-separated"),
    Spec("applicable_topics", "Topics", "csv", hint="comma-separated"),
    Spec("is_active", "Active (used by tier plans)", "bool"),
]
SCENARIO_FIELDS = [
    Spec("name", "Name", required=True),
    Spec("description", "Description", "textarea"),
    Spec("parent_template_id", "Parent template", "select"),
    Spec("context", "Context", "textarea"),
    Spec("topic", "Topic"),
    Spec("persona", "Persona"),
    Spec("emotional_arc", "Emotional arc"),
    Spec("complexity", "Complexity (1–10)", "number"),
    Spec("objectives", "Objectives", "lines", hint="one per line"),
    Spec("constraints", "Constraints", "lines", hint="one per line"),
    Spec("estimated_turns", "Estimated turns", "number"),
    Spec("tags", "Tags", "csv"),
    Spec("status", "Status", "select", _choices(SourceStatus)),
]
EDGE_CASE_FIELDS = [
    Spec("name", "Name", required=True),
    Spec("description", "Description", "textarea"),
    Spec("category", "Category"),
    Spec("parent_template_id", "Parent template", "select"),
    Spec("trigger_condition", "Trigger condition", "textarea"),
    Spec("expected_behavior", "Expected behaviour", "textarea"),
    Spec("test_input", "Test input", "textarea"),
    Spec("expected_output", "Expected output", "textarea"),
    Spec("risk_level", "Risk level", "select", _choices(RiskLevel)),
    Spec("priority", "Priority (1–5)", "number"),
    Spec("status", "Status", "select", _choices(SourceStatus)),
]


@dataclass(frozen=True)
class Source:
    """One of the three kinds: its path, repository kind, request models and form."""

    path: str
    kind: Kind
    label: str
    create: type[BaseModel]
    patch: type[BaseModel]
    fields: list[Spec]


SOURCES = {
    "templates": Source(
        "templates", "templates", "Template", TemplateIn, TemplatePatch, TEMPLATE_FIELDS
    ),
    "scenarios": Source(
        "scenarios", "scenarios", "Scenario", ScenarioIn, ScenarioPatch, SCENARIO_FIELDS
    ),
    "edge-cases": Source(
        "edge-cases", "edge_cases", "Edge case", EdgeCaseIn, EdgeCasePatch, EDGE_CASE_FIELDS
    ),
}


async def _parents(conn: Any, owner: UUID) -> tuple[tuple[str, str], ...]:
    rows, _, _ = await service.page(
        conn, "templates", owner, filters={}, cursor=None, limit=100, name_query=None
    )
    return (("", "— none —"), *((str(row.id), row.name) for row in rows))


async def _form(
    request: Request,
    conn: Any,
    owner: UUID,
    source: Source,
    row: Any,
    shown: dict[str, Any],
    errors: dict[str, str],
    status_code: int = 200,
) -> Response:
    options = (
        {"parent_template_id": await _parents(conn, owner)} if source.kind != "templates" else {}
    )
    context = {
        "title": f"{'Edit' if row else 'New'} {source.label.lower()}",
        "source": source,
        "row": row,
        "shown": shown,
        "errors": errors,
        "options": options,
        "preview": None,
    }
    return render(request, "source_form.html", context, status_code=status_code)


async def source_list(
    request: Request,
    source: Source,
    session: SessionDep,
    conn: ConsoleConnDep,
    q: str | None = None,
) -> Response:
    """Twin of GET /v1/templates (scenarios, edge-cases)."""
    name_query = (q or "").strip()[:200] or None
    rows, _, total = await service.page(
        conn,
        source.kind,
        session.user_id,
        filters={},
        cursor=None,
        limit=100,
        name_query=name_query,
    )
    if source.kind == "templates":
        rows = await service.with_stats(conn, session.user_id, rows)
    context = {
        "title": source.label + "s",
        "source": source,
        "rows": rows,
        "total": total,
        "q": name_query or "",
        "sources": SOURCES,
    }
    return render(request, "sources.html", context)


async def new_form(
    request: Request, source: Source, session: SessionDep, conn: ConsoleConnDep
) -> Response:
    """An empty form."""
    shown = {
        "is_active": "True",
        "status": "active",
        "tier": "template",
        "quality_threshold": "6.0",
    }
    return await _form(request, conn, session.user_id, source, None, shown, {})


async def create(
    request: Request, source: Source, session: CsrfDep, conn: ConsoleConnDep
) -> Response:
    """Twin of POST /v1/templates: errors are shown next to their fields."""
    form = await request.form()
    values = values_from(form, source.fields)
    try:
        body = source.create.model_validate(values)
        async with conn.transaction():
            row = await service.create(conn, source.kind, session.user_id, body.model_dump())
    except (ValidationError, ValidationFailed) as exc:
        return await _form(
            request, conn, session.user_id, source, None, dict(form), field_errors(exc), 422
        )
    response = RedirectResponse(f"/console/{source.path}/{row.id}", status_code=303)
    set_flash(response, f"{source.label} “{row.name}” created.")
    return response


async def edit_form(
    request: Request, source: Source, id: UUID, session: SessionDep, conn: ConsoleConnDep
) -> Response:
    """Twin of GET /v1/templates/{id}."""
    row = await service.get(conn, source.kind, session.user_id, id)
    return await _form(
        request, conn, session.user_id, source, row, form_text(row, source.fields), {}
    )


async def update(
    request: Request, source: Source, id: UUID, session: CsrfDep, conn: ConsoleConnDep
) -> Response:
    """Twin of PATCH /v1/templates/{id}."""
    row = await service.get(conn, source.kind, session.user_id, id)
    form = await request.form()
    values = values_from(form, source.fields)
    values = {
        **{
            spec.name: None
            for spec in source.fields
            if spec.name not in values and not spec.required
        },
        **values,
    }
    try:
        body = source.patch.model_validate(values)
        async with conn.transaction():
            row = await service.update(
                conn, source.kind, session.user_id, id, body.model_dump(exclude_unset=True)
            )
    except (ValidationError, ValidationFailed) as exc:
        return await _form(
            request, conn, session.user_id, source, row, dict(form), field_errors(exc), 422
        )
    response = RedirectResponse(f"/console/{source.path}/{id}", status_code=303)
    set_flash(response, f"{source.label} “{row.name}” saved.")
    return response


async def archive(source: Source, id: UUID, session: CsrfDep, conn: ConsoleConnDep) -> Response:
    """Templates become inactive, scenarios and edge cases archived (rows are kept)."""
    change = (
        {"is_active": False} if source.kind == "templates" else {"status": SourceStatus.ARCHIVED}
    )
    row = await service.update(conn, source.kind, session.user_id, id, change)
    response = RedirectResponse(f"/console/{source.path}", status_code=303)
    set_flash(response, f"{source.label} “{row.name}” archived.")
    return response


def _register(source: Source) -> None:
    """The five routes of one kind (explicit paths: a catch-all would shadow other pages)."""
    base = f"/{source.path}"

    async def list_page(
        request: Request, session: SessionDep, conn: ConsoleConnDep, q: str | None = None
    ) -> Response:
        return await source_list(request, source, session, conn, q)

    async def new_page(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
        return await new_form(request, source, session, conn)

    async def create_route(request: Request, session: CsrfDep, conn: ConsoleConnDep) -> Response:
        return await create(request, source, session, conn)

    async def edit_page(
        request: Request, id: UUID, session: SessionDep, conn: ConsoleConnDep
    ) -> Response:
        return await edit_form(request, source, id, session, conn)

    async def update_route(
        request: Request, id: UUID, session: CsrfDep, conn: ConsoleConnDep
    ) -> Response:
        return await update(request, source, id, session, conn)

    async def archive_route(id: UUID, session: CsrfDep, conn: ConsoleConnDep) -> Response:
        return await archive(source, id, session, conn)

    router.add_api_route(base, list_page, methods=["GET"], name=f"{source.kind}_list")
    router.add_api_route(f"{base}/new", new_page, methods=["GET"], name=f"{source.kind}_new")
    router.add_api_route(base, create_route, methods=["POST"], name=f"{source.kind}_create")
    router.add_api_route(f"{base}/{{id}}", edit_page, methods=["GET"], name=f"{source.kind}_edit")
    router.add_api_route(
        f"{base}/{{id}}", update_route, methods=["POST"], name=f"{source.kind}_update"
    )
    router.add_api_route(
        f"{base}/{{id}}/archive", archive_route, methods=["POST"], name=f"{source.kind}_archive"
    )


@router.post("/templates-preview")
async def preview(request: Request, _: CsrfDep) -> Response:
    """The resolved prompt of the form as typed (htmx), through the service's resolve()."""
    form = await request.form()
    values = values_from(form, TEMPLATE_FIELDS)
    problems: dict[str, str] = {}
    try:
        variables = [VariableSpec.model_validate(v) for v in values.get("variables", [])]
    except ValidationError as exc:
        variables, problems = (
            [],
            {"variables": field_errors(exc).get("_form") or str(exc.errors()[0]["msg"])},
        )
    sample = {
        key: str(form.get(f"sample_{key}") or "") or None for key in ("persona", "emotion", "topic")
    }
    # An unsaved template: resolve() reads only its prompts, variables and id.
    fields: dict[str, Any] = {
        "id": uuid4(),
        "system_prompt": str(values.get("system_prompt") or ""),
        "user_prompt_template": str(values.get("user_prompt_template") or ""),
        "variables": variables,
    }
    draft = Template.model_construct(**fields)
    result, unresolved = None, list[Any]()
    try:
        result = service.resolve(draft, ResolveIn.model_validate(sample))
    except ValidationFailed as exc:
        unresolved = exc.details or []
    context = {"result": result, "unresolved": unresolved, "problems": problems}
    return render(request, "_template_preview.html", context)


for _source in SOURCES.values():
    _register(_source)
