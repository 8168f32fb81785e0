"""The shared cursor codec: keys round-trip, a carried total is tied to the filters it counted."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import orjson
import pytest

from services.api import pagination
from shared.errors import ValidationFailed
from shared.models.query import ConversationFilters


def test_key_round_trips_with_and_without_a_total() -> None:
    row = uuid4()
    for sort, value in (
        ("-created_at", datetime(2026, 3, 1, 12, 30, tzinfo=UTC)),
        ("quality_score", Decimal("7.5")),
        ("title", "Ünïcode title, with 'quotes'"),
    ):
        plain = pagination.decode_cursor(sort, pagination.encode(sort, (value, row)))
        assert plain == pagination.Cursor((value, row))
        carried = pagination.encode(sort, (value, row), total=1234, digest="abc")
        assert pagination.decode_cursor(sort, carried) == pagination.Cursor(
            (value, row), 1234, "abc"
        )
        assert pagination.decode(sort, carried) == (value, row)


def test_carried_total_only_applies_to_the_same_filters() -> None:
    persona = pagination.filters_digest(ConversationFilters(persona="Marcus"))
    assert persona == pagination.filters_digest(ConversationFilters(persona="Marcus"))
    assert persona != pagination.filters_digest(ConversationFilters(persona="Dana"))
    assert persona != pagination.filters_digest(ConversationFilters())
    cursor = pagination.Cursor((1, uuid4()), 40, persona)
    assert cursor.total_for(persona) == 40
    assert cursor.total_for(pagination.filters_digest(ConversationFilters())) is None
    assert pagination.Cursor((1, uuid4())).total_for(persona) is None


@pytest.mark.parametrize(
    "fields",
    [
        b'["-created_at", "2026-01-01T00:00:00+00:00"]',
        b'["-created_at", "2026-01-01T00:00:00+00:00", "x", 1]',
        b'["-created_at", "2026-01-01T00:00:00+00:00", 42]',
        b'{"sort": "-created_at"}',
        b'["title", "a", "00000000-0000-0000-0000-000000000000"]',
    ],
)
def test_malformed_cursors_are_422(fields: bytes) -> None:
    cursor = base64.urlsafe_b64encode(fields).decode().rstrip("=")
    with pytest.raises(ValidationFailed):
        pagination.decode_cursor("-created_at", cursor)


@pytest.mark.parametrize("value", ["99999", "-1.5", "10.1", "NaN", "Infinity", "x"])
def test_quality_key_outside_the_scale_is_422(value: str) -> None:
    """The SQL turns the key into a smallint: an edited cursor must not make that overflow."""
    fields = orjson.dumps(["-quality_score", value, str(uuid4())])
    cursor = base64.urlsafe_b64encode(fields).decode().rstrip("=")
    with pytest.raises(ValidationFailed):
        pagination.decode_cursor("-quality_score", cursor)
    assert pagination.decode("-quality_score", pagination.encode("-quality_score", (-1, uuid4())))
