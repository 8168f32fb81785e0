"""Sign-in with an API key or a one-time link, and sign-out."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request, Response
from fastapi.responses import RedirectResponse

from services.api.console import auth
from services.api.console.render import render
from services.api.console.routing import ConsoleRoute
from services.api.deps import PoolDep, SettingsDep
from shared.console_auth import hash_secret, new_secret
from shared.db.pool import acquire
from shared.db.repositories import console_sessions as sessions_repo
from shared.db.repositories import users as users_repo
from shared.security import hash_key, looks_like_key

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
PreCsrf = Depends(auth.require_pre_csrf)


def safe_next(value: str | None) -> str:
    """Only a console path (never another site, `//host` or `/\\host`) is a place to return to."""
    if value and value.startswith("/console") and not value.startswith(("//", "/\\")):
        return value
    return "/console"


def _form_page(
    request: Request, template: str, context: dict[str, Any], status: int = 200
) -> Response:
    token = request.cookies.get(auth.PRE_CSRF_COOKIE) or new_secret()
    response = render(request, template, {"csrf_token": token, **context}, status_code=status)
    auth.set_cookie(request, response, auth.PRE_CSRF_COOKIE, token, max_age=3600)
    return response


def _signed_in(request: Request, token: str, target: str, hours: int) -> Response:
    response = RedirectResponse(safe_next(target), status_code=303)
    auth.set_cookie(request, response, auth.SESSION_COOKIE, token, max_age=hours * 3600)
    response.delete_cookie(auth.PRE_CSRF_COOKIE, path="/console")
    return response


@router.get("/login")
async def login_page(request: Request, next: str | None = None) -> Response:
    """The sign-in form."""
    return _form_page(
        request, "login.html", {"title": "Sign in", "next": safe_next(next), "error": None}
    )


@router.post("/login", dependencies=[PreCsrf])
async def login(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    api_key: Annotated[str, Form(max_length=200)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/console",
) -> Response:
    """Check the key, open a session, set the cookie."""
    key = api_key.strip()
    async with acquire(pool) as conn:
        principal = (
            await users_repo.principal_for_hash(conn, hash_key(key))
            if looks_like_key(key)
            else None
        )
        if principal is None:
            context = {
                "title": "Sign in",
                "next": safe_next(next),
                "error": "That API key is not valid (unknown or revoked).",
            }
            return _form_page(request, "login.html", context, status=401)
        token = await auth.open_session(
            conn, settings, user_id=principal.user_id, api_key_id=principal.key_id
        )
    return _signed_in(request, token, next, settings.console_session_hours)


@router.get("/login/link")
async def link_page(request: Request, pool: PoolDep, token: str = "") -> Response:
    """Confirm a one-time link (a GET never uses it up: link scanners must not sign anyone in)."""
    email = None
    if 0 < len(token) <= 100:
        async with acquire(pool) as conn:
            email = await sessions_repo.link_owner(conn, hash_secret(token))
    context = {"title": "Sign in", "email": email, "token": token}
    return _form_page(request, "login_link.html", context, status=200 if email else 410)


@router.post("/login/link", dependencies=[PreCsrf])
async def use_link(
    request: Request,
    pool: PoolDep,
    settings: SettingsDep,
    token: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    """Use the link once and open a session."""
    async with acquire(pool) as conn, conn.transaction():
        user_id = await sessions_repo.consume_login_link(conn, hash_secret(token))
        if user_id is None:
            context = {"title": "Sign in", "email": None, "token": ""}
            return _form_page(request, "login_link.html", context, status=410)
        session = await auth.open_session(conn, settings, user_id=user_id, api_key_id=None)
    return _signed_in(request, session, "/console", settings.console_session_hours)


@router.post("/logout")
async def logout(request: Request, pool: PoolDep, _: auth.CsrfDep) -> Response:
    """End the session server-side and drop the cookie."""
    await auth.end_session(pool, request)
    response = RedirectResponse("/console/login", status_code=303)
    response.delete_cookie(auth.SESSION_COOKIE, path="/console")
    return response
