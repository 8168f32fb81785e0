"""Users, API keys and the authenticated principal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from pydantic import BaseModel


class UserRole(StrEnum):
    """What a user may do."""

    USER = "user"
    ADMIN = "admin"


class User(BaseModel):
    """A person or service account that owns data."""

    id: UUID
    email: str
    role: UserRole
    created_at: datetime


class ApiKey(BaseModel):
    """An API key's stored facts (never the key itself)."""

    id: UUID
    user_id: UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class Principal(BaseModel):
    """Who is calling: the user behind a valid, unrevoked key."""

    user_id: UUID
    email: str
    role: UserRole
    key_id: UUID
    key_prefix: str
    key_last_used_at: datetime | None
