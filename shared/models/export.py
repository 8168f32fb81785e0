"""Export enums, the export request config, the export_logs row and the exporter's input models."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal, NamedTuple
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["system", "user", "assistant"]


class ExportFormat(StrEnum):
    """The file formats an export can produce (DESIGN §6)."""

    JSONL = "jsonl"
    JSON = "json"
    CSV = "csv"
    MARKDOWN = "markdown"
    PARQUET = "parquet"
    TXT = "txt"


class ExportTarget(StrEnum):
    """What trainer a JSONL file is compiled for (docs/export.md, "Targets")."""

    OPENAI = "openai"
    BEDROCK_CLAUDE = "bedrock-claude"
    SHAREGPT = "sharegpt"
    TRL = "trl"
    HF_CHAT = "hf-chat"


# Targets whose lines may carry a `metadata` object next to the conversation.
METADATA_TARGETS = frozenset({ExportTarget.OPENAI, ExportTarget.SHAREGPT})
FOLDING_TARGETS = frozenset({ExportTarget.TRL, ExportTarget.HF_CHAT})


class SplitConfig(BaseModel):
    """A train/validation split: the validation share, the seed, an optional stratum."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    validation: float = Field(gt=0, lt=1, description="share of conversations in validation")
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    stratify: Literal["tier", "status"] | None = None


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
    exclude_near_duplicates: bool = Field(
        default=False,
        description="leave out conversations marked as a near-duplicate of an earlier one",
    )
    compress: bool = Field(default=False, description='gzip the file (`true` or `"gzip"`)')
    target: ExportTarget = Field(
        default=ExportTarget.OPENAI, description="the trainer a JSONL file is compiled for"
    )
    fold_system: bool = Field(
        default=False, description="trl/hf-chat: system prompt before the first user turn's text"
    )
    split: SplitConfig | None = None
    dataset_card: bool = Field(default=False, description="add a README.md (needs a split)")
    license: str | None = Field(default=None, max_length=100, pattern=r"^[A-Za-z0-9.+_-]+$")

    @field_validator("compress", mode="before")
    @classmethod
    def _compress_names(cls, value: Any) -> Any:
        """Accept "gzip" / "none" as well as booleans."""
        if isinstance(value, str) and value.lower() in ("gzip", "none"):
            return value.lower() == "gzip"
        return value

    @model_validator(mode="after")
    def _options_fit(self) -> ExportConfig:
        """Every option must apply to the chosen format and target: nothing silently ignored."""
        problems = config_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def config_problems(config: ExportConfig) -> list[str]:
    """Why options of a config do not go together (empty when they do)."""
    problems = []
    target = config.target
    if target is not ExportTarget.OPENAI and config.format is not ExportFormat.JSONL:
        problems.append(f"target {target.value!r} needs format 'jsonl'")
    if config.include_metadata and target not in METADATA_TARGETS:
        problems.append(f"target {target.value!r} allows no metadata (include_metadata: false)")
    if config.fold_system and target not in FOLDING_TARGETS:
        problems.append("fold_system applies to targets 'trl' and 'hf-chat' only")
    if config.dataset_card and config.split is None:
        problems.append("dataset_card needs a split (the card describes train and validation)")
    if config.license is not None and not config.dataset_card:
        problems.append("license is written in the dataset card: set dataset_card: true")
    if config.split is not None and config.compress:
        problems.append("a split is a zip file, already compressed: set compress: false")
    if config.format is ExportFormat.PARQUET and config.compress:
        problems.append("parquet compresses its own pages: set compress: false")
    return problems


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
    partial: bool = False
    warnings: list[str] = Field(default_factory=list)
    split_counts: dict[str, int] | None = None
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
    # The judge's columns (0013), read with the metadata; None when absent.
    coherence_score: float | None = None
    relevance_score: float | None = None
    completeness_score: float | None = None
    quality_overall: float | None = None
    empathy_score: float | None = None
    clarity_score: float | None = None
    appropriateness_score: float | None = None
    brand_voice_score: float | None = None
    quality_source: str | None = None
    judge_rubric_version: int | None = None
    judge_rationale: dict[str, Any] | None = None
    duplicate_of: UUID | None = None
    duplicate_similarity: float | None = None
    system_prompt: str | None = None
    turns: list[ExportTurn]
    reviews: list[ReviewEntry] = field(default_factory=list)


class RenderedConversation(NamedTuple):
    """A conversation whose file bytes PostgreSQL produced (plain JSONL, Bedrock JSONL).

    `data` is None when the conversation cannot be rendered, `failure` then says why;
    `turn_count` counts the rendered turns, the synthetic system turn included; `needs_check`
    marks a line the database could not prove follows the target's rules (the exporter checks
    it in Python). The field order is the SELECT's (`export_source.rendered_batch`).
    """

    id: UUID
    conversation_id: str
    tier: str
    quality_score: float | None
    created_at: datetime
    turn_count: int
    data: bytes | None
    failure: str | None
    needs_check: bool


class MessageColumns(NamedTuple):
    """A conversation read as column pieces for a columnar file (Parquet without metadata).

    `roles` holds one letter per rendered turn (``s``, ``u``, ``a``), `contents` the turns'
    UTF-8 text back to back and `lengths` each turn's byte length, the synthetic system turn
    first when there is one (base.export_turns); `trainable` is False when a user or an
    assistant turn is missing. The field order is the SELECT's (`export_source.column_batch`).
    """

    id: UUID
    conversation_id: str
    title: str | None
    status: str
    tier: str
    quality_score: float | None
    created_at: datetime
    turn_count: int
    trainable: bool
    roles: str | None
    contents: bytes | None
    lengths: list[int] | None
