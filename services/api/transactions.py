"""The request transaction: committed before the response is built, its failure a 5xx."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg

from shared.db.pool import tenant_transaction
from shared.errors import DomainError, Unavailable
from shared.logging import get_logger

log = get_logger(__name__)

_CONNECTION_LOST = (
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    OSError,
)


class CommitFailed(DomainError):
    """PostgreSQL refused the COMMIT: the transaction was rolled back, nothing changed."""

    status_code = 500
    code = "commit_failed"


def commit_error(exc: BaseException) -> DomainError:
    """The client-facing error for an exception raised by COMMIT."""
    if isinstance(exc, _CONNECTION_LOST):
        return Unavailable(
            "the connection to PostgreSQL was lost while committing; the outcome is unknown,"
            " read the resource before retrying",
            details={"unavailable": ["postgres"]},
        )
    if isinstance(exc, asyncpg.TransactionRollbackError):
        return Unavailable(
            "the transaction conflicted with another one and was rolled back; nothing changed,"
            " retry the request",
            details={"sqlstate": exc.sqlstate},
            code="transaction_conflict",
        )
    sqlstate = getattr(exc, "sqlstate", None)
    return CommitFailed(
        "the change could not be committed and was rolled back; nothing changed",
        details={"sqlstate": sqlstate},
    )


@asynccontextmanager
async def committed_transaction(
    pool: asyncpg.Pool, owner_id: UUID
) -> AsyncIterator[asyncpg.Connection]:
    """A tenant transaction whose failed COMMIT becomes a client-facing 5xx error."""
    committing = False
    try:
        async with tenant_transaction(pool, owner_id) as conn:
            yield conn
            committing = True
    except (asyncpg.PostgresError, *_CONNECTION_LOST) as exc:
        if not committing:
            raise
        log.warning("api.commit_failed", error_type=type(exc).__name__, error=str(exc))
        raise commit_error(exc) from exc
