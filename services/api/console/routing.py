"""The console's route class: security headers on every page, errors rendered as HTML pages."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.api.console.auth import CsrfRefused, SignInRequired
from services.api.console.render import render
from services.api.errors import validation_details
from shared.errors import DomainError
from shared.logging import get_logger

log = get_logger(__name__)

# No inline script or style anywhere: every script and stylesheet is a file under /console/static.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def secure(response: Response) -> Response:
    """Add the console's security headers (pages are never cached: they hold CSRF tokens)."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


def sign_in_redirect(request: Request) -> Response:
    """To the sign-in page, coming back here after (htmx gets HX-Redirect instead of a 303)."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/console/login?next={quote(target)}"
    if request.headers.get("hx-request"):
        return Response(status_code=204, headers={"HX-Redirect": location})
    return RedirectResponse(location, status_code=303)


def error_page(request: Request, status: int, title: str, message: str, **extra: Any) -> Response:
    """The HTML error page."""
    context = {"title": title, "message": message, "status": status, **extra}
    return render(request, "error.html", context, status_code=status)


async def _handle(request: Request, handler: Handler) -> Response:
    try:
        return await handler(request)
    except SignInRequired:
        return sign_in_redirect(request)
    except CsrfRefused:
        log.warning("console.csrf_refused", path=request.url.path)
        return render(request, "csrf_error.html", {"title": "Form expired"}, status_code=403)
    except DomainError as exc:
        body = exc.to_body()["error"]
        details = body.get("details")
        return error_page(
            request,
            exc.status_code,
            _TITLES.get(exc.status_code, "Error"),
            body["message"],
            details=details if isinstance(details, list) else [],
        )
    except RequestValidationError as exc:
        details = validation_details(exc.errors())
        return error_page(
            request, 422, "Invalid request", "The address or form has problems.", details=details
        )
    except StarletteHTTPException as exc:
        return error_page(
            request, exc.status_code, _TITLES.get(exc.status_code, "Error"), str(exc.detail)
        )


_TITLES = {
    400: "Bad request",
    403: "Not allowed",
    404: "Not found",
    409: "Not possible now",
    410: "Gone",
    422: "Invalid input",
    429: "Slow down",
    503: "Unavailable",
}


class ConsoleRoute(APIRoute):
    """Every console route: HTML errors, sign-in redirects, CSRF page, security headers."""

    def get_route_handler(self) -> Handler:
        """Wrap FastAPI's handler."""
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            return secure(await _handle(request, handler))

        return console_handler
