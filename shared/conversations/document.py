"""The canonical stored conversation document, shared by imports and generated conversations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from enum import Enum
from typing import Any, TypedDict, Unpack
from uuid import UUID

from shared.conversations.text_stats import measure
from shared.models.conversation import (
    ConversationDraft,
    ConversationSource,
    ConversationStatus,
    ParentType,
    Role,
    Tier,
    TurnDraft,
)

SCHEMA_VERSION = 1

_METADATA_FIELDS = (
    "persona",
    "emotion",
    "topic",
    "intent",
    "tone",
    "emotional_arc",
    "category",
    "tags",
    "system_prompt",
    "starting_emotion",
    "starting_intensity",
    "ending_emotion",
    "ending_intensity",
)
_GENERATION_FIELDS = (
    "model",
    "temperature",
    "max_tokens",
    "parameters",
    "template_id",
    "scenario_id",
    "edge_case_id",
    "parent_id",
    "parent_type",
    "generation_job_id",
    "generation_item_index",
    "estimated_cost_usd",
    "actual_cost_usd",
    "generation_duration_ms",
)
_TURN_OPTIONAL = ("detected_emotion", "emotion_confidence", "emotion_intensity", "strategy", "tone")


class GeneratedFields(TypedDict, total=False):
    """Optional columns a generator may fill on a generated conversation."""

    description: str | None
    persona: str | None
    emotion: str | None
    topic: str | None
    intent: str | None
    tone: str | None
    emotional_arc: str | None
    category: list[str]
    tags: list[str]
    quality_score: float | None
    quality_metrics: dict[str, Any]
    status: ConversationStatus
    is_flagged: bool
    flag_reason: str | None
    system_prompt: str | None
    starting_emotion: str | None
    starting_intensity: float | None
    ending_emotion: str | None
    ending_intensity: float | None
    model: str | None
    temperature: float | None
    max_tokens: int | None
    parameters: dict[str, Any]
    template_id: UUID | None
    scenario_id: UUID | None
    edge_case_id: UUID | None
    parent_id: UUID | None
    parent_type: ParentType | None
    generation_job_id: UUID | None
    generation_item_index: int | None
    estimated_cost_usd: Decimal | None
    actual_cost_usd: Decimal | None
    generation_duration_ms: int | None


def make_turn(
    turn_number: int,
    role: Role,
    content: str,
    *,
    metadata: dict[str, Any] | None = None,
    **extras: Any,
) -> TurnDraft:
    """A turn with its text statistics; `extras` are TurnDraft's emotion/strategy/tone fields."""
    stats = measure(content)
    return TurnDraft(
        turn_number=turn_number,
        role=role,
        content=content,
        token_count=stats.token_count,
        char_count=stats.char_count,
        word_count=stats.word_count,
        sentence_count=stats.sentence_count,
        metadata=metadata or {},
        **extras,
    )


def finish_draft(
    draft: ConversationDraft, *, source_file: Mapping[str, Any] | None = None
) -> ConversationDraft:
    """Fill turn_count, total_tokens and the canonical document from the draft's turns."""
    totals = {
        "turn_count": len(draft.turns),
        "total_tokens": sum(turn.token_count for turn in draft.turns),
    }
    counted = draft.model_copy(update=totals)
    return counted.model_copy(update={"document": build_document(counted, source_file=source_file)})


def build_document(
    draft: ConversationDraft, *, source_file: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The JSON object stored as conversation.json (docs/schemas/conversation.schema.json)."""
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "conversation_id": draft.conversation_id,
        "title": draft.title,
        "description": draft.description,
        "tier": draft.tier.value,
        "source": draft.source.value,
        "metadata": {name: _plain(getattr(draft, name)) for name in _METADATA_FIELDS},
        "generation": _generation_block(draft),
        "quality": {
            "score": draft.quality_score,
            "scale": "0-10",
            "metrics": draft.quality_metrics,
        },
        "stats": {"turn_count": len(draft.turns), "total_tokens": draft.total_tokens},
        "turns": [_turn_entry(turn) for turn in draft.turns],
    }
    if source_file is not None:
        document["source_file"] = source_file
    return document


def draft_from_generated(
    *,
    conversation_id: str,
    title: str | None,
    tier: Tier,
    turns: Sequence[Mapping[str, Any]],
    **fields: Unpack[GeneratedFields],
) -> ConversationDraft:
    """A draft for a generated conversation; turns are {role, content, ...} in speaking order."""
    built = _generated_turns(turns, fields.get("system_prompt"))
    draft = ConversationDraft(
        conversation_id=conversation_id,
        title=title,
        tier=tier,
        source=ConversationSource.GENERATED,
        turns=built,
        **fields,
    )
    return finish_draft(draft)


def _generated_turns(
    turns: Sequence[Mapping[str, Any]], system_prompt: str | None
) -> list[TurnDraft]:
    """Number turns from 1, prepending the system prompt as a turn unless one is already first."""
    built: list[TurnDraft] = []
    if system_prompt and (not turns or turns[0].get("role") != Role.SYSTEM):
        built.append(make_turn(1, Role.SYSTEM, system_prompt))
    for turn in turns:
        extras = {key: turn[key] for key in _TURN_OPTIONAL if turn.get(key) is not None}
        metadata = dict(turn.get("metadata") or {})
        number = len(built) + 1
        built.append(
            make_turn(number, Role(turn["role"]), turn["content"], metadata=metadata, **extras)
        )
    return built


def _generation_block(draft: ConversationDraft) -> dict[str, Any] | None:
    """Generation parameters and lineage, or None when nothing was generated."""
    block = {name: _plain(getattr(draft, name)) for name in _GENERATION_FIELDS}
    if draft.source is ConversationSource.IMPORT and not any(block.values()):
        return None
    return block


def _turn_entry(turn: TurnDraft) -> dict[str, Any]:
    """One turn as stored: required keys always, optional ones only when set."""
    entry: dict[str, Any] = {
        "turn_number": turn.turn_number,
        "role": turn.role.value,
        "content": turn.content,
        "token_count": turn.token_count,
        "char_count": turn.char_count,
        "word_count": turn.word_count,
        "sentence_count": turn.sentence_count,
    }
    for key in _TURN_OPTIONAL:
        value = getattr(turn, key)
        if value is not None:
            entry[key] = value
    if turn.metadata:
        entry["metadata"] = turn.metadata
    return entry


def _plain(value: Any) -> Any:
    """JSON-ready form of a draft field (orjson cannot write Decimal; enums and UUIDs as text)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value
