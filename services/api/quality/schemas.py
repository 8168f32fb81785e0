"""Bodies of the judge's API: the rubric (read, edit, history) and a scoring request."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from services.api.generation.schemas import Money


class CriterionIn(BaseModel):
    """What one criterion measures, and a description of each of its score levels."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(description="what the criterion measures (1-2000 characters)")
    levels: dict[str, str] = Field(
        description='one description per level: "0", "0.25", "0.5", "0.75", "1" for the 0-1 '
        'criteria, "1" to "5" for the 1-5 ones'
    )


class RubricIn(BaseModel):
    """A new rubric version: every criterion, every level (422 lists each problem)."""

    model_config = ConfigDict(extra="forbid")

    criteria: dict[str, CriterionIn] = Field(
        description="coherence, relevance, completeness (0-1); empathy, clarity, "
        "appropriateness, brand_voice (1-5)"
    )
    note: str | None = Field(default=None, description="what changed (up to 500 characters)")


class CriterionOut(BaseModel):
    """One criterion of a rubric version."""

    scale: Literal["0-1", "1-5"]
    description: str
    levels: dict[str, str]


class RubricOut(BaseModel):
    """One rubric version (version 1 is the built-in default)."""

    version: int
    builtin: bool
    note: str | None
    criteria: dict[str, CriterionOut]


class RubricVersion(BaseModel):
    """An entry of the rubric's history."""

    version: int
    builtin: bool
    note: str | None
    created_at: datetime | None


class RubricVersions(BaseModel):
    """Every version, newest first (the built-in version 1 last)."""

    items: list[RubricVersion]
    current: int


class ScoreIn(BaseModel):
    """Options of a scoring run."""

    model_config = ConfigDict(extra="forbid")

    cost_cap_usd: Money | None = Field(
        default=None, description="stop judging once the job's calls may cost more"
    )
    mode: Literal["live", "batch"] = Field(
        default="live",
        description="batch: Message Batches at half price, answers within 24 h (live when "
        "the offline judge answers)",
    )
