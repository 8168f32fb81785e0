"""Saved export configurations: presets CRUD, preferences, and resolving a request's config."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.api.export_presets.schemas import PresetIn, PresetList, PresetOut
from shared.db.repositories import export_presets as repo
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.models.export import ExportConfig
from shared.models.export_preset import ExportPreferences, ExportPreset

MAX_PRESETS = 200


def _not_found(preset_id: UUID) -> NotFound:
    return NotFound("export preset not found", details={"id": str(preset_id)})


def _name_taken(name: str) -> Conflict:
    return Conflict(
        f"an export preset named {name!r} already exists",
        code="preset_name_taken",
        details={"name": name},
    )


async def list_presets(conn: asyncpg.Connection) -> PresetList:
    """Every preset of the caller's (at most MAX_PRESETS), by name."""
    items = await repo.list_all(conn, limit=MAX_PRESETS)
    return PresetList(items=[PresetOut.model_validate(p.model_dump()) for p in items],
                      total=len(items))  # fmt: skip


async def get(conn: asyncpg.Connection, preset_id: UUID) -> ExportPreset:
    """One preset, or 404 (other users' presets are invisible)."""
    preset = await repo.get(conn, preset_id)
    if preset is None:
        raise _not_found(preset_id)
    return preset


async def create(conn: asyncpg.Connection, owner_id: UUID, body: PresetIn) -> ExportPreset:
    """Save a preset: 409 for a taken name, 422 past MAX_PRESETS."""
    if await repo.count(conn) >= MAX_PRESETS:
        raise ValidationFailed(
            f"at most {MAX_PRESETS} export presets per user", code="too_many_presets"
        )
    preset = await repo.insert(conn, owner_id, body.name, body.config)
    if preset is None:
        raise _name_taken(body.name)
    return preset


async def replace(conn: asyncpg.Connection, preset_id: UUID, body: PresetIn) -> ExportPreset:
    """Replace a preset's name and config."""
    await get(conn, preset_id)
    if await repo.name_taken(conn, body.name, other_than=preset_id):
        raise _name_taken(body.name)
    preset = await repo.update(conn, preset_id, body.name, body.config)
    if preset is None:
        raise _not_found(preset_id)
    return preset


async def delete(conn: asyncpg.Connection, preset_id: UUID) -> None:
    """Remove a preset."""
    if not await repo.delete(conn, preset_id):
        raise _not_found(preset_id)


async def preferences(conn: asyncpg.Connection) -> ExportPreferences:
    """The caller's default format and last-used config."""
    return await repo.preferences(conn)


async def set_default_format(
    conn: asyncpg.Connection, owner_id: UUID, default_format: str | None
) -> ExportPreferences:
    """Set or clear the default format."""
    return await repo.set_default_format(conn, owner_id, default_format)


async def effective_config(
    conn: asyncpg.Connection, config: ExportConfig | None, preset_id: UUID | None
) -> ExportConfig:
    """The config a request runs: the preset's, or its own with the user's default format
    when it names no format."""
    if preset_id is not None:
        return (await get(conn, preset_id)).config
    assert config is not None
    if "format" in config.model_fields_set:
        return config
    default = (await repo.preferences(conn)).default_format
    if default is None:
        return config
    try:
        return ExportConfig.model_validate({**config.model_dump(exclude_unset=True),
                                            "format": default})  # fmt: skip
    except ValueError as exc:
        raise ValidationFailed(
            f"the config does not fit your default format {default.value!r}: {exc}",
            code="default_format_mismatch",
        ) from exc
