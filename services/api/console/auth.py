"""Console sign-in: session cookie → session, the tenant transaction, CSRF checks."""

from __future__ import annotations

import hmac
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

import asyncpg
from fastapi import Depends, Request, Response

from services.api.deps import PoolDep
from shared.console_auth import hash_secret, new_secret
from shared.db.pool import acquire, tenant_transaction
from shared.db.repositories import console_sessions as repo
from shared.db.repositories.console_sessions import ConsoleSession
from shared.settings import Settings

SESSION_COOKIE = "cf_session"
# Before sign-in there is no session to hold a CSRF token: the login forms use a cookie that
# the form must repeat (double submit), so another site cannot sign a browser in as itself.
PRE_CSRF_COOKIE = "cf_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class SignInRequired(Exception):
    """No live session: the page redirects to sign-in."""


class CsrfRefused(Exception):
    """A state-changing request without the right CSRF token."""


def is_https(request: Request) -> bool:
    """Served over HTTPS, directly or behind a proxy that says so."""
    forwarded = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or forwarded == "https"


def set_cookie(request: Request, response: Response, name: str, value: str, max_age: int) -> None:
    """HttpOnly, SameSite=Lax, Secure behind HTTPS; scoped to the console."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        httponly=True,
        samesite="lax",
        secure=is_https(request),
    )


async def open_session(
    conn: asyncpg.Connection,
    settings: Settings,
    *,
    user_id: UUID,
    api_key_id: UUID | None,
) -> str:
    """Create a server-side session; returns the opaque id for the cookie (stored hashed)."""
    token = new_secret()
    expires = datetime.now(UTC) + timedelta(hours=settings.console_session_hours)
    await repo.create_session(
        conn,
        token_hash=hash_secret(token),
        user_id=user_id,
        api_key_id=api_key_id,
        csrf_token=new_secret(),
        expires_at=expires,
    )
    return token


async def end_session(pool: asyncpg.Pool, request: Request) -> None:
    """End the cookie's session server-side (the cookie alone is then worthless)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        async with acquire(pool) as conn:
            await repo.end_session(conn, hash_secret(token))


async def current_session(request: Request, pool: PoolDep) -> ConsoleSession:
    """The live session of the cookie, or SignInRequired."""
    token = request.cookies.get(SESSION_COOKIE)
    if not token or len(token) > 100:
        raise SignInRequired
    async with acquire(pool) as conn:
        session = await repo.session_for_hash(conn, hash_secret(token))
    if session is None:
        raise SignInRequired
    request.state.console_session = session
    request.state.owner_id = str(session.user_id)
    return session


SessionDep = Annotated[ConsoleSession, Depends(current_session)]


async def console_connection(
    session: SessionDep, pool: PoolDep
) -> AsyncIterator[asyncpg.Connection]:
    """The request's tenant transaction; committed when the route returns, before the response."""
    async with tenant_transaction(pool, session.user_id) as conn:
        yield conn


# scope="function": the transaction ends when the route function returns, so a page that says
# "approved" is only sent once the approval is committed.
ConsoleConnDep = Annotated[asyncpg.Connection, Depends(console_connection, scope="function")]


async def _submitted_token(request: Request) -> str:
    header = request.headers.get(CSRF_HEADER)
    if header:
        return header
    content_type = request.headers.get("content-type", "")
    if "form" not in content_type:
        return ""
    value = (await request.form()).get(CSRF_FIELD)
    return value if isinstance(value, str) else ""


def _same(a: str, b: str) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(a.encode(), b.encode())


async def require_csrf(request: Request, session: SessionDep) -> ConsoleSession:
    """A POST must repeat the session's CSRF token (form field or X-CSRF-Token header)."""
    if not _same(await _submitted_token(request), session.csrf_token):
        raise CsrfRefused
    return session


async def require_pre_csrf(request: Request) -> None:
    """A sign-in POST must repeat the cf_csrf cookie's token."""
    if not _same(await _submitted_token(request), request.cookies.get(PRE_CSRF_COOKIE, "")):
        raise CsrfRefused


CsrfDep = Annotated[ConsoleSession, Depends(require_csrf)]
