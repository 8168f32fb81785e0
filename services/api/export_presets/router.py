"""Routes of /v1/export-presets (CRUD) and /v1/export-preferences (default format, last config)."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter, Response

from services.api.deps import PrincipalDep, TenantConnDep
from services.api.export_presets import service
from services.api.export_presets.schemas import (
    PreferencesIn,
    PreferencesOut,
    PresetIn,
    PresetList,
    PresetOut,
)

router = APIRouter(tags=["exports"])


def _out(preset: object) -> PresetOut:
    return PresetOut.model_validate(preset, from_attributes=True)


@router.get("/v1/export-presets", response_model=PresetList)
async def list_presets(_: PrincipalDep, conn: TenantConnDep) -> PresetList:
    """The caller's saved export configurations, by name."""
    return await service.list_presets(conn)


@router.post("/v1/export-presets", status_code=201, response_model=PresetOut)
async def create_preset(body: PresetIn, principal: PrincipalDep, conn: TenantConnDep) -> PresetOut:
    """Save a named export configuration; run it with POST /v1/exports {"preset_id"}."""
    return _out(await service.create(conn, principal.user_id, body))


@router.get("/v1/export-presets/{preset_id}", response_model=PresetOut)
async def get_preset(preset_id: UUID, _: PrincipalDep, conn: TenantConnDep) -> PresetOut:
    """One saved export configuration."""
    return _out(await service.get(conn, preset_id))


@router.put("/v1/export-presets/{preset_id}", response_model=PresetOut)
async def replace_preset(
    preset_id: UUID, body: PresetIn, _: PrincipalDep, conn: TenantConnDep
) -> PresetOut:
    """Replace a preset's name and configuration."""
    return _out(await service.replace(conn, preset_id, body))


@router.delete("/v1/export-presets/{preset_id}", status_code=204, response_class=Response)
async def delete_preset(preset_id: UUID, _: PrincipalDep, conn: TenantConnDep) -> Response:
    """Remove a preset."""
    await service.delete(conn, preset_id)
    return Response(status_code=204)


@router.get("/v1/export-preferences", response_model=PreferencesOut)
async def get_preferences(_: PrincipalDep, conn: TenantConnDep) -> PreferencesOut:
    """The caller's default format and the config of their last export."""
    return PreferencesOut.model_validate((await service.preferences(conn)).model_dump())


@router.put("/v1/export-preferences", response_model=PreferencesOut)
async def set_preferences(
    body: PreferencesIn, principal: PrincipalDep, conn: TenantConnDep
) -> PreferencesOut:
    """Set (or clear, with null) the format new exports take when their config names none."""
    fmt = body.default_format.value if body.default_format else None
    prefs = await service.set_default_format(conn, principal.user_id, fmt)
    return PreferencesOut.model_validate(prefs.model_dump())
