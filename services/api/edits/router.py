"""Routes of turn edits and document versions under /v1/conversations/{id}."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path

from services.api.conversations.schemas import ConversationDetail
from services.api.deps import (
    DedupDep,
    PoolDep,
    PrincipalDep,
    QueueDep,
    SettingsDep,
    StorageDep,
    TenantConnDep,
)
from services.api.edits import service
from services.api.edits.schemas import TurnEdit, VersionList
from services.api.openapi import errors
from shared.models.bounds import INT4_MAX

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])
TurnNumber = Annotated[int, Path(ge=1, le=INT4_MAX, description="1-based; a system turn is 1")]


@router.patch("/{id}/turns/{turn_number}", response_model=ConversationDetail, responses=errors(409))
async def edit_turn(
    id: UUID,
    turn_number: TurnNumber,
    body: TurnEdit,
    principal: PrincipalDep,
    pool: PoolDep,
    storage: StorageDep,
    queue: QueueDep,
    settings: SettingsDep,
    dedup: DedupDep,
) -> ConversationDetail:
    """Replace a turn's text: a new document version; counts and score recomputed."""
    edit = service.Edit(
        owner_id=principal.user_id, editor_id=principal.user_id, conversation_id=id,
        turn_number=turn_number, content=body.content, expected_version=body.expected_version,
    )  # fmt: skip
    return await service.edit_turn(pool, storage, queue, settings, dedup, edit)


@router.get("/{id}/versions", response_model=VersionList)
async def list_versions(id: UUID, _: PrincipalDep, conn: TenantConnDep) -> VersionList:
    """Every version of the stored document, oldest first."""
    return await service.list_versions(conn, id)
