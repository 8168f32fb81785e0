"""The §5 quality score at its band edges, and the status it earns."""

from __future__ import annotations

import pytest

from shared.conversations.scoring import score_conversation, status_for


def turns(count: int, length: int = 200, first: str = "user") -> list[dict[str, str]]:
    """Alternating turns starting with ``first``, each ``length`` characters long."""
    other = "assistant" if first == "user" else "user"
    return [{"role": (first, other)[i % 2], "content": "x" * length} for i in range(count)]


@pytest.mark.parametrize(
    ("count", "points"),
    [(1, 1), (5, 1), (6, 2), (7, 2), (8, 3), (12, 3), (16, 3), (17, 2), (20, 2), (21, 1)],
)
def test_turn_count_bands(count: int, points: int) -> None:
    result = score_conversation(turns(count))

    assert result.parts["turn_count"] == count
    assert result.parts["turn_count_points"] == points


@pytest.mark.parametrize(
    ("length", "points"),
    [
        (10, 1),
        (49, 1),
        (50, 2),
        (99, 2),
        (100, 3),
        (250, 3),
        (400, 3),
        (401, 2),
        (600, 2),
        (601, 1),
    ],
)
def test_average_length_bands(length: int, points: int) -> None:
    result = score_conversation(turns(8, length))

    assert result.parts["average_turn_length_points"] == points


def test_average_is_not_rounded_into_a_better_band() -> None:
    mixed = [{"role": "user", "content": "x" * 100}, {"role": "assistant", "content": "x" * 99}]

    result = score_conversation(mixed)

    assert result.parts["average_turn_length"] == 99.5
    assert result.parts["average_turn_length_points"] == 2


def test_alternation_from_user_scores_four() -> None:
    result = score_conversation(turns(8))

    assert result.parts["alternates_from_user"] is True
    assert result.parts["alternation_points"] == 4
    assert result.score == 10.0


def test_assistant_first_scores_one_for_alternation() -> None:
    assert score_conversation(turns(8, first="assistant")).parts["alternation_points"] == 1


def test_repeated_role_breaks_alternation() -> None:
    broken = turns(8)
    broken[3]["role"] = "user"

    assert score_conversation(broken).parts["alternation_points"] == 1


def test_system_turns_are_ignored() -> None:
    with_system = [{"role": "system", "content": "be kind"}, *turns(8)]

    result = score_conversation(with_system)

    assert result.parts["turn_count"] == 8
    assert result.score == 10.0


def test_empty_conversation_scores_the_minimum() -> None:
    assert score_conversation([]).score == 3.0


def test_score_sums_parts_with_one_decimal() -> None:
    result = score_conversation(turns(6, 50))

    assert result.score == 2 + 2 + 4
    assert isinstance(result.score, float)


@pytest.mark.parametrize(
    ("score", "expected"),
    [
        (10.0, ("pending_review", False)),
        (6.0, ("pending_review", False)),
        (5.9, ("needs_revision", True)),
        (3.0, ("needs_revision", True)),
    ],
)
def test_status_for_default_threshold(score: float, expected: tuple[str, bool]) -> None:
    assert status_for(score) == expected


def test_status_for_custom_threshold() -> None:
    assert status_for(8.0, threshold=9.0) == ("needs_revision", True)
    assert status_for(9.0, threshold=9.0) == ("pending_review", False)
