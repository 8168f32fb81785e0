"""Keyword-only factories for rows the tests need."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg

from shared.db.repositories import users as users_repo
from shared.models.user import User, UserRole
from shared.security import mint_key


@dataclass(frozen=True)
class Account:
    """A user with a working API key."""

    user: User
    key: str
    prefix: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this account."""
        return {"Authorization": f"Bearer {self.key}"}


async def create_user(
    conn: asyncpg.Connection, *, email: str | None = None, role: UserRole = UserRole.USER
) -> User:
    """A user with a unique email unless one is given."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.com"
    return await users_repo.create_user(conn, email=email, role=role)


async def create_account(
    conn: asyncpg.Connection, *, email: str | None = None, role: UserRole = UserRole.USER
) -> Account:
    """A user and an API key for it."""
    user = await create_user(conn, email=email, role=role)
    key = mint_key()
    await users_repo.insert_api_key(conn, user_id=user.id, name="test", key=key)
    return Account(user=user, key=key.plaintext, prefix=key.prefix)


async def set_scores(conn: asyncpg.Connection, id: uuid.UUID | str, **columns: object) -> None:
    """Set judge columns of a conversation directly (as the judge would), in the caller's
    tenant transaction; `quality_score` follows `quality_overall` unless given."""
    if "quality_overall" in columns and "quality_score" not in columns:
        overall = columns["quality_overall"]
        columns["quality_score"] = None if overall is None else round(10 * float(overall), 1)  # type: ignore[arg-type]
    names = list(columns)
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(names, start=2))
    await conn.execute(
        f"UPDATE conversations SET {assignments} WHERE id = $1",
        uuid.UUID(str(id)),
        *columns.values(),
    )
