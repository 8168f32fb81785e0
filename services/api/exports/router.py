"""Routes of /v1/exports: request, preview, history (+CSV), status, cancel, download."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import RedirectResponse, StreamingResponse

from services.api.deps import PoolDep, PrincipalDep, ResourcesDep, TenantConnDep
from services.api.exports import service
from services.api.exports.history_csv import history_csv
from services.api.exports.schemas import (
    DownloadLink,
    ExportDetail,
    ExportOut,
    ExportPage,
    ExportRequest,
    PreviewOut,
)
from services.api.pagination import CursorQuery
from shared.db.repositories.exports import HistoryFilters
from shared.models.export import ExportFormat, ExportStatus

router = APIRouter(prefix="/v1/exports", tags=["exports"])


def history_filters(
    format: Annotated[list[ExportFormat], Query()] = [],  # noqa: B006
    status: Annotated[list[ExportStatus], Query()] = [],  # noqa: B006
    from_: Annotated[datetime | None, Query(alias="from")] = None,
    to: datetime | None = None,
) -> HistoryFilters:
    """`format` and `status` (repeatable), `from`/`to` on the request time (inclusive)."""
    return HistoryFilters(
        formats=[f.value for f in format],
        statuses=[s.value for s in status],
        created_from=from_,
        created_to=to,
    )


HistoryDep = Annotated[HistoryFilters, Depends(history_filters)]


@router.post("", status_code=202, response_model=ExportOut)
async def request_export(
    body: ExportRequest, principal: PrincipalDep, resources: ResourcesDep
) -> ExportOut:
    """Record the export (audit row) and queue it; poll GET /v1/exports/{id} for progress."""
    export = await service.request_export(resources, principal.user_id, body)
    return ExportOut.of(export)


@router.post("/preview", response_model=PreviewOut)
async def preview_export(
    body: ExportRequest, principal: PrincipalDep, conn: TenantConnDep
) -> PreviewOut:
    """The first 3 conversations in the chosen format, rendered now by the exporter's code."""
    return await service.preview(conn, principal.user_id, body)


@router.get("", response_model=ExportPage)
async def list_exports(
    principal: PrincipalDep,
    conn: TenantConnDep,
    filters: HistoryDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 25,
    cursor: CursorQuery = None,
) -> ExportPage:
    """The caller's export history, newest first, keyset-paginated."""
    return await service.history(conn, filters, cursor, limit)


@router.get(
    "/history.csv",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/csv": {}}, "description": "The audit log as CSV."}},
)
async def export_history_csv(
    principal: PrincipalDep, pool: PoolDep, filters: HistoryDep
) -> StreamingResponse:
    """The caller's export audit log as CSV (UTF-8 with BOM), same filters as the list."""
    name = f"export-history-{datetime.now(UTC):%Y-%m-%d}.csv"
    return StreamingResponse(
        history_csv(pool, principal.user_id, filters),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/{export_id}", response_model=ExportDetail)
async def get_export(export_id: UUID, _: PrincipalDep, conn: TenantConnDep) -> ExportDetail:
    """One export's status, progress, counts and outcome."""
    return ExportDetail.of(await service.get(conn, export_id))


@router.post("/{export_id}/cancel", response_model=ExportOut)
async def cancel_export(export_id: UUID, _: PrincipalDep, conn: TenantConnDep) -> ExportOut:
    """Stop a queued or processing export; 409 once it has finished."""
    return ExportOut.of(await service.cancel(conn, export_id))


@router.get(
    "/{export_id}/download",
    status_code=302,
    response_model=None,
    responses={
        200: {"model": DownloadLink, "description": "with `?redirect=false`"},
        302: {"description": "redirect to a signed URL of the file"},
        409: {"description": "not ready (queued/processing) or failed/cancelled"},
        410: {"description": "expired"},
    },
)
async def download_export(
    export_id: UUID,
    _: PrincipalDep,
    conn: TenantConnDep,
    resources: ResourcesDep,
    redirect: bool = True,
) -> Any:
    """302 to a signed URL of the file (or the link as JSON with `?redirect=false`)."""
    link = await service.download_link(conn, resources.storage, resources.settings, export_id)
    if not redirect:
        return link
    headers = {
        "Content-Disposition": f'attachment; filename="{link.file_name}"',
        "Cache-Control": "no-store",
    }
    return RedirectResponse(link.url, status_code=302, headers=headers)
