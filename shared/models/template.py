"""Templates, scenarios and edge cases: what a generation request is built from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from shared.models.conversation import Tier
from shared.models.text import Text

LongText = Annotated[Text, Field(max_length=20_000)]
VariableName = Annotated[Text, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)]


class SourceStatus(StrEnum):
    """Lifecycle of a scenario or edge case; only `active` ones feed a tier plan."""

    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


class RiskLevel(StrEnum):
    """How bad it is when the assistant gets an edge case wrong."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class VariableSpec(BaseModel):
    """One declared `{{placeholder}}`: whether it must be given, its default, allowed values."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: VariableName
    required: bool = False
    default: LongText | None = None
    allowed_values: (
        Annotated[list[Annotated[Text, Field(max_length=20_000)]], Field(max_length=1000)] | None
    ) = None
    description: LongText | None = None

    @model_validator(mode="after")
    def _default_is_allowed(self) -> VariableSpec:
        allowed = self.allowed_values
        if allowed is not None and self.default is not None and self.default not in allowed:
            raise ValueError(f"default {self.default!r} is not one of the allowed values")
        return self


class Template(BaseModel):
    """A stored template row."""

    id: UUID
    owner_id: UUID
    name: str
    description: str | None
    category: str | None
    tier: Tier
    system_prompt: str
    user_prompt_template: str
    variables: list[VariableSpec]
    tone: str | None
    complexity_baseline: int | None
    style_notes: str | None
    quality_threshold: float
    # The judge's flag threshold on quality_overall (0-1) for this template's conversations;
    # None: the JUDGE_FLAG_THRESHOLD setting.
    judge_flag_threshold: float | None = None
    applicable_personas: list[str]
    applicable_emotions: list[str]
    applicable_topics: list[str]
    default_temperature: float | None
    default_max_tokens: int | None
    usage_count: int
    rating: float | None
    success_rate: float | None
    version: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


class TemplateStats(BaseModel):
    """How a template has done: items that used it, share completed, average quality."""

    usage_count: int = 0
    completed: int = 0
    failed: int = 0
    success_rate: float | None = None
    average_quality: float | None = None


class Scenario(BaseModel):
    """A stored scenario row."""

    id: UUID
    owner_id: UUID
    name: str
    description: str | None
    parent_template_id: UUID | None
    context: str | None
    topic: str | None
    persona: str | None
    emotional_arc: str | None
    complexity: int | None
    objectives: list[str]
    constraints: list[str]
    parameter_values: dict[str, Any]
    estimated_turns: int | None
    tags: list[str]
    status: SourceStatus
    created_at: datetime
    updated_at: datetime


class EdgeCase(BaseModel):
    """A stored edge case row."""

    id: UUID
    owner_id: UUID
    name: str
    description: str | None
    category: str | None
    trigger_condition: str | None
    expected_behavior: str | None
    test_input: str | None
    expected_output: str | None
    risk_level: RiskLevel
    priority: int
    parent_template_id: UUID | None
    tested: bool
    last_tested_at: datetime | None
    status: SourceStatus
    created_at: datetime
    updated_at: datetime
