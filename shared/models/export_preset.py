"""Saved export configurations: named presets and a user's export preferences."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from shared.models.export import ExportConfig, ExportFormat


class ExportPreset(BaseModel):
    """One export_presets row."""

    id: UUID
    name: str
    config: ExportConfig
    created_at: datetime
    updated_at: datetime


class ExportPreferences(BaseModel):
    """A user's default format and the config of their last export (the console's dialog)."""

    default_format: ExportFormat | None = None
    last_config: dict[str, Any] | None = None
    updated_at: datetime | None = None
