"""The review page's score breakdown: the judge's eight scores with their rationale and weakest
turns (judge_rationale), where quality_score came from, the judge's error and rubric version."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shared.models.conversation import Conversation
from shared.models.scores import SCORE_BOUNDS, SCORE_COLUMNS

LABELS = {
    "coherence_score": "Coherence",
    "relevance_score": "Relevance",
    "completeness_score": "Completeness",
    "quality_overall": "Overall",
    "empathy_score": "Empathy",
    "clarity_score": "Clarity",
    "appropriateness_score": "Appropriateness",
    "brand_voice_score": "Brand voice",
}


@dataclass(frozen=True)
class ScoreRow:
    """One criterion as the page shows it."""

    name: str
    label: str
    value: float | None
    scale: str
    percent: int  # the bar's width: the score's place in its range
    rationale: str | None
    weakest_turns: list[int] = field(default_factory=list)

    @property
    def band(self) -> str:
        """high / mid / low by the share of the range (the 0-10 badge's bands)."""
        if self.value is None:
            return "none"
        return "high" if self.percent >= 80 else "mid" if self.percent >= 60 else "low"


def _rationale_of(rationale: dict[str, Any] | None, name: str) -> tuple[str | None, list[int]]:
    """The judge's entry for a column, keyed by criterion ("coherence") or column name."""
    if not rationale:
        return None, []
    short = "overall" if name == "quality_overall" else name.removesuffix("_score")
    entry = rationale.get(short, rationale.get(name))
    if not isinstance(entry, dict):
        return (entry if isinstance(entry, str) else None), []
    text = entry.get("rationale")
    turns = entry.get("weakest_turns") or []
    numbers = [t for t in turns if isinstance(t, int) and not isinstance(t, bool)]
    return (text if isinstance(text, str) else None), numbers


def score_rows(conversation: Conversation) -> list[ScoreRow]:
    """The eight scores in rubric order, set or not."""
    rows = []
    for name in SCORE_COLUMNS:
        low, high = SCORE_BOUNDS[name]
        value = getattr(conversation, name)
        percent = 0 if value is None else round(100 * (value - low) / (high - low))
        text, turns = _rationale_of(conversation.judge_rationale, name)
        scale = f"{low:g}–{high:g}"
        rows.append(ScoreRow(name, LABELS[name], value, scale, percent, text, turns))
    return rows


def breakdown(conversation: Conversation) -> dict[str, Any]:
    """What the Scores card shows."""
    rows = score_rows(conversation)
    return {
        "rows": rows,
        "judged": any(row.value is not None for row in rows),
        "source": conversation.quality_source.value if conversation.quality_source else None,
        "rubric_version": conversation.judge_rubric_version,
        "judge_model": conversation.judge_model,
        "judge_error": conversation.judge_error,
        "judged_at": conversation.judged_at,
    }
