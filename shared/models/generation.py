"""Generation batches, their items (one planned conversation each) and per-attempt logs."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.models.conversation import ParentType, Tier


class BatchStatus(StrEnum):
    """A batch job's lifecycle."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_BATCH = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.CANCELLED})


class ItemStatus(StrEnum):
    """One item's lifecycle; `skipped`/`cancelled` count as skipped in the batch counters."""

    QUEUED = "queued"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"
    CANCELLED = "cancelled"


TERMINAL_ITEM = frozenset(
    {ItemStatus.COMPLETED, ItemStatus.FAILED, ItemStatus.SKIPPED, ItemStatus.CANCELLED}
)


class LogStatus(StrEnum):
    """Outcome of one Claude attempt."""

    SUCCESS = "success"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    # Attempt rows (issue 11): written before the request leaves, settled when it answers.
    IN_FLIGHT = "in_flight"
    LOST = "lost"


class JobMode(StrEnum):
    """How a generation job calls Claude: one call per item, Message Batches, or chosen by size."""

    LIVE = "live"
    BATCH = "batch"
    AUTO = "auto"


class StopReason(StrEnum):
    """Why a batch stopped before running every item."""

    CANCELLED = "cancelled"
    COST_CAP = "cost_cap_reached"
    SPEND_LIMIT = "spend_limit_reached"
    AUTH_FAILED = "auth_failed"


class ItemRequest(BaseModel):
    """Everything a worker needs for one conversation, resolved when the batch was created."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tier: Tier
    template_id: UUID | None = None
    template_name: str | None = None
    scenario_id: UUID | None = None
    edge_case_id: UUID | None = None
    persona: str | None = None
    emotion: str | None = None
    topic: str | None = None
    emotional_arc: str | None = None
    category: list[str] = Field(default_factory=list)
    parameters: dict[str, str] = Field(default_factory=dict)
    system_prompt: str
    user_prompt: str
    # The template's fixed instructions: sent after the system prompt, inside the cached prefix,
    # and kept out of the stored conversation's system prompt (it is training data).
    instructions: str = ""
    temperature: float | None = None
    max_tokens: int
    quality_threshold: float
    parent_id: UUID | None = None
    parent_type: ParentType | None = None
    estimated_input_tokens: int
    estimated_output_tokens: int
    # A regenerate's revision (shared/conversations/continuation.py): the turns kept from the
    # parent (stored as they were, every field) that the answer continues, and the prompt part
    # that shows them and carries the reviewer's instructions, sent after `user_prompt`.
    kept_turns: list[dict[str, Any]] = Field(default_factory=list)
    revision_prompt: str = ""
    # A quality_check item (issue 13): the conversation to judge and the rubric version pinned
    # when the job was created; the prompt is built from the stored turns when the item runs,
    # and quality_threshold is then the flag threshold on quality_overall (0-1).
    judge_conversation_id: UUID | None = None
    judge_rubric_version: int | None = None

    @property
    def prefix(self) -> str:
        """Everything before the per-item part: the cacheable system text of every call."""
        return "\n\n".join(part for part in (self.system_prompt, self.instructions) if part)

    @property
    def user_message(self) -> str:
        """The per-item user message: the resolved prompt, then any revision part."""
        return "\n\n".join(part for part in (self.user_prompt, self.revision_prompt) if part)


class BatchJob(BaseModel):
    """A stored batch_jobs row."""

    id: UUID
    owner_id: UUID
    job_type: str
    status: BatchStatus
    total_items: int
    completed_items: int
    failed_items: int
    skipped_items: int
    progress_percent: float
    started_at: datetime | None
    completed_at: datetime | None
    estimated_completion_at: datetime | None
    heartbeat_at: datetime | None
    priority: int
    concurrency: int
    cost_cap_usd: Decimal | None
    cost_so_far_usd: Decimal
    stop_reason: str | None
    error: str | None
    config: dict[str, Any]
    results: dict[str, Any]
    created_by: UUID | None
    created_at: datetime
    updated_at: datetime


class GenerationItem(BaseModel):
    """A stored generation_items row."""

    id: UUID
    owner_id: UUID
    batch_id: UUID
    item_index: int
    status: ItemStatus
    tier: Tier
    template_id: UUID | None
    request: ItemRequest
    attempts: int
    conversation_id: UUID | None
    cost_usd: Decimal
    reserved_cost_usd: Decimal
    error_code: str | None
    error: str | None
    lease_id: UUID | None
    lease_until: datetime | None
    parked: bool
    started_at: datetime | None
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime


class GenerationLog(BaseModel):
    """One Claude attempt as recorded (prompts only as a hash unless debug logging is on)."""

    id: UUID
    job_id: UUID | None
    item_index: int | None
    conversation_id: UUID | None
    template_id: UUID | None
    attempt: int
    model: str
    parameters: dict[str, Any]
    prompt_sha256: str | None
    request_excerpt: Any
    response_excerpt: Any
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    duration_ms: int
    status: LogStatus
    error_code: str | None
    error_message: str | None
    reserved_cost_usd: Decimal = Decimal(0)
    settled_at: datetime | None = None
    created_at: datetime
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_ttl: str | None = None
    price_entry: str | None = None
    prices: dict[str, Any] | None = None
    mode: str = "live"
    list_cost_usd: Decimal = Decimal(0)
    purpose: str = "generation"


class NewLog(BaseModel):
    """A log row to insert for one attempt."""

    model_config = ConfigDict(frozen=True)

    attempt: int
    model: str
    parameters: dict[str, Any]
    prompt_sha256: str
    request_excerpt: Any = None
    response_excerpt: Any = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: Decimal = Decimal(0)
    duration_ms: int = 0
    status: LogStatus
    error_code: str | None = None
    error_message: str | None = None
    # The in-flight attempt row this outcome settles (None: insert a new row).
    attempt_id: UUID | None = None
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    cache_ttl: str | None = None
    price_entry: str | None = None
    prices: dict[str, Any] | None = None
    mode: str = "live"
    list_cost_usd: Decimal = Decimal(0)
    # What the call was for: "generation" or "judge" (issue 13).
    purpose: str = "generation"


class CostRow(BaseModel):
    """Tokens and cost of one day and model (totals include lost calls, also shown apart)."""

    day: str
    model: str
    requests: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal
    lost_requests: int = 0
    lost_cost_usd: Decimal = Decimal(0)
    in_flight_requests: int = 0
    cache_write_tokens: int = 0
    cache_read_tokens: int = 0
    list_cost_usd: Decimal = Decimal(0)


class MessageBatchStatus(StrEnum):
    """A submitted Message Batch's lifecycle as we track it."""

    SUBMITTING = "submitting"
    IN_PROGRESS = "in_progress"
    CANCELING = "canceling"
    ENDED = "ended"
    FAILED = "failed"


OPEN_MESSAGE_BATCH = frozenset(
    {MessageBatchStatus.SUBMITTING, MessageBatchStatus.IN_PROGRESS, MessageBatchStatus.CANCELING}
)


class MessageBatch(BaseModel):
    """A stored message_batches row: one submission round of a batch-mode job."""

    id: UUID
    owner_id: UUID
    job_id: UUID
    round: int
    provider_batch_id: str | None
    status: MessageBatchStatus
    item_indexes: list[int]
    lease_id: UUID
    request_counts: dict[str, int]
    landed: int
    polls: int
    error: str | None
    submitted_at: datetime | None
    ended_at: datetime | None
    created_at: datetime
