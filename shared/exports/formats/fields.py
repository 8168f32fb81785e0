"""Metadata fields shared by the JSON-shaped formats, chosen by the export's include flags."""

from __future__ import annotations

from typing import Any

from shared.exports.formats.base import ExportConversation, ExportOptions, ExportTurn


def optional_fields(conv: ExportConversation, options: ExportOptions) -> dict[str, Any]:
    """Quality, timestamp, parent and review fields the include_* flags switch on."""
    out: dict[str, Any] = {}
    if options.include_quality_scores:
        out["quality_score"] = conv.quality_score
        if options.include_full_content:
            out["quality_metrics"] = conv.quality_metrics
    if options.include_timestamps:
        out["created_at"] = conv.created_at
        out["updated_at"] = conv.updated_at
    if options.include_parent_references:
        out["parent_id"] = conv.parent_id
        out["parent_type"] = conv.parent_type
        out["template_id"] = conv.template_id
        out["scenario_id"] = conv.scenario_id
        out["edge_case_id"] = conv.edge_case_id
    if options.include_approval_history:
        out["reviewed_at"] = conv.reviewed_at
        out["reviewed_by"] = conv.reviewed_by
        out["approval_history"] = approval_history(conv, options)
    return out


def approval_history(conv: ExportConversation, options: ExportOptions) -> list[dict[str, Any]]:
    """Review rows oldest first; notes only with include_full_content."""
    entries = []
    for review in sorted(conv.reviews, key=lambda r: r.created_at):
        entry: dict[str, Any] = {
            "action": review.action,
            "from_status": review.from_status,
            "to_status": review.to_status,
            "reviewer_id": review.reviewer_id,
            "created_at": review.created_at,
        }
        if options.include_full_content:
            entry["notes"] = review.notes
        entries.append(entry)
    return entries


def turn_annotations(turn: ExportTurn) -> dict[str, Any]:
    """Per-turn emotion and strategy annotations (JSON document format, full content only)."""
    return {
        "detected_emotion": turn.detected_emotion,
        "emotion_confidence": turn.emotion_confidence,
        "emotion_intensity": turn.emotion_intensity,
        "strategy": turn.strategy,
        "tone": turn.tone,
    }
