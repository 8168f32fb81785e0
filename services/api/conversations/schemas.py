"""Request and response bodies of the conversation routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.models.bounds import Omittable
from shared.models.conversation import Conversation, ConversationStatus, Review, Turn
from shared.models.text import Text


class ConversationOut(Conversation):
    """A conversation as the API shows it, including where and how its document is stored."""

    model_config = ConfigDict(json_schema_extra={"description": "A stored conversation."})


class ConversationDetail(ConversationOut):
    """A conversation with its turns."""

    turns: list[Turn]


class ConversationPage(BaseModel):
    """One page of a list."""

    items: list[ConversationOut]
    next_cursor: str | None = Field(
        description="pass as `cursor` (with the same filters and sort) for the next page; "
        "null on the last page"
    )
    total: int = Field(
        description="how many conversations match the filters: the exact count at the time of "
        "the first page, carried unchanged to the following pages through the cursor"
    )


class BatchImport(BaseModel):
    """Many conversation files at once."""

    items: list[Any] = Field(min_length=1, max_length=1000)


class BatchItemResult(BaseModel):
    """What happened to one file of a batch."""

    index: int
    ok: bool
    id: UUID | None = None
    error: dict[str, Any] | None = None


class BatchResult(BaseModel):
    """Per-item results, in request order."""

    results: list[BatchItemResult]
    created: int
    failed: int


class ConversationPatch(BaseModel):
    """Editable metadata; anything not listed is refused."""

    model_config = ConfigDict(extra="forbid")

    title: Text | None = Field(default=None, max_length=500)
    description: Text | None = Field(default=None, max_length=10_000)
    persona: Text | None = Field(default=None, max_length=500)
    emotion: Text | None = Field(default=None, max_length=200)
    topic: Text | None = Field(default=None, max_length=500)
    intent: Text | None = Field(default=None, max_length=500)
    tone: Text | None = Field(default=None, max_length=500)
    emotional_arc: Text | None = Field(default=None, max_length=1000)
    category: Omittable[Annotated[list[Text], Field(max_length=50)]] = None
    tags: Omittable[Annotated[list[Text], Field(max_length=100)]] = None
    is_flagged: Omittable[bool] = None
    flag_reason: Text | None = Field(default=None, max_length=2000)


class StatusChange(BaseModel):
    """A workflow transition."""

    model_config = ConfigDict(extra="forbid")

    status: ConversationStatus
    notes: Text | None = Field(default=None, max_length=10_000)


class BulkAction(BaseModel):
    """One action over many conversations."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["approve", "reject", "archive", "delete", "score"] = Field(
        description="score: judge the conversations again (one quality_check job for all)"
    )
    ids: list[UUID] = Field(min_length=1, max_length=1000)
    reason: Text | None = Field(default=None, max_length=10_000)


class BulkItemResult(BaseModel):
    """What happened to one id."""

    id: UUID
    ok: bool
    status: ConversationStatus | None = None
    error: dict[str, Any] | None = None


class BulkResult(BaseModel):
    """Per-id results, in request order."""

    results: list[BulkItemResult]
    succeeded: int
    failed: int
    job_id: UUID | None = Field(
        default=None, description="action score: the quality_check job (/v1/generation-jobs/{id})"
    )


class ReviewList(BaseModel):
    """A conversation's review history, oldest first."""

    items: list[Review]


class ScoreDistribution(BaseModel):
    """One score's distribution: buckets keyed by their lower bound (0-1 scores: ten 0.1-wide
    buckets "0.0".."0.9", the last holding 1.0; 1-5 scores: "1".."4", the last holding 5)."""

    scored: int
    mean: float | None
    histogram: dict[str, int]


class Stats(BaseModel):
    """Totals, a quality histogram (bucket n = scores in [n, n+1), 9 includes 10) and approvals."""

    total: int
    by_status: dict[str, int]
    by_tier: dict[str, int]
    quality_histogram: dict[str, int]
    approval_rate: float | None
    mean_quality: float | None = Field(default=None, description="mean quality score (0-10)")
    scores: dict[str, ScoreDistribution] = Field(
        default_factory=dict,
        description="per judge score column: how many rows are scored, the mean, a histogram",
    )
    by_quality_source: dict[str, int] = Field(
        default_factory=dict,
        description="rows by where quality_score came from (judge, structural, imported, none)",
    )


class FileLink(BaseModel):
    """A download link for the stored document."""

    url: str
    expires_at: datetime
