"""Request and response bodies of the export routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.export import ExportConfig, ExportFormat, ExportLog, ExportScope, ExportStatus
from shared.models.query import ConversationFilters

MAX_SELECTED = 10_000


class ExportRequest(BaseModel):
    """What to export: `config` (or a saved `preset_id`), plus `conversation_ids` (selected)
    or `filters` (filtered)."""

    model_config = ConfigDict(extra="forbid")

    config: ExportConfig | None = None
    preset_id: UUID | None = Field(
        default=None, description="run a saved configuration (/v1/export-presets) instead"
    )
    conversation_ids: list[UUID] | None = Field(default=None, max_length=MAX_SELECTED)
    filters: ConversationFilters | None = None

    @model_validator(mode="after")
    def _inputs_match_scope(self) -> ExportRequest:
        """Each scope takes exactly the input it uses, so nothing is silently ignored."""
        if (self.config is None) == (self.preset_id is None):
            raise ValueError("give exactly one of config and preset_id")
        if self.config is None:
            return self  # checked once the preset's config is known (`with_config`)
        scope = self.config.scope
        if scope is ExportScope.SELECTED:
            if not self.conversation_ids:
                raise ValueError("scope 'selected' needs a non-empty conversation_ids list")
        elif self.conversation_ids is not None:
            raise ValueError("conversation_ids is only accepted with scope 'selected'")
        if scope is ExportScope.FILTERED and self.filters is None:
            raise ValueError("scope 'filtered' needs a filters object")
        if scope is not ExportScope.FILTERED and self.filters is not None:
            raise ValueError("filters is only accepted with scope 'filtered'")
        return self

    @property
    def spec(self) -> ExportConfig:
        """The config to run (set once a preset has been resolved)."""
        assert self.config is not None, "resolve preset_id first"
        return self.config

    def with_config(self, config: ExportConfig) -> ExportRequest:
        """The same request running `config` (its scope checks applied again)."""
        values = self.model_dump(exclude={"config", "preset_id"}, exclude_none=True)
        return ExportRequest.model_validate({**values, "config": config})

    @property
    def selected_ids(self) -> list[UUID]:
        """The selected ids without repeats, in the order given."""
        return list(dict.fromkeys(self.conversation_ids or ()))

    @property
    def stored_filters(self) -> dict[str, Any]:
        """The filters as export_logs.filters keeps them (only what was set)."""
        if self.filters is None:
            return {}
        return self.filters.model_dump(mode="json", exclude_defaults=True)


class ExportOut(BaseModel):
    """An export's status, progress and outcome."""

    id: UUID
    status: ExportStatus
    format: ExportFormat
    scope: ExportScope
    config: dict[str, Any]
    filters: dict[str, Any]
    selected_count: int
    progress_percent: float
    conversation_count: int
    turn_count: int
    render_failure_count: int
    partial: bool = Field(
        description="completed, but render_failure_count conversations are not in the file"
    )
    warnings: list[str] = Field(description="what a reader of the file should know")
    split_counts: dict[str, int] | None = Field(
        description='{"train": n, "validation": m} for a train/validation split'
    )
    file_name: str | None
    byte_size: int | None
    sha256: str | None
    compressed: bool
    error: str | None
    quality_stats: dict[str, Any]
    tier_distribution: dict[str, int]
    attempts: int
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    counts_applied_at: datetime | None
    download_count: int
    last_downloaded_at: datetime | None
    download_url: str | None = Field(
        description="The API path that serves the file once the export is completed."
    )

    @classmethod
    def of(cls, export: ExportLog) -> ExportOut:
        """The API view of an export_logs row."""
        return cls.model_validate(_view(export))


class ExportDetail(ExportOut):
    """One export with its selected ids and the conversations it could not render."""

    conversation_ids: list[UUID]
    render_failures: list[dict[str, Any]]

    @classmethod
    def of(cls, export: ExportLog) -> ExportDetail:
        """The detailed API view of an export_logs row."""
        return cls.model_validate(
            {
                **_view(export),
                "conversation_ids": export.selected_ids,
                "render_failures": export.render_failures,
            }
        )


def _view(export: ExportLog) -> dict[str, Any]:
    values = export.model_dump(exclude={"selected_ids", "render_failures", "owner_id", "run_id"})
    values["selected_count"] = len(export.selected_ids)
    done = export.status is ExportStatus.COMPLETED
    values["download_url"] = f"/v1/exports/{export.id}/download" if done else None
    return values


class ExportPage(BaseModel):
    """One page of the export history."""

    items: list[ExportOut]
    next_cursor: str | None
    total: int


class PreviewOut(BaseModel):
    """The first conversations of an export, rendered in its format."""

    format: ExportFormat
    content_type: str
    content: str = Field(description="A complete, valid file holding the first conversations.")
    content_encoding: Literal["utf-8", "base64"] = Field(
        default="utf-8", description="base64 for binary formats (parquet)"
    )
    conversation_count: int
    total: int = Field(description="How many conversations the export would take right now.")
    render_failures: list[dict[str, Any]]


class DownloadLink(BaseModel):
    """Where to fetch an export's file (`?redirect=false`)."""

    url: str
    expires_at: datetime
    file_name: str
