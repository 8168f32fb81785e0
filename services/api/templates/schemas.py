"""Request and response bodies of /v1/templates, /v1/scenarios and /v1/edge-cases."""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models.bounds import Int8
from shared.models.conversation import Tier
from shared.models.template import (
    EdgeCase,
    RiskLevel,
    Scenario,
    SourceStatus,
    Template,
    TemplateStats,
    VariableSpec,
)
from shared.models.text import Text

Name = Annotated[Text, Field(min_length=1, max_length=200)]
Long = Annotated[Text, Field(max_length=20_000)]
Short = Annotated[Text, Field(max_length=500)]
Labels = Annotated[list[Annotated[Text, Field(max_length=200)]], Field(max_length=100)]
ParamValue = Text | Int8 | float | bool
ParamKey = Annotated[Text, Field(max_length=200)]


def _unique_names(variables: list[VariableSpec] | None) -> list[VariableSpec] | None:
    if variables is None:
        return None
    names = [variable.name for variable in variables]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"variables declared twice: {', '.join(duplicates)}")
    return variables


class TemplatePatch(BaseModel):
    """Fields of a template a caller may change (all optional)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Long | None = None
    category: Short | None = None
    tier: Tier | None = None
    system_prompt: Long | None = None
    user_prompt_template: Annotated[Text, Field(min_length=1, max_length=20_000)] | None = None
    variables: Annotated[list[VariableSpec], Field(max_length=100)] | None = None
    tone: Short | None = None
    complexity_baseline: Annotated[int, Field(ge=1, le=10)] | None = None
    style_notes: Long | None = None
    quality_threshold: Annotated[float, Field(ge=0, le=10)] | None = None
    judge_flag_threshold: Annotated[float, Field(ge=0, le=1)] | None = Field(
        default=None,
        description="the judge flags this template's conversations below this quality_overall "
        "(0-1); null: the JUDGE_FLAG_THRESHOLD setting",
    )
    applicable_personas: Labels | None = None
    applicable_emotions: Labels | None = None
    applicable_topics: Labels | None = None
    default_temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    default_max_tokens: Annotated[int, Field(gt=0, le=64_000)] | None = None
    rating: Annotated[float, Field(ge=0, le=5)] | None = None
    is_active: bool | None = None

    _variables = field_validator("variables")(_unique_names)


class TemplateIn(TemplatePatch):
    """A new template: a name and a user prompt with `{{placeholders}}` are required."""

    name: Name
    user_prompt_template: Annotated[Text, Field(min_length=1, max_length=20_000)]
    system_prompt: Long = ""
    tier: Tier = Tier.TEMPLATE
    variables: Annotated[list[VariableSpec], Field(max_length=100)] = Field(default_factory=list)
    quality_threshold: Annotated[float, Field(ge=0, le=10)] = 6.0
    applicable_personas: Labels = Field(default_factory=list)
    applicable_emotions: Labels = Field(default_factory=list)
    applicable_topics: Labels = Field(default_factory=list)
    is_active: bool = True


class TemplateOut(Template):
    """A template with how it has done: usage, success rate, average quality."""

    stats: TemplateStats
    placeholders: list[str]


class ScenarioPatch(BaseModel):
    """Fields of a scenario a caller may change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Long | None = None
    parent_template_id: UUID | None = None
    context: Long | None = None
    topic: Short | None = None
    persona: Short | None = None
    emotional_arc: Short | None = None
    complexity: Annotated[int, Field(ge=1, le=10)] | None = None
    objectives: Labels | None = None
    constraints: Labels | None = None
    parameter_values: dict[ParamKey, ParamValue] | None = None
    estimated_turns: Annotated[int, Field(gt=0, le=200)] | None = None
    tags: Labels | None = None
    status: SourceStatus | None = None


class ScenarioIn(ScenarioPatch):
    """A new scenario."""

    name: Name
    objectives: Labels = Field(default_factory=list)
    constraints: Labels = Field(default_factory=list)
    parameter_values: dict[ParamKey, ParamValue] = Field(default_factory=dict)
    tags: Labels = Field(default_factory=list)
    status: SourceStatus = SourceStatus.ACTIVE


class EdgeCasePatch(BaseModel):
    """Fields of an edge case a caller may change."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    description: Long | None = None
    category: Short | None = None
    trigger_condition: Long | None = None
    expected_behavior: Long | None = None
    test_input: Long | None = None
    expected_output: Long | None = None
    risk_level: RiskLevel | None = None
    priority: Annotated[int, Field(ge=1, le=5)] | None = None
    parent_template_id: UUID | None = None
    tested: bool | None = None
    status: SourceStatus | None = None


class EdgeCaseIn(EdgeCasePatch):
    """A new edge case."""

    name: Name
    risk_level: RiskLevel = RiskLevel.MEDIUM
    priority: Annotated[int, Field(ge=1, le=5)] = 3
    tested: bool = False
    status: SourceStatus = SourceStatus.ACTIVE


class TemplatePage(BaseModel):
    """One page of templates."""

    items: list[TemplateOut]
    next_cursor: str | None
    total: int


class ScenarioPage(BaseModel):
    """One page of scenarios."""

    items: list[Scenario]
    next_cursor: str | None
    total: int


class EdgeCasePage(BaseModel):
    """One page of edge cases."""

    items: list[EdgeCase]
    next_cursor: str | None
    total: int


class ResolveIn(BaseModel):
    """Values for the template's variables (persona/emotion/topic may also be given here)."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[ParamKey, ParamValue | None] = Field(default_factory=dict)
    persona: Short | None = None
    emotion: Short | None = None
    topic: Short | None = None


class ResolveOut(BaseModel):
    """The prompts with every placeholder substituted."""

    template_id: UUID
    system_prompt: str
    user_prompt: str
    values: dict[str, str]
    unused_parameters: list[str]


def patch_values(body: BaseModel) -> dict[str, Any]:
    """Only the fields the caller sent (explicit nulls included)."""
    return body.model_dump(exclude_unset=True)
