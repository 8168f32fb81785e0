"""Template, scenario and edge-case rules: ownership of references, stats, resolution."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from uuid import UUID

import asyncpg

from services.api import pagination
from services.api.templates import templating
from services.api.templates.schemas import ResolveIn, ResolveOut, TemplateOut
from shared.db.repositories import templates as repo
from shared.errors import NotFound, ValidationFailed
from shared.models.template import Template, TemplateStats

_LABELS: dict[repo.Kind, str] = {
    "templates": "template",
    "scenarios": "scenario",
    "edge_cases": "edge case",
}
# Columns the schema keeps NOT NULL: a PATCH may not send null for them.
_NOT_NULL: dict[repo.Kind, frozenset[str]] = {
    "templates": frozenset(
        {
            "name",
            "tier",
            "system_prompt",
            "user_prompt_template",
            "variables",
            "quality_threshold",
            "applicable_personas",
            "applicable_emotions",
            "applicable_topics",
            "is_active",
        }
    ),
    "scenarios": frozenset(
        {"name", "objectives", "constraints", "parameter_values", "tags", "status"}
    ),
    "edge_cases": frozenset({"name", "risk_level", "priority", "tested", "status"}),
}


def not_found(kind: repo.Kind) -> NotFound:
    """The one 404 for an id that is missing or belongs to someone else."""
    return NotFound(f"no such {_LABELS[kind]}")


async def create(
    conn: asyncpg.Connection, kind: repo.Kind, owner_id: UUID, values: dict[str, Any]
) -> Any:
    """Insert after checking the parent template is the caller's."""
    await _check_parent(conn, owner_id, values)
    return await repo.insert(conn, kind, owner_id=owner_id, values=values)


async def update(
    conn: asyncpg.Connection, kind: repo.Kind, owner_id: UUID, id: UUID, values: dict[str, Any]
) -> Any:
    """Change the fields sent; 404 if not the caller's."""
    nulls = sorted(name for name in _NOT_NULL[kind] if name in values and values[name] is None)
    if nulls:
        details = [{"path": f"$.{n}", "message": "may not be null", "type": "null"} for n in nulls]
        raise ValidationFailed(f"{len(nulls)} field(s) may not be null", details=details)
    await _check_parent(conn, owner_id, values)
    row = await repo.update(conn, kind, owner_id=owner_id, id=id, values=values)
    if row is None:
        raise not_found(kind)
    return row


async def _check_parent(
    conn: asyncpg.Connection, owner_id: UUID, values: Mapping[str, Any]
) -> None:
    # Foreign keys are checked without row-level security: another tenant's template id would
    # pass the constraint, so ownership is checked here.
    parent = values.get("parent_template_id")
    if (
        parent is not None
        and await repo.get(conn, "templates", owner_id=owner_id, id=parent) is None
    ):
        raise ValidationFailed(
            "parent_template_id does not name one of your templates",
            details=[{"path": "$.parent_template_id", "message": "no such template",
                      "type": "not_found"}],
        )  # fmt: skip


async def get(conn: asyncpg.Connection, kind: repo.Kind, owner_id: UUID, id: UUID) -> Any:
    """One row or 404."""
    row = await repo.get(conn, kind, owner_id=owner_id, id=id)
    if row is None:
        raise not_found(kind)
    return row


async def delete(conn: asyncpg.Connection, kind: repo.Kind, owner_id: UUID, id: UUID) -> None:
    """Delete or 404 (conversations and items keep working; their reference becomes null)."""
    if not await repo.delete(conn, kind, owner_id=owner_id, id=id):
        raise not_found(kind)


async def page(
    conn: asyncpg.Connection,
    kind: repo.Kind,
    owner_id: UUID,
    *,
    filters: dict[str, Any],
    cursor: str | None,
    limit: int,
    name_query: str | None,
) -> tuple[list[Any], str | None, int]:
    """A page of rows, the next cursor and the total."""
    rows, total = await repo.page(
        conn, kind, owner_id=owner_id, filters={k: v for k, v in filters.items() if v is not None},
        after=pagination.decode_newest(cursor), limit=limit, name_query=name_query,
    )  # fmt: skip
    items, next_cursor = pagination.split_page(rows, limit, lambda r: (r.created_at, r.id))
    return items, next_cursor, total


async def with_stats(
    conn: asyncpg.Connection, owner_id: UUID, templates: list[Template]
) -> list[TemplateOut]:
    """Templates with their usage, success rate and average quality."""
    stats = await repo.template_stats(conn, owner_id=owner_id, ids=[t.id for t in templates])
    return [
        TemplateOut(
            **template.model_dump(),
            stats=stats.get(template.id, TemplateStats()),
            placeholders=templating.placeholders(
                template.system_prompt, template.user_prompt_template
            ),
        )
        for template in templates
    ]


def resolve(template: Template, body: ResolveIn) -> ResolveOut:
    """Substitute the template's placeholders or 422 naming every missing/invalid variable."""
    supplied: dict[str, object] = {
        name: value
        for name, value in (("persona", body.persona), ("emotion", body.emotion),
                            ("topic", body.topic))
        if value is not None
    }  # fmt: skip
    supplied.update(body.parameters)
    texts = (template.system_prompt, template.user_prompt_template)
    values, problems = templating.resolve_values(template.variables, texts, supplied)
    templating.raise_for(problems)
    known = set(values) | {variable.name for variable in template.variables}
    return ResolveOut(
        template_id=template.id,
        system_prompt=templating.render(template.system_prompt, values),
        user_prompt=templating.render(template.user_prompt_template, values),
        values=values,
        unused_parameters=sorted(set(body.parameters) - known),
    )
