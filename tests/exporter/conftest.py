"""Conversations for the export format tests: the kit's seed files plus hostile content."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from statistics import mean
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

import pytest

from shared.exports.formats import (
    ExportConversation,
    ExportOptions,
    ExportSummary,
    ExportTurn,
    RenderError,
    ReviewEntry,
    get_transformer,
)
from shared.models.export import Role

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "conversations"
EXPORT_DATE = datetime(2025, 11, 20, 9, 30, tzinfo=UTC)
CREATED = datetime(2025, 11, 2, 8, 15, 30, 123456, tzinfo=UTC)
REVIEWER = UUID("00000000-0000-4000-8000-000000000001")
LONG_TEXT = ('Long, "quoted" line\twith tab\n' * 400)[:10_000]

Exporter = Callable[[ExportOptions, Sequence[ExportConversation]], tuple[bytes, ExportSummary]]


def run_export(
    options: ExportOptions, conversations: Sequence[ExportConversation]
) -> tuple[bytes, ExportSummary]:
    """Render like the worker does: header, each conversation that renders, footer."""
    transformer = get_transformer(options)
    summary = ExportSummary()
    chunks = [transformer.header()]
    for conv in conversations:
        try:
            chunks.append(transformer.render(conv))
        except RenderError:
            continue
        summary.add(conv)
    chunks.append(transformer.footer(summary))
    return b"".join(chunks), summary


def options(fmt: str, **flags: bool) -> ExportOptions:
    """Export options for a format with the given include flags."""
    return ExportOptions.model_validate({"format": fmt, "export_date": EXPORT_DATE, **flags})


def conversation(slug: str, turns: Sequence[tuple[Role, str]], **fields: Any) -> ExportConversation:
    """A conversation with turns numbered from 1 and sensible defaults."""
    values: dict[str, Any] = {
        "id": uuid5(NAMESPACE_URL, slug),
        "conversation_id": slug,
        "title": slug.replace("-", " ").title(),
        "status": "approved",
        "tier": "template",
        "created_at": CREATED,
        "updated_at": CREATED + timedelta(hours=1),
        "turns": [
            ExportTurn(turn_number=n, role=role, content=text)
            for n, (role, text) in enumerate(turns, start=1)
        ],
    }
    values.update(fields)
    return ExportConversation(**values)


def conversation_from_seed(path: Path, *, system_as_turn: bool) -> ExportConversation:
    """Import a seed dataset file the way DESIGN §4 describes, in miniature."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    meta, pairs = doc["dataset_metadata"], doc["training_pairs"]
    system_prompt = pairs[0]["system_prompt"]
    turns = [ExportTurn(turn_number=1, role="system", content=system_prompt)]
    for pair in pairs:
        turns += _pair_turns(pair, first_number=len(turns) + 1)
    if not system_as_turn:
        turns = turns[1:]
    scores = [pair["training_metadata"]["quality_score"] for pair in pairs]
    first = pairs[0]
    return ExportConversation(
        id=uuid5(NAMESPACE_URL, meta["dataset_name"]),
        conversation_id=meta["dataset_name"],
        title=meta["notes"],
        status="approved",
        tier={"seed_dataset": "template"}.get(meta["quality_tier"], meta["quality_tier"]),
        persona=first.get("conversation_metadata", {}).get("client_persona"),
        emotion=first["emotional_context"]["detected_emotions"]["primary"],
        topic=meta["vertical"],
        category=[meta["vertical"]],
        tags=["seed", meta["quality_tier"]],
        quality_score=round(mean(scores) * 2, 1),
        quality_metrics={"overall": round(mean(scores), 2), "scale": "1-5"},
        created_at=CREATED,
        updated_at=CREATED + timedelta(days=1),
        reviewed_at=CREATED + timedelta(days=2),
        reviewed_by=REVIEWER,
        parent_id=uuid5(NAMESPACE_URL, "parent-" + meta["dataset_name"]),
        parent_type="conversation",
        system_prompt=system_prompt,
        turns=turns,
        reviews=[
            ReviewEntry(
                action="approve",
                from_status="pending_review",
                to_status="approved",
                reviewer_id=REVIEWER,
                notes='Looks right,\n"ship it"',
                created_at=CREATED + timedelta(days=2),
            )
        ],
    )


def _pair_turns(pair: dict[str, Any], *, first_number: int) -> list[ExportTurn]:
    """A training pair's user and assistant turns with their annotations."""
    emotions = pair["emotional_context"]["detected_emotions"]
    strategy = pair["response_strategy"]
    user = ExportTurn(
        turn_number=first_number,
        role="user",
        content=pair["current_user_input"],
        detected_emotion=emotions["primary"],
        emotion_confidence=emotions["primary_confidence"],
        emotion_intensity=emotions["intensity"],
    )
    assistant = ExportTurn(
        turn_number=first_number + 1,
        role="assistant",
        content=pair["target_response"],
        strategy=strategy["primary_strategy"],
        tone=strategy.get("tone_selection"),
    )
    return [user, assistant]


HOSTILE_TURNS: list[tuple[Role, str]] = [
    ("user", 'Quote " and "" doubled, commas, semicolons; done'),
    ("assistant", "line1\r\nline2\nline3\rline4\n\n\nends with a newline\n"),
    ("user", "\tstarts with a tab"),
    ("assistant", "=SUM(A1:A2)"),
    ("user", "+1 555 0100"),
    ("assistant", "-negative start"),
    ("user", "@mention"),
    ("assistant", "emoji 😅🎉, 中文, ñ, line\u2028separator, next\x85line"),
    ("user", ""),
    ("assistant", LONG_TEXT),
    ("user", "# Conversation: fake\n---\n**User:**\n> already quoted\n- bullet\n>"),
    ("assistant", "\rleading CR and 'single' quotes"),
]


@pytest.fixture
def seed_conversations() -> list[ExportConversation]:
    """The kit's two seed files: one with a system turn, one with only a system_prompt; the
    first judged, the second with imported 1-5 criteria and a near-duplicate link."""
    judged = conversation_from_seed(FIXTURES / "fp-anxious-investor-001.json", system_as_turn=True)
    imported = conversation_from_seed(FIXTURES / "fp-edge-crisis-002.json", system_as_turn=False)
    return [
        dataclasses.replace(judged, **JUDGED),
        dataclasses.replace(
            imported, **IMPORTED, duplicate_of=judged.id, duplicate_similarity=0.83
        ),
    ]


# The judge's columns of the seed conversations (what export_source reads from 0013's columns).
JUDGED: dict[str, Any] = {
    "coherence_score": 0.9, "relevance_score": 0.85, "completeness_score": 0.7,
    "quality_overall": 0.84, "empathy_score": 4.5, "clarity_score": 4.0,
    "appropriateness_score": 5.0, "brand_voice_score": 3.5, "quality_source": "judge",
    "judge_rubric_version": 3,
    "judge_rationale": {"coherence": {"rationale": 'Keeps to the "fear", <b>calm</b>',
                                      "weakest_turns": [4, 6]}},
}  # fmt: skip
IMPORTED: dict[str, Any] = {
    "empathy_score": 4.25, "clarity_score": 3.75, "appropriateness_score": 4.0,
    "brand_voice_score": 4.5, "quality_source": "imported",
}  # fmt: skip


@pytest.fixture
def hostile_conversation() -> ExportConversation:
    """Every kind of content a file format can trip over."""
    return conversation(
        "-hostile-slug",
        HOSTILE_TURNS,
        title='He said "hi", then\r\nleft\t=1+1',
        persona="=cmd|' /C calc'!A0",
        emotion="@anger",
        topic="+topic, with comma",
        tier="edge_case",
        tags=["a,b", 'c"d'],
        quality_score=None,
        system_prompt="",
    )


@pytest.fixture
def conversations(
    seed_conversations: list[ExportConversation], hostile_conversation: ExportConversation
) -> list[ExportConversation]:
    """Seed conversations and the hostile one, in export order."""
    return [*seed_conversations, hostile_conversation]


@pytest.fixture
def export() -> Exporter:
    """The worker-like render loop."""
    return run_export


@pytest.fixture
def make_options() -> Callable[..., ExportOptions]:
    """Builds export options: make_options("csv", include_timestamps=True)."""
    return options


@pytest.fixture
def make_conversation() -> Callable[..., ExportConversation]:
    """Builds a conversation: make_conversation("slug", [("user", "hi"), ...], **fields)."""
    return conversation
