"""Conversation list filters and sorting, shared by the API list and export scopes."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import ConfigDict, Field, model_validator

from shared.models.conversation import ConversationStatus, Tier
from shared.models.scores import ScoreFilters
from shared.models.text import Text

SortKey = Literal[
    "created_at", "-created_at", "quality_score", "-quality_score", "title", "-title",
    "status", "-status",
    "coherence_score", "-coherence_score", "relevance_score", "-relevance_score",
    "completeness_score", "-completeness_score", "quality_overall", "-quality_overall",
    "empathy_score", "-empathy_score", "clarity_score", "-clarity_score",
    "appropriateness_score", "-appropriateness_score", "brand_voice_score", "-brand_voice_score",
]  # fmt: skip


class ConversationFilters(ScoreFilters):
    """Every filter of GET /v1/conversations; all optional, combined with AND (the judge's
    score bounds and quality_source come from ScoreFilters)."""

    model_config = ConfigDict(extra="forbid")

    status: list[ConversationStatus] = Field(default_factory=list)
    tier: list[Tier] = Field(default_factory=list)
    persona: Text | None = Field(default=None, max_length=500)
    emotion: Text | None = Field(default=None, max_length=200)
    topic: Text | None = Field(default=None, max_length=500)
    quality_min: float | None = Field(default=None, ge=0, le=10)
    quality_max: float | None = Field(default=None, ge=0, le=10)
    created_from: datetime | None = None
    created_to: datetime | None = None
    flagged: bool | None = None
    # true: only conversations marked as a near-duplicate of an earlier one; false: none of them.
    near_duplicates: bool | None = None
    q: Text | None = Field(default=None, min_length=1, max_length=500)

    @model_validator(mode="after")
    def _ranges(self) -> ConversationFilters:
        problems = []
        low, high = self.quality_min, self.quality_max
        if low is not None and high is not None and low > high:
            problems.append("quality_min must not be greater than quality_max")
        problems += self.crossed_scores()
        if self.created_from and self.created_to and self.created_from > self.created_to:
            problems.append("created_from must not be after created_to")
        if problems:
            raise ValueError("; ".join(problems))
        return self
