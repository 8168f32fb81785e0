"""Schemas of the operational routes."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel

from shared.models.user import UserRole


class Me(BaseModel):
    """The caller."""

    user_id: UUID
    email: str
    role: UserRole
    key_prefix: str


class Health(BaseModel):
    """Liveness."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Each dependency's state."""

    status: Literal["ready"]
    checks: dict[str, str]


class PingRequest(BaseModel):
    """Which worker service to round-trip a job through."""

    service: Literal["generator", "exporter", "janitor"]


class JobStatusOut(BaseModel):
    """A queued job's state and, once done, its result."""

    job_id: str
    service: str
    status: str
    success: bool | None = None
    result: Any = None
