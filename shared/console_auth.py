"""Console sign-in secrets: session ids, CSRF tokens and one-time links (CLI and API both mint)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import asyncpg

from shared.db.repositories import console_sessions as repo
from shared.db.repositories import users as users_repo
from shared.settings import Settings

LINK_PATH = "/console/login/link"


def new_secret() -> str:
    """A random URL-safe secret with 256 bits."""
    return secrets.token_urlsafe(32)


def hash_secret(secret: str) -> bytes:
    """Secrets are long and random, so one SHA-256 is enough (as for API keys)."""
    return hashlib.sha256(secret.encode()).digest()


class UnknownUser(Exception):
    """No user has this email."""


async def mint_login_link(conn: asyncpg.Connection, settings: Settings, email: str) -> str:
    """A one-time sign-in URL for `email`, valid CONSOLE_LOGIN_LINK_MINUTES."""
    user = await users_repo.get_user_by_email(conn, email)
    if user is None:
        raise UnknownUser(email)
    token = new_secret()
    expires = datetime.now(UTC) + timedelta(minutes=settings.console_login_link_minutes)
    await repo.create_login_link(
        conn, token_hash=hash_secret(token), user_id=user.id, expires_at=expires
    )
    return f"{settings.public_base_url.rstrip('/')}{LINK_PATH}?token={quote(token)}"
