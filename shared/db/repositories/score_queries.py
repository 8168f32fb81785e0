"""The judge's scores in the conversation list and stats: filter clauses, sort keys, distributions.

Kept apart from conversation_queries so the score distributions can be folded into whatever
computes the rest of the stats (one pass over the tenant's rows, FILTER aggregates).
"""

from __future__ import annotations

from typing import Any, Final
from uuid import UUID

import asyncpg

from shared.db.repositories.conversation_stats import Counters
from shared.models.scores import SCORE_BOUNDS, SCORE_COLUMNS, QualitySource, ScoreFilters

# Histogram buckets per score: ten 0.1-wide buckets on 0-1 (bucket "0.9" holds 0.9-1.0, 1.0
# included), four 1-wide buckets on 1-5 (bucket "4" holds 4-5, 5 included).
UNIT_BUCKETS = 10
FIVE_POINT_BUCKETS = 4


def sort_column(score: str) -> str:
    """The stored non-null sort key of a score column (0017): NULL sorts as -1."""
    return f"{score.removesuffix('_score')}_key"


def filter_clauses(filters: ScoreFilters) -> list[tuple[str, Any]]:
    """(template with one `{}` for the parameter, value) per score filter that is set.

    A bound is a condition on the score's stored sort key (0017), NULL being -1 there: a min
    (never below the range, so above -1) is `key >= min`, a max is `key <= max` plus the key
    at least the range's low end (not NULL). Equivalent to the score column's bounds, but an
    index condition of the key's index, so `sort=-quality_overall&quality_overall_max=0.1`
    starts at its first match instead of walking every better row. Compared as a real, as the
    column holds it (0.24 as a real is below 0.24 as a double, and would miss its own row);
    float4 comparisons are LEAKPROOF, so they stay index conditions under row-level security.
    """
    clauses: list[tuple[str, Any]] = []
    for column, op, value in filters.score_bounds():
        key = sort_column(column)
        clauses.append((f"{key} {op} {{}}::real", value))
        if op == "<=":
            clauses.append((f"{key} >= {{}}::real", SCORE_BOUNDS[column][0]))
    sources = [source.value for source in filters.quality_source]
    if len(sources) == 1:
        clauses.append(("quality_source = {}", sources[0]))
    elif sources:
        clauses.append(("quality_source = ANY({}::text[])", sources))
    return clauses


def _buckets(score: str) -> int:
    low, high = SCORE_BOUNDS[score]
    return UNIT_BUCKETS if high - low == 1 else FIVE_POINT_BUCKETS


def _bucket_sql(score: str) -> str:
    """A score's bucket index (NULL when not scored), computed once per row. The epsilon reads a
    real as written: 0.7 is stored as 0.69999999 and would otherwise fall in bucket 6 (a real
    holds ~7 significant digits, so 1e-5 moves nothing that is not on a boundary)."""
    low, high = SCORE_BOUNDS[score]
    per_unit = _buckets(score) / (high - low)
    return f"floor(({score}::float8 - {low:g}) * {per_unit:g} + 1e-5)::int AS {score}__bucket"


def _distribution_columns(score: str) -> list[str]:
    last = _buckets(score) - 1
    bucket = f"{score}__bucket"
    # The top of the range (1.0, 5) is in the last bucket.
    columns = [f"count({score}) AS {score}__n", f"avg({score})::float8 AS {score}__mean"]
    columns += [f"count(*) FILTER (WHERE {bucket} = {i}) AS {score}__b{i}" for i in range(last)]
    columns.append(f"count(*) FILTER (WHERE {bucket} >= {last}) AS {score}__b{last}")
    return columns


def _source_columns() -> list[str]:
    return [
        f"count(*) FILTER (WHERE quality_source = '{source.value}') AS source__{source.value}"
        for source in QualitySource
    ] + ["count(*) FILTER (WHERE quality_source IS NULL) AS source__none"]


# One scan of the tenant's live rows: the bucket of each score computed once per row in the
# inner SELECT, every figure an integer-compare FILTER aggregate over it (docs/quality.md has
# the cost at 100,000 rows, bench/scores.py).
SCORE_STATS_SQL = (
    "SELECT "
    + ", ".join([*(c for score in SCORE_COLUMNS for c in _distribution_columns(score))])
    + ", "
    + ", ".join(_source_columns())
    + " FROM (SELECT quality_source, "
    + ", ".join([*SCORE_COLUMNS, *(_bucket_sql(score) for score in SCORE_COLUMNS)])
    + " FROM conversations WHERE owner_id = $1 AND deleted_at IS NULL) AS scored"
)


def bucket_label(score: str, index: int) -> str:
    """A bucket's lower bound as its key: "0.3" on 0-1, "2" on 1-5."""
    low, high = SCORE_BOUNDS[score]
    if high - low == 1:
        return f"{low + index / UNIT_BUCKETS:.1f}"
    return str(int(low) + index)


def shape_score_stats(row: asyncpg.Record | dict[str, Any]) -> dict[str, Any]:
    """The row of SCORE_STATS_SQL as {"scores": {score: {...}}, "by_quality_source": {...}}."""
    scores: dict[str, Any] = {}
    for score in SCORE_COLUMNS:
        buckets = _buckets(score)
        mean = row[f"{score}__mean"]
        scores[score] = {
            "scored": row[f"{score}__n"],
            "mean": None if mean is None else round(mean, 4),
            "histogram": {bucket_label(score, i): row[f"{score}__b{i}"] for i in range(buckets)},
        }
    sources = {source.value: row[f"source__{source.value}"] for source in QualitySource}
    sources["none"] = row["source__none"]
    return {"scores": scores, "by_quality_source": sources}


# Migration 0019 runs these calls: the stats read counters for the scores as well (`score_stats`
# checks which histograms are registered), and only the small quality_source count is a query.
REGISTER_HISTOGRAMS_SQL: Final = "\n".join(
    f"SELECT conversation_stats_add_histogram('{score}', '{score}', "
    f"{SCORE_BOUNDS[score][0]:g}, {SCORE_BOUNDS[score][1]:g}, {_buckets(score)});"
    for score in SCORE_COLUMNS
)
_REGISTERED_SQL = "SELECT name FROM conversation_stat_histograms WHERE name = ANY($1::text[])"
# Index-only on conversations_owner_quality_source_idx (0017).
_SOURCES_SQL = (
    "SELECT quality_source, count(*) AS n FROM conversations "
    "WHERE owner_id = $1 AND deleted_at IS NULL GROUP BY quality_source"
)


async def score_stats(
    conn: asyncpg.Connection, owner_id: UUID, counters: Counters | None = None
) -> dict[str, Any]:
    """Per score: how many rows are scored, the mean and a histogram; counts by quality_source.

    From `counters` (0018) when every score's histogram is registered there, else in one pass
    over the tenant's rows (SCORE_STATS_SQL).
    """
    if counters is not None and await _registered(conn):
        return await _from_counters(conn, owner_id, counters)
    row = await conn.fetchrow(SCORE_STATS_SQL, owner_id)
    assert row is not None
    return shape_score_stats(row)


async def _registered(conn: asyncpg.Connection) -> bool:
    names = await conn.fetch(_REGISTERED_SQL, list(SCORE_COLUMNS))
    return len(names) == len(SCORE_COLUMNS)


async def _from_counters(
    conn: asyncpg.Connection, owner_id: UUID, counters: Counters
) -> dict[str, Any]:
    scores: dict[str, Any] = {}
    for score in SCORE_COLUMNS:
        buckets = _buckets(score)
        counts = counters.histogram(score, buckets)
        mean = counters.mean(score)
        scores[score] = {
            "scored": sum(counts.values()),
            "mean": None if mean is None else round(mean, 4),
            "histogram": {bucket_label(score, i): counts[str(i)] for i in range(buckets)},
        }
    found = {row["quality_source"]: row["n"] for row in await conn.fetch(_SOURCES_SQL, owner_id)}
    sources = {source.value: found.get(source.value, 0) for source in QualitySource}
    sources["none"] = found.get(None, 0)
    return {"scores": scores, "by_quality_source": sources}
