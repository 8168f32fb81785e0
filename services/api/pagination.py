"""The one way every list pages: opaque keyset cursors (sort key + id, bound to their sort)."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
from fastapi import Query

from shared.errors import ValidationFailed

T = TypeVar("T")
LimitQuery = Annotated[int, Query(ge=1, le=100, description="page size (default 25, max 100)")]
CursorQuery = Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]
NEWEST_FIRST = "-created_at"

_DECODERS: dict[str, Callable[[str], Any]] = {
    "created_at": datetime.fromisoformat,
    "quality_score": Decimal,
    "title": str,
    "status": str,
}


def encode(sort: str, key: tuple[Any, UUID]) -> str:
    """Pack (sort, key, id) into a URL-safe string."""
    value, row_id = key
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    payload = orjson.dumps([sort, text, str(row_id)])
    return base64.urlsafe_b64encode(payload).decode().rstrip("=")


def decode(sort: str, cursor: str) -> tuple[Any, UUID]:
    """Unpack a cursor made for the same sort; 422 for anything else."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        made_for, raw, row_id = orjson.loads(base64.urlsafe_b64decode(padded))
        if made_for != sort:
            raise ValueError("cursor belongs to another sort order")
        return _DECODERS[sort.lstrip("-")](raw), UUID(row_id)
    except (ValueError, TypeError, KeyError, InvalidOperation, binascii.Error) as exc:
        raise ValidationFailed(
            "invalid cursor",
            details=[{"path": "cursor", "message": str(exc) or "malformed", "type": "value_error"}],
        ) from exc


def decode_newest(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a newest-first cursor points after, or None for the first page."""
    if cursor is None:
        return None
    created_at, row_id = decode(NEWEST_FIRST, cursor)
    return created_at, row_id


def split_page(
    rows: Sequence[T], limit: int, key: Callable[[T], tuple[datetime, UUID]]
) -> tuple[list[T], str | None]:
    """A newest-first page's rows (of `limit + 1` fetched) and the next page's cursor, if any."""
    page = list(rows[:limit])
    if len(rows) <= limit or not page:
        return page, None
    return page, encode(NEWEST_FIRST, key(page[-1]))
