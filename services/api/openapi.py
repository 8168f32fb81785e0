"""The OpenAPI document as the contract: one error schema, bearer auth, each op's real errors.

FastAPI documents a `{"detail": ...}` 422 that this API never sends and no other error. Here the
generated document is rewritten once, from what each route really does: an authenticated route
(one that depends on `get_principal`) can answer 401, 429 and 503; a path parameter means 404; a
body means 413; every route can answer 422 (bodies, parameters and strict query strings); and a
route names any other status it can answer in `responses=errors(409, 410)`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field

from services.api.deps import get_principal
from services.api.openapi_examples import REQUEST_EXAMPLES

ERROR_REF = {"$ref": "#/components/schemas/ErrorResponse"}
SECURITY_SCHEME = "bearerAuth"
_FASTAPI_ERRORS = ("HTTPValidationError", "ValidationError")

DESCRIPTIONS: dict[int, str] = {
    400: "The body cannot be parsed (not JSON).",
    401: "Missing, malformed, unknown or revoked API key.",
    403: "Authenticated, but not allowed.",
    404: "No such resource for this caller (another tenant's ids answer exactly the same).",
    409: "The resource's state does not allow this request.",
    410: "The resource existed but has expired.",
    413: "The request body is over API_BODY_LIMIT_BYTES.",
    422: "Validation failed: `details` lists every problem with its path.",
    429: "Rate limited: retry after `Retry-After` seconds.",
    503: "A dependency (PostgreSQL, Redis or storage) is unavailable; `details` names it.",
}
_INT_HEADER = {"schema": {"type": "integer"}}
_RATE_HEADERS = {
    "RateLimit-Limit": {**_INT_HEADER, "description": "requests allowed per minute for the key"},
    "RateLimit-Remaining": {**_INT_HEADER, "description": "requests left in this minute"},
    "RateLimit-Reset": {**_INT_HEADER, "description": "seconds until the window resets"},
}
_RETRY_AFTER = {"Retry-After": {**_INT_HEADER, "description": "seconds to wait"}}


class ErrorInfo(BaseModel):
    """What went wrong: a stable machine code, a sentence, and structured details."""

    code: str = Field(examples=["validation_failed"])
    message: str = Field(examples=["1 problem(s) in the request"])
    details: Any = Field(
        default=None,
        description="Problems by path for 422 (`[{path, message, type}]`), else code-specific.",
    )


class ErrorResponse(BaseModel):
    """The one shape of every error response."""

    error: ErrorInfo


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` for the statuses a route answers beyond what is derived from its shape."""
    return {code: {"description": DESCRIPTIONS[code], "model": ErrorResponse} for code in statuses}


def _calls(dependant: Dependant) -> Iterable[Callable[..., Any]]:
    for sub in dependant.dependencies:
        if sub.call is not None:
            yield sub.call
        yield from _calls(sub)


def authenticated(route: Any) -> bool:
    """Whether the route needs a bearer API key."""
    return get_principal in set(_calls(route.dependant))


def error_statuses(route: Any) -> set[int]:
    """Every error status the route can answer."""
    statuses = {422}
    if authenticated(route):
        statuses |= {401, 429, 503}
    if route.dependant.path_params:
        statuses.add(404)
    if route.body_field is not None or "requestBody" in (route.openapi_extra or {}):
        statuses |= {400, 413}  # a body that is not JSON at all; one over the size limit
    statuses |= {int(code) for code in route.responses if str(code).isdigit() and int(code) >= 400}
    return statuses


def _error_response(status: int, existing: dict[str, Any] | None) -> dict[str, Any]:
    description = (existing or {}).get("description") or DESCRIPTIONS.get(status, "Error")
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if status in (429, 503):
        response["headers"] = dict(_RETRY_AFTER)
    return response


def _fix_success(op: dict[str, Any], *, rate_limited: bool) -> None:
    for code, response in op["responses"].items():
        status = int(code)
        if 300 <= status < 400:
            response.pop("content", None)
            location = {"schema": {"type": "string"}, "description": "where the file is"}
            response.setdefault("headers", {})["Location"] = location
        content = response.get("content", {})
        if len(content) > 1 and content.get("application/json", {}).get("schema") == {}:
            del content["application/json"]  # FastAPI's placeholder next to the real media type
        if rate_limited and status < 300:
            response.setdefault("headers", {}).update(_RATE_HEADERS)


def _fix_operation(route: Any, op: dict[str, Any]) -> None:
    responses = op.setdefault("responses", {})
    for status in error_statuses(route):
        responses[str(status)] = _error_response(status, responses.get(str(status)))
    _fix_success(op, rate_limited=authenticated(route))
    if authenticated(route):
        op["security"] = [{SECURITY_SCHEME: []}]
    example = REQUEST_EXAMPLES.get(route.name)
    body = op.get("requestBody", {}).get("content", {}).get("application/json")
    if example is not None and body is not None:
        body["example"] = example


def documented_routes(app: FastAPI) -> list[Any]:
    """Every route in the document, as included (prefix, tags and app dependencies applied)."""
    return [
        ctx
        for ctx in iter_route_contexts(app.routes)
        if isinstance(ctx.original_route, APIRoute) and ctx.include_in_schema
    ]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, rewritten to say what the API really answers."""
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    for route in documented_routes(app):
        for method in route.methods:
            op = schema["paths"][route.path_format].get(method.lower())
            if op is not None:
                _fix_operation(route, op)
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in _FASTAPI_ERRORS:
        schemas.pop(name, None)
    error = ErrorResponse.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(error.pop("$defs", {}))
    schemas["ErrorResponse"] = error
    components["securitySchemes"] = {
        SECURITY_SCHEME: {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `convoforge create-api-key EMAIL` prints one.",
        }
    }
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the rewritten document at /openapi.json (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def operation_id(route: APIRoute) -> str:
    """Operation ids are the route functions' names: `list_conversations`, `get_export`."""
    name: str = route.name
    return name
