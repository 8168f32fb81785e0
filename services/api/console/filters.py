"""The conversation list's URL: filters, sort, page size and position, and the chips they make."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast, get_args

from pydantic import ValidationError
from starlette.datastructures import QueryParams

from shared.models.query import ConversationFilters, SortKey

SORTS: tuple[str, ...] = get_args(SortKey)
PAGE_SIZES = (10, 25, 50, 100)
_MULTI = ("status", "tier", "quality_source")
_SINGLE = (
    "persona", "emotion", "topic", "q", "quality_min", "quality_max", "quality_overall_min",
    "quality_overall_max", "flagged", "near_duplicates",
)  # fmt: skip
# Pairs whose min > max is one model-level error without a location: the min is dropped.
_RANGES = (("quality_min", "quality_max"), ("quality_overall_min", "quality_overall_max"))
# The sort menu of the filter bar (the table headers sort on title, quality, status, created).
SORT_CHOICES = (
    ("-created_at", "Newest first"),
    ("created_at", "Oldest first"),
    ("-quality_score", "Quality, best first"),
    ("quality_overall", "Judge overall, weakest first"),
    ("-quality_overall", "Judge overall, best first"),
    ("coherence_score", "Coherence, weakest first"),
    ("empathy_score", "Empathy, weakest first"),
)
_LABELS = {
    "status": "Status",
    "tier": "Tier",
    "persona": "Persona",
    "emotion": "Emotion",
    "topic": "Topic",
    "q": "Search",
    "quality_min": "Quality ≥",
    "quality_max": "Quality ≤",
    "quality_overall_min": "Judge overall ≥",
    "quality_overall_max": "Judge overall ≤",
    "quality_source": "Scored by",
    "flagged": "Flagged",
    "near_duplicates": "Near-duplicates",
}
_VALUE_LABELS = {"near_duplicates": {"true": "only", "false": "hidden"}}


@dataclass
class ListView:
    """Everything the URL says about the list, already validated."""

    filters: ConversationFilters
    sort: SortKey
    limit: int
    cursor: str | None
    start: int
    base: dict[str, Any]  # the filter and sort parameters, to rebuild links
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def chips(self) -> list[dict[str, Any]]:
        """One removable chip per active filter value."""
        chips = []
        for key in (*_MULTI, *_SINGLE):
            value = self.base.get(key)
            values = value if isinstance(value, list) else [value] if value else []
            for item in values:
                rest = [v for v in values if v != item] if key in _MULTI else None
                chips.append(
                    {
                        "key": key,
                        "label": _LABELS[key],
                        "value": _VALUE_LABELS.get(key, {}).get(str(item), str(item)),
                        "remove": {**self.base, key: rest},
                    }
                )
        return chips


def _clean(params: QueryParams) -> dict[str, Any]:
    raw: dict[str, Any] = {key: [v for v in params.getlist(key) if v.strip()] for key in _MULTI}
    for key in _SINGLE:
        value = (params.get(key) or "").strip()
        if value:
            raw[key] = value
    return raw


def parse(params: QueryParams) -> ListView:
    """The view a URL describes; invalid filter values are dropped and reported by field."""
    raw = _clean(params)
    errors: dict[str, str] = {}
    try:
        filters = ConversationFilters(**raw)
    except ValidationError as exc:
        for err in exc.errors():
            if err["loc"]:
                name = str(err["loc"][0])
                errors[name] = err["msg"]
                raw.pop(name, None)
        _drop_crossed(raw, errors)
        filters = ConversationFilters(**raw)
    asked = params.get("sort") or "-created_at"
    sort = cast(SortKey, asked if asked in SORTS else "-created_at")
    limit = _int(params.get("limit"), 25)
    limit = limit if limit in PAGE_SIZES else 25
    base = {
        **raw,
        "sort": sort if sort != "-created_at" else None,
        "limit": limit if limit != 25 else None,
    }
    cursor = params.get("cursor") or None
    start = max(1, _int(params.get("start"), 1)) if cursor else 1
    return ListView(filters, sort, limit, cursor, start, base, errors)


def _drop_crossed(raw: dict[str, Any], errors: dict[str, str]) -> None:
    """Drop the min of every range whose min is greater than its max, reporting each."""
    for low, high in _RANGES:
        if low in raw and high in raw and float(raw[low]) > float(raw[high]):
            errors[low] = f"must not be greater than {high}"
            raw.pop(low)


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def sort_link(view: ListView, column: str) -> dict[str, Any]:
    """The query for a sortable header: ascending first, then toggling."""
    current = view.sort
    target = f"-{column}" if current == column else column
    return {**view.base, "sort": target}
