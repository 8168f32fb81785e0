"""Extracting the conversation JSON from Claude's answers, pretty and ugly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest

from services.generator.parsing import (
    GenerationParseError,
    extract_conversation,
    redacted_excerpt,
)

REPO = Path(__file__).resolve().parents[2]
FIXTURE_DIRS = (REPO / "tests/fixtures/anthropic", REPO.parent / "shared/fixtures/anthropic")
TWO = orjson.dumps(
    {
        "title": "T",
        "turns": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}],
    }
).decode()


def fixture_message(name: str) -> dict[str, Any]:
    """Load a sample Messages response from the first fixture directory that has it."""
    for directory in FIXTURE_DIRS:
        if (directory / name).exists():
            loaded: dict[str, Any] = orjson.loads((directory / name).read_bytes())
            return loaded
    pytest.skip(f"fixture {name} not found in {FIXTURE_DIRS}")


def parse_error(text: str, stop_reason: str = "end_turn") -> GenerationParseError:
    with pytest.raises(GenerationParseError) as caught:
        extract_conversation(text, stop_reason)
    return caught.value


def test_ok_fixture_parses_to_eight_turns() -> None:
    message = fixture_message("messages-response-ok.json")

    parsed = extract_conversation(message["content"][0]["text"], message["stop_reason"])

    assert parsed.title == "Anxious Investor - Market Volatility"
    assert len(parsed.turns) == 8
    assert parsed.turns[0]["role"] == "user"
    assert parsed.turns[0]["content"].startswith("The market dropped 9%")
    assert parsed.turns[7]["role"] == "assistant"


def test_max_tokens_fixture_is_a_typed_failure_with_excerpt() -> None:
    message = fixture_message("messages-response-truncated-max-tokens.json")
    text = message["content"][0]["text"]

    error = parse_error(text, message["stop_reason"])

    assert error.code == "max_tokens"
    assert error.excerpt.startswith(text[:200])
    assert error.excerpt.endswith(text[-200:])
    assert len(error.excerpt) < 450


def test_truncated_text_with_end_turn_is_invalid_json() -> None:
    message = fixture_message("messages-response-truncated-max-tokens.json")

    assert parse_error(message["content"][0]["text"]).code == "invalid_json"


@pytest.mark.parametrize(
    "text",
    [
        f"```\n{TWO}\n```",
        f"```JSON\n{TWO}\n```\nHope this helps!",
        f"Sure! Here it is:\n{TWO}\nLet me know if you want changes.",
        f"```json {TWO}```",
        f"Use {{placeholders}} like {{this}}. {TWO} Done }}",
        f'Notes first ```python\nprint("hi")\n```\nthen ```json\n{TWO}\n```',
        f'{{"conversation": {TWO}}}',
    ],
)
def test_object_is_found_around_prose_and_fences(text: str) -> None:
    parsed = extract_conversation(text, "end_turn")

    assert parsed.title == "T"
    assert [t["role"] for t in parsed.turns] == ["user", "assistant"]


def test_braces_and_quotes_inside_strings_survive() -> None:
    tricky = {
        "title": "Braces } and { quotes",
        "turns": [
            {"role": "user", "content": 'He said "}" then {left} \\ and ```fences```'},
            {"role": "assistant", "content": "Unbalanced {{{ is fine in a string"},
        ],
    }
    text = f"Prefix {{ stray\n{orjson.dumps(tricky).decode()}\ntrailing"

    parsed = extract_conversation(text, "end_turn")

    assert parsed.turns[0]["content"] == tricky["turns"][0]["content"]  # type: ignore[index]
    assert parsed.title == "Braces } and { quotes"


def test_content_is_stripped_and_missing_title_is_empty() -> None:
    turns = [{"role": "user", "content": "  hi \n"}, {"role": "assistant", "content": "yo"}]
    text = orjson.dumps({"turns": turns}).decode()

    parsed = extract_conversation(text, "end_turn")

    assert parsed.title == ""
    assert parsed.turns[0]["content"] == "hi"


def test_prose_without_json_is_no_json() -> None:
    assert parse_error("I'm sorry, I can't write that conversation.").code == "no_json"


@pytest.mark.parametrize(
    "text",
    [
        '```json\n{"title": "T", "turns": [{"role": "user", "content": "a"},]}\n```',
        '{"title": "T", "turns": [',
        "{not json at all}",
    ],
)
def test_broken_json_is_invalid_json(text: str) -> None:
    assert parse_error(text).code == "invalid_json"


@pytest.mark.parametrize(
    ("turns", "fragment"),
    [
        ([{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}], "turns[0]"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "turns[1]"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "  "}], "empty"),
        ([{"role": "user", "content": "a"}, {"role": "assistant"}], "empty"),
        ([{"role": "system", "content": "a"}, {"role": "user", "content": "b"}], "turns[0]"),
        ([{"role": "user", "content": "a"}], "at least 2"),
        ([{"role": "user", "content": "a"}, "hello"], "not an object"),
        ("not a list", "not a list"),
    ],
)
def test_bad_turns_are_invalid_turns(turns: Any, fragment: str) -> None:
    error = parse_error(orjson.dumps({"title": "T", "turns": turns}).decode())

    assert error.code == "invalid_turns"
    assert fragment in error.message


def test_object_without_turns_is_invalid_turns() -> None:
    assert parse_error('```json\n{"title": "T", "messages": []}\n```').code == "invalid_turns"


def test_excerpt_is_bounded_and_redacted() -> None:
    text = "sk-ant-api03-SECRETSECRET " + "x" * 1000 + " tail"

    excerpt = redacted_excerpt(text)

    assert "SECRETSECRET" not in excerpt
    assert "[REDACTED]" in excerpt
    assert excerpt.endswith(" tail")
    assert "chars omitted" in excerpt
    assert len(excerpt) < 450


def test_short_excerpt_is_kept_whole() -> None:
    assert redacted_excerpt("short answer") == "short answer"
