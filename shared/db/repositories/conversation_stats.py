"""The tenant's conversation counters (migration 0018): summary + pending deltas, rolled up.

Triggers on `conversations` append every write's net change to `conversation_stat_deltas`;
`read` sums `conversation_stats` and the pending deltas in one statement (exact in any
snapshot), and `rollup` folds the committed deltas into the summary. Dimensions: `status`,
`tier` and `histogram:<name>` for each numeric column registered with
`conversation_stats_add_histogram` (bucket values "0".."buckets-1", "none" for NULL).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from uuid import UUID

import asyncpg

STATUS = "status"
TIER = "tier"
HISTOGRAM_PREFIX = "histogram:"
UNSCORED = "none"
# Past this many pending delta rows a read folds them into the summary (in its transaction).
ROLLUP_PENDING_ROWS = 200


@dataclass(frozen=True)
class Counter:
    """How many conversations have a value, and the sum of the dimension's column over them."""

    n: int
    total: Decimal


@dataclass
class Counters:
    """An owner's counters by dimension, then value (zero counts are absent)."""

    dimensions: dict[str, dict[str, Counter]] = field(default_factory=dict)
    pending_rows: int = 0

    def counts(self, dimension: str) -> dict[str, int]:
        """value → count for one dimension."""
        return {value: c.n for value, c in self.dimensions.get(dimension, {}).items()}

    def histogram(self, name: str, buckets: int) -> dict[str, int]:
        """Bucket "0".."buckets-1" → count (unscored rows left out) for a registered column."""
        found = self.counts(HISTOGRAM_PREFIX + name)
        return {str(bucket): found.get(str(bucket), 0) for bucket in range(buckets)}

    def mean(self, name: str) -> float | None:
        """The mean of a histogram's column over the rows where it is set."""
        scored = [c for value, c in self.dimensions.get(HISTOGRAM_PREFIX + name, {}).items()
                  if value != UNSCORED]  # fmt: skip
        n = sum(c.n for c in scored)
        return float(sum((c.total for c in scored), Decimal(0)) / n) if n else None

    @property
    def total(self) -> int:
        """Every (visible, not soft-deleted) conversation: the sum over statuses."""
        return sum(self.counts(STATUS).values())


_READ = """
SELECT dimension, value, sum(n)::bigint AS n, sum(total) AS total,
       count(*) FILTER (WHERE pending) AS pending
  FROM (SELECT dimension, value, n, total, false AS pending
          FROM conversation_stats WHERE owner_id = $1
        UNION ALL
        SELECT dimension, value, n, total, true
          FROM conversation_stat_deltas WHERE owner_id = $1) counters
 GROUP BY dimension, value
"""


async def read(conn: asyncpg.Connection, owner_id: UUID) -> Counters:
    """The owner's counters, exact as of this statement's snapshot."""
    counters = Counters()
    for row in await conn.fetch(_READ, owner_id):
        counters.pending_rows += row["pending"]
        if row["n"] == 0:
            continue
        dimension = counters.dimensions.setdefault(row["dimension"], {})
        dimension[row["value"]] = Counter(n=row["n"], total=row["total"])
    return counters


async def rollup(conn: asyncpg.Connection, owner_id: UUID) -> int:
    """Fold the owner's committed deltas into the summary; the number of delta rows moved
    (0 when another transaction is rolling the same owner up)."""
    moved: int = await conn.fetchval("SELECT conversation_stats_rollup($1)", owner_id)
    return moved


async def read_and_maintain(conn: asyncpg.Connection, owner_id: UUID) -> Counters:
    """`read`, then a rollup when the deltas have piled up (the answer is the same either way)."""
    counters = await read(conn, owner_id)
    if counters.pending_rows > ROLLUP_PENDING_ROWS:
        await rollup(conn, owner_id)
    return counters
