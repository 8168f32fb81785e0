"""Shingles and MinHash similarity, without any service."""

from __future__ import annotations

import pytest

from shared.dedup.index import bands_for
from shared.dedup.signature import shingles, signature, similarities, similarity
from tests.quality.dedup_support import pairs, paraphrase


def _turns(texts: list[tuple[str, str]], system: str = "") -> list[tuple[str, object]]:
    turns: list[tuple[str, object]] = [("system", system)] if system else []
    for user, assistant in texts:
        turns += [("user", user), ("assistant", assistant)]
    return turns


def test_shingles_ignore_case_and_punctuation() -> None:
    assert shingles("Hello, World! How... are you?") == shingles("hello world how ARE you")
    assert shingles("<script>alert('x')</script>") == {b"script alert x", b"alert x script"}
    assert shingles("🙂🙂 ... !!!") == set()
    assert shingles("Just two") == {b"just two"}


def test_a_paraphrase_is_alike_and_another_conversation_is_not() -> None:
    original = signature(_turns(pairs(1)))
    copy = signature(_turns(paraphrase(pairs(1), seed=7)))
    other = signature(_turns(pairs(2)))
    assert similarity(original, copy) >= 0.8
    assert similarity(original, other) < 0.3
    assert similarity(original, original) == 1.0


def test_the_system_prompt_never_counts() -> None:
    prompt = "You are Elena Morales, a fee-only CFP. " * 50
    a = signature(_turns(pairs(1), prompt))
    b = signature(_turns(pairs(2), prompt))
    assert similarity(a, b) < 0.3
    assert signature([("system", prompt)]).empty
    # Two conversations made of nothing but the same system prompt are not alike.
    assert similarity(signature([("system", prompt)]), signature([("system", prompt)])) == 0.0


def test_both_sides_must_be_alike() -> None:
    same_user = [(user, other) for (user, _), (_, other) in zip(pairs(1), pairs(2), strict=True)]
    assert similarity(signature(_turns(pairs(1))), signature(_turns(same_user))) < 0.5


def test_empty_assistant_turns_compare_on_the_user_side_only() -> None:
    silent = [(user, "") for user, _ in pairs(1)]
    assert similarity(signature(_turns(silent)), signature(_turns(silent))) == 1.0
    assert similarity(signature(_turns(silent)), signature(_turns(pairs(1)))) == 0.0


@pytest.mark.parametrize(
    "content", ["", "🙂" * 10_000, "<script>alert(1)</script>" * 500, "\x00\n\t,\"'", None, 42]
)
def test_hostile_content_never_crashes(content: object) -> None:
    found = signature([("user", content), ("assistant", content), ("tool", "x y z w")])
    assert 0.0 <= similarity(found, found) <= 1.0


def test_bands_cover_the_signature() -> None:
    b, r = bands_for(0.8)
    assert b * r <= 128
    assert (b > 1, r > 1) == (True, True)


def test_the_vectorised_similarities_agree_with_similarity() -> None:
    silent = [(user, "🙂") for user, _ in pairs(1)]
    others = [
        signature(_turns(texts))
        for texts in (pairs(1), paraphrase(pairs(1), 4), pairs(2), silent, [("", "")])
    ]
    for mine in others:
        assert similarities(mine, others) == [similarity(mine, other) for other in others]
    assert similarities(others[0], []) == []
