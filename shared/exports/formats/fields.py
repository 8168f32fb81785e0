"""Metadata fields the include_* flags switch on: the one list every format takes them from.

A field is added here once (name, when it applies, how it is read); the JSON-shaped formats
print `optional_fields`, Parquet types each name in `parquet.FIELD_TYPES`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from uuid import UUID

from shared.exports.formats.base import ExportConversation, ExportOptions, ExportTurn
from shared.models.scores import SCORE_COLUMNS

Getter = Callable[[ExportConversation, ExportOptions], Any]


def ident(value: UUID | None) -> str | None:
    """An id as its canonical string: the driver's UUID type is not a JSON value."""
    return None if value is None else str(value)


@dataclass(frozen=True, slots=True)
class MetaField:
    """One optional metadata field: its name, when it is written, how it is read."""

    name: str
    when: Callable[[ExportOptions], bool]
    read: Getter


def _scores(o: ExportOptions) -> bool:
    return o.include_quality_scores


def _full_scores(o: ExportOptions) -> bool:
    return o.include_quality_scores and o.include_full_content


def _times(o: ExportOptions) -> bool:
    return o.include_timestamps


def _parents(o: ExportOptions) -> bool:
    return o.include_parent_references


def _history(o: ExportOptions) -> bool:
    return o.include_approval_history


def _id_of(attr: str) -> Getter:
    return lambda conv, _: ident(getattr(conv, attr))


def approval_history(conv: ExportConversation, options: ExportOptions) -> list[dict[str, Any]]:
    """Review rows oldest first; notes only with include_full_content."""
    entries = []
    for review in sorted(conv.reviews, key=lambda r: r.created_at):
        entry: dict[str, Any] = {
            "action": review.action,
            "from_status": review.from_status,
            "to_status": review.to_status,
            "reviewer_id": ident(review.reviewer_id),
            "created_at": review.created_at,
        }
        if options.include_full_content:
            entry["notes"] = review.notes
        entries.append(entry)
    return entries


def _always(_: ExportOptions) -> bool:
    return True


def _column(name: str) -> Getter:
    return lambda conv, _: getattr(conv, name)


# The judge's scores (docs/quality.md) follow quality_score under include_quality_scores; its
# rationale is bulky detail, like quality_metrics; duplicate links go with any metadata.
JUDGE_FIELDS: tuple[str, ...] = (*SCORE_COLUMNS, "quality_source", "judge_rubric_version")
DUPLICATE_FIELDS: tuple[str, ...] = ("duplicate_of", "duplicate_similarity")

OPTIONAL_FIELDS: tuple[MetaField, ...] = (
    MetaField("quality_score", _scores, lambda c, _: c.quality_score),
    *(MetaField(name, _scores, _column(name)) for name in JUDGE_FIELDS),
    MetaField("quality_metrics", _full_scores, lambda c, _: c.quality_metrics),
    MetaField("judge_rationale", _full_scores, lambda c, _: c.judge_rationale),
    MetaField("duplicate_of", _always, _id_of("duplicate_of")),
    MetaField("duplicate_similarity", _always, _column("duplicate_similarity")),
    MetaField("created_at", _times, lambda c, _: c.created_at),
    MetaField("updated_at", _times, lambda c, _: c.updated_at),
    MetaField("parent_id", _parents, _id_of("parent_id")),
    MetaField("parent_type", _parents, lambda c, _: c.parent_type),
    MetaField("template_id", _parents, _id_of("template_id")),
    MetaField("scenario_id", _parents, _id_of("scenario_id")),
    MetaField("edge_case_id", _parents, _id_of("edge_case_id")),
    MetaField("reviewed_at", _history, lambda c, _: c.reviewed_at),
    MetaField("reviewed_by", _history, _id_of("reviewed_by")),
    MetaField("approval_history", _history, approval_history),
)


@lru_cache(maxsize=64)
def active_fields(options: ExportOptions) -> tuple[MetaField, ...]:
    """The optional fields these options write, in order."""
    return tuple(f for f in OPTIONAL_FIELDS if f.when(options))


def optional_fields(conv: ExportConversation, options: ExportOptions) -> dict[str, Any]:
    """Quality, timestamp, parent and review fields the include_* flags switch on."""
    return {f.name: f.read(conv, options) for f in active_fields(options)}


def turn_annotations(turn: ExportTurn) -> dict[str, Any]:
    """Per-turn emotion and strategy annotations (JSON document format, full content only)."""
    return {
        "detected_emotion": turn.detected_emotion,
        "emotion_confidence": turn.emotion_confidence,
        "emotion_intensity": turn.emotion_intensity,
        "strategy": turn.strategy,
        "tone": turn.tone,
    }
