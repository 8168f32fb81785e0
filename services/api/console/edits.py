"""Review-page edits: a turn's text inline (htmx), earlier versions, regenerate with options,
and asking the judge to score the conversation."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from services.api.console.auth import ConsoleConnDep, CsrfDep, SessionDep
from services.api.console.render import render, set_flash
from services.api.console.review import edit_context, page
from services.api.console.routing import ConsoleRoute
from services.api.conversations import service as conversations
from services.api.deps import DedupDep, PoolDep, QueueDep, SettingsDep, StorageDep
from services.api.edits import service as edits
from services.api.edits.schemas import TurnEdit
from services.api.errors import validation_details
from services.api.generation import regenerate as regeneration
from services.api.generation.schemas import RegenerateIn
from services.api.quality import service as quality
from services.api.quality.schemas import ScoreIn
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.errors import Conflict, DomainError, ValidationFailed
from shared.models.bounds import INT4_MAX

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.post("/conversations/{id}/turns/{turn_number}")
async def edit_turn(
    request: Request, id: UUID, turn_number: int, session: CsrfDep, pool: PoolDep,
    storage: StorageDep, queue: QueueDep, settings: SettingsDep, dedup: DedupDep,
) -> Response:  # fmt: skip
    """Twin of PATCH /v1/conversations/{id}/turns/{n}: htmx gets the new transcript."""
    form = await request.form()
    raw: dict[str, Any] = {
        "content": str(form.get("content") or ""),
        "expected_version": _int(form, "expected_version"),
    }
    htmx = bool(request.headers.get("hx-request"))
    try:
        body = TurnEdit.model_validate(raw)
        edit = edits.Edit(
            owner_id=session.user_id, editor_id=session.user_id, conversation_id=id,
            turn_number=turn_number, content=body.content, expected_version=body.expected_version,
        )  # fmt: skip
        before = await _status(pool, session.user_id, id)
        updated = await edits.edit_turn(pool, storage, queue, settings, dedup, edit)
    except (ValidationError, ValidationFailed, Conflict) as exc:
        message = _message(exc)
        return await _refused(
            request, session, pool, id, turn_number, raw["content"], message, htmx
        )
    if not htmx:
        response = RedirectResponse(
            f"/console/conversations/{id}#turn-{turn_number}", status_code=303
        )
        set_flash(response, f"Turn {turn_number} saved as version {updated.document_version}.")
        return response
    if updated.status != before:  # the decision card changes too: reload the whole page
        return Response(status_code=204, headers={"HX-Refresh": "true"})
    async with tenant_transaction(pool, session.user_id, readonly=True) as conn:
        context = await edit_context(conn, await conversations.detail(conn, id))
    return render(request, "_edit_result.html", context)


async def _status(pool: Any, owner: UUID, id: UUID) -> Any:
    async with tenant_transaction(pool, owner, readonly=True) as conn:
        return (await conversations.get_visible(conn, id)).status


def _int(form: Any, name: str) -> int | str | None:
    value = str(form.get(name) or "").strip()
    if not value:
        return None
    return int(value) if value.lstrip("-").isdigit() and len(value) < 12 else value


def _message(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        details = validation_details(exc.errors())
        return "; ".join(f"{d['path'].removeprefix('$.')}: {d['message']}" for d in details)
    assert isinstance(exc, DomainError)
    return exc.message


async def _refused(
    request: Request, session: Any, pool: Any, id: UUID, turn: int, value: str, message: str,
    htmx: bool,
) -> Response:  # fmt: skip
    """The transcript (htmx) or the page with the error next to the turn's field (422)."""
    errors = {"edit_errors": {turn: message}, "edit_values": {turn: value}}
    async with tenant_transaction(pool, session.user_id, readonly=True) as conn:
        if not htmx:
            return await page(request, session, conn, id, False, None, 422, **errors)
        context = await edit_context(conn, await conversations.detail(conn, id))
    return render(request, "_transcript.html", {**context, **errors}, status_code=422)


@router.get("/conversations/{id}/versions/{version}")
async def version_page(
    request: Request, id: UUID, version: int, _: SessionDep, conn: ConsoleConnDep,
    storage: StorageDep,
) -> Response:  # fmt: skip
    """Twin of GET /v1/conversations/{id}/file?version=N: that version's transcript."""
    if not 1 <= version <= INT4_MAX:
        version = INT4_MAX  # no such version: the service's 404
    document = await edits.read_version(conn, storage, id, version)
    context = await edit_context(conn, await conversations.detail(conn, id))
    [listed] = [v for v in context["versions"].items if v.version == version]
    context |= {"title": f"Version {version}", "v": listed, "turns": document.get("turns", [])}
    return render(request, "version.html", context)


@router.post("/conversations/{id}/regenerate")
async def regenerate(
    request: Request, id: UUID, session: CsrfDep, pool: PoolDep, queue: QueueDep,
    settings: SettingsDep,
) -> Response:  # fmt: skip
    """Twin of POST /v1/conversations/{id}/regenerate: opens the new job's page."""
    form = await request.form()
    submitted = {
        key.removeprefix("param."): str(value)
        for key, value in form.multi_items()
        if key.startswith("param.")
    }
    values: dict[str, Any] = {
        "from_turn": _int(form, "from_turn"),
        "instructions": str(form.get("instructions") or "").strip() or None,
        "temperature": str(form.get("temperature") or "").strip() or None,
    }
    try:
        async with tenant_transaction(pool, session.user_id, readonly=True) as conn:
            stored = await conversations_repo.get(conn, id)
            fields = await regeneration.parameter_fields(conn, stored) if stored else []
        changed = regeneration.changed_parameters(fields, submitted)
        body = RegenerateIn.model_validate(values | {"parameters": changed or None})
        job = await regeneration.regenerate(pool, queue, settings, session.user_id, id, body)
    except (ValidationError, ValidationFailed) as exc:
        details = (
            validation_details(exc.errors()) if isinstance(exc, ValidationError) else exc.details
        )
        errors = {
            str(d["path"]).removeprefix("$.").split(".")[0]: d["message"] for d in details or []
        }
        async with tenant_transaction(pool, session.user_id, readonly=True) as conn:
            return await page(
                request, session, conn, id, False, errors, 422, regen=values | {"params": submitted}
            )
    return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)


@router.post("/conversations/{id}/score")
async def score(
    id: UUID, session: CsrfDep, pool: PoolDep, queue: QueueDep, settings: SettingsDep
) -> Response:
    """Twin of POST /v1/conversations/{id}/score: opens the quality_check job's page."""
    job = await quality.score_one(pool, queue, settings, session.user_id, id, ScoreIn())
    return RedirectResponse(f"/console/jobs/{job.id}", status_code=303)
