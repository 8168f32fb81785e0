"""Conversation enums and the ready-to-store draft an import or a generation produces."""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.models.scores import ConversationScores, QualitySource

Unit = Annotated[float, Field(ge=0, le=1)]
Count = Annotated[int, Field(ge=0)]
FivePoint = Annotated[float, Field(ge=1, le=5, allow_inf_nan=False)]


class Tier(StrEnum):
    """Which kind of source a conversation exercises."""

    TEMPLATE = "template"
    SCENARIO = "scenario"
    EDGE_CASE = "edge_case"


class ConversationStatus(StrEnum):
    """Review workflow state (see DESIGN §3)."""

    PENDING_REVIEW = "pending_review"
    NEEDS_REVISION = "needs_revision"
    APPROVED = "approved"
    REJECTED = "rejected"
    ARCHIVED = "archived"


class Role(StrEnum):
    """Who speaks a turn."""

    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"


class ConversationSource(StrEnum):
    """How a conversation entered the system."""

    IMPORT = "import"
    GENERATED = "generated"


class ParentType(StrEnum):
    """What a conversation's `parent_id` points at."""

    TEMPLATE = "template"
    SCENARIO = "scenario"
    EDGE_CASE = "edge_case"
    CONVERSATION = "conversation"


def round_score(value: float) -> float:
    """Round a 0-10 score to one decimal, halves away from zero."""
    return float(Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP))


class TurnDraft(BaseModel):
    """One row of `conversation_turns`, without ids."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    turn_number: Annotated[int, Field(gt=0, le=2_147_483_647)]
    role: Role
    content: str
    token_count: Count = 0
    char_count: Count = 0
    word_count: Count = 0
    sentence_count: Count = 0
    detected_emotion: str | None = None
    emotion_confidence: Unit | None = None
    emotion_intensity: Unit | None = None
    strategy: str | None = None
    tone: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class ConversationDraft(BaseModel):
    """Every content column of `conversations` plus turns and the stored JSON document."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    conversation_id: Annotated[str, Field(min_length=1, max_length=200)]
    title: str | None = None
    description: str | None = None
    persona: str | None = None
    emotion: str | None = None
    topic: str | None = None
    intent: str | None = None
    tone: str | None = None
    emotional_arc: str | None = None
    tier: Tier
    status: ConversationStatus = ConversationStatus.PENDING_REVIEW
    source: ConversationSource
    category: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    quality_score: Annotated[float, Field(ge=0, le=10)] | None = None
    quality_metrics: dict[str, Any] = Field(default_factory=dict)
    is_flagged: bool = False
    flag_reason: str | None = None
    turn_count: Count = 0
    total_tokens: Count = 0
    system_prompt: str | None = None
    starting_emotion: str | None = None
    starting_intensity: Unit | None = None
    ending_emotion: str | None = None
    ending_intensity: Unit | None = None
    model: str | None = None
    temperature: Annotated[float, Field(ge=0, le=9.99)] | None = None
    max_tokens: Annotated[int, Field(gt=0)] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    template_id: UUID | None = None
    scenario_id: UUID | None = None
    edge_case_id: UUID | None = None
    parent_id: UUID | None = None
    parent_type: ParentType | None = None
    generation_job_id: UUID | None = None
    generation_item_index: Annotated[int, Field(ge=0)] | None = None
    estimated_cost_usd: Decimal | None = None
    actual_cost_usd: Decimal | None = None
    generation_duration_ms: Count | None = None
    # The storage spec's 1-5 criteria an imported file carries (mean over its pairs), and where
    # quality_score came from: NULL exactly when quality_score is NULL (0013).
    empathy_score: FivePoint | None = None
    clarity_score: FivePoint | None = None
    appropriateness_score: FivePoint | None = None
    brand_voice_score: FivePoint | None = None
    quality_source: QualitySource | None = None
    # Set by the near-duplicate check as the conversation lands (shared/dedup).
    duplicate_of: UUID | None = None
    duplicate_similarity: Unit | None = None
    turns: list[TurnDraft] = Field(default_factory=list)
    document: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _source_of_score(self) -> ConversationDraft:
        """A score without a source is the import's own or the structural one."""
        if self.quality_score is None:
            object.__setattr__(self, "quality_source", None)
        elif self.quality_source is None:
            imported = self.source is ConversationSource.IMPORT
            source = QualitySource.IMPORTED if imported else QualitySource.STRUCTURAL
            object.__setattr__(self, "quality_source", source)
        return self

    @field_validator("quality_score")
    @classmethod
    def _one_decimal(cls, value: float | None) -> float | None:
        """Keep the score at the column's precision, numeric(3, 1)."""
        return None if value is None else round_score(value)


class Turn(BaseModel):
    """A stored turn."""

    turn_number: int
    role: Role
    content: str
    token_count: int
    char_count: int
    word_count: int
    sentence_count: int
    detected_emotion: str | None
    emotion_confidence: float | None
    emotion_intensity: float | None
    strategy: str | None
    tone: str | None
    metadata: dict[str, Any]


class Conversation(ConversationScores):
    """A stored conversation row (turns are loaded separately; the judge's columns come from
    ConversationScores)."""

    id: UUID
    owner_id: UUID
    conversation_id: str
    title: str | None
    description: str | None
    persona: str | None
    emotion: str | None
    topic: str | None
    intent: str | None
    tone: str | None
    emotional_arc: str | None
    tier: Tier
    status: ConversationStatus
    source: ConversationSource
    category: list[str]
    tags: list[str]
    quality_score: float | None
    quality_metrics: dict[str, Any]
    is_flagged: bool
    flag_reason: str | None
    turn_count: int
    total_tokens: int
    estimated_cost_usd: Decimal | None
    actual_cost_usd: Decimal | None
    generation_duration_ms: int | None
    template_id: UUID | None
    scenario_id: UUID | None
    edge_case_id: UUID | None
    parent_id: UUID | None
    parent_type: ParentType | None
    generation_job_id: UUID | None
    generation_item_index: int | None
    parameters: dict[str, Any]
    model: str | None
    temperature: float | None
    max_tokens: int | None
    system_prompt: str | None
    object_key: str
    byte_size: int
    sha256: str
    document_version: int = Field(
        default=1, description="the stored document's current version (each turn edit adds one)"
    )
    starting_emotion: str | None
    starting_intensity: float | None
    ending_emotion: str | None
    ending_intensity: float | None
    reviewed_by: UUID | None
    reviewed_at: datetime | None
    review_notes: str | None
    export_count: int
    last_exported_at: datetime | None
    expires_at: datetime | None
    deleted_at: datetime | None
    created_at: datetime
    updated_at: datetime


class Review(BaseModel):
    """One entry of a conversation's review history."""

    id: UUID
    action: str
    from_status: ConversationStatus | None
    to_status: ConversationStatus
    reviewer_id: UUID | None
    notes: str | None
    diff: str | None = Field(
        default=None, description="for an edit: the unified diff of the edited turn's text"
    )
    document_version: int | None = Field(
        default=None, description="for an edit: the document version it created"
    )
    created_at: datetime


class ConversationVersion(BaseModel):
    """One version of a conversation's stored document."""

    version: int
    object_key: str
    byte_size: int
    sha256: str
    turn_count: int
    total_tokens: int
    created_by: UUID | None
    change_summary: str | None
    created_at: datetime
