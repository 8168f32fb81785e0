"""Opaque keyset cursors: the last row's sort key and id, bound to the sort they came from."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from uuid import UUID

import orjson

from shared.errors import ValidationFailed

_DECODERS: dict[str, Callable[[str], Any]] = {
    "created_at": datetime.fromisoformat,
    "quality_score": Decimal,
    "title": str,
    "status": str,
}


def encode(sort: str, key: tuple[Any, UUID]) -> str:
    """Pack (sort, key, id) into a URL-safe string."""
    value, row_id = key
    payload = orjson.dumps([sort, value.isoformat() if isinstance(value, datetime) else str(value),
                            str(row_id)])  # fmt: skip
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
