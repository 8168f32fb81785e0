"""Console sign-in sessions and one-time sign-in links (not tenant rows: they find the tenant)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg
from pydantic import BaseModel

from shared.models.user import UserRole


class ConsoleSession(BaseModel):
    """A live console session and the user behind it."""

    id: UUID
    user_id: UUID
    email: str
    role: UserRole
    csrf_token: str
    expires_at: datetime


async def create_session(
    conn: asyncpg.Connection,
    *,
    token_hash: bytes,
    user_id: UUID,
    api_key_id: UUID | None,
    csrf_token: str,
    expires_at: datetime,
) -> UUID:
    """Store a new session (by the hash of its id) and drop the user's expired ones."""
    await conn.execute(
        """DELETE FROM console_sessions
            WHERE user_id = $1 AND (expires_at < now() OR ended_at IS NOT NULL)""",
        user_id,
    )
    session_id: UUID = await conn.fetchval(
        """INSERT INTO console_sessions (token_hash, user_id, api_key_id, csrf_token, expires_at)
           VALUES ($1, $2, $3, $4, $5) RETURNING id""",
        token_hash, user_id, api_key_id, csrf_token, expires_at,
    )  # fmt: skip
    return session_id


async def session_for_hash(conn: asyncpg.Connection, token_hash: bytes) -> ConsoleSession | None:
    """The unexpired, unended session with this hash whose key (if any) is not revoked."""
    row = await conn.fetchrow(
        """SELECT s.id, s.user_id, u.email, u.role, s.csrf_token, s.expires_at
             FROM console_sessions s
             JOIN users u ON u.id = s.user_id
             LEFT JOIN api_keys k ON k.id = s.api_key_id
            WHERE s.token_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
              AND (s.api_key_id IS NULL OR k.revoked_at IS NULL)""",
        token_hash,
    )
    return ConsoleSession.model_validate(dict(row)) if row else None


async def end_session(conn: asyncpg.Connection, token_hash: bytes) -> bool:
    """End a session now; False when there was no live one."""
    ended = await conn.fetchval(
        """UPDATE console_sessions SET ended_at = now()
            WHERE token_hash = $1 AND ended_at IS NULL RETURNING id""",
        token_hash,
    )
    return ended is not None


async def create_login_link(
    conn: asyncpg.Connection, *, token_hash: bytes, user_id: UUID, expires_at: datetime
) -> None:
    """Store a one-time link's hash."""
    await conn.execute(
        "INSERT INTO console_login_links (token_hash, user_id, expires_at) VALUES ($1, $2, $3)",
        token_hash, user_id, expires_at,
    )  # fmt: skip


async def link_owner(conn: asyncpg.Connection, token_hash: bytes) -> str | None:
    """The email a usable (unused, unexpired) link signs in as, without using it."""
    email: str | None = await conn.fetchval(
        """SELECT u.email FROM console_login_links l JOIN users u ON u.id = l.user_id
            WHERE l.token_hash = $1 AND l.used_at IS NULL AND l.expires_at > now()""",
        token_hash,
    )
    return email


async def consume_login_link(conn: asyncpg.Connection, token_hash: bytes) -> UUID | None:
    """Mark a usable link used and return its user; None when unknown, used or expired."""
    user_id: UUID | None = await conn.fetchval(
        """UPDATE console_login_links SET used_at = now()
            WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
        RETURNING user_id""",
        token_hash,
    )
    return user_id
