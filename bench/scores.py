"""Score sorts, filters and stats at 100,000 conversations (issue 13, docs/quality.md).

    .venv/bin/python bench/scores.py            # 100,000 rows (+10,000 of another tenant)
    .venv/bin/python bench/scores.py --rows 20000 --repeat 10

Seeds one tenant's conversations with the judge's eight score columns (10 % not judged) and
plans/runs, as the app role under forced row-level security in a tenant transaction (what the
API does), the list's page query (`list_sql`) for score sorts: the first page, a page 50,000 rows
deep (keyset cursor) and a filtered page. Baseline, same run, same rows: the same pages ordered
by `coalesce(score, -1)` with the keyset condition on that expression, i.e. the list without the
stored sort keys and indexes of migration 0017. Then the stats: the counters of migration 0018
that `GET /v1/conversations/stats` reads, and the score distributions query
(`score_queries.SCORE_STATS_SQL`) that it runs as well; then, with the score histograms
registered with the counters (`score_queries.REGISTER_HISTOGRAMS_SQL`, the folding migration),
the whole stats from counters.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from _support import Row, bench_database, create_account, log, machine_line, print_table, run

from shared.db.pool import set_tenant
from shared.db.repositories import conversation_queries as queries
from shared.db.repositories import conversation_stats as stat_counters
from shared.db.repositories import score_queries
from shared.models.query import ConversationFilters, SortKey

_SEED = """
INSERT INTO conversations (owner_id, conversation_id, title, tier, status, quality_score,
    object_key, byte_size, sha256, created_at, coherence_score, relevance_score,
    completeness_score, quality_overall, empathy_score, clarity_score, appropriateness_score,
    brand_voice_score, quality_source)
SELECT $1::uuid, 'bench-' || g, 'Bench ' || g, 'template',
       CASE WHEN g % 3 = 0 THEN 'approved' ELSE 'pending_review' END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE round((10 * (0.4 * a + 0.4 * b + 0.2 * c))::numeric, 1)
       END,
       'bench/' || g, 1, repeat('0', 64), now() - g * interval '1 second',
       CASE WHEN g % 10 > 0 THEN a END, CASE WHEN g % 10 > 0 THEN b END,
       CASE WHEN g % 10 > 0 THEN c END,
       CASE WHEN g % 10 > 0 THEN 0.4 * a + 0.4 * b + 0.2 * c END,
       CASE WHEN g % 10 > 0 THEN 1 + 4 * d END, CASE WHEN g % 10 > 0 THEN 1 + 4 * a END,
       CASE WHEN g % 10 > 0 THEN 1 + 4 * b END, CASE WHEN g % 10 > 0 THEN 1 + 4 * c END,
       CASE WHEN g % 10 > 0 THEN 'judge' ELSE NULL END
  FROM (SELECT g, random() a, random() b, random() c, random() d
          FROM generate_series(1, $2) g) r
"""
SORTS: tuple[SortKey, ...] = ("-quality_overall", "coherence_score", "-empathy_score")


def _baseline_sql(
    owner: uuid.UUID, sort: str, after: tuple[Any, uuid.UUID] | None
) -> tuple[str, list[Any]]:
    """The page without 0017: ORDER BY and keyset on coalesce(score, -1)."""
    column = sort.lstrip("-")
    direction, op = ("DESC", "<") if sort.startswith("-") else ("ASC", ">")
    key = f"coalesce({column}, -1)"
    args: list[Any] = [owner]
    where = "owner_id = $1 AND deleted_at IS NULL"
    if after is not None:
        args += [after[0], after[1]]
        where += f" AND ({key}, id) {op} ($2::real, $3::uuid)"
    args.append(25)
    sql = (
        f"SELECT id, {key} AS sort_key FROM conversations WHERE {where} "
        f"ORDER BY {key} {direction}, id {direction} LIMIT ${len(args)}"
    )
    return sql, args


async def _time(repeat: int, call: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Median and max in ms over `repeat` runs (after one warm-up)."""
    await call()
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        samples.append(1000 * (time.perf_counter() - start))
    return statistics.median(samples), max(samples)


async def _deep_key(conn: asyncpg.Connection, sort: str, depth: int) -> tuple[Any, uuid.UUID]:
    column = score_queries.sort_column(sort.lstrip("-"))
    direction = "DESC" if sort.startswith("-") else "ASC"
    row = await conn.fetchrow(
        f"SELECT {column} AS k, id FROM conversations WHERE deleted_at IS NULL "
        f"ORDER BY {column} {direction}, id {direction} OFFSET $1 LIMIT 1",
        depth,
    )
    assert row is not None
    return row["k"], row["id"]


def _fetch(conn: asyncpg.Connection, sql: str, args: list[Any]) -> Callable[[], Awaitable[Any]]:
    async def call() -> Any:
        return await conn.fetch(sql, *args)

    return call


def _figure(label: str, measured: tuple[float, float], base: tuple[float, float]) -> Row:
    ratio = base[0] / measured[0] if measured[0] else 0.0
    return Row(
        label,
        f"{measured[0]:.2f} ms (max {measured[1]:.1f})",
        f"{base[0]:.2f} ms (max {base[1]:.1f})",
        f"{ratio:.0f}x faster",
    )


async def _pages(conn: asyncpg.Connection, owner: uuid.UUID, repeat: int, depth: int) -> list[Row]:
    rows = []
    empty = ConversationFilters()
    for sort in SORTS:
        deep = await _deep_key(conn, sort, depth)
        for label, after in (("first page", None), (f"page at row {depth:,}", deep)):
            sql, args = queries.list_sql(owner, empty, sort, after, 25)
            base_sql, base_args = _baseline_sql(owner, sort, after)
            measured = await _time(repeat, _fetch(conn, sql, args))
            base = await _time(repeat, _fetch(conn, base_sql, base_args))
            rows.append(_figure(f"sort={sort}, {label}", measured, base))
    filtered = ConversationFilters(quality_overall_min=0.8, empathy_score_max=3)
    sql, args = queries.list_sql(owner, filtered, "-quality_overall", None, 25)
    measured = await _time(repeat, _fetch(conn, sql, args))
    base_sql = sql.replace("quality_overall_key", "coalesce(quality_overall, -1)")
    base = await _time(repeat, _fetch(conn, base_sql, args))
    rows.append(_figure("quality_overall_min=0.8&empathy_score_max=3, -quality_overall", measured,
                        base))  # fmt: skip
    return rows


async def _stats(conn: asyncpg.Connection, owner: uuid.UUID, repeat: int) -> list[Row]:
    existing = await _time(repeat, lambda: stat_counters.read_and_maintain(conn, owner))
    scores = await _time(repeat, lambda: score_queries.score_stats(conn, owner))
    log("registering the score histograms with the counters (the folding migration)")
    await conn.execute(score_queries.REGISTER_HISTOGRAMS_SQL)

    async def counted() -> Any:
        counters = await stat_counters.read_and_maintain(conn, owner)
        return await score_queries.score_stats(conn, owner, counters)

    folded = await _time(repeat, counted)
    return [
        Row("stats: counters of 0018 (status, tier, 0-10 histogram)", f"{existing[0]:.1f} ms"),
        Row("stats: score distributions query (8 scores, sources; one pass)", f"{scores[0]:.1f} ms",
            "", f"{scores[0] / existing[0]:.1f}x the counters"),
        Row("stats: all of it from counters, histograms registered", f"{folded[0]:.1f} ms"),
    ]  # fmt: skip


async def main(rows: int, repeat: int) -> None:
    """Seed, measure, print."""
    async with bench_database("scores") as db:
        owner = (await create_account(db.app_dsn)).user_id
        other = (await create_account(db.app_dsn)).user_id
        admin = await asyncpg.connect(db.admin_dsn)
        try:
            log(f"seeding {rows:,} conversations (+{rows // 10:,} of another tenant)")
            await admin.execute(_SEED, owner, rows)
            await admin.execute(_SEED.replace("'bench-'", "'other-'"), other, rows // 10)
            await admin.execute("VACUUM ANALYZE conversations")
        finally:
            await admin.close()
        conn = await asyncpg.connect(db.app_dsn)
        try:
            async with conn.transaction():
                await set_tenant(conn, owner)
                log("measuring pages")
                pages = await _pages(conn, owner, repeat, rows // 2)
                log("measuring stats")
                stats = await _stats(conn, owner, repeat)
        finally:
            await conn.close()
    print(machine_line())
    print(f"{rows:,} conversations of one tenant, app role under forced RLS, median of {repeat}")
    print_table("Score sorts (GET /v1/conversations page query, limit 25)", pages)
    print_table("Stats", stats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    options = parser.parse_args()
    run(main(options.rows, options.repeat))
