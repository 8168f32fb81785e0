"""List benchmark (DESIGN §10, issue 3): 100,000 conversations, 50 concurrent clients.

    .venv/bin/python bench/list.py              # full run, ~3 minutes
    .venv/bin/python bench/list.py --quick      # 20,000 rows, 8 s phases

Seeds 100,000 conversations for one tenant (plus 10,000 for another, so the owner filter has
something to skip) with varied status/tier/persona/emotion/topic/quality/created_at and
searchable titles, in one INSERT ... SELECT as the superuser, on a database set up exactly as
`convoforge migrate` does it (bootstrap with a superuser admin DSN, so `@@` is LEAKPROOF). Then:

1. API, closed loop: 50 clients, each sending its next request as soon as the previous answer
   arrives, for `--seconds`: a mix of filtered + sorted list requests, `q` searches and
   next-page requests (keyset cursor) through `GET /v1/conversations` over HTTP on loopback.
2. Baseline, closed loop: the same request mix as SQL (`list_sql`, plus `count` where the API
   counts: on a first page that does not hold every match), in the same tenant transaction the
   API opens, through asyncpg from 50 concurrent connections: no HTTP, no auth, no pydantic, no
   JSON.
3. API, open loop: 50 concurrent clients again, each now sending at a fixed rate of its own
   (`--open-rates`, requests per second per client), one request at a time; latency counts from
   the scheduled send time, so a client held up by a slow answer pays for it on its next request
   too (no coordinated omission).

Latency target: p95 <= 50 ms. Everything (load generator, uvicorn, PostgreSQL) shares 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import orjson
from _support import (
    ApiServer,
    BenchAccount,
    BenchDatabase,
    CpuUsage,
    Latencies,
    PostgresProcesses,
    Row,
    bench_database,
    cpu_usage,
    create_account,
    log,
    machine_line,
    postgres_settings,
    print_table,
    run,
    snapshot,
    verdict,
)

from shared.db.bootstrap import search_is_indexable
from shared.db.pool import create_pool, tenant_transaction
from shared.db.repositories import conversation_queries as queries
from shared.models.query import ConversationFilters, SortKey
from shared.settings import Settings

TARGET_P95_MS = 50.0
NOW = datetime.now(UTC).replace(microsecond=0)

# Vocabulary of the seeded rows (and of the queries, so filters and searches hit).
PERSONAS = (
    "Marcus Chen, 58", "Dana Okafor, 34", "Priya Raman, 41", "Lou Bianchi, 67", "Sam Ortiz, 29",
    "Grace Kim, 52", "Tom Becker, 45", "Amara Diallo, 38", "Noah Levi, 61", "Ines Duarte, 26",
    "Yusuf Arslan, 49", "Mei Tanaka, 33", "Olga Petrova, 72", "Ben Carter, 40", "Lena Vogel, 55",
    "Ravi Patel, 47", "Chloe Martin, 31", "Diego Rojas, 64", "Hana Sato, 28", "Femi Adeyemi, 53",
)  # fmt: skip
EMOTIONS = ("fear", "anxiety", "anger", "grief", "shame", "confusion", "relief", "hope", "joy",
            "frustration", "overwhelm", "guilt")  # fmt: skip
TOPICS = (
    "retirement savings", "market crash", "inheritance", "divorce settlement", "student debt",
    "first home", "job loss", "medical bills", "college fund", "small business loan",
    "crypto losses", "elder care", "tax surprise", "budgeting", "insurance claim",
)  # fmt: skip
ADJECTIVES = ("Anxious", "Grieving", "Angry", "Hopeful", "Confused", "Ashamed", "Relieved",
              "Overwhelmed", "Skeptical", "Calm", "Frustrated", "Guilty")  # fmt: skip
ROLES = ("investor", "retiree", "widow", "saver", "parent", "freelancer", "couple", "student",
         "founder", "heir", "caregiver", "nurse")  # fmt: skip
SITUATIONS = (
    "after a market crash", "facing an inheritance", "worried about retirement",
    "buried in student debt", "after a job loss", "buying a first home", "with medical bills",
    "planning a college fund", "after a divorce", "with a tax surprise", "after crypto losses",
    "caring for a parent", "starting a business", "with no emergency fund",
)  # fmt: skip
SEARCH_WORDS = (
    "retirement", "inheritance", "crash", "anxious", "grief", "marcus", "debt", "divorce",
    "widow", "crypto", "priya", "business", "fear", "tax", "home",
)  # fmt: skip
STATUSES = ("pending_review", "approved", "needs_revision", "rejected", "archived")
TIERS = ("template", "scenario", "edge_case")

_SEED_SQL = """
WITH r AS (
    SELECT g, gen_random_uuid() AS id, random() AS r1, random() AS r2, random() AS r3,
           random() AS r4, random() AS r5, random() AS r6, random() AS r7, random() AS r8,
           random() AS r9
      FROM generate_series(1, $2) g
)
INSERT INTO conversations (
    id, owner_id, conversation_id, title, description, persona, emotion, topic, tier, status,
    source, category, tags, quality_score, quality_metrics, is_flagged, turn_count,
    total_tokens, object_key, byte_size, sha256, starting_emotion, ending_emotion,
    created_at, updated_at, deleted_at)
SELECT id, $1::uuid, $3::text || g,
       a[1 + floor(r1 * array_length(a, 1))::int] || ' ' ||
           ro[1 + floor(r2 * array_length(ro, 1))::int] || ' ' ||
           si[1 + floor(r3 * array_length(si, 1))::int],
       'Synthetic conversation for the list benchmark',
       pe[1 + floor(r4 * array_length(pe, 1))::int],
       em[1 + floor(r5 * array_length(em, 1))::int],
       tp[1 + floor(r6 * array_length(tp, 1))::int],
       CASE WHEN r7 < 0.5 THEN 'template' WHEN r7 < 0.85 THEN 'scenario' ELSE 'edge_case' END,
       CASE WHEN r8 < 0.4 THEN 'pending_review' WHEN r8 < 0.7 THEN 'approved'
            WHEN r8 < 0.8 THEN 'needs_revision' WHEN r8 < 0.9 THEN 'rejected'
            ELSE 'archived' END,
       'import', ARRAY['financial_planning'], ARRAY['bench'],
       CASE WHEN r9 < 0.1 THEN NULL ELSE round((r9 * r2 * 4 + r1 * 6)::numeric, 1) END,
       jsonb_build_object('scale', '1-5', 'overall', round((1 + r9 * 4)::numeric, 2)),
       r1 < 0.03, 21, 400 + floor(r2 * 2000)::int,
       'conversations/' || $1::uuid || '/' || id || '/conversation.json.gz',
       2000 + floor(r3 * 8000)::int,
       encode(sha256(convert_to(id::text, 'UTF8')), 'hex'),
       em[1 + floor(r5 * array_length(em, 1))::int],
       em[1 + floor(r6 * array_length(em, 1))::int],
       now() - r1 * interval '365 days' - r3 * interval '1 day',
       now() - r1 * interval '365 days',
       CASE WHEN r4 < 0.02 THEN now() ELSE NULL END
  FROM r,
       (SELECT $4::text[] AS a, $5::text[] AS ro, $6::text[] AS si, $7::text[] AS pe,
               $8::text[] AS em, $9::text[] AS tp) v
"""


async def _search_indexed(db: BenchDatabase) -> bool:
    """Whether the set-up marked @@ LEAKPROOF in the bench database (it needs a superuser)."""
    conn = await asyncpg.connect(db.app_dsn)
    try:
        return await search_is_indexable(conn)
    finally:
        await conn.close()


async def seed(db: BenchDatabase, owner: uuid.UUID, other: uuid.UUID, rows: int) -> float:
    """Insert the rows as the superuser (RLS does not apply), then VACUUM ANALYZE."""
    started = time.perf_counter()
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute("SELECT setseed(0.42)")
        vocab = (list(ADJECTIVES), list(ROLES), list(SITUATIONS), list(PERSONAS), list(EMOTIONS),
                 list(TOPICS))  # fmt: skip
        await conn.execute(_SEED_SQL, owner, rows, "bench-", *vocab)
        await conn.execute(_SEED_SQL, other, rows // 10, "other-", *vocab)
        # Autovacuum would get there too; the figures should not depend on when it runs.
        await conn.execute("VACUUM ANALYZE conversations")
    finally:
        await conn.close()
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------
# The request mix


@dataclass(frozen=True)
class Query:
    """One list request: its kind (for the per-kind table), filters, sort and page size."""

    kind: str
    filters: dict[str, Any]
    sort: SortKey = "-created_at"
    limit: int = 25

    def params(self, cursor: str | None = None) -> list[tuple[str, str]]:
        """Query-string pairs (status and tier repeat)."""
        pairs: list[tuple[str, str]] = []
        for name, value in self.filters.items():
            if isinstance(value, list):
                pairs.extend((name, str(item)) for item in value)
            elif isinstance(value, datetime):
                pairs.append((name, value.isoformat()))
            elif isinstance(value, bool):
                pairs.append((name, "true" if value else "false"))
            else:
                pairs.append((name, str(value)))
        pairs += [("sort", self.sort), ("limit", str(self.limit))]
        if cursor:
            pairs.append(("cursor", cursor))
        return pairs

    def model(self) -> ConversationFilters:
        """The same filters as the API builds them."""
        return ConversationFilters.model_validate(self.filters)


def _limit(rng: random.Random) -> int:
    draw = rng.random()
    return 100 if draw < 0.1 else 50 if draw < 0.2 else 25


def _window(rng: random.Random) -> dict[str, Any]:
    start = NOW - timedelta(days=rng.randint(30, 365))
    return {"created_from": start, "created_to": start + timedelta(days=30)}


# (weight, kind, builder): list + filter + sort shapes a review UI sends, and searches.
MIX: list[tuple[int, str, Callable[[random.Random], Query]]] = [
    (15, "recent (no filter)", lambda r: Query("recent (no filter)", {}, "-created_at", _limit(r))),
    (10, "review queue", lambda r: Query("review queue", {"status": ["pending_review"]},
                                         "created_at", _limit(r))),
    (8, "status", lambda r: Query("status", {"status": [r.choice(STATUSES)]}, "-created_at",
                                  _limit(r))),
    (8, "tier by quality", lambda r: Query("tier by quality", {"tier": r.sample(TIERS, 2)},
                                           "-quality_score", _limit(r))),
    (7, "persona", lambda r: Query("persona", {"persona": r.choice(PERSONAS)}, "-created_at",
                                   _limit(r))),
    (7, "emotion + quality", lambda r: Query("emotion + quality",
                                             {"emotion": r.choice(EMOTIONS), "quality_min": 6},
                                             "-quality_score", _limit(r))),
    (5, "topic by title", lambda r: Query("topic by title", {"topic": r.choice(TOPICS)}, "title",
                                          _limit(r))),
    (7, "date window", lambda r: Query("date window", _window(r), "-created_at", _limit(r))),
    (3, "flagged", lambda r: Query("flagged", {"flagged": True}, "-created_at", _limit(r))),
    (5, "all by title/status", lambda r: Query("all by title/status", {},
                                               r.choice(("title", "-status")), _limit(r))),
    (17, "search q", lambda r: Query("search q", {"q": r.choice(SEARCH_WORDS)}, "-created_at",
                                     _limit(r))),
    (8, "search q + status", lambda r: Query(
        "search q + status",
        {"q": f"{r.choice(SEARCH_WORDS)} {r.choice(SEARCH_WORDS)}", "status": ["approved"]},
        "-quality_score", _limit(r))),
]  # fmt: skip
NEXT_PAGE_SHARE = 0.2


class Picker:
    """Draws the next request of one client: a fresh query, or the next page of its last one."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self._weights = [weight for weight, _, _ in MIX]
        self._builders = [builder for _, _, builder in MIX]

    def fresh(self) -> Query:
        """A new query from the mix."""
        return self.rng.choices(self._builders, self._weights)[0](self.rng)

    def follow(self) -> bool:
        """Whether to ask for the next page (when there is one)."""
        return self.rng.random() < NEXT_PAGE_SHARE


@dataclass
class Phase:
    """Latencies of one load phase, overall and per request kind."""

    name: str
    overall: Latencies = field(default_factory=Latencies)
    kinds: dict[str, Latencies] = field(default_factory=lambda: defaultdict(Latencies))
    cpu: CpuUsage | None = None

    def record(self, kind: str, seconds: float) -> None:
        """One successful request."""
        self.overall.samples.append(seconds)
        self.kinds[kind].samples.append(seconds)


# ---------------------------------------------------------------------------------------------
# Load: the API over HTTP, and the same SQL through asyncpg


Send = Callable[[Query, Any], Awaitable[Any]]  # returns the next-page token or None


async def closed_loop(
    phase: Phase,
    clients: int,
    warmup: float,
    seconds: float,
    send: Send,
    api_pids: list[int],
    postgres: PostgresProcesses,
) -> None:
    """`clients` loops, each sending its next request when the previous one is answered;
    the first `warmup` seconds are not measured."""
    measuring = False

    async def client(index: int) -> None:
        picker = Picker(1000 + index)
        last: tuple[Query, Any] | None = None
        while not stop.is_set():
            if last is not None and last[1] is not None and picker.follow():
                query, token, kind = last[0], last[1], "next page"
            else:
                query, token, kind = picker.fresh(), None, ""
            started = time.perf_counter()
            try:
                next_token = await send(query, token)
            except Exception as exc:
                if measuring:
                    phase.overall.error(f"{type(exc).__name__}: {exc}")
                last = None
                continue
            if measuring:
                phase.record(kind or query.kind, time.perf_counter() - started)
            last = (query, next_token)

    stop = asyncio.Event()
    tasks = [asyncio.create_task(client(index)) for index in range(clients)]
    try:
        await asyncio.sleep(warmup)
        before = await snapshot(api_pids, postgres)
        measuring = True
        await asyncio.sleep(seconds)
        measuring = False
        after = await snapshot(api_pids, postgres)
        stop.set()
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    phase.overall.wall = after.wall - before.wall
    phase.cpu = cpu_usage(before, after)


async def open_loop(
    phase: Phase,
    clients: int,
    rate: float,
    seconds: float,
    send: Send,
    api_pids: list[int],
    postgres: PostgresProcesses,
) -> None:
    """`clients` concurrent clients, each sending one request every 1/`rate` s (the same mix
    as the closed loop, next pages included), one at a time. Their schedules are spread evenly
    over the period. Latency counts from the scheduled send time: when an answer comes late, the
    client's next request leaves late and its wait is counted too (no coordinated omission)."""
    period = 1.0 / rate
    per_client = max(1, int(seconds * rate))
    before = await snapshot(api_pids, postgres)
    start = time.perf_counter() + 0.05

    async def client(index: int) -> None:
        picker = Picker(5000 + index)
        last: tuple[Query, Any] | None = None
        first = start + period * index / clients
        for tick in range(per_client):
            scheduled = first + tick * period
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if last is not None and last[1] is not None and picker.follow():
                query, token, kind = last[0], last[1], "next page"
            else:
                query, token, kind = picker.fresh(), None, ""
            try:
                next_token = await send(query, token)
            except Exception as exc:
                phase.overall.error(f"{type(exc).__name__}: {exc}")
                last = None
                continue
            phase.record(kind or query.kind, time.perf_counter() - scheduled)
            last = (query, next_token)

    await asyncio.gather(*(client(index) for index in range(clients)))
    after = await snapshot(api_pids, postgres)
    phase.overall.wall = time.perf_counter() - start
    phase.cpu = cpu_usage(before, after)


def http_sender(session: aiohttp.ClientSession, base_url: str, account: BenchAccount) -> Send:
    """GET /v1/conversations with the query; returns next_cursor."""
    headers = account.headers
    url = f"{base_url}/v1/conversations"

    async def send(query: Query, cursor: Any) -> Any:
        async with session.get(f"{url}?{urlencode(query.params(cursor))}",
                               headers=headers) as response:  # fmt: skip
            body = await response.read()
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {body[:200]!r}")
        return orjson.loads(body)["next_cursor"]

    return send


def sql_sender(pool: asyncpg.Pool, owner: uuid.UUID) -> Send:
    """The list page and, where the API counts, the count, in one tenant transaction, exactly as
    the API runs them: a next page reuses the first page's total from its cursor, and a first
    page that holds every match is its own total."""

    async def send(query: Query, after: Any) -> Any:
        filters = query.model()
        sql, args = queries.list_sql(owner, filters, query.sort, after, query.limit)
        async with tenant_transaction(pool, owner) as conn:
            rows = await conn.fetch(sql, *args)
            if after is None and len(rows) > query.limit:
                await queries.count(conn, owner, filters)
        if len(rows) > query.limit:
            last = rows[query.limit - 1]
            return (last["sort_key"], last["id"])
        return None

    return send


async def profile_queries(pool: asyncpg.Pool, owner: uuid.UUID, repeats: int) -> list[Row]:
    """Serial timings of the page query and the count query per kind (no concurrency)."""
    rows = []
    picker = Picker(99)
    for _, kind, builder in MIX:
        page_times, count_times = [], []
        for _ in range(repeats):
            query = builder(picker.rng)
            filters = query.model()
            sql, args = queries.list_sql(owner, filters, query.sort, None, query.limit)
            async with tenant_transaction(pool, owner) as conn:
                started = time.perf_counter()
                await conn.fetch(sql, *args)
                middle = time.perf_counter()
                total = await queries.count(conn, owner, filters)
                count_times.append(time.perf_counter() - middle)
                page_times.append(middle - started)
        page_times.sort()
        count_times.sort()
        rows.append(
            Row(kind, f"{1000 * page_times[len(page_times) // 2]:.2f} ms",
                f"{1000 * count_times[len(count_times) // 2]:.2f} ms", f"{total:,}")
        )  # fmt: skip
    return rows


# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 8 s phases")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--workers", type=int, default=2, help="API_WORKERS")
    parser.add_argument(
        "--open-rates",
        default="1,2",
        help="open-loop phases: requests per second per client, comma-separated (each phase "
        "runs --clients clients at that rate)",
    )
    parser.add_argument("--open-seconds", type=float, default=20.0)
    parser.add_argument("--skip-open", action="store_true", help="no open-loop phase")
    args = parser.parse_args()  # fmt: skip
    if args.quick:
        args.rows = min(args.rows, 20_000)
        args.seconds = min(args.seconds, 8.0)
        args.open_seconds = min(args.open_seconds, 6.0)
        args.warmup = min(args.warmup, 1.0)
    return args


def latency_rows(phase: Phase, baseline: Phase | None) -> Row:
    """The headline row of a phase."""
    lat = phase.overall.summary()
    base = baseline.overall.summary() if baseline else None
    return Row(
        phase.name,
        f"p50 {lat['p50']:.1f} / p95 {lat['p95']:.1f} / p99 {lat['p99']:.1f} ms, "
        f"{lat['rps']:,.0f} req/s",
        f"p95 {base['p95']:.1f} ms, {base['rps']:,.0f} req/s" if base else "",
        f"{lat['p95'] / base['p95']:.1f}x p95" if base and base["p95"] else "",
        f"p95 <= {TARGET_P95_MS:.0f} ms",
        verdict(lat["p95"] <= TARGET_P95_MS),
    )


async def main(args: argparse.Namespace) -> None:
    wall_started = time.monotonic()
    phases: list[Phase] = []
    async with bench_database("list") as db:
        account = await create_account(db.app_dsn)
        other = await create_account(db.app_dsn)
        log(f"seeding {args.rows:,} conversations (+{args.rows // 10:,} for another tenant)")
        seeded = await seed(db, account.user_id, other.user_id, args.rows)
        log(f"seeded in {seeded:.1f} s")
        search_indexed = await _search_indexed(db)
        if not search_indexed:
            log("WARNING: @@ is not LEAKPROOF here (no superuser?): q searches cannot use "
                "their index")  # fmt: skip
        settings = Settings(database_url=db.app_dsn, database_pool_max=args.clients)
        pool = await create_pool(settings, min_size=args.clients)
        postgres = PostgresProcesses(db.name)
        try:
            profile = await profile_queries(pool, account.user_id, repeats=7)
            async with ApiServer(db.app_dsn, workers=args.workers) as server:
                pids = server.worker_pids()
                connector = aiohttp.TCPConnector(limit=0, limit_per_host=0)
                timeout = aiohttp.ClientTimeout(total=60)
                async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
                    send = http_sender(session, server.base_url, account)
                    api = Phase(f"API closed loop, {args.clients} clients, "
                                f"{args.workers} worker(s)")  # fmt: skip
                    log(f"{api.name}: {args.seconds:.0f} s")
                    await closed_loop(api, args.clients, args.warmup, args.seconds, send, pids,
                                      postgres)  # fmt: skip
                    phases.append(api)
                    log(f"  {api.overall.summary()}")
                    sql = Phase(f"SQL only (asyncpg), {args.clients} connections")
                    log(f"{sql.name}: {args.seconds:.0f} s")
                    await closed_loop(sql, args.clients, args.warmup, args.seconds,
                                      sql_sender(pool, account.user_id), [], postgres)  # fmt: skip
                    phases.append(sql)
                    log(f"  {sql.overall.summary()}")
                    rates = [] if args.skip_open else args.open_rates.split(",")
                    for rate in map(float, rates):
                        opened = Phase(f"API open loop, {args.clients} clients x {rate:g} req/s "
                                       f"(= {args.clients * rate:g} req/s)")  # fmt: skip
                        log(f"{opened.name}: {args.open_seconds:.0f} s")
                        await open_loop(opened, args.clients, rate, args.open_seconds, send, pids,
                                        postgres)  # fmt: skip
                        phases.append(opened)
                        log(f"  {opened.overall.summary()}")
        finally:
            await pool.close()
        pg = await postgres_settings(db.admin_dsn)

    api_phase, sql_phase = phases[0], phases[1]
    print(f"\nmachine: {machine_line()}")
    print("postgres: " + ", ".join(f"{key}={value}" for key, value in sorted(pg.items())))
    print("search: ts_match_vq (@@) is " + ("LEAKPROOF, q uses conversations_owner_search_idx"
          if search_indexed else "NOT LEAKPROOF (no superuser at set-up): q reads every row of "
          "the tenant"))  # fmt: skip
    print(f"data: {args.rows:,} conversations for the benchmarked tenant (+{args.rows // 10:,} "
          f"for another), seeded in {seeded:.0f} s")  # fmt: skip
    rows = [latency_rows(api_phase, sql_phase), latency_rows(sql_phase, None)]
    rows += [latency_rows(phase, sql_phase) for phase in phases[2:]]
    print_table("List latency (whole request as the client sees it)", rows)
    closed = api_phase.overall.summary()
    if closed["rps"]:
        print(f"Little's law, closed loop: {args.clients} clients / {closed['rps']:.0f} req/s = "
              f"{1000 * args.clients / closed['rps']:.0f} ms mean latency; a 50 ms p95 with "
              f"{args.clients} clients needs > {args.clients / 0.05:,.0f} req/s, i.e. < "
              f"{1000 * (os.cpu_count() or 1) * 0.05 / args.clients:.1f} ms CPU per request "
              f"(client + API + PostgreSQL) on these cores.")  # fmt: skip
    for phase in phases:
        if phase.overall.errors:
            print(f"ERRORS in {phase.name}: {phase.overall.errors} failed requests, e.g. "
                  f"{phase.overall.error_examples}")  # fmt: skip

    kinds = [kind for _, kind, _ in MIX] + ["next page"]
    print("\nPer request kind, p50 / p95 ms, by phase:")
    for index, phase in enumerate(phases, start=1):
        print(f"  ({index}) {phase.name}")
    print(f"  {'':<22}" + "".join(f"{f'({index})':>16}" for index in range(1, len(phases) + 1)))
    for kind in kinds:
        cells = []
        for phase in phases:
            lat = phase.kinds[kind].summary() if kind in phase.kinds else None
            cells.append(f"{lat['p50']:.1f} / {lat['p95']:.1f}" if lat else "-")
        print(f"  {kind:<22}" + "".join(f"{cell:>16}" for cell in cells))
    print("\nSerial (one request at a time) SQL timings, median: page query | count(*) | rows")
    for row in profile:
        print(f"  {row.figure:<22} {row.value:>10} | {row.baseline:>10} | {row.ratio:>8}")
    print("\nWhere the CPU goes (share of the 2 cores; CPU ms per request):")
    for phase in phases:
        if phase.cpu is not None:
            count = len(phase.overall.samples)
            print(f"  {phase.name}:\n    {phase.cpu.describe(count, 'req')}\n"
                  f"    CPU-bound capacity with both cores to itself: "
                  f"{phase.cpu.capacity(count):,.0f} req/s")  # fmt: skip
    print(f"\ntotal bench time {time.monotonic() - wall_started:.0f} s")


if __name__ == "__main__":
    run(main(parse_args()))
