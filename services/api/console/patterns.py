"""The living style guide (every component on one page) and the console's 404 page."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from uuid import uuid4

from fastapi import APIRouter, Request, Response

from services.api.console.auth import SessionDep
from services.api.console.charts import bars
from services.api.console.render import render
from services.api.console.routing import ConsoleRoute, error_page
from shared.models.conversation import ConversationStatus, Tier

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
fallback = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)


@router.get("/patterns")
async def patterns(request: Request, _: SessionDep) -> Response:
    """Every component with sample data."""
    context = {
        "title": "Patterns",
        "statuses": list(ConversationStatus),
        "tiers": list(Tier),
        "scores": [None, 3.2, 6.5, 9.1],
        "chart": bars([(str(i), n) for i, n in enumerate([0, 1, 3, 5, 8, 13, 21, 18, 9, 4])]),
        "job": SimpleNamespace(id=uuid4(), progress_percent=62.5),
        "now": datetime.now(UTC),
    }
    return render(request, "patterns.html", context)


@fallback.get("/{rest:path}")
async def not_found(request: Request, rest: str) -> Response:
    """Any other console address."""
    return error_page(request, 404, "Not found", "There is no console page at this address.")
