"""Routes of the judge: /v1/quality/rubric (read, edit, history) and scoring a conversation."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Path

from services.api.deps import PoolDep, PrincipalDep, QueueDep, SettingsDep, TenantConnDep
from services.api.generation.schemas import JobOut
from services.api.quality import service
from services.api.quality.schemas import RubricIn, RubricOut, RubricVersions, ScoreIn
from shared.models.bounds import INT4_MAX

router = APIRouter()
_RUBRIC = "/v1/quality/rubric"


@router.get(_RUBRIC, response_model=RubricOut, tags=["quality"])
async def get_rubric(_: PrincipalDep, conn: TenantConnDep) -> RubricOut:
    """The rubric the judge uses now (version 1, the built-in one, until the first edit)."""
    return await service.current(conn)


@router.put(_RUBRIC, response_model=RubricOut, tags=["quality"])
async def put_rubric(body: RubricIn, me: PrincipalDep, conn: TenantConnDep) -> RubricOut:
    """Store a new version (earlier ones are kept); 422 lists every problem of the body."""
    return await service.edit(conn, me.user_id, me.user_id, body)


@router.get(f"{_RUBRIC}/versions", response_model=RubricVersions, tags=["quality"])
async def rubric_versions(_: PrincipalDep, conn: TenantConnDep) -> RubricVersions:
    """Every version, newest first."""
    return await service.versions(conn)


@router.get(f"{_RUBRIC}/versions/{{version}}", response_model=RubricOut, tags=["quality"])
async def rubric_version(
    version: Annotated[int, Path(ge=1, le=INT4_MAX)], _: PrincipalDep, conn: TenantConnDep
) -> RubricOut:
    """One version, as the judge read it (scores name theirs in judge_rubric_version)."""
    return await service.version(conn, version)


@router.post(
    "/v1/conversations/{id}/score", status_code=202, response_model=JobOut,
    tags=["conversations", "quality"],
)  # fmt: skip
async def score_conversation(
    id: UUID,
    me: PrincipalDep,
    pool: PoolDep,
    queue: QueueDep,
    settings: SettingsDep,
    body: Annotated[ScoreIn | None, Body()] = None,
) -> JobOut:
    """Judge the conversation (again): a quality_check job; poll /v1/generation-jobs/{id}."""
    options = body if body is not None else ScoreIn()
    return await service.score_one(pool, queue, settings, me.user_id, id, options)
