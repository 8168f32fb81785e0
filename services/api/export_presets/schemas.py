"""Bodies of the saved export configuration routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.models.export import ExportConfig, ExportFormat

PresetName = Annotated[
    str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True, pattern=r"\S")
]


class PresetIn(BaseModel):
    """A named export configuration."""

    model_config = ConfigDict(extra="forbid")

    name: PresetName
    config: ExportConfig


class PresetOut(BaseModel):
    """A saved preset."""

    id: UUID
    name: str
    config: ExportConfig
    created_at: datetime
    updated_at: datetime


class PresetList(BaseModel):
    """The caller's presets, by name."""

    items: list[PresetOut]
    total: int


class PreferencesIn(BaseModel):
    """The format new exports take when their config names none (null clears it)."""

    model_config = ConfigDict(extra="forbid")

    default_format: ExportFormat | None


class PreferencesOut(BaseModel):
    """A user's export preferences and the last config they exported with."""

    default_format: ExportFormat | None
    last_config: dict[str, object] | None = Field(
        description="the config of the caller's last export request (the console's dialog)"
    )
    updated_at: datetime | None
