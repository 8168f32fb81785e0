"""SQL for templates, scenarios and edge cases (always inside a tenant transaction)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from enum import Enum
from typing import Any, Literal, TypeVar
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from shared.errors import Conflict
from shared.models.template import EdgeCase, Scenario, Template, TemplateStats

Kind = Literal["templates", "scenarios", "edge_cases"]
Source = TypeVar("Source", Template, Scenario, EdgeCase)
MODELS: dict[Kind, type[BaseModel]] = {
    "templates": Template,
    "scenarios": Scenario,
    "edge_cases": EdgeCase,
}
# Columns a caller may write; everything else (ids, owner, stats, timestamps) is ours.
_READONLY = frozenset({"id", "owner_id", "usage_count", "success_rate", "created_at", "updated_at"})
# Filters a list accepts per kind: query parameter → column.
FILTERS: dict[Kind, frozenset[str]] = {
    "templates": frozenset({"is_active", "tier", "category"}),
    "scenarios": frozenset({"status", "parent_template_id", "topic", "persona"}),
    "edge_cases": frozenset({"status", "parent_template_id", "category", "risk_level"}),
}


class DuplicateName(Conflict):
    """The owner already has one with this name."""

    code = "duplicate_name"


def writable(kind: Kind) -> frozenset[str]:
    """The columns create/update may set."""
    return frozenset(MODELS[kind].model_fields) - _READONLY


def _columns(kind: Kind) -> str:
    return ", ".join(MODELS[kind].model_fields)


def _plain(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, list):
        return [_plain(item) for item in value]
    return value


def _checked(kind: Kind, values: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(values) - writable(kind)
    if unknown:
        raise ValueError(f"not writable on {kind}: {sorted(unknown)}")
    return {name: _plain(value) for name, value in values.items()}


def _model(kind: Kind, row: asyncpg.Record) -> Any:
    return MODELS[kind].model_validate(dict(row))


async def insert(
    conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID, values: Mapping[str, Any]
) -> Any:
    """Insert one row; a taken name is a DuplicateName (409)."""
    data = {"owner_id": owner_id, **_checked(kind, values)}
    names = list(data)
    params = ", ".join(f"${i}" for i in range(1, len(names) + 1))
    sql = f"INSERT INTO {kind} ({', '.join(names)}) VALUES ({params}) RETURNING {_columns(kind)}"
    try:
        row = await conn.fetchrow(sql, *data.values())
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(kind, data.get("name")) from exc
    assert row is not None
    return _model(kind, row)


async def update(
    conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID, id: UUID, values: Mapping[str, Any]
) -> Any | None:
    """Change the given columns (templates bump `version` when a prompt changes)."""
    data = _checked(kind, values)
    if not data:
        return await get(conn, kind, owner_id=owner_id, id=id)
    sets = [f"{name} = ${i}" for i, name in enumerate(data, start=3)]
    if kind == "templates" and {"system_prompt", "user_prompt_template", "variables"} & set(data):
        sets.append("version = version + 1")
    sql = (
        f"UPDATE {kind} SET {', '.join(sets)} WHERE owner_id = $1 AND id = $2 "
        f"RETURNING {_columns(kind)}"
    )
    try:
        row = await conn.fetchrow(sql, owner_id, id, *data.values())
    except asyncpg.UniqueViolationError as exc:
        raise _duplicate(kind, data.get("name")) from exc
    return _model(kind, row) if row else None


def _duplicate(kind: Kind, name: object) -> DuplicateName:
    label = kind.rstrip("s").replace("_", " ")
    return DuplicateName(f"a {label} named {name!r} already exists", details={"name": name})


async def get(conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID, id: UUID) -> Any | None:
    """One row of the caller's, or None."""
    row = await conn.fetchrow(
        f"SELECT {_columns(kind)} FROM {kind} WHERE owner_id = $1 AND id = $2", owner_id, id
    )
    return _model(kind, row) if row else None


async def get_many(
    conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID, ids: Sequence[UUID]
) -> dict[UUID, Any]:
    """Rows by id (missing ids are simply absent)."""
    rows = await conn.fetch(
        f"SELECT {_columns(kind)} FROM {kind} WHERE owner_id = $1 AND id = ANY($2::uuid[])",
        owner_id,
        list(ids),
    )
    return {row["id"]: _model(kind, row) for row in rows}


async def delete(conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID, id: UUID) -> bool:
    """Delete one row; references to it are set to NULL by the schema."""
    status: str = await conn.execute(
        f"DELETE FROM {kind} WHERE owner_id = $1 AND id = $2", owner_id, id
    )
    return status.endswith(" 1")


async def page(
    conn: asyncpg.Connection,
    kind: Kind,
    *,
    owner_id: UUID,
    filters: Mapping[str, Any],
    after: tuple[datetime, UUID] | None,
    limit: int,
    name_query: str | None = None,
) -> tuple[list[Any], int]:
    """Newest first, keyset-paginated; returns up to `limit + 1` rows and the filtered total."""
    where, args = ["owner_id = $1"], list[Any]([owner_id])
    for name, value in filters.items():
        if name not in FILTERS[kind]:
            raise ValueError(f"unknown filter {name}")
        args.append(_plain(value))
        where.append(f"{name} = ${len(args)}")
    if name_query:
        args.append(f"%{_escape_like(name_query)}%")
        where.append(f"name ILIKE ${len(args)}")
    total: int = await conn.fetchval(
        f"SELECT count(*) FROM {kind} WHERE {' AND '.join(where)}", *args
    )
    if after is not None:
        args.extend(after)
        where.append(f"(created_at, id) < (${len(args) - 1}, ${len(args)})")
    args.append(limit + 1)
    rows = await conn.fetch(
        f"SELECT {_columns(kind)} FROM {kind} WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, id DESC LIMIT ${len(args)}",
        *args,
    )
    return [_model(kind, row) for row in rows], total


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def active(conn: asyncpg.Connection, kind: Kind, *, owner_id: UUID) -> list[Any]:
    """Every active template / scenario / edge case, oldest first (the order a plan cycles)."""
    condition = "is_active" if kind == "templates" else "status = 'active'"
    rows = await conn.fetch(
        f"SELECT {_columns(kind)} FROM {kind} WHERE owner_id = $1 AND {condition} "
        "ORDER BY created_at, id",
        owner_id,
    )
    return [_model(kind, row) for row in rows]


async def template_stats(
    conn: asyncpg.Connection, *, owner_id: UUID, ids: Sequence[UUID]
) -> dict[UUID, TemplateStats]:
    """Items that used each template, how many landed, and the average quality they scored."""
    rows = await conn.fetch(
        """
        SELECT t.id,
               count(i.id) FILTER (WHERE i.status IN ('completed', 'failed')) AS usage_count,
               count(i.id) FILTER (WHERE i.status = 'completed') AS completed,
               count(i.id) FILTER (WHERE i.status = 'failed') AS failed,
               (SELECT avg(c.quality_score) FROM conversations c
                 WHERE c.template_id = t.id AND c.deleted_at IS NULL) AS average_quality
          FROM templates t
          LEFT JOIN generation_items i ON i.template_id = t.id
         WHERE t.owner_id = $1 AND t.id = ANY($2::uuid[])
         GROUP BY t.id
        """,
        owner_id,
        list(ids),
    )
    return {row["id"]: _stats(row) for row in rows}


def _stats(row: asyncpg.Record) -> TemplateStats:
    done = row["completed"] + row["failed"]
    quality = row["average_quality"]
    return TemplateStats(
        usage_count=row["usage_count"],
        completed=row["completed"],
        failed=row["failed"],
        success_rate=round(row["completed"] / done, 4) if done else None,
        average_quality=round(float(quality), 2) if quality is not None else None,
    )
