"""The §5 quality score (0–10) of a generated conversation and the status it earns."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

DEFAULT_THRESHOLD: Final = 6.0
MAX_SCORE: Final = 10.0
ScoredStatus = Literal["pending_review", "needs_revision"]


@dataclass(frozen=True, slots=True)
class QualityScore:
    """The total (one decimal) and its parts, as stored in ``quality_metrics``."""

    score: float
    parts: dict[str, float | int | bool]


def score_conversation(turns: Sequence[Mapping[str, str]]) -> QualityScore:
    """Score turn count, average turn length and user-first alternation (system turns ignored)."""
    dialogue = [t for t in turns if t.get("role") != "system"]
    count = len(dialogue)
    average = sum(len(t.get("content", "")) for t in dialogue) / count if count else 0.0
    alternates = _alternates_from_user([t.get("role", "") for t in dialogue])
    count_points = _band(count, (8, 16, 3), (6, 20, 2))
    length_points = _band(average, (100, 400, 3), (50, 600, 2))
    alternation_points = 4 if alternates else 1
    total = min(MAX_SCORE, float(count_points + length_points + alternation_points))
    parts: dict[str, float | int | bool] = {
        "turn_count": count,
        "turn_count_points": count_points,
        "average_turn_length": round(average, 1),
        "average_turn_length_points": length_points,
        "alternates_from_user": alternates,
        "alternation_points": alternation_points,
    }
    return QualityScore(score=round(total, 1), parts=parts)


def status_for(score: float, threshold: float = DEFAULT_THRESHOLD) -> tuple[ScoredStatus, bool]:
    """Return ``(status, is_flagged)``: at or above the threshold goes to review."""
    if score >= threshold:
        return "pending_review", False
    return "needs_revision", True


def _band(value: float, *bands: tuple[float, float, int]) -> int:
    """Points of the first inclusive ``(low, high, points)`` band holding ``value``, else 1."""
    for low, high, points in bands:
        if low <= value <= high:
            return points
    return 1


def _alternates_from_user(roles: Sequence[str]) -> bool:
    if not roles or roles[0] != "user":
        return False
    expected = ("user", "assistant")
    return all(role == expected[i % 2] for i, role in enumerate(roles))
