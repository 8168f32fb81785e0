"""Calibration: the judge's quality_overall against reviewers' approve/reject decisions."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from services.api.quality.calibration_schemas import Agreement, Calibration, CalibrationBucket
from shared.db.repositories.calibration_queries import CalibrationScope, calibration_data
from shared.quality import calibration


async def calibrate(
    conn: asyncpg.Connection, owner_id: UUID, threshold: float, scope: CalibrationScope
) -> Calibration:
    """Buckets, the agreement at `threshold` and the suggested threshold, in one query."""
    data = await calibration_data(conn, owner_id, threshold, scope)
    approved = sum(t.approved for t in data.tallies)
    rejected = sum(t.rejected for t in data.tallies)
    suggestion = calibration.suggest(data.tallies)
    suggested = None
    if suggestion is not None:
        best, matrix = suggestion
        suggested = Agreement(threshold=best, **matrix.metrics())
    return Calibration(
        reviewed=approved + rejected,
        approved=approved,
        rejected=rejected,
        reviewed_unjudged=data.reviewed_unjudged,
        buckets=[CalibrationBucket(**b) for b in calibration.buckets(data.tallies)],
        agreement=Agreement(threshold=threshold, **data.at_threshold.metrics()),
        suggested=suggested,
    )
