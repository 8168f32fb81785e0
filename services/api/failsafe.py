"""The last line of defence: an unexpected exception becomes a 500 JSON error, in place."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import POSTGRES_DOWN, with_request_id
from shared.errors import error_body
from shared.logging import get_logger

log = get_logger(__name__)


class UnhandledErrorMiddleware:
    """Answer 500 (503 for a lost database) with the request id, and keep the connection open.

    Starlette's own server-error handler re-raises after answering, which makes uvicorn close
    the keep-alive connection; this middleware sits inside it and never re-raises.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            request_id = scope.get("state", {}).get("request_id")
            if started:
                # Half a response is out: nothing honest can follow, so the server closes it.
                log.exception("api.error_after_response_started", request_id=request_id)
                return
            await _answer(send, exc, request_id)


def _classify(exc: Exception) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]]:
    if isinstance(exc, POSTGRES_DOWN) or (isinstance(exc, OSError) and exc.errno is not None):
        log.warning("api.dependency.unavailable", part="postgres", error=str(exc))
        body = error_body("unavailable", "postgres is unavailable", {"unavailable": ["postgres"]})
        return 503, body, [(b"retry-after", b"5")]
    log.exception("api.unhandled_error", error_type=type(exc).__name__)
    return 500, error_body("internal_error", "internal server error"), []


async def _answer(send: Send, exc: Exception, request_id: str | None) -> None:
    status, body, headers = _classify(exc)
    body = with_request_id(body, request_id)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *headers],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
