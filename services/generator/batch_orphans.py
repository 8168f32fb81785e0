"""Find the Message Batch a round created when the create call's answer was never recorded.

A round's row is written (`submitting`) before the create call. If the replica dies after the
API accepted the batch but before the answer was stored, or the call timed out or lost its
connection, the batch may exist and be billed while the row names no provider id. Submitting the
items again would pay for them twice, so the next pass first looks for that batch among the
workspace's batches (newest first): created in the round's window, holding exactly the round's
request count, not claimed by another of the tenant's rows. Every request's custom_id carries
the round's row id (`custom_id()`), so an ended candidate is proved by its first result line,
and results of a wrongly adopted batch would never land (`BatchRunner._one` checks the tag):
its items would simply go to a new round.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Final
from uuid import UUID

import asyncpg

from services.generator.llm.batches import BatchClient, BatchInfo
from services.generator.llm.client import LLMError
from shared.logging import get_logger
from shared.models.generation import MessageBatch

log = get_logger(__name__)
# Clocks of the API and PostgreSQL differ a little; a create answers within the client timeout.
CLOCK_SKEW: Final = timedelta(seconds=60)
MAX_PAGES: Final = 20
PAGE_SIZE: Final = 100


def custom_id(round_id: UUID, index: int) -> str:
    """`r<round row id>-<item index>` (matches ^[a-zA-Z0-9_-]{1,64}$: at most 44 characters)."""
    return f"r{round_id.hex}-{index}"


def parse_custom_id(custom: str) -> tuple[str, int] | None:
    """`(round tag, item index)` of a custom_id we sent, or None."""
    tag, _, digits = custom.rpartition("-")
    if not tag.startswith("r") or not digits.isdigit():
        return None
    return tag, int(digits)


def round_tag(round_id: UUID) -> str:
    """The tag every custom_id of the round starts with."""
    return f"r{round_id.hex}"


async def find_orphan(
    client: BatchClient, conn: asyncpg.Connection, row: MessageBatch, create_timeout: float
) -> BatchInfo | None:
    """The provider batch `row`'s create call made, or None when there is none to be found."""
    earliest = row.created_at - CLOCK_SKEW
    latest = row.created_at + CLOCK_SKEW + timedelta(seconds=create_timeout)
    candidates: list[BatchInfo] = []
    try:
        after: str | None = None
        for _ in range(MAX_PAGES):
            page, after = await client.list_page(after_id=after, limit=PAGE_SIZE)
            candidates += [b for b in page if _fits(b, row, earliest, latest)]
            oldest = page[-1].created_at if page else None
            if after is None or (oldest is not None and oldest < earliest):
                break
        claimed = await _claimed(conn, [b.id for b in candidates])
        nearest = sorted(candidates, key=lambda b: abs((b.created_at or latest) - row.created_at))
        for info in nearest:
            if info.id not in claimed and await _proved(client, info, row):
                return info
    except LLMError as error:
        log.warning("generator.batch.orphan_lookup_failed", code=error.code, status=error.status)
        raise
    return None


def _fits(info: BatchInfo, row: MessageBatch, earliest: datetime, latest: datetime) -> bool:
    created = info.created_at
    in_window = created is not None and earliest <= created <= latest
    return in_window and info.request_total == len(row.item_indexes)


async def _claimed(conn: asyncpg.Connection, provider_ids: list[str]) -> set[str]:
    if not provider_ids:
        return set()
    rows = await conn.fetch(
        "SELECT provider_batch_id FROM message_batches WHERE provider_batch_id = ANY($1::text[])",
        provider_ids,
    )
    return {str(r["provider_batch_id"]) for r in rows}


async def _proved(client: BatchClient, info: BatchInfo, row: MessageBatch) -> bool:
    """An ended batch shows its custom_ids: the first must carry the round's tag."""
    if not info.ended:
        return True  # proved when its results land (a stranger's results never do)
    async for result in client.results(info.id):
        parsed = parse_custom_id(result.custom_id)
        return parsed is not None and parsed[0] == round_tag(row.id)
    return False
