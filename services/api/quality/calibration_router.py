"""GET /v1/quality/calibration: do the judge's scores predict the reviewers (docs/quality.md)?"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from services.api.deps import PrincipalDep, SettingsDep, TenantConnDep
from services.api.quality.calibration_schemas import Calibration
from services.api.quality.calibration_service import calibrate
from shared.db.repositories.calibration_queries import CalibrationScope
from shared.models.bounds import Int4
from shared.models.conversation import Tier

router = APIRouter(prefix="/v1/quality", tags=["quality"])


@router.get("/calibration", response_model=Calibration)
async def quality_calibration(
    principal: PrincipalDep,
    conn: TenantConnDep,
    settings: SettingsDep,
    threshold: Annotated[
        float | None,
        Query(ge=0, le=1, description="flag below this quality_overall (JUDGE_FLAG_THRESHOLD)"),
    ] = None,
    tier: Annotated[list[Tier], Query()] = [],  # noqa: B006
    template_id: Annotated[list[UUID], Query(max_length=100)] = [],  # noqa: B006
    rubric_version: Annotated[Int4 | None, Query(description="only scores of this rubric")] = None,
) -> Calibration:
    """Judge scores against approve/reject decisions: buckets, agreement, a suggested threshold."""
    scope = CalibrationScope(tiers=tier, template_ids=template_id, rubric_version=rubric_version)
    chosen = settings.judge_flag_threshold if threshold is None else threshold
    return await calibrate(conn, principal.user_id, chosen, scope)
