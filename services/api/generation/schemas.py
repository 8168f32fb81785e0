"""Request and response bodies of the generation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.conversations.text_stats import blank
from shared.models.bounds import INT4_MAX, Int8
from shared.models.conversation import Tier
from shared.models.generation import BatchStatus, GenerationLog, ItemStatus, JobMode, LogStatus
from shared.models.template import VariableSpec
from shared.models.text import Text

Short = Annotated[Text, Field(max_length=500)]
ParamValue = Text | Int8 | float | bool
ParamKey = Annotated[Text, Field(max_length=200)]
# batch_jobs.cost_cap_usd is numeric(12, 6) CHECK (> 0): six decimal places, below 10^6.
Money = Annotated[float, Field(ge=0.000001, le=999_999.999999)]


class InlineTemplate(BaseModel):
    """A template given in the request instead of a stored one."""

    model_config = ConfigDict(extra="forbid")

    system_prompt: Annotated[Text, Field(max_length=20_000)] = ""
    user_prompt_template: Annotated[Text, Field(min_length=1, max_length=20_000)]
    variables: Annotated[list[VariableSpec], Field(max_length=100)] = Field(default_factory=list)
    quality_threshold: Annotated[float, Field(ge=0, le=10)] | None = None


class GenerationRequestIn(BaseModel):
    """One conversation to generate."""

    model_config = ConfigDict(extra="forbid")

    template_id: UUID | None = None
    template: InlineTemplate | None = None
    scenario_id: UUID | None = None
    edge_case_id: UUID | None = None
    tier: Tier | None = None
    persona: Short | None = None
    emotion: Short | None = None
    topic: Short | None = None
    parameters: dict[ParamKey, ParamValue] = Field(default_factory=dict)
    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(gt=0, le=64_000)] | None = None

    @model_validator(mode="after")
    def _one_template(self) -> GenerationRequestIn:
        if self.template_id is not None and self.template is not None:
            raise ValueError("give template_id or an inline template, not both")
        return self


class TierPlan(BaseModel):
    """How many conversations per tier, spread over the caller's active sources."""

    model_config = ConfigDict(extra="forbid")

    template: Annotated[int, Field(ge=0, le=10_000)] = 0
    scenario: Annotated[int, Field(ge=0, le=10_000)] = 0
    edge_case: Annotated[int, Field(ge=0, le=10_000)] = 0

    def counts(self) -> dict[Tier, int]:
        """Per-tier counts, in tier order."""
        return {Tier.TEMPLATE: self.template, Tier.SCENARIO: self.scenario,
                Tier.EDGE_CASE: self.edge_case}  # fmt: skip


class JobIn(BaseModel):
    """A batch: a list of requests or a tier plan, plus how to run it."""

    model_config = ConfigDict(extra="forbid")

    items: Annotated[list[GenerationRequestIn], Field(min_length=1)] | None = None
    plan: TierPlan | None = None
    defaults: GenerationRequestIn | None = Field(
        default=None, description="applied to every planned item (temperature, parameters, ...)"
    )
    concurrency: Annotated[int, Field(ge=1, le=500)] = 50
    cost_cap_usd: Money | None = None
    priority: Annotated[int, Field(ge=0, le=10)] = 5
    mode: JobMode = Field(
        default=JobMode.LIVE,
        description="live: one call per item; batch: Message Batches (half price, results "
        "within 24 h); auto: batch when the job is large enough and the deadline allows",
    )
    judge: bool | None = Field(
        default=None,
        description="judge each conversation as it lands (a quality_check job per "
        "conversation); default: the JUDGE_AFTER_GENERATION setting",
    )
    deadline: datetime | None = Field(
        default=None, description="with mode=auto: results wanted by then (under 24 h: live)"
    )

    @model_validator(mode="after")
    def _items_or_plan(self) -> JobIn:
        if (self.items is None) == (self.plan is None):
            raise ValueError("give exactly one of 'items' or 'plan'")
        if self.plan is not None and sum(self.plan.counts().values()) == 0:
            raise ValueError("the plan asks for no conversations")
        if self.items is not None and self.defaults is not None:
            raise ValueError("'defaults' go with a plan; give each item its own values")
        return self


MAX_INSTRUCTIONS_CHARS = 2000


class RegenerateIn(BaseModel):
    """Optional overrides for a replacement conversation."""

    model_config = ConfigDict(extra="forbid")

    temperature: Annotated[float, Field(ge=0, le=1)] | None = None
    max_tokens: Annotated[int, Field(gt=0, le=64_000)] | None = None
    cost_cap_usd: Money | None = None
    from_turn: Annotated[int, Field(ge=1, le=INT4_MAX)] | None = Field(
        default=None,
        description="keep the turns before this one exactly as they are and have Claude write "
        "the rest (1-based, a system turn counts as turn 1); omitted: a whole new conversation",
    )
    instructions: Annotated[Text, Field(min_length=1, max_length=MAX_INSTRUCTIONS_CHARS)] | None = (
        Field(
            default=None,
            description="free text added to the prompt, e.g. 'less formal' or 'the client "
            "pushes back twice'",
        )
    )
    parameters: Annotated[dict[ParamKey, ParamValue], Field(max_length=100)] | None = Field(
        default=None,
        description="template variables merged over the original conversation's; the "
        "template is rendered again with them",
    )

    @field_validator("instructions")
    @classmethod
    def _visible(cls, value: str | None) -> str | None:
        """Instructions that show nothing (spaces, zero-width characters) are refused."""
        if value is not None and blank(value):
            raise ValueError("must not be blank (only spaces or invisible characters)")
        return value


class TierEstimate(BaseModel):
    """Planned requests, tokens and cost of one tier."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class ModeEstimate(BaseModel):
    """Expected cost of the job run one way (live calls or Message Batches), caching included."""

    requests: int
    input_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    output_tokens: int
    cost_usd: float
    list_cost_usd: float
    estimated_duration_seconds: float


class EstimateOut(BaseModel):
    """What a batch is expected to cost, before anything runs."""

    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: float
    max_cost_usd: float
    model: str
    provider: str
    price_entry: str
    input_price_per_1k: float
    output_price_per_1k: float
    requests_per_minute: int
    estimated_duration_seconds: float
    by_tier: dict[str, TierEstimate]
    mode: JobMode
    chosen_mode: JobMode
    by_mode: dict[str, ModeEstimate]
    token_count_method: str
    prefix_tokens: int
    min_cacheable_tokens: int
    cache_warning: str | None


class BatchProgress(BaseModel):
    """Items of a Message Batches job: sent in a batch, waiting in an open one, landed."""

    submitted: int
    in_batch: int
    landed: int
    open_batches: int
    rounds: int


class JobOut(BaseModel):
    """A generation batch's status."""

    id: UUID
    status: BatchStatus
    total_items: int
    completed_items: int
    failed_items: int
    skipped_items: int
    progress_percent: float
    cost_so_far_usd: float
    cost_cap_usd: float | None
    stop_reason: str | None
    error: str | None
    concurrency: int
    priority: int
    estimate: dict[str, Any]
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    heartbeat_at: datetime | None
    eta: datetime | None
    eta_seconds: float | None
    mode: JobMode = JobMode.LIVE
    batch_progress: BatchProgress | None = None


class ItemError(BaseModel):
    """Why one item did not produce a conversation."""

    item_index: int
    status: ItemStatus
    error_code: str | None
    error: str | None
    attempts: int


class JobDetail(JobOut):
    """A batch with per-status counts and the latest errors."""

    items_by_status: dict[str, int]
    errors: list[ItemError]


class ActionOut(JobOut):
    """A batch after cancel / retry-failed, with how many items the action touched."""

    affected_items: int


class JobPage(BaseModel):
    """One page of batches."""

    items: list[JobOut]
    next_cursor: str | None
    total: int


class ItemOut(BaseModel):
    """One planned conversation of a batch."""

    item_index: int
    status: ItemStatus
    tier: Tier
    template_id: UUID | None
    scenario_id: UUID | None
    edge_case_id: UUID | None
    persona: str | None
    emotion: str | None
    topic: str | None
    attempts: int
    conversation_id: UUID | None
    cost_usd: float
    error_code: str | None
    error: str | None
    started_at: datetime | None
    finished_at: datetime | None


class ItemPage(BaseModel):
    """Items of a batch in index order."""

    items: list[ItemOut]
    next_cursor: str | None
    total: int


class LogOut(GenerationLog):
    """One Claude attempt (cost as a JSON number)."""

    status: LogStatus
    cost_usd: float  # type: ignore[assignment]
    reserved_cost_usd: float = 0.0  # type: ignore[assignment]
    list_cost_usd: float  # type: ignore[assignment]


class LogPage(BaseModel):
    """One page of attempt logs."""

    items: list[LogOut]
    next_cursor: str | None
    total: int


class CostDay(BaseModel):
    """Tokens and cost of one UTC day and model."""

    day: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float
    list_cost_usd: float
    lost_requests: int = Field(
        default=0, description="Calls whose worker died before the answer was recorded."
    )
    lost_cost_usd: float = Field(
        default=0.0, description="Their reserved worst-case cost (included in cost_usd)."
    )
    in_flight_requests: int = Field(default=0, description="Calls booked and not answered yet.")


class CostSummary(BaseModel):
    """Cost by day and model, the totals (lost calls included), and what caching saved."""

    days: list[CostDay]
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost_usd: float
    lost_requests: int = 0
    lost_cost_usd: float = 0.0
    in_flight_requests: int = 0
    list_cost_usd: float
    saved_usd: float
    cache_hit_rate: float | None = Field(
        description="cache-read input tokens / all input tokens (null with no input)"
    )


class PriceOut(BaseModel):
    """One entry of the price table, dollars per million tokens."""

    input: float
    output: float
    cache_write_5m: float
    cache_write_1h: float
    cache_read: float
    batch_discount: float
    min_cacheable_tokens: int


class PricingOut(BaseModel):
    """The price table every cost comes from, and the entry the configured model uses."""

    model: str
    model_entry: str
    unit: str
    models: dict[str, PriceOut]


class RateLimitOut(BaseModel):
    """The shared limiter right now."""

    provider: str
    model: str
    requests_per_minute: int
    window_seconds: float
    used: int
    remaining: int
    reset_at: datetime | None
    paused_until: datetime | None
    pause_reason: str | None
    waiting: int
    input_tokens: dict[str, int] | None
    output_tokens: dict[str, int] | None
