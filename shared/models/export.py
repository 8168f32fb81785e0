"""Export enums, the export request config, the export_logs row and the exporter's input models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

Role = Literal["system", "user", "assistant"]


class ExportFormat(StrEnum):
    """The file formats an export can produce (DESIGN §6)."""

    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"


class ExportScope(StrEnum):
    """Which conversations an export takes."""

    SELECTED = "selected"
    FILTERED = "filtered"
    ALL_APPROVED = "all_approved"
    ALL = "all"


class ExportStatus(StrEnum):
    """Lifecycle of an export_logs row."""

    QUEUED = "queued"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


ACTIVE_STATUSES = frozenset({ExportStatus.QUEUED, ExportStatus.PROCESSING})


class ExportConfig(BaseModel):
    """What the client asked for; stored as export_logs.config."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    scope: ExportScope
    format: ExportFormat = ExportFormat.JSONL
    # Off by default: plain {"messages": [...]} lines are what fine-tuning APIs accept as is.
    include_metadata: bool = False
    include_quality_scores: bool = True
    include_timestamps: bool = False
    include_approval_history: bool = False
    include_parent_references: bool = False
    include_full_content: bool = True
    compress: bool = Field(default=False, description='gzip the file (`true` or `"gzip"`)')

    @field_validator("compress", mode="before")
    @classmethod
    def _compress_names(cls, value: Any) -> Any:
        """Accept "gzip" / "none" as well as booleans."""
        if isinstance(value, str) and value.lower() in ("gzip", "none"):
            return value.lower() == "gzip"
        return value


class ExportLog(BaseModel):
    """One export_logs row: the audit record of an export from request to expiry."""

    id: UUID
    owner_id: UUID
    format: ExportFormat
    scope: ExportScope
    config: dict[str, Any]
    filters: dict[str, Any]
    selected_ids: list[UUID]
    status: ExportStatus
    progress_percent: float
    conversation_count: int
    turn_count: int
    render_failure_count: int
    render_failures: list[dict[str, Any]]
    object_key: str | None
    file_name: str | None
    byte_size: int | None
    sha256: str | None
    compressed: bool
    error: str | None
    quality_stats: dict[str, Any]
    tier_distribution: dict[str, int]
    attempts: int
    run_id: UUID | None
    heartbeat_at: datetime | None
    started_at: datetime | None
    completed_at: datetime | None
    expires_at: datetime | None
    counts_applied_at: datetime | None
    download_count: int
    last_downloaded_at: datetime | None
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime
    restarts: int = 0
    restart_reason: str | None = None

    @property
    def export_config(self) -> ExportConfig:
        """The stored config as the typed model."""
        return ExportConfig.model_validate({**self.config, "scope": self.scope})


# The exporter's input: rows read from our own schema, whose types PostgreSQL already enforces
# (CHECK constraints included), so they are typed records rather than pydantic models.
# Re-validating 100,000 conversations x 10 turns cost more than rendering them
# (docs/export.md, "Performance"); the file itself is checked by the format's validator.


class ExportTurn(NamedTuple):
    """One turn as the exporter reads it from the database."""

    turn_number: int
    role: Role
    content: str
    detected_emotion: str | None = None
    emotion_confidence: float | None = None
    emotion_intensity: float | None = None
    strategy: str | None = None
    tone: str | None = None


class ReviewEntry(NamedTuple):
    """One row of a conversation's review history."""

    action: str
    from_status: str | None
    to_status: str
    reviewer_id: UUID | None
    notes: str | None
    created_at: datetime


@dataclass(slots=True, kw_only=True)
class ExportConversation:
    """One conversation with its turns (and reviews when asked for) as fed to a transformer."""

    id: UUID
    conversation_id: str
    title: str | None = None
    status: str
    tier: str
    persona: str | None = None
    emotion: str | None = None
    topic: str | None = None
    intent: str | None = None
    tone: str | None = None
    category: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    quality_score: float | None = None
    quality_metrics: dict[str, Any] = field(default_factory=dict)
    is_flagged: bool = False
    created_at: datetime
    updated_at: datetime
    reviewed_at: datetime | None = None
    reviewed_by: UUID | None = None
    parent_id: UUID | None = None
    parent_type: str | None = None
    template_id: UUID | None = None
    scenario_id: UUID | None = None
    edge_case_id: UUID | None = None
    model: str | None = None
    system_prompt: str | None = None
    turns: list[ExportTurn]
    reviews: list[ReviewEntry] = field(default_factory=list)


class RenderedConversation(NamedTuple):
    """A conversation whose file bytes PostgreSQL produced (the plain JSONL fast path).

    `data` is None when the conversation cannot be rendered (no user or no assistant turn);
    `turn_count` counts the rendered turns, the synthetic system turn included. The field
    order is the SELECT's (`export_source.rendered_batch`).
    """

    id: UUID
    conversation_id: str
    tier: str
    quality_score: float | None
    created_at: datetime
    turn_count: int
    data: bytes | None
