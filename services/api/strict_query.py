"""Strict query strings: a parameter the operation does not declare is a 422 naming the allowed.

One app-wide dependency does it for every documented route, from the names FastAPI itself reads
for the route (its declared query parameters and those of its dependencies), so a misspelled
filter (`?staus=approved`) can never silently return everything.
"""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import Request
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from shared.errors import ValidationFailed

_ALLOWED: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> Iterator[str]:
    for param in dependant.query_params:
        yield param.alias
    for sub in dependant.dependencies:
        yield from _query_names(sub)


def allowed_query_names(route: APIRoute) -> frozenset[str]:
    """The query parameter names a route reads (aliases as sent on the wire)."""
    names = _ALLOWED.get(id(route))
    if names is None:
        names = frozenset(_query_names(route.dependant))
        _ALLOWED[id(route)] = names
    return names


async def reject_unknown_query(request: Request) -> None:
    """422 listing every unknown query parameter and the names the operation accepts."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute) or not route.include_in_schema:
        return
    allowed = allowed_query_names(route)
    unknown = sorted({name for name in request.query_params if name not in allowed})
    if not unknown:
        return
    accepted = sorted(allowed)
    hint = ", ".join(accepted) if accepted else "none"
    details = [
        {
            "path": f"query.{name}",
            "message": f"unknown query parameter; allowed: {hint}",
            "type": "unknown_query_parameter",
            "allowed": accepted,
        }
        for name in unknown
    ]
    raise ValidationFailed(f"unknown query parameter(s): {', '.join(unknown)}", details=details)
