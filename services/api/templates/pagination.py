"""Keyset cursors over (created_at, id), newest first: the lists of templates and generation."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, TypeVar
from uuid import UUID

import orjson
from fastapi import Query

from shared.errors import ValidationFailed

T = TypeVar("T")
LimitQuery = Annotated[int, Query(ge=1, le=100, description="page size (default 25, max 100)")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]


def encode(created_at: datetime, row_id: UUID) -> str:
    """An opaque cursor for the row after which the next page starts."""
    payload = orjson.dumps([created_at.isoformat(), str(row_id)])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a cursor points after; 422 for a cursor we did not make."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created_at, row_id = orjson.loads(raw)
        return datetime.fromisoformat(created_at), UUID(row_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValidationFailed(
            "invalid cursor",
            details=[{"path": "cursor", "message": "malformed cursor", "type": "value_error"}],
        ) from exc


def split_page(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, UUID]]
) -> tuple[list[T], str | None]:
    """The page's rows (of `limit + 1` fetched) and the cursor of the next page, if any."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode(*key(page[-1]))
