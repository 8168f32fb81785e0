"""Request and response bodies of turn edits and document versions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.conversations.text_stats import blank
from shared.models.bounds import INT4_MAX
from shared.models.text import Text

# A turn's text as the import accepts it; far above any real turn, far below a huge body.
MAX_TURN_CHARS = 100_000


class TurnEdit(BaseModel):
    """A turn's new text."""

    model_config = ConfigDict(extra="forbid")

    content: Annotated[Text, Field(min_length=1, max_length=MAX_TURN_CHARS)]
    expected_version: Annotated[int, Field(ge=1, le=INT4_MAX)] | None = Field(
        default=None,
        description="the document version the edit was made against; a different current "
        "version is a 409 (someone else edited first) instead of a silent overwrite",
    )

    @field_validator("content")
    @classmethod
    def _visible(cls, value: str) -> str:
        """Refuse text that shows nothing (spaces, zero-width characters), as the import does."""
        if blank(value):
            raise ValueError("must not be blank (only spaces or invisible characters)")
        return value


class VersionOut(BaseModel):
    """One version of the stored document."""

    version: int
    created_at: datetime
    created_by: UUID | None
    byte_size: int = Field(description="size of the stored gzip document in bytes")
    sha256: str = Field(description="sha256 of the stored gzip bytes")
    turn_count: int
    total_tokens: int
    summary: str | None = Field(description="what changed, e.g. 'edited turn 3'")
    current: bool


class VersionList(BaseModel):
    """Every version of a conversation's document, oldest first."""

    items: list[VersionOut]
    current_version: int
