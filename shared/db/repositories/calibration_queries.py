"""SQL behind GET /v1/quality/calibration: reviewed, judged conversations tallied per
hundredth of quality_overall, in one pass (shared/quality/calibration.py does the rest)."""

from __future__ import annotations

from dataclasses import dataclass, field
from uuid import UUID

import asyncpg

from shared.models.conversation import Tier
from shared.quality.calibration import Confusion, Tally


@dataclass(frozen=True)
class CalibrationScope:
    """Which reviewed conversations are compared (all when empty)."""

    tiers: list[Tier] = field(default_factory=list)
    template_ids: list[UUID] = field(default_factory=list)
    rubric_version: int | None = None


@dataclass(frozen=True)
class CalibrationData:
    """The per-hundredth tally, the matrix at the requested threshold, unjudged decisions."""

    tallies: list[Tally]
    at_threshold: Confusion
    reviewed_unjudged: int


# A reviewer's decision is the conversation's status: approved or rejected. The score is read
# through numeric, which gives a real as written (0.35, where the real is 0.34999999), so the
# hundredths match the scores a person sees; the requested threshold is compared as a real, as
# the judge's flag rule compares the stored score.
_SQL = """
SELECT CASE WHEN quality_overall IS NULL THEN -1
            ELSE least(floor(quality_overall::numeric * 100), 100)::int END AS cents,
       count(*) FILTER (WHERE status = 'approved') AS approved,
       count(*) FILTER (WHERE status = 'rejected') AS rejected,
       count(*) FILTER (WHERE status = 'approved' AND quality_overall < $2::real) AS fp,
       count(*) FILTER (WHERE status = 'rejected' AND quality_overall < $2::real) AS tp
  FROM conversations
 WHERE owner_id = $1 AND deleted_at IS NULL AND status IN ('approved', 'rejected') {where}
 GROUP BY 1
"""


def _where(scope: CalibrationScope) -> tuple[str, list[object]]:
    clauses: list[str] = []
    args: list[object] = []
    if scope.tiers:
        args.append([tier.value for tier in scope.tiers])
        clauses.append(f"tier = ANY(${len(args) + 2}::text[])")
    if scope.template_ids:
        args.append(scope.template_ids)
        clauses.append(f"template_id = ANY(${len(args) + 2}::uuid[])")
    if scope.rubric_version is not None:
        args.append(scope.rubric_version)
        clauses.append(f"judge_rubric_version = ${len(args) + 2}")
    return "".join(f" AND {clause}" for clause in clauses), args


async def calibration_data(
    conn: asyncpg.Connection, owner_id: UUID, threshold: float, scope: CalibrationScope
) -> CalibrationData:
    """The tallies of the tenant's reviewed conversations in scope."""
    where, args = _where(scope)
    rows = await conn.fetch(_SQL.format(where=where), owner_id, threshold, *args)
    judged = [row for row in rows if row["cents"] >= 0]
    tallies = [Tally(row["cents"], row["approved"], row["rejected"]) for row in judged]
    tp, fp = sum(row["tp"] for row in judged), sum(row["fp"] for row in judged)
    matrix = Confusion(
        true_positive=tp,
        false_positive=fp,
        false_negative=sum(t.rejected for t in tallies) - tp,
        true_negative=sum(t.approved for t in tallies) - fp,
    )
    unjudged = sum(row["approved"] + row["rejected"] for row in rows if row["cents"] < 0)
    return CalibrationData(tallies, matrix, unjudged)
