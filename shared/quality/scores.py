"""The judge's answer as scores: checked tool input, the weighted overall, and the flag rule.

Nothing here invents a score: an answer missing a criterion, or with a score out of range or of
the wrong type, is a `JudgeOutputError`, and the conversation keeps NULL judge columns.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Final

from shared.quality.judge import MAX_RATIONALE, MAX_WEAKEST
from shared.quality.rubric import CRITERIA, SCALES, UNIT_CRITERIA

WEIGHTS: Final = {"coherence": 0.4, "relevance": 0.4, "completeness": 0.2}
_RANGES: Final = {"0-1": (0.0, 1.0), "1-5": (1.0, 5.0)}


class JudgeOutputError(ValueError):
    """The judge's answer is not a usable set of scores (the message says why)."""

    code = "judge_output_invalid"


@dataclass(frozen=True, slots=True)
class Scores:
    """One judgement: a score per criterion, rationales, and the derived overall."""

    values: dict[str, float]
    rationale: dict[str, dict[str, Any]]

    @property
    def overall(self) -> float:
        """0.4·coherence + 0.4·relevance + 0.2·completeness (0–1, four decimals)."""
        return round(sum(WEIGHTS[name] * self.values[name] for name in WEIGHTS), 4)

    @property
    def quality_score(self) -> float:
        """The 0–10 score: 10 × quality_overall, one decimal."""
        return round(10 * self.overall + 1e-9, 1)


def parse_scores(tool_input: Any, turn_numbers: Collection[int]) -> Scores:
    """Check the `record_scores` input; weakest turns not in the conversation are dropped."""
    if not isinstance(tool_input, Mapping):
        raise JudgeOutputError("the judge did not call record_scores with an object")
    problems: list[str] = []
    values: dict[str, float] = {}
    rationale: dict[str, dict[str, Any]] = {}
    for name in CRITERIA:
        entry = tool_input.get(name)
        if not isinstance(entry, Mapping):
            problems.append(f"{name}: missing")
            continue
        score = _score(name, entry.get("score"), problems)
        if score is None:
            continue
        values[name] = score
        rationale[name] = {
            "rationale": _rationale(entry.get("rationale")),
            "weakest_turns": _turns(entry.get("weakest_turns"), turn_numbers),
        }
    if problems:
        raise JudgeOutputError("; ".join(problems))
    return Scores(values=values, rationale=rationale)


def _score(name: str, raw: Any, problems: list[str]) -> float | None:
    low, high = _RANGES[SCALES[name]]
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not math.isfinite(raw):
        problems.append(f"{name}: score is not a number")
        return None
    if not low <= raw <= high:
        problems.append(f"{name}: score {raw} outside {low:g}-{high:g}")
        return None
    return round(float(raw), 4)


def _rationale(raw: Any) -> str:
    text = raw if isinstance(raw, str) else ""
    return text.replace("\x00", "").strip()[:MAX_RATIONALE]


def _turns(raw: Any, turn_numbers: Collection[int]) -> list[int]:
    if not isinstance(raw, list):
        return []
    kept = [n for n in raw if isinstance(n, int) and not isinstance(n, bool) and n in turn_numbers]
    return sorted(set(kept))[:MAX_WEAKEST]


@dataclass(frozen=True, slots=True)
class Flag:
    """The flag rule's verdict: below the threshold, and the weak criteria named."""

    flagged: bool
    reason: str | None


def flag(scores: Scores, threshold: float) -> Flag:
    """Flag when quality_overall < threshold, naming each 0–1 criterion below it."""
    overall = scores.overall
    if overall >= threshold:
        return Flag(False, None)
    weak = [name for name in UNIT_CRITERIA if scores.values[name] < threshold]
    if not weak:  # a weighted mean below the line has a part below it; kept for safety
        weak = [min(UNIT_CRITERIA, key=lambda name: scores.values[name])]
    named = ", ".join(f"{name} {scores.values[name]:g}" for name in weak)
    return Flag(
        True, f"{JUDGE_FLAG_PREFIX} quality_overall {overall:g} below {threshold:g}: {named}"
    )


JUDGE_FLAG_PREFIX: Final = "judge:"


# Flags the quality rules set (the judge's, and the structural score's "quality 4.0 below
# threshold 6.0"); a later judgement may lift them. Any other flag (offline sample, a
# reviewer's) stays.
_RULE_FLAGS: Final = (JUDGE_FLAG_PREFIX, "quality ")


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a judged conversation ends up: status, flag, and the reason."""

    status: str
    is_flagged: bool
    flag_reason: str | None


def place(
    status: str, is_flagged: bool, flag_reason: str | None, scores: Scores, threshold: float
) -> Placement:
    """Below the threshold: flagged, and pending_review moves to needs_revision. Above it: a
    flag a quality rule set is lifted (needs_revision goes back to pending_review). A reviewed
    conversation (approved, rejected, archived) keeps its status either way."""
    verdict = flag(scores, threshold)
    rule_flag = is_flagged and (flag_reason or "").startswith(_RULE_FLAGS)
    # Another flag's reason, without what an earlier judgement appended to it.
    kept = None if rule_flag or not is_flagged else (flag_reason or "").split(_APPENDED)[0]
    if verdict.flagged:
        reason = f"{kept}; {verdict.reason}" if kept else verdict.reason
        moved = "needs_revision" if status == "pending_review" else status
        return Placement(moved, True, reason)
    if rule_flag:
        moved = "pending_review" if status == "needs_revision" else status
        return Placement(moved, False, None)
    return Placement(status, is_flagged, (kept or None) if is_flagged else flag_reason)


_APPENDED: Final = f"; {JUDGE_FLAG_PREFIX}"
