"""The caller's export audit log as CSV (compliance download), streamed page by page."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import datetime
from uuid import UUID

import asyncpg
import orjson

from shared.db.pool import tenant_transaction
from shared.db.repositories import exports as repo
from shared.exports.formats.csv_format import BOM, safe_cell
from shared.models.export import ExportLog

COLUMNS = (
    "id", "created_at", "created_by", "status", "format", "scope", "compressed", "filters",
    "selected_count", "conversation_count", "turn_count", "render_failure_count", "file_name",
    "byte_size", "sha256", "error", "attempts", "started_at", "completed_at", "expires_at",
    "download_count", "last_downloaded_at",
)  # fmt: skip
_PAGE = 500


def _row(export: ExportLog) -> list[str]:
    values: dict[str, object] = {
        **export.model_dump(),
        "status": export.status.value,
        "format": export.format.value,
        "scope": export.scope.value,
        "filters": orjson.dumps(export.filters).decode() if export.filters else "",
        "selected_count": len(export.selected_ids),
    }
    return [safe_cell(values[name]) for name in COLUMNS]


def _encode(rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode()


async def history_csv(
    pool: asyncpg.Pool, owner_id: UUID, filters: repo.HistoryFilters
) -> AsyncIterator[bytes]:
    """BOM, header, then every matching export newest first (formula-safe cells)."""
    yield BOM + _encode([list(COLUMNS)])
    before: tuple[datetime, UUID] | None = None
    while True:
        async with tenant_transaction(pool, owner_id, readonly=True) as conn:
            page = await repo.history_page(conn, filters, before=before, limit=_PAGE)
        if not page:
            return
        yield _encode([_row(export) for export in page])
        if len(page) < _PAGE:
            return
        before = (page[-1].created_at, page[-1].id)
