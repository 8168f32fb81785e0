"""The judge's score columns (migration 0013) as the list, stats and exports see them."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


class QualitySource(StrEnum):
    """Where a conversation's 0-10 quality_score came from."""

    JUDGE = "judge"
    STRUCTURAL = "structural"
    IMPORTED = "imported"


# Every score column and its range: 0-1 for the judge's weighted criteria and their overall,
# 1-5 for the storage spec's criteria (DESIGN.md, docs/quality.md "Scores").
UNIT_SCORES: Final = ("coherence_score", "relevance_score", "completeness_score", "quality_overall")
FIVE_POINT_SCORES: Final = (
    "empathy_score", "clarity_score", "appropriateness_score", "brand_voice_score",
)  # fmt: skip
SCORE_BOUNDS: Final[dict[str, tuple[float, float]]] = {
    **dict.fromkeys(UNIT_SCORES, (0.0, 1.0)),
    **dict.fromkeys(FIVE_POINT_SCORES, (1.0, 5.0)),
}
SCORE_COLUMNS: Final = tuple(SCORE_BOUNDS)


def shown(value: float | None) -> float | None:
    """A `real` column's value as written (0.85, not 0.8500000238418579): 6 significant digits,
    what float4 holds exactly."""
    if value is None or not math.isfinite(value):
        return value
    return float(f"{value:.6g}")


# A score as read from its `real` column.
Score = Annotated[float | None, AfterValidator(shown)]
UnitBound = Annotated[float | None, Field(ge=0, le=1)]
FivePointBound = Annotated[float | None, Field(ge=1, le=5)]


class ConversationScores(BaseModel):
    """The judge's columns of a conversation row (all NULL until it is judged or imported)."""

    coherence_score: Score = None
    relevance_score: Score = None
    completeness_score: Score = None
    quality_overall: Score = None
    empathy_score: Score = None
    clarity_score: Score = None
    appropriateness_score: Score = None
    brand_voice_score: Score = None
    quality_source: QualitySource | None = None
    judge_rationale: dict[str, Any] | None = Field(
        default=None,
        description='per criterion {"rationale": str, "weakest_turns": [turn numbers]}',
    )
    judge_rubric_version: int | None = None
    judge_model: str | None = None
    judge_error: str | None = None
    judged_at: datetime | None = None
    # The earlier conversation this one nearly copies and their similarity (shared/dedup).
    duplicate_of: UUID | None = None
    duplicate_similarity: Score = None


class ScoreFilters(BaseModel):
    """`<score>_min` / `<score>_max` bounds (inclusive) and `quality_source` of the list."""

    model_config = ConfigDict(extra="forbid")

    coherence_score_min: UnitBound = None
    coherence_score_max: UnitBound = None
    relevance_score_min: UnitBound = None
    relevance_score_max: UnitBound = None
    completeness_score_min: UnitBound = None
    completeness_score_max: UnitBound = None
    quality_overall_min: UnitBound = None
    quality_overall_max: UnitBound = None
    empathy_score_min: FivePointBound = None
    empathy_score_max: FivePointBound = None
    clarity_score_min: FivePointBound = None
    clarity_score_max: FivePointBound = None
    appropriateness_score_min: FivePointBound = None
    appropriateness_score_max: FivePointBound = None
    brand_voice_score_min: FivePointBound = None
    brand_voice_score_max: FivePointBound = None
    quality_source: list[QualitySource] = Field(default_factory=list)

    def score_bounds(self) -> list[tuple[str, str, float]]:
        """(column, ">=" | "<=", value) for every bound that is set."""
        bounds = []
        for name in SCORE_COLUMNS:
            for suffix, op in (("min", ">="), ("max", "<=")):
                value = getattr(self, f"{name}_{suffix}")
                if value is not None:
                    bounds.append((name, op, value))
        return bounds

    def crossed_scores(self) -> list[str]:
        """A message per score whose min is greater than its max."""
        problems = []
        for name in SCORE_COLUMNS:
            low, high = getattr(self, f"{name}_min"), getattr(self, f"{name}_max")
            if low is not None and high is not None and low > high:
                problems.append(f"{name}_min must not be greater than {name}_max")
        return problems
