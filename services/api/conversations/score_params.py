"""The list's score query parameters: `<score>_min` / `<score>_max` for each judge score and
`quality_source`, declared once from shared.models.scores.SCORE_BOUNDS."""

from __future__ import annotations

import inspect
from typing import Annotated, Any

from fastapi import Query

from shared.models.scores import SCORE_BOUNDS, QualitySource


async def score_filter_params(**values: Any) -> dict[str, Any]:
    """The score parameters as given (range-checked by FastAPI); ConversationFilters checks
    min <= max together with the other filters, so one 422 lists every problem."""
    return values


def _parameters() -> list[inspect.Parameter]:
    params = []
    for score, (low, high) in SCORE_BOUNDS.items():
        for suffix, word in (("min", "at least"), ("max", "at most")):
            query = Query(ge=low, le=high, description=f"{score} {word} this ({low:g}-{high:g})")
            params.append(
                inspect.Parameter(
                    f"{score}_{suffix}",
                    inspect.Parameter.KEYWORD_ONLY,
                    default=None,
                    annotation=Annotated[float | None, query],
                )
            )
    sources = Query(description="where quality_score came from (any of)")
    params.append(
        inspect.Parameter(
            "quality_source",
            inspect.Parameter.KEYWORD_ONLY,
            default=[],
            annotation=Annotated[list[QualitySource], sources],
        )
    )
    return params


# FastAPI reads a dependency's parameters from its signature: sixteen bounds plus the source.
score_filter_params.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    _parameters(), return_annotation=dict[str, Any]
)
