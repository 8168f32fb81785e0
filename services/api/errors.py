"""Every error leaves the API in one shape: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import asyncpg
import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.responses import JSONBytes
from shared.errors import DomainError, RateLimited, Unauthorized, error_body
from shared.logging import get_logger
from shared.storage import StorageError

log = get_logger(__name__)

POSTGRES_DOWN = (
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.InterfaceError,
    ConnectionRefusedError,
)
_REDIS_DOWN = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def json_path(loc: Sequence[int | str]) -> str:
    """`("body", "items", 0, "x")` → `$.items[0].x` (query/path params keep their location)."""
    parts = list(loc)
    head = "$" if parts and parts[0] == "body" else str(parts[0]) if parts else "$"
    path = head
    for part in parts[1:]:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def validation_details(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """Every problem with its path, in a stable order."""
    return [
        {"path": json_path(err.get("loc", ())), "message": err.get("msg", ""), "type": err["type"]}
        for err in errors
    ]


def _respond(status: int, body: dict[str, Any], headers: Mapping[str, str] | None = None) -> Any:
    return JSONBytes(body, status_code=status, headers=headers)


def with_request_id(body: dict[str, Any], request_id: str | None) -> dict[str, Any]:
    """A 5xx body names its request id, so a user's report leads to the server's log lines."""
    details = body["error"]["details"]
    if details is None or isinstance(details, dict):
        body["error"]["details"] = {**(details or {}), "request_id": request_id}
    return body


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _domain(request: Request, exc: Exception) -> Any:
    assert isinstance(exc, DomainError)
    headers: dict[str, str] = {}
    if isinstance(exc, RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = 'Bearer realm="convoforge"'
    if exc.status_code == 503:
        headers["Retry-After"] = "5"
    body = exc.to_body()
    if exc.status_code >= 500:
        body = with_request_id(body, _request_id(request))
    return _respond(exc.status_code, body, headers or None)


async def _validation(_: Request, exc: Exception) -> Any:
    assert isinstance(exc, RequestValidationError)
    details = validation_details(exc.errors())
    message = f"{len(details)} problem(s) in the request"
    return _respond(422, error_body("validation_failed", message, details))


async def _http(_: Request, exc: Exception) -> Any:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _respond(exc.status_code, error_body(code, str(exc.detail)), exc.headers)


def _unavailable(part: str) -> Any:
    async def handler(request: Request, exc: Exception) -> Any:
        log.warning("api.dependency.unavailable", part=part, error=str(exc))
        body = error_body("unavailable", f"{part} is unavailable", {"unavailable": [part]})
        return _respond(503, with_request_id(body, _request_id(request)), {"Retry-After": "5"})

    return handler


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers that render the one error shape."""
    app.add_exception_handler(DomainError, _domain)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    for redis_exc in _REDIS_DOWN:
        app.add_exception_handler(redis_exc, _unavailable("redis"))
    app.add_exception_handler(StorageError, _unavailable("storage"))
    for pg_exc in POSTGRES_DOWN:
        app.add_exception_handler(pg_exc, _unavailable("postgres"))
    # Anything else is answered by services.api.failsafe.UnhandledErrorMiddleware.
