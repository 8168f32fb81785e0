"""Users and API keys (not tenant-scoped: they are how a tenant is found)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from shared.models.user import ApiKey, Principal, User, UserRole
from shared.security import NewKey


async def create_user(conn: asyncpg.Connection, *, email: str, role: UserRole) -> User:
    """Insert a user; raises asyncpg.UniqueViolationError for a taken email."""
    row = await conn.fetchrow(
        "INSERT INTO users (email, role) VALUES ($1, $2) RETURNING id, email, role, created_at",
        email.strip().lower(),
        role.value,
    )
    assert row is not None
    return User.model_validate(dict(row))


async def get_user_by_email(conn: asyncpg.Connection, email: str) -> User | None:
    """The user with this email, if any."""
    row = await conn.fetchrow(
        "SELECT id, email, role, created_at FROM users WHERE email = $1", email.strip().lower()
    )
    return User.model_validate(dict(row)) if row else None


async def list_user_ids(conn: asyncpg.Connection) -> list[UUID]:
    """Every user id (workers that sweep all tenants act as each in turn)."""
    return [row["id"] for row in await conn.fetch("SELECT id FROM users ORDER BY id")]


async def insert_api_key(
    conn: asyncpg.Connection, *, user_id: UUID, name: str, key: NewKey
) -> ApiKey:
    """Store a new key's hash and prefix."""
    row = await conn.fetchrow(
        """INSERT INTO api_keys (user_id, name, prefix, key_hash) VALUES ($1, $2, $3, $4)
           RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at""",
        user_id,
        name,
        key.prefix,
        key.digest,
    )
    assert row is not None
    return ApiKey.model_validate(dict(row))


async def principal_for_hash(conn: asyncpg.Connection, digest: bytes) -> Principal | None:
    """The user behind an unrevoked key with this hash."""
    row = await conn.fetchrow(
        """SELECT u.id AS user_id, u.email, u.role, k.id AS key_id, k.prefix AS key_prefix,
                  k.last_used_at AS key_last_used_at
             FROM api_keys k JOIN users u ON u.id = k.user_id
            WHERE k.key_hash = $1 AND k.revoked_at IS NULL""",
        digest,
    )
    return Principal.model_validate(dict(row)) if row else None


async def touch_api_key(conn: asyncpg.Connection, key_id: UUID) -> None:
    """Record that a key was used just now."""
    await conn.execute("UPDATE api_keys SET last_used_at = now() WHERE id = $1", key_id)


async def revoke_api_key(conn: asyncpg.Connection, prefix: str) -> ApiKey | None:
    """Revoke the key with this prefix; None when there is no such (active) key."""
    row = await conn.fetchrow(
        """UPDATE api_keys SET revoked_at = now()
            WHERE prefix = $1 AND revoked_at IS NULL
        RETURNING id, user_id, name, prefix, created_at, last_used_at, revoked_at""",
        prefix,
    )
    return ApiKey.model_validate(dict(row)) if row else None
