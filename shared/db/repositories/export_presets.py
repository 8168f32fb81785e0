"""SQL for export_presets and export_preferences (tenant tables: RLS scopes every query)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.models.export import ExportConfig
from shared.models.export_preset import ExportPreferences, ExportPreset

_COLUMNS = "id, name, config, created_at, updated_at"


def _preset(row: asyncpg.Record) -> ExportPreset:
    return ExportPreset.model_validate(dict(row))


def _stored(config: ExportConfig) -> dict[str, object]:
    return config.model_dump(mode="json")


async def list_all(conn: asyncpg.Connection, *, limit: int) -> list[ExportPreset]:
    """The caller's presets by name."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM export_presets ORDER BY name, id LIMIT $1", limit
    )
    return [_preset(row) for row in rows]


async def count(conn: asyncpg.Connection) -> int:
    """How many presets the caller has."""
    total: int = await conn.fetchval("SELECT count(*) FROM export_presets")
    return total


async def get(conn: asyncpg.Connection, preset_id: UUID) -> ExportPreset | None:
    """One preset of the caller's."""
    row = await conn.fetchrow(f"SELECT {_COLUMNS} FROM export_presets WHERE id = $1", preset_id)
    return _preset(row) if row else None


async def insert(
    conn: asyncpg.Connection, owner_id: UUID, name: str, config: ExportConfig
) -> ExportPreset | None:
    """A new preset; None when the name is taken."""
    row = await conn.fetchrow(
        f"""INSERT INTO export_presets (owner_id, name, config) VALUES ($1, $2, $3)
            ON CONFLICT (owner_id, name) DO NOTHING RETURNING {_COLUMNS}""",
        owner_id,
        name,
        _stored(config),
    )
    return _preset(row) if row else None


async def update(
    conn: asyncpg.Connection, preset_id: UUID, name: str, config: ExportConfig
) -> ExportPreset | None:
    """Replace a preset's name and config; None when it does not exist."""
    row = await conn.fetchrow(
        f"""UPDATE export_presets SET name = $2, config = $3 WHERE id = $1
         RETURNING {_COLUMNS}""",
        preset_id,
        name,
        _stored(config),
    )
    return _preset(row) if row else None


async def name_taken(conn: asyncpg.Connection, name: str, *, other_than: UUID | None) -> bool:
    """Whether another preset of the caller's has this name."""
    taken: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM export_presets WHERE name = $1 AND id IS DISTINCT FROM $2)",
        name,
        other_than,
    )
    return taken


async def delete(conn: asyncpg.Connection, preset_id: UUID) -> bool:
    """Remove a preset; False when it did not exist."""
    done = await conn.fetchval("DELETE FROM export_presets WHERE id = $1 RETURNING true", preset_id)
    return bool(done)


async def preferences(conn: asyncpg.Connection) -> ExportPreferences:
    """The caller's preferences (defaults when never set)."""
    row = await conn.fetchrow(
        "SELECT default_format, last_config, updated_at FROM export_preferences"
    )
    return ExportPreferences.model_validate(dict(row)) if row else ExportPreferences()


async def set_default_format(
    conn: asyncpg.Connection, owner_id: UUID, default_format: str | None
) -> ExportPreferences:
    """Set (or clear) the default format."""
    row = await conn.fetchrow(
        """INSERT INTO export_preferences (owner_id, default_format) VALUES ($1, $2)
           ON CONFLICT (owner_id) DO UPDATE SET default_format = EXCLUDED.default_format
           RETURNING default_format, last_config, updated_at""",
        owner_id,
        default_format,
    )
    assert row is not None
    return ExportPreferences.model_validate(dict(row))


async def remember_config(conn: asyncpg.Connection, owner_id: UUID, config: ExportConfig) -> None:
    """Record the config of the export just requested."""
    await conn.execute(
        """INSERT INTO export_preferences (owner_id, last_config) VALUES ($1, $2)
           ON CONFLICT (owner_id) DO UPDATE SET last_config = EXCLUDED.last_config""",
        owner_id,
        _stored(config),
    )
