"""The one way every list pages: opaque keyset cursors (sort key + id, bound to their sort).

A cursor may also carry the list's `total` as counted for its first page, with a digest of the
filters it counted, so the following pages need not count again (`encode(..., total=, digest=)`,
`decode_cursor`). Cursors are validated, not signed: an edited cursor can only move within the
caller's own rows (row-level security) or change the `total` the caller is told.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, TypeVar
from uuid import UUID

import orjson
from fastapi import Query
from pydantic import BaseModel

from shared.errors import ValidationFailed
from shared.models.scores import SCORE_COLUMNS
from shared.models.text import Text, text_problem

T = TypeVar("T")
LimitQuery = Annotated[int, Query(ge=1, le=100, description="page size (default 25, max 100)")]
# Long enough for a title sort key of ~1,000 bytes plus the carried total.
CursorQuery = Annotated[Text | None, Query(max_length=2048, description="next_cursor of a page")]
NEWEST_FIRST = "-created_at"

# What decoding a hand-made or damaged cursor can raise (UUID(42) is an AttributeError).
_MALFORMED = (ValueError, TypeError, KeyError, AttributeError, InvalidOperation, binascii.Error)


def _quality(raw: str) -> Decimal:
    """A quality sort key: a score 0-10, or -1 for none (the SQL turns it into a smallint)."""
    value = Decimal(raw)
    if not value.is_finite() or not -1 <= value <= 10:
        raise ValueError("quality sort key out of range")
    return value


def _score(raw: str) -> float:
    """A judge score's sort key: 0-1 or 1-5, or -1 for none (the SQL casts it to real)."""
    value = float(raw)
    if not math.isfinite(value) or not -1 <= value <= 5:
        raise ValueError("score sort key out of range")
    return value


_DECODERS: dict[str, Callable[[str], Any]] = {
    "created_at": datetime.fromisoformat,
    "quality_score": _quality,
    "title": str,
    "status": str,
    **dict.fromkeys(SCORE_COLUMNS, _score),
}


@dataclass(frozen=True)
class Cursor:
    """A decoded cursor: the key to continue after, and the first page's total if it carries one."""

    key: tuple[Any, UUID]
    total: int | None = None
    digest: str | None = None

    def total_for(self, filters: str) -> int | None:
        """The carried total when it was counted under the same filters (same digest)."""
        return self.total if self.total is not None and self.digest == filters else None


def filters_digest(filters: BaseModel) -> str:
    """A short fingerprint of a list's filters, to tie a carried total to what it counted."""
    canonical = orjson.dumps(filters.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()[:9]).decode()


def encode(
    sort: str, key: tuple[Any, UUID], *, total: int | None = None, digest: str | None = None
) -> str:
    """Pack (sort, key, id), and the first page's total with its filters' digest, into a URL-safe
    string."""
    value, row_id = key
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    fields: list[Any] = [sort, text, str(row_id)]
    if total is not None:
        fields += [total, digest or ""]
    return base64.urlsafe_b64encode(orjson.dumps(fields)).decode().rstrip("=")


def decode(sort: str, cursor: str) -> tuple[Any, UUID]:
    """Unpack the key of a cursor made for the same sort; 422 for anything else."""
    return decode_cursor(sort, cursor).key


def decode_cursor(sort: str, cursor: str) -> Cursor:
    """Unpack a cursor made for the same sort, with its carried total if any; 422 for anything
    else. Cursors without a total (made before it was carried) stay valid."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        fields = orjson.loads(base64.urlsafe_b64decode(padded))
        if not isinstance(fields, list) or len(fields) not in (3, 5):
            raise ValueError("malformed")
        made_for, raw, row_id = fields[:3]
        if made_for != sort:
            raise ValueError("cursor belongs to another sort order")
        if isinstance(raw, str) and (problem := text_problem(raw)) is not None:
            raise ValueError(problem)
        key = (_DECODERS[sort.lstrip("-")](raw), UUID(row_id))
        if len(fields) == 3:
            return Cursor(key)
        total, made_under = fields[3:]
        if type(total) is not int or total < 0 or not isinstance(made_under, str):
            raise ValueError("malformed total")
        return Cursor(key, total, made_under)
    except _MALFORMED as exc:
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
