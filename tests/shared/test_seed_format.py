"""Seed "emotional dataset" parsing, validation, text statistics and the canonical document."""

from __future__ import annotations

import importlib
import tracemalloc
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import uuid4

import orjson
import pytest

from shared.conversations.document import SCHEMA_VERSION, build_document, draft_from_generated
from shared.conversations.seed_format import (
    Problem,
    SeedFormatError,
    humanise,
    parse_seed_bytes,
    parse_seed_document,
    slugify,
)
from shared.conversations.text_stats import (
    char_count,
    estimate_tokens,
    measure,
    sentence_count,
    word_count,
)
from shared.errors import ValidationFailed
from shared.models.conversation import (
    ConversationDraft,
    ConversationSource,
    ConversationStatus,
    Role,
    Tier,
)

KIT = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "conversations"
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "schemas" / "conversation.schema.json"
UGLY = 'She said "no, thanks", then left;\nline two\ttabbed \\ backslash, 😅🇫🇷, ünïcödé — done'


# ---------------------------------------------------------------- fixtures and helpers


@pytest.fixture(scope="module")
def investor_raw() -> bytes:
    """The valid four-pair kit file."""
    return (KIT / "fp-anxious-investor-001.json").read_bytes()


@pytest.fixture(scope="module")
def investor(investor_raw: bytes) -> ConversationDraft:
    """The parsed investor file."""
    return parse_seed_bytes(investor_raw)


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    """docs/schemas/conversation.schema.json."""
    loaded: dict[str, Any] = orjson.loads(SCHEMA_PATH.read_bytes())
    return loaded


def make_pair(number: Any, user: Any = "Hello?", target: Any = "Hi.", **extra: Any) -> Any:
    """A minimal valid training pair."""
    pair = {
        "id": f"p{number}",
        "conversation_id": "ugly_file",
        "turn_number": number,
        "system_prompt": "Be kind.",
        "current_user_input": user,
        "target_response": target,
        "emotional_context": {"detected_emotions": {"primary": "calm", "intensity": 0.2}},
        "training_metadata": {"quality_score": 4.0},
    }
    return pair | extra


def make_seed(pairs: list[Any], **meta: Any) -> dict[str, Any]:
    """A minimal valid seed document around `pairs`."""
    metadata = {"dataset_name": "ugly_file", "quality_tier": "scenario", "vertical": "coaching"}
    return {"dataset_metadata": metadata | meta, "training_pairs": pairs}


def problems_of(doc: object) -> list[Problem]:
    """The problems a document is rejected with."""
    with pytest.raises(SeedFormatError) as info:
        parse_seed_document(doc)
    return info.value.problems


def paths_codes(problems: list[Problem]) -> set[tuple[str, str]]:
    """(path, code) pairs for set assertions."""
    return {(problem.path, problem.code) for problem in problems}


def assert_matches_schema(document: dict[str, Any], schema: dict[str, Any]) -> None:
    """Validate with jsonschema when installed, else check the required keys by hand."""
    plain = orjson.loads(orjson.dumps(document))
    try:  # optional: not a project dependency
        jsonschema = importlib.import_module("jsonschema")
    except ImportError:
        assert set(schema["required"]) <= set(plain)
        for turn in plain["turns"]:
            assert set(schema["$defs"]["turn"]["required"]) <= set(turn)
        return
    jsonschema.Draft202012Validator(schema).validate(plain)


# ---------------------------------------------------------------- kit files


def test_investor_turns_roles_and_numbers(investor: ConversationDraft) -> None:
    roles = [turn.role for turn in investor.turns]
    assert roles == [Role.SYSTEM] + [Role.USER, Role.ASSISTANT] * 4
    assert [turn.turn_number for turn in investor.turns] == list(range(1, 10))
    assert investor.turn_count == 9
    assert investor.total_tokens == sum(turn.token_count for turn in investor.turns)
    assert investor.turns[0].content.startswith("You are Elena Morales")
    assert investor.system_prompt == investor.turns[0].content


def test_investor_turn_emotions_and_strategies(investor: ConversationDraft) -> None:
    users = [turn for turn in investor.turns if turn.role is Role.USER]
    assistants = [turn for turn in investor.turns if turn.role is Role.ASSISTANT]
    assert [turn.detected_emotion for turn in users] == ["fear", "worry", "cautious_hope", "relief"]
    assert users[0].emotion_confidence == 0.92
    assert users[0].emotion_intensity == 0.88
    assert users[0].metadata["pair_id"] == "fp_anxious_investor_market_drop_turn1"
    assert users[0].metadata["source_turn_number"] == 1
    assert users[0].metadata["secondary_emotion"] == "overwhelm"
    assert assistants[0].strategy == "validate_then_normalize"
    assert assistants[0].tone == "calm, unhurried"
    assert assistants[3].detected_emotion is None
    assert users[2].content.endswith("mattress? 😅")


def test_investor_conversation_fields(investor: ConversationDraft) -> None:
    assert investor.conversation_id == "fp_anxious_investor_market_drop"
    assert investor.title == "Fp anxious investor market drop"
    assert investor.description is not None
    assert investor.description.startswith("Client panics")
    assert investor.tier is Tier.TEMPLATE
    assert investor.status is ConversationStatus.PENDING_REVIEW
    assert investor.source is ConversationSource.IMPORT
    assert investor.persona == 'Marcus Chen, 58, "Anxious Pre-Retiree"'
    assert investor.topic == "Market Volatility Fear"
    assert investor.emotion == "fear"
    assert investor.emotional_arc == "fear -> worry -> cautious_hope -> relief"
    assert investor.category == ["financial_planning"]
    assert investor.tags == ["seed_dataset"]
    assert (investor.starting_emotion, investor.starting_intensity) == ("fear", 0.88)
    assert (investor.ending_emotion, investor.ending_intensity) == ("relief", 0.4)


def test_investor_quality_is_doubled_and_originals_kept(investor: ConversationDraft) -> None:
    assert investor.quality_score == 9.3  # mean(4.6, 4.5, 4.7, 4.8) = 4.65, x2
    metrics = investor.quality_metrics
    assert metrics["scale"] == "1-5"
    assert metrics["overall"] == 4.65
    assert metrics["empathy"] == 4.6
    assert metrics["brand_voice"] == 4.625
    assert [entry["overall"] for entry in metrics["per_pair"]] == [4.6, 4.5, 4.7, 4.8]
    assert metrics["per_pair"][0]["clarity"] == 4.5


def test_investor_document_keeps_source_and_matches_schema(
    investor: ConversationDraft, investor_raw: bytes, schema: dict[str, Any]
) -> None:
    document = investor.document
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["source_file"] == orjson.loads(investor_raw)
    assert document["generation"] is None
    assert [turn["content"] for turn in document["turns"]] == [t.content for t in investor.turns]
    assert "status" not in document
    assert_matches_schema(document, schema)


def test_edge_case_file(schema: dict[str, Any]) -> None:
    draft = parse_seed_bytes((KIT / "fp-edge-crisis-002.json").read_bytes())
    assert draft.tier is Tier.EDGE_CASE
    assert draft.quality_score == 9.6
    assert draft.persona == "Elena Morales, CFP - Pathways Financial Planning"
    assert draft.topic == "Financial planning"
    assert (draft.ending_emotion, draft.ending_intensity) == ("numbness", 0.6)
    assert draft.tags == ["human_written"]
    assert draft.turn_count == 5
    assert_matches_schema(draft.document, schema)


def test_missing_fields_file_lists_every_problem() -> None:
    with pytest.raises(SeedFormatError) as info:
        parse_seed_bytes((KIT / "invalid-missing-fields.json").read_bytes())
    assert paths_codes(info.value.problems) >= {
        ("$.dataset_metadata.dataset_name", "missing"),
        ("$.dataset_metadata.quality_tier", "missing"),
        ("$.dataset_metadata.total_turns", "type"),
        ("$.training_pairs[0].turn_number", "value"),
        ("$.training_pairs[0].target_response", "missing"),
    }


def test_truncated_file_is_a_json_syntax_problem() -> None:
    raw = (KIT / "invalid-truncated.json").read_bytes()
    with pytest.raises(SeedFormatError) as info:
        parse_seed_bytes(raw)
    [problem] = info.value.problems
    assert (problem.path, problem.code) == ("$", "json_syntax")
    assert "line 1, column 188" in problem.message
    assert f"(byte {len(raw.rstrip())})" in problem.message


def test_error_is_a_validation_failure_with_details() -> None:
    with pytest.raises(ValidationFailed) as info:
        parse_seed_document([])
    assert info.value.status_code == 422
    assert info.value.details == [
        {"path": "$", "code": "type", "message": "must be object, got array"}
    ]


# ---------------------------------------------------------------- bytes-level problems


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"", "empty", "empty"),
        (b" \n\t", "empty", "empty"),
        (b'{"a": "caf\xe9"}', "encoding", "byte 0xe9 at byte 10 (line 1)"),
        (b'{\n "a": "\xc3\xa9\xc3\xa9", "b": tru', "json_syntax", "line 2, column 21 (byte 24)"),
        (b'{"a": NaN}', "json_syntax", "line 1, column 7"),
        (b"[1, 2]", "type", "must be object, got array"),
        (b'"text"', "type", "must be object, got string"),
    ],
)
def test_unusable_bytes(raw: bytes, code: str, words: str) -> None:
    with pytest.raises(SeedFormatError) as info:
        parse_seed_bytes(raw)
    [problem] = info.value.problems
    assert (problem.path, problem.code) == ("$", code)
    assert words in problem.message


def test_byte_order_mark_is_tolerated() -> None:
    raw = b"\xef\xbb\xbf" + orjson.dumps(make_seed([make_pair(1)]))
    assert parse_seed_bytes(raw).conversation_id == "ugly_file"


def test_byte_position_counts_the_byte_order_mark() -> None:
    with pytest.raises(SeedFormatError) as info:
        parse_seed_bytes(b"\xef\xbb\xbf{]")
    assert "(byte 4)" in info.value.problems[0].message


# ---------------------------------------------------------------- structural problems


def test_empty_training_pairs() -> None:
    assert paths_codes(problems_of(make_seed([]))) == {("$.training_pairs", "empty")}


def test_duplicate_turn_number() -> None:
    problems = problems_of(make_seed([make_pair(1), make_pair(2), make_pair(1)], total_turns=3))
    assert paths_codes(problems) == {("$.training_pairs[2].turn_number", "duplicate")}
    assert "$.training_pairs[0]" in problems[0].message


def test_missing_top_level_sections() -> None:
    assert paths_codes(problems_of({})) == {
        ("$.dataset_metadata", "missing"),
        ("$.training_pairs", "missing"),
    }


def test_many_problems_in_one_pass() -> None:
    bad_pair = make_pair(
        -1,
        user=42,
        target="   ",
        system_prompt=["not", "text"],
        emotional_context={"detected_emotions": {"primary_confidence": 1.5, "intensity": "high"}},
        training_metadata={"quality_score": 7, "quality_criteria": {"empathy_score": 0.5}},
    )
    doc = make_seed([bad_pair, "nope", make_pair(True)], quality_tier="gold", total_turns=5.0)
    assert paths_codes(problems_of(doc)) == {
        ("$.dataset_metadata.quality_tier", "value"),
        ("$.dataset_metadata.total_turns", "type"),
        ("$.training_pairs[0].turn_number", "value"),
        ("$.training_pairs[0].system_prompt", "type"),
        ("$.training_pairs[0].current_user_input", "type"),
        ("$.training_pairs[0].target_response", "empty"),
        ("$.training_pairs[0].emotional_context.detected_emotions.primary_confidence", "value"),
        ("$.training_pairs[0].emotional_context.detected_emotions.intensity", "type"),
        ("$.training_pairs[0].training_metadata.quality_score", "value"),
        ("$.training_pairs[0].training_metadata.quality_criteria.empathy_score", "value"),
        ("$.training_pairs[1]", "type"),
        ("$.training_pairs[2].turn_number", "type"),
    }


def test_cross_field_rules() -> None:
    pairs = [make_pair(1), make_pair(2, conversation_id="another_file")]
    assert paths_codes(problems_of(make_seed(pairs, total_turns=3))) == {
        ("$.training_pairs[1].conversation_id", "value"),
        ("$.dataset_metadata.total_turns", "value"),
    }


def test_name_without_letters_and_nul_content_are_rejected() -> None:
    doc = make_seed([make_pair(1, user="a\x00b")], dataset_name="!!!")
    assert paths_codes(problems_of(doc)) == {
        ("$.dataset_metadata.dataset_name", "value"),
        ("$.training_pairs[0].current_user_input", "value"),
    }


# ---------------------------------------------------------------- extraction details


def test_ugly_content_round_trips_exactly(schema: dict[str, Any]) -> None:
    long_text = ('Ten thousand characters, "quoted", with\nnewlines and 😅. ' * 200)[:10_000]
    doc = make_seed([make_pair(1, user=UGLY, target=long_text), make_pair(2, user=long_text)])
    draft = parse_seed_bytes(orjson.dumps(doc))
    assert [turn.content for turn in draft.turns[1:]] == [UGLY, long_text, long_text, "Hi."]
    assert draft.turns[2].char_count == 10_000
    stored = orjson.loads(orjson.dumps(draft.document))
    assert stored["turns"][1]["content"] == UGLY
    assert stored["source_file"] == doc
    assert_matches_schema(draft.document, schema)


def test_pairs_are_sorted_and_renumbered() -> None:
    pairs = [make_pair(7, user="seven"), make_pair(3, user="three")]
    draft = parse_seed_document(make_seed(pairs))
    assert [turn.content for turn in draft.turns] == ["Be kind.", "three", "Hi.", "seven", "Hi."]
    assert [turn.metadata.get("source_turn_number") for turn in draft.turns] == [None, 3, 3, 7, 7]


def test_differing_system_prompts_keep_the_first() -> None:
    pairs = [make_pair(1), make_pair(2, system_prompt="Be brisk."), make_pair(3, system_prompt="")]
    draft = parse_seed_document(make_seed(pairs))
    assert draft.turns[0].content == "Be kind."
    assert draft.turns[0].metadata == {"differing_system_prompts": [2]}


def test_optional_sections_absent() -> None:
    pair = {"turn_number": 1, "current_user_input": "Hi", "target_response": "Hello"}
    meta = {"dataset_name": "Bare File", "quality_tier": "template"}
    draft = parse_seed_document({"dataset_metadata": meta, "training_pairs": [pair]})
    assert [turn.role for turn in draft.turns] == [Role.USER, Role.ASSISTANT]
    assert (draft.conversation_id, draft.title) == ("bare_file", "Bare File")
    assert draft.quality_score is None
    assert draft.quality_metrics == {}
    assert (draft.emotion, draft.emotional_arc, draft.persona, draft.topic) == (None,) * 4
    assert draft.category == []


def test_two_hundred_pairs() -> None:
    pairs = [make_pair(number, user=f"question {number}?") for number in range(1, 201)]
    draft = parse_seed_bytes(orjson.dumps(make_seed(pairs, total_turns=200)))
    assert draft.turn_count == 401
    assert draft.turns[-2].content == "question 200?"
    assert draft.quality_score == 8.0


def test_nine_mebibyte_file_parses_in_bounded_memory() -> None:
    chunk = "x" * 4_000 + ' 😅 "q", \n'
    pairs = [make_pair(n, user=chunk * 4, target=chunk * 4) for n in range(1, 301)]
    raw = orjson.dumps(make_seed(pairs))
    del pairs
    assert 8 * 2**20 < len(raw) < 10 * 2**20
    tracemalloc.start()
    try:
        decoded = orjson.loads(raw)
        decoded_size, decode_peak = tracemalloc.get_traced_memory()
        del decoded
        tracemalloc.reset_peak()
        draft = parse_seed_bytes(raw)
        kept, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert draft.turn_count == 601
    # Beyond decoding itself, turns and the document share the decoded strings instead of copying.
    assert kept < decoded_size + len(raw) // 4
    assert peak < decode_peak + len(raw)


# ---------------------------------------------------------------- generated conversations


def test_draft_from_generated(schema: dict[str, Any]) -> None:
    job = uuid4()
    draft = draft_from_generated(
        conversation_id="gen_0001",
        title="Budget stress",
        tier=Tier.SCENARIO,
        turns=[
            {"role": "user", "content": UGLY, "detected_emotion": "stress"},
            {"role": "assistant", "content": "Let's look at it together.", "strategy": "calm"},
        ],
        system_prompt="You are a coach.",
        quality_score=5.25,
        status=ConversationStatus.NEEDS_REVISION,
        is_flagged=True,
        flag_reason="quality below threshold",
        model="claude-sonnet",
        temperature=0.7,
        generation_job_id=job,
        estimated_cost_usd=Decimal("0.012345"),
    )
    assert [turn.role for turn in draft.turns] == [Role.SYSTEM, Role.USER, Role.ASSISTANT]
    assert draft.turns[1].detected_emotion == "stress"
    assert draft.quality_score == 5.3
    assert draft.source is ConversationSource.GENERATED
    assert draft.document["generation"]["generation_job_id"] == str(job)
    assert draft.document["generation"]["estimated_cost_usd"] == 0.012345
    assert "source_file" not in draft.document
    assert_matches_schema(draft.document, schema)


def test_build_document_is_reproducible(investor: ConversationDraft) -> None:
    rebuilt = build_document(investor, source_file=investor.document["source_file"])
    assert orjson.dumps(rebuilt) == orjson.dumps(investor.document)


# ---------------------------------------------------------------- text statistics and names


@pytest.mark.parametrize(
    ("text", "words", "sentences", "tokens"),
    [
        ("", 0, 0, 0),
        ("   ", 0, 0, 1),
        ("Hello", 1, 1, 2),
        ("Hello.", 1, 1, 2),
        ("Wait... what?! Ok", 3, 3, 5),
        ("It fell 4.5% to $84,000.00 today", 6, 1, 8),
        ('He said "yes." Then left', 5, 2, 6),
        ("Line one.\n\nLine two!\n", 4, 2, 6),
        ("Emoji 😅", 2, 1, 2),
        ("x.) y", 2, 2, 2),
        ("." * 50_000 + "x", 1, 1, 12_501),  # linear scan: the old lookahead took seconds here
    ],
)
def test_text_stats(text: str, words: int, sentences: int, tokens: int) -> None:
    assert (word_count(text), sentence_count(text), estimate_tokens(text)) == (
        words,
        sentences,
        tokens,
    )
    assert char_count(text) == len(text)
    assert measure(text) == (len(text), words, sentences, tokens)


def test_slug_and_title() -> None:
    assert slugify("  Anxious Investor: Market Drop!  ") == "anxious_investor_market_drop"
    assert slugify("fp_edge-case.v2") == "fp_edge-case.v2"
    assert humanise("fp_edge-case") == "Fp edge case"


@pytest.mark.parametrize(
    "blank", ["\u200b", "\u200b\u200c\u200d\u2060", " \ufeff ", "\u3164", "\u00a0\u2003", "\t\r\n"]
)
def test_turns_blank_in_effect_are_rejected(blank: str) -> None:
    doc = make_seed([make_pair(1, user=blank, target=f"x{blank}"), make_pair(2, target=blank)])
    assert paths_codes(problems_of(doc)) == {
        ("$.training_pairs[0].current_user_input", "empty"),
        ("$.training_pairs[1].target_response", "empty"),
    }
