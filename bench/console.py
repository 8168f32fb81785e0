"""Console benchmark (DESIGN §10, issue 12): server time of each page next to its /v1 twin.

    flock /tmp/convoforge-bench.lock .venv/bin/python bench/console.py           # 100,000 rows
    flock /tmp/convoforge-bench.lock .venv/bin/python bench/console.py --quick   # 20,000 rows

Seeds the list benchmark's 100,000 conversations (bench/list.py's seed), imports one real
conversation for the review page and queues a few exports for the history, starts the API as
a real process, signs in through the console's login form, then measures one request at a time
(so the figure is the server's time plus loopback) each page and its matching /v1 JSON call,
interleaved, after a warm-up:

- dashboard                      vs GET /v1/conversations/stats (the stats cards and charts)
- dashboard                      vs the four /v1 calls it shows, one after another: stats,
                                   generation-jobs?limit=10, exports?limit=10, and
                                   generation-logs/cost-summary?from=<1st of the month>
- conversations, filters + q     vs GET /v1/conversations (same filters, sort, 25 rows)
- review (one conversation)      vs GET /v1/conversations/{id}
- export history                 vs GET /v1/exports

Targets: page p95 <= 100 ms and <= 1.5x the JSON call; the 25-row table page < 100 KB of HTML.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
from _support import (
    ApiServer,
    BenchAccount,
    Latencies,
    Row,
    bench_database,
    create_account,
    log,
    machine_line,
    print_table,
    run,
    verdict,
)
from list import seed

from tests.support.seed_files import seed_file

TARGET_P95_MS = 100.0
TARGET_RATIO = 1.5
TARGET_PAGE_BYTES = 100 * 1024
FILTERS = "status=approved&status=pending_review&tier=template&q=retirement&sort=-quality_score"
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(session: aiohttp.ClientSession, base: str, account: BenchAccount) -> None:
    """Through the login form (cookie jar keeps the session)."""
    async with session.get(f"{base}/console/login") as page:
        html = await page.text()
    token = _TOKEN.search(html)
    assert token, "no CSRF token on the login page"
    form = {"api_key": account.key, "csrf_token": token.group(1), "next": "/console"}
    async with session.post(f"{base}/console/login", data=form, allow_redirects=False) as answer:
        assert answer.status == 303, await answer.text()


async def prepare(session: aiohttp.ClientSession, base: str, account: BenchAccount) -> str:
    """One real conversation (with turns) for the review page, and a short export history."""
    async with session.post(
        f"{base}/v1/conversations", json=seed_file("bench-review", pairs=6), headers=account.headers
    ) as created:
        assert created.status == 201, await created.text()
        review_id = str((await created.json())["id"])
    for _ in range(10):  # no exporter runs: they stay queued, which is what history shows
        body = {"config": {"scope": "all_approved", "format": "jsonl"}}
        async with session.post(f"{base}/v1/exports", json=body, headers=account.headers) as made:
            assert made.status == 202, await made.text()
    return review_id


Timed = Callable[[], Awaitable[int]]


def getter(session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None) -> Timed:
    """A GET that checks for 200 and returns the body size."""

    async def get() -> int:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            body = await response.read()
            if response.status != 200:
                raise RuntimeError(f"{url}: {response.status} {body[:300]!r}")
            return len(body)

    return get


def in_sequence(*calls: Timed) -> Timed:
    """Several GETs one after another, timed as one (a page that shows what they return)."""

    async def run_all() -> int:
        return sum([await call() for call in calls])

    return run_all


async def measure(
    pairs: dict[str, tuple[Timed, Timed]], repeats: int, warmup: int
) -> dict[str, tuple[Latencies, Latencies, int]]:
    """Interleaved: page, JSON, page, JSON... one request at a time."""
    results = {name: (Latencies(), Latencies(), 0) for name in pairs}
    for round_ in range(warmup + repeats):
        for name, (page, twin) in pairs.items():
            page_lat, twin_lat, size = results[name]
            started = time.perf_counter()
            size = await page()
            page_time = time.perf_counter() - started
            started = time.perf_counter()
            await twin()
            twin_time = time.perf_counter() - started
            if round_ >= warmup:
                page_lat.samples.append(page_time)
                twin_lat.samples.append(twin_time)
            results[name] = (page_lat, twin_lat, size)
    return results


def rows_for(results: dict[str, tuple[Latencies, Latencies, int]]) -> list[Row]:
    """One row per page: p50/p95 next to the JSON call's, the ratio, the verdict."""
    rows = []
    for name, (page, twin, size) in results.items():
        p, j = page.summary(), twin.summary()
        ratio = p["p95"] / j["p95"] if j["p95"] else 0.0
        ok = p["p95"] <= TARGET_P95_MS and ratio <= TARGET_RATIO
        rows.append(Row(
            f"{name} (HTML {size / 1024:.0f} KB)", f"p50 {p['p50']:.1f} / p95 {p['p95']:.1f} ms",
            f"p50 {j['p50']:.1f} / p95 {j['p95']:.1f} ms", f"{ratio:.2f}x",
            f"p95 <= {TARGET_P95_MS:.0f} ms, <= {TARGET_RATIO}x", verdict(ok),
        ))  # fmt: skip
    return rows


async def main(args: argparse.Namespace) -> None:
    """Seed, start the API, sign in, measure, print."""
    async with bench_database("console") as db:
        account = await create_account(db.app_dsn)
        other = await create_account(db.app_dsn)
        log(f"seeding {args.rows:,} conversations")
        seeded = await seed(db, account.user_id, other.user_id, args.rows)
        log(f"seeded in {seeded:.1f} s")
        async with ApiServer(db.app_dsn, workers=1) as server:
            base = server.base_url
            jar = aiohttp.CookieJar(unsafe=True)  # cookies for 127.0.0.1 (an IP address)
            async with aiohttp.ClientSession(cookie_jar=jar) as session:
                review_id = await prepare(session, base, account)
                await sign_in(session, base, account)
                auth = account.headers
                month = datetime.now(UTC).strftime("%Y-%m-01T00:00:00Z")
                dashboard_calls = in_sequence(
                    getter(session, f"{base}/v1/conversations/stats", auth),
                    getter(session, f"{base}/v1/generation-jobs?limit=10", auth),
                    getter(session, f"{base}/v1/exports?limit=10", auth),
                    getter(session, f"{base}/v1/generation-logs/cost-summary?from={month}", auth),
                )
                pairs = {
                    "dashboard vs stats": (getter(session, f"{base}/console", None),
                                           getter(session, f"{base}/v1/conversations/stats", auth)),
                    "dashboard vs its 4 calls": (getter(session, f"{base}/console", None),
                                                 dashboard_calls),
                    "conversations, filters + q": (
                        getter(session, f"{base}/console/conversations?{FILTERS}", None),
                        getter(session, f"{base}/v1/conversations?{FILTERS}", auth)),
                    "conversations, 25 rows": (
                        getter(session, f"{base}/console/conversations", None),
                        getter(session, f"{base}/v1/conversations", auth)),
                    "review": (getter(session, f"{base}/console/conversations/{review_id}", None),
                               getter(session, f"{base}/v1/conversations/{review_id}", auth)),
                    "export history": (getter(session, f"{base}/console/exports", None),
                                       getter(session, f"{base}/v1/exports", auth)),
                }  # fmt: skip
                log(f"measuring {args.repeats} rounds after {args.warmup} warm-up rounds")
                results = await measure(pairs, args.repeats, args.warmup)
    print(f"\nmachine: {machine_line()} (shared with other work: figures from a busy machine)")
    print(f"data: {args.rows:,} conversations, seeded in {seeded:.0f} s; one request at a time")
    print_table("Console page vs its /v1 JSON twin (client-observed, loopback)", rows_for(results))
    size = results["conversations, 25 rows"][2]
    ok = size < TARGET_PAGE_BYTES
    print(f"\n25-row conversations page: {size / 1024:.1f} KB of HTML "
          f"(target < {TARGET_PAGE_BYTES // 1024} KB): {verdict(ok)}")  # fmt: skip


def parse_args() -> argparse.Namespace:
    """--rows, --repeats, --warmup, --quick."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="20,000 rows, 20 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rows, args.repeats = 20_000, 20
    return args


if __name__ == "__main__":
    run(main(parse_args()))
