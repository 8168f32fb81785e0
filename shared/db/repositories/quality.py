"""SQL of the judge: rubric versions, what a judgement needs, and writing its outcome.

Always inside a tenant transaction (row-level security scopes every statement to the tenant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from shared.quality.rubric import BUILTIN, BUILTIN_VERSION, Rubric, parse


@dataclass(frozen=True, slots=True)
class StoredVersion:
    """One entry of a tenant's rubric history."""

    version: int
    builtin: bool
    note: str | None
    created_at: datetime | None


async def current_rubric(conn: asyncpg.Connection) -> Rubric:
    """The tenant's newest rubric version (the built-in one until the first edit)."""
    row = await conn.fetchrow(
        "SELECT version, criteria, note FROM quality_rubrics ORDER BY version DESC LIMIT 1"
    )
    return BUILTIN if row is None else parse(row["version"], row["criteria"], row["note"])


async def rubric_version(conn: asyncpg.Connection, version: int) -> Rubric | None:
    """One version of the tenant's rubric (1: the built-in default)."""
    if version == BUILTIN_VERSION:
        return BUILTIN
    row = await conn.fetchrow(
        "SELECT version, criteria, note FROM quality_rubrics WHERE version = $1", version
    )
    return None if row is None else parse(row["version"], row["criteria"], row["note"])


async def rubric_versions(conn: asyncpg.Connection) -> list[StoredVersion]:
    """Every version, newest first, ending with the built-in version 1."""
    rows = await conn.fetch(
        "SELECT version, note, created_at FROM quality_rubrics ORDER BY version DESC"
    )
    stored = [StoredVersion(r["version"], False, r["note"], r["created_at"]) for r in rows]
    return [*stored, StoredVersion(BUILTIN_VERSION, True, BUILTIN.note, None)]


async def add_rubric_version(
    conn: asyncpg.Connection,
    owner_id: UUID,
    criteria: dict[str, Any],
    note: str | None,
    created_by: UUID | None,
) -> Rubric:
    """Store the next version (concurrent edits of one tenant take turns on a lock)."""
    await conn.execute(
        "SELECT pg_advisory_xact_lock(hashtext('quality_rubric:' || $1::uuid::text))", owner_id
    )
    version: int = await conn.fetchval(
        "SELECT coalesce(max(version), $1) + 1 FROM quality_rubrics", BUILTIN_VERSION
    )
    await conn.execute(
        """INSERT INTO quality_rubrics (owner_id, version, criteria, note, created_by)
           VALUES ($1, $2, $3, $4, $5)""",
        owner_id,
        version,
        criteria,
        note,
        created_by,
    )
    return parse(version, criteria, note)


@dataclass(frozen=True, slots=True)
class Target:
    """A conversation to judge, with what planning the call needs."""

    id: UUID
    tier: str
    template_id: UUID | None
    threshold: float | None
    chars: int
    turn_count: int


async def targets(conn: asyncpg.Connection, ids: Sequence[UUID]) -> list[Target]:
    """The visible, not deleted conversations among `ids` (any order)."""
    rows = await conn.fetch(
        """SELECT c.id, c.tier, c.template_id, t.judge_flag_threshold AS threshold,
                  c.turn_count,
                  (SELECT coalesce(sum(char_count), 0) FROM conversation_turns ct
                    WHERE ct.conversation_id = c.id) AS chars
             FROM conversations c LEFT JOIN templates t ON t.id = c.template_id
            WHERE c.id = any($1::uuid[]) AND c.deleted_at IS NULL""",
        list(ids),
    )
    return [Target(**dict(row)) for row in rows]


@dataclass(frozen=True, slots=True)
class Subject:
    """What the judge reads of one conversation."""

    id: UUID
    status: str
    is_flagged: bool
    flag_reason: str | None
    quality_source: str | None
    brief: dict[str, str | None]
    turns: list[dict[str, Any]]


async def subject(conn: asyncpg.Connection, id: UUID) -> Subject | None:
    """The conversation (locked) and its turns; None when gone or deleted."""
    row = await conn.fetchrow(
        """SELECT id, status, is_flagged, flag_reason, quality_source, title, persona, emotion,
                  topic, emotional_arc FROM conversations
            WHERE id = $1 AND deleted_at IS NULL FOR UPDATE""",
        id,
    )
    if row is None:
        return None
    turns = await conn.fetch(
        "SELECT turn_number, role, content FROM conversation_turns "
        "WHERE conversation_id = $1 ORDER BY turn_number",
        id,
    )
    brief = {k: row[k] for k in ("title", "persona", "emotion", "topic", "emotional_arc")}
    return Subject(
        id=row["id"], status=row["status"], is_flagged=row["is_flagged"],
        flag_reason=row["flag_reason"], quality_source=row["quality_source"], brief=brief,
        turns=[dict(turn) for turn in turns],
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Verdict:
    """What a judgement writes onto the conversation."""

    values: dict[str, float]
    overall: float
    quality_score: float
    rationale: dict[str, Any]
    rubric_version: int
    model: str
    status: str
    is_flagged: bool
    flag_reason: str | None


async def write_verdict(conn: asyncpg.Connection, id: UUID, verdict: Verdict) -> None:
    """Every judge column, the 0–10 score from it, the status and flag."""
    v = verdict.values
    await conn.execute(
        """UPDATE conversations SET
               coherence_score = $2, relevance_score = $3, completeness_score = $4,
               quality_overall = $5, empathy_score = $6, clarity_score = $7,
               appropriateness_score = $8, brand_voice_score = $9, judge_rationale = $10,
               judge_rubric_version = $11, judge_model = $12, judge_error = NULL,
               judged_at = now(), quality_score = $13, quality_source = 'judge',
               status = $14, is_flagged = $15, flag_reason = $16
         WHERE id = $1""",
        id, v["coherence"], v["relevance"], v["completeness"], verdict.overall, v["empathy"],
        v["clarity"], v["appropriateness"], v["brand_voice"], verdict.rationale,
        verdict.rubric_version, verdict.model, verdict.quality_score, verdict.status,
        verdict.is_flagged, verdict.flag_reason,
    )  # fmt: skip


_CLEARED = """coherence_score = NULL, relevance_score = NULL, completeness_score = NULL,
    quality_overall = NULL, empathy_score = NULL, clarity_score = NULL,
    appropriateness_score = NULL, brand_voice_score = NULL, judge_rationale = NULL,
    judge_rubric_version = NULL, judged_at = NULL"""


async def write_failure(
    conn: asyncpg.Connection,
    id: UUID,
    error: str,
    model: str | None,
    structural_score: float | None,
) -> None:
    """No judgement: judge columns NULL, the reason in judge_error (never a made-up score).

    A 0–10 score that came from an earlier judgement goes back to the structural score
    (`structural_score`), so quality_source still says truly where the score came from.
    """
    await conn.execute(
        f"""UPDATE conversations SET {_CLEARED}, judge_error = $2, judge_model = $3,
               quality_score = CASE WHEN quality_source = 'judge' THEN $4 ELSE quality_score END,
               quality_source = CASE WHEN quality_source = 'judge'
                                     THEN CASE WHEN $4::numeric IS NULL THEN NULL
                                               ELSE 'structural' END
                                     ELSE quality_source END
         WHERE id = $1""",
        id,
        error[:1000],
        model,
        structural_score,
    )
