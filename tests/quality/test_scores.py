"""The judge's answer as scores, and where a judged conversation ends up (pure functions)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from services.generator.judging.gate import structural_problems
from services.generator.judging.offline import offline_scores
from shared.quality.judge import transcript
from shared.quality.scores import JudgeOutputError, Scores, parse_scores, place


def _answer(**overrides: Any) -> dict[str, Any]:
    answer: dict[str, Any] = {
        name: {"score": 0.5, "rationale": "ok", "weakest_turns": [2]}
        for name in ("coherence", "relevance", "completeness")
    }
    answer |= {
        name: {"score": 3, "rationale": "ok", "weakest_turns": []}
        for name in ("empathy", "clarity", "appropriateness", "brand_voice")
    }
    for name, score in overrides.items():
        answer[name] = {**answer[name], "score": score}
    return answer


def test_overall_is_the_weighted_mean_and_quality_score_ten_times_it() -> None:
    scores = parse_scores(_answer(coherence=1, relevance=0.25, completeness=0.5), {1, 2})
    assert scores.overall == pytest.approx(0.4 + 0.1 + 0.1)
    assert scores.quality_score == 6.0
    assert scores.values["empathy"] == 3.0


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"coherence": True}, "coherence: score is not a number"),
        ({"relevance": "0.5"}, "relevance: score is not a number"),
        ({"completeness": math.nan}, "completeness: score is not a number"),
        ({"completeness": 1.01}, "completeness: score 1.01 outside 0-1"),
        ({"empathy": 0}, "empathy: score 0 outside 1-5"),
        ({"brand_voice": 6}, "brand_voice: score 6 outside 1-5"),
    ],
)
def test_unusable_scores_are_refused_never_clamped(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(JudgeOutputError, match=message):
        parse_scores(_answer(**bad), {1})


def test_every_problem_is_named_and_non_objects_refused() -> None:
    answer = _answer(coherence="x")
    del answer["clarity"]
    with pytest.raises(JudgeOutputError) as caught:
        parse_scores(answer, {1})
    assert "coherence: score is not a number" in str(caught.value)
    assert "clarity: missing" in str(caught.value)
    with pytest.raises(JudgeOutputError):
        parse_scores(["not", "an", "object"], {1})


def test_weakest_turns_keep_only_turns_of_the_conversation() -> None:
    answer = _answer()
    answer["coherence"]["weakest_turns"] = [3, 3, 99, -1, True, "2", 1]
    answer["relevance"]["weakest_turns"] = "3"
    answer["empathy"]["rationale"] = "x\x00" * 1000
    scores = parse_scores(answer, {1, 2, 3})
    assert scores.rationale["coherence"]["weakest_turns"] == [1, 3]
    assert scores.rationale["relevance"]["weakest_turns"] == []
    assert "\x00" not in scores.rationale["empathy"]["rationale"]
    assert len(scores.rationale["empathy"]["rationale"]) <= 600


def _scores(unit: float) -> Scores:
    return parse_scores(_answer(coherence=unit, relevance=unit, completeness=unit), {1})


def test_placement_flags_below_and_lifts_only_rule_flags() -> None:
    low, high = _scores(0.1), _scores(0.9)
    flagged = place("pending_review", False, None, low, 0.3)
    assert (flagged.status, flagged.is_flagged) == ("needs_revision", True)
    assert flagged.flag_reason is not None
    assert flagged.flag_reason.startswith("judge:")
    # A reviewed conversation keeps its status.
    assert place("approved", False, None, low, 0.3).status == "approved"
    # A structural or judge flag is lifted by a good judgement...
    lifted = place("needs_revision", True, "quality 4.0 below threshold 6.0", high, 0.3)
    assert (lifted.status, lifted.is_flagged, lifted.flag_reason) == ("pending_review", False, None)
    # ...another flag (the offline sample's) is not, and a judge note on it comes and goes.
    offline = "offline sample: written by the offline provider, not by Claude"
    noted = place("pending_review", True, offline, low, 0.3)
    assert noted.flag_reason is not None
    assert noted.flag_reason.startswith(offline + "; judge:")
    again = place(noted.status, True, noted.flag_reason, low, 0.3)
    assert again.flag_reason == noted.flag_reason
    cleared = place("needs_revision", True, noted.flag_reason, high, 0.3)
    assert (cleared.status, cleared.is_flagged, cleared.flag_reason) == (
        "needs_revision", True, offline,
    )  # fmt: skip


def test_structural_gate_names_every_reason() -> None:
    turns = [
        {"turn_number": 1, "role": "assistant", "content": "hello"},
        {"turn_number": 2, "role": "assistant", "content": "   "},
    ]
    problems = structural_problems(turns, max_chars=1000)
    assert any("alternate" in p for p in problems)
    assert "empty turns: 2" in problems
    assert structural_problems(turns[:1], max_chars=1000)[0].startswith("1 dialogue turns")
    long = [
        {"turn_number": 1, "role": "user", "content": "x" * 600},
        {"turn_number": 2, "role": "assistant", "content": "y" * 600},
    ]
    assert structural_problems(long, max_chars=1000) == [
        "1200 characters, over the judge's limit of 1000"
    ]
    assert structural_problems(long, max_chars=2000) == []


def test_offline_scores_are_deterministic_and_in_range() -> None:
    turns = [
        {"turn_number": 1, "role": "user", "content": "Hi, I'm worried about <script>money"},
        {"turn_number": 2, "role": "assistant", "content": "Let us look at it together."},
    ]
    text = transcript(turns, {"persona": "Anxious", "topic": None})
    first, second = offline_scores(text), offline_scores(text)
    assert first == second
    parsed = parse_scores(first, {1, 2})
    assert 0 <= parsed.overall <= 1
    assert all(1 <= parsed.values[n] <= 5 for n in ("empathy", "clarity"))
    assert "offline judge" in first["coherence"]["rationale"]
    assert offline_scores(text + " more") != first
