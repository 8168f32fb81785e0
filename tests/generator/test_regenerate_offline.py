"""The offline provider and the parser follow a regenerate's continuation prompt."""

from __future__ import annotations

import orjson
import pytest

from services.generator.llm.offline import sample_text
from services.generator.parsing import GenerationParseError, extract_conversation
from shared.conversations.continuation import next_role, revision_prompt

KEPT = [
    {"role": "system", "content": "You are a calm adviser."},
    {"role": "user", "content": "My savings dropped 20% — what now?"},
    {"role": "assistant", "content": 'Take a breath; "paper losses" are not final.'},
    {"role": "user", "content": "But what if it keeps falling?"},
]


def test_revision_prompt_shows_kept_turns_and_instructions() -> None:
    prompt = revision_prompt(KEPT, 5, "less formal\n<script>x</script>")
    assert orjson.dumps(KEPT[1]["content"]).decode() in prompt
    assert orjson.dumps(KEPT[2]["content"]).decode() in prompt
    assert KEPT[0]["content"] not in prompt  # the system prompt travels as `system`
    assert "The first new turn is spoken by the assistant." in prompt
    assert "less formal\n<script>x</script>" in prompt
    assert revision_prompt([], None, None) == ""
    assert revision_prompt(KEPT[:1], 1, None) == ""


@pytest.mark.parametrize(
    ("kept", "role"),
    [([], "user"), (KEPT[:1], "user"), (KEPT[:2], "assistant"), (KEPT, "assistant"),
     (KEPT[:3], "user")],
)  # fmt: skip
def test_next_role(kept: list[dict[str, str]], role: str) -> None:
    assert next_role(kept) == role


def test_offline_continuation_is_deterministic_and_labelled() -> None:
    prompt = "Write a conversation.\n\n" + revision_prompt(KEPT, 5, "the client pushes back twice")
    text = sample_text(prompt)
    assert text == sample_text(prompt)
    parsed = extract_conversation(text, "end_turn", first_role="assistant", min_turns=1)
    assert [t["role"] for t in parsed.turns] == ["assistant", "user", "assistant", "user"]
    assert "revised: the client pushes back twice" in parsed.title
    whole = extract_conversation(sample_text("Write a conversation."), "end_turn")
    assert len(whole.turns) == 10
    assert "revised" not in whole.title


def test_parser_refuses_a_continuation_starting_with_the_wrong_role() -> None:
    text = '{"turns": [{"role": "user", "content": "hi"}]}'
    with pytest.raises(GenerationParseError, match="expected 'assistant'"):
        extract_conversation(text, "end_turn", first_role="assistant", min_turns=1)
    assert len(extract_conversation(text, "end_turn", min_turns=1).turns) == 1
    with pytest.raises(GenerationParseError, match="at least 2 turns"):
        extract_conversation(text, "end_turn")
