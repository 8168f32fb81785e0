"""Routes of /v1/conversations: import, list/search, review workflow, bulk actions, deletes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ValidationError

from services.api.conversations import service
from services.api.conversations.schemas import (
    BatchImport,
    BatchResult,
    BulkAction,
    BulkResult,
    ConversationDetail,
    ConversationOut,
    ConversationPage,
    ConversationPatch,
    FileLink,
    ReviewList,
    Stats,
    StatusChange,
)
from services.api.conversations.score_params import score_filter_params
from services.api.deps import (
    DedupDep,
    PoolDep,
    PrincipalDep,
    QueueDep,
    SettingsDep,
    StorageDep,
    TenantConnDep,
)
from services.api.edits import service as edits
from services.api.errors import validation_details
from services.api.openapi import errors
from services.api.pagination import CursorQuery, LimitQuery
from services.api.quality import service as quality_service
from services.api.transactions import committed_transaction
from shared.db.repositories import conversations as repo
from shared.db.repositories.minhash import Stored
from shared.errors import ValidationFailed
from shared.models.bounds import INT4_MAX
from shared.models.conversation import ConversationStatus, Tier
from shared.models.query import ConversationFilters, SortKey
from shared.models.text import Text

router = APIRouter(prefix="/v1/conversations", tags=["conversations"])

_SEED_FILE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "One seed 'emotional dataset' file (dataset_metadata, "
                    "consultant_profile, training_pairs[]); see docs/conversations.md.",
                }
            }
        },
    }
}


async def list_filters(  # async: FastAPI would run a plain def in its threadpool per request
    status: Annotated[list[ConversationStatus], Query()] = [],  # noqa: B006
    tier: Annotated[list[Tier], Query()] = [],  # noqa: B006
    persona: Text | None = None,
    emotion: Text | None = None,
    topic: Text | None = None,
    quality_min: Annotated[float | None, Query(ge=0, le=10)] = None,
    quality_max: Annotated[float | None, Query(ge=0, le=10)] = None,
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    flagged: bool | None = None,
    near_duplicates: Annotated[
        bool | None,
        Query(description="true: only near-duplicates of an earlier conversation; false: none"),
    ] = None,
    q: Annotated[Text | None, Query(min_length=1, max_length=500)] = None,
    scores: Annotated[dict[str, Any], Depends(score_filter_params)] = {},  # noqa: B006
) -> ConversationFilters:
    """Query parameters → filters; cross-field problems become a 422 like any other."""
    try:
        return ConversationFilters(
            status=status, tier=tier, persona=persona, emotion=emotion, topic=topic,
            quality_min=quality_min, quality_max=quality_max, created_from=created_from,
            created_to=created_to, flagged=flagged, near_duplicates=near_duplicates, q=q,
            **scores,
        )  # fmt: skip
    except ValidationError as exc:
        raise ValidationFailed("invalid filters", details=_filter_problems(exc)) from exc


def _filter_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """Field errors as usual; the cross-field ones ("x_min must not be greater than x_max; …")
    one detail each, at the parameter they name first."""
    details = []
    for err in exc.errors():
        if err["loc"]:
            details += validation_details([err])
            continue
        for part in str(err["msg"]).removeprefix("Value error, ").split("; "):
            details.append(
                {"path": f"query.{part.split()[0]}", "message": part, "type": "value_error"}
            )
    return details


FiltersDep = Annotated[ConversationFilters, Depends(list_filters)]


@router.post(
    "",
    status_code=201,
    response_model=ConversationDetail,
    openapi_extra=_SEED_FILE_BODY,
    responses=errors(409),
)
async def import_conversation(
    request: Request, principal: PrincipalDep, pool: PoolDep, storage: StorageDep, dedup: DedupDep
) -> ConversationDetail:
    """Import one seed-format file; 422 lists every problem by JSON path."""
    raw = await request.body()
    return await service.import_one(pool, storage, dedup, principal.user_id, raw)


@router.post("/batch", response_model=BatchResult)
async def import_batch(
    body: BatchImport, principal: PrincipalDep, pool: PoolDep, storage: StorageDep, dedup: DedupDep
) -> BatchResult:
    """Import many files; each item gets its own result and one bad item blocks none."""
    results = await service.import_batch(pool, storage, dedup, principal.user_id, body.items)
    created = sum(result.ok for result in results)
    return BatchResult(results=results, created=created, failed=len(results) - created)


@router.get("", response_model=ConversationPage)
async def list_conversations(
    principal: PrincipalDep,
    conn: TenantConnDep,
    filters: FiltersDep,
    sort: SortKey = "-created_at",
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> ConversationPage:
    """Filter, search (`q`), sort and page with a keyset cursor."""
    return await service.list_page(conn, principal.user_id, filters, sort, cursor, limit)


@router.get("/stats", response_model=Stats)
async def conversation_stats(principal: PrincipalDep, conn: TenantConnDep) -> Stats:
    """Totals by status and tier, quality histogram, approval rate."""
    return await service.stats(conn, principal.user_id)


@router.post("/bulk-action", response_model=BulkResult)
async def bulk_action(
    body: BulkAction,
    principal: PrincipalDep,
    pool: PoolDep,
    queue: QueueDep,
    settings: SettingsDep,
    dedup: DedupDep,
) -> BulkResult:
    """Approve, reject (with a reason), archive, delete or score (judge) many conversations."""
    if body.action == "score":
        return await quality_service.bulk_score(pool, queue, settings, principal.user_id, body.ids)
    removed: list[Stored] = []
    async with committed_transaction(pool, principal.user_id) as conn:
        results = await service.bulk(
            conn, principal.user_id, principal.user_id, body.action, body.ids, body.reason,
            removed,
        )  # fmt: skip
    await dedup.forget(principal.user_id, removed)  # committed: the index follows
    succeeded = sum(result.ok for result in results)
    return BulkResult(results=results, succeeded=succeeded, failed=len(results) - succeeded)


@router.get("/{id}", response_model=ConversationDetail)
async def get_conversation(id: UUID, _: PrincipalDep, conn: TenantConnDep) -> ConversationDetail:
    """One conversation with its turns."""
    return await service.detail(conn, id)


@router.patch("/{id}", response_model=ConversationOut)
async def patch_conversation(
    id: UUID, body: ConversationPatch, _: PrincipalDep, conn: TenantConnDep
) -> ConversationOut:
    """Edit metadata (title, tags, category, persona, …)."""
    return await service.patch(conn, id, body.model_dump(exclude_unset=True))


@router.post("/{id}/status", response_model=ConversationOut, responses=errors(409))
async def change_status(
    id: UUID, body: StatusChange, principal: PrincipalDep, conn: TenantConnDep
) -> ConversationOut:
    """Move through the review workflow; 409 names the allowed targets."""
    updated = await service.transition(
        conn, principal.user_id, principal.user_id, id, body.status, body.notes
    )
    return ConversationOut(**updated.model_dump())


@router.get("/{id}/reviews", response_model=ReviewList)
async def review_history(id: UUID, _: PrincipalDep, conn: TenantConnDep) -> ReviewList:
    """Every review action on the conversation, oldest first."""
    await service.get_visible(conn, id)
    return ReviewList(items=await repo.reviews(conn, id))


@router.get("/{id}/file", response_model=FileLink)
async def file_link(
    id: UUID,
    _: PrincipalDep,
    conn: TenantConnDep,
    storage: StorageDep,
    settings: SettingsDep,
    version: Annotated[
        int | None,
        Query(ge=1, le=INT4_MAX, description="an earlier document version (default: current)"),
    ] = None,
) -> FileLink:
    """A download link (1 hour) for the stored gzip JSON document, or one of its versions."""
    ttl = settings.download_url_ttl_seconds
    if version is not None:
        return await edits.file_link(conn, storage, id, version, ttl)
    return await service.file_link(conn, storage, id, ttl)


@router.delete("/{id}", status_code=204, response_class=Response)
async def delete_conversation(
    id: UUID,
    principal: PrincipalDep,
    pool: PoolDep,
    storage: StorageDep,
    dedup: DedupDep,
    hard: bool = False,
) -> Response:
    """Soft delete; `?hard=true` also removes the stored file and the turns."""
    await service.delete(pool, storage, dedup, principal.user_id, id, hard=hard)
    return Response(status_code=204)
