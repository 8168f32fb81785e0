"""Import benchmark (DESIGN §10, issue 3): 10,000 seed files x 10 pairs through the real API.

    .venv/bin/python bench/import.py            # full run, ~3 minutes
    .venv/bin/python bench/import.py --quick    # 1,000 files, a smoke test

The API runs as `python -m services.api` (uvicorn, local object storage) on loopback; files go
in over HTTP through `POST /v1/conversations/batch` and, in single mode, `POST /v1/conversations`.
The baseline, measured in the same run on the same machine, writes the same rows
(conversations + turns) with asyncpg `copy_records_to_table` as the superuser: no HTTP, no
validation, no object storage. Target: >= 300 files/s on 2 cores.
"""

from __future__ import annotations

import argparse
import asyncio
import pstats
import random
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    seed_file,
    snapshot,
    verdict,
)

from shared.conversations import store
from shared.conversations.seed_format import parse_seed_document
from shared.models.conversation import ConversationDraft

TARGET_FILES_PER_SECOND = 300.0

_CONVERSATION_COLUMNS = (
    "id", "owner_id", "conversation_id", "title", "description", "persona", "emotion", "topic",
    "intent", "tone", "emotional_arc", "tier", "status", "source", "category", "tags",
    "quality_score", "quality_metrics", "is_flagged", "turn_count", "total_tokens",
    "system_prompt", "starting_emotion", "starting_intensity", "ending_emotion",
    "ending_intensity", "object_key", "byte_size", "sha256",
)  # fmt: skip
_TURN_COLUMNS = (
    "conversation_id", "owner_id", "turn_number", "role", "content", "token_count", "char_count",
    "word_count", "sentence_count", "detected_emotion", "emotion_confidence",
    "emotion_intensity", "strategy", "tone", "metadata",
)  # fmt: skip


@dataclass(frozen=True)
class Result:
    """One measured import run."""

    label: str
    files: int
    seconds: float
    cpu: CpuUsage | None
    latencies: Latencies | None = None

    @property
    def rate(self) -> float:
        """Files per second."""
        return self.files / self.seconds if self.seconds else 0.0


# ---------------------------------------------------------------------------------------------
# Inputs


def make_files(count: int, pairs: int) -> list[bytes]:
    """`count` distinct, valid seed files, serialized as the client would send them."""
    rng = random.Random(20240603)
    return [
        orjson.dumps(seed_file(f"bench-{index:06d}", pairs=pairs, rng=rng))
        for index in range(count)
    ]


def batch_bodies(files: list[bytes], size: int) -> list[tuple[int, bytes]]:
    """`{"items": [...]}` bodies of up to `size` files, built from the already-encoded files."""
    bodies = []
    for start in range(0, len(files), size):
        chunk = files[start : start + size]
        bodies.append((len(chunk), b'{"items":[' + b",".join(chunk) + b"]}"))
    return bodies


# ---------------------------------------------------------------------------------------------
# Baseline: the same rows with COPY


@dataclass(frozen=True)
class Prepared:
    """Baseline rows, and what preparing them cost in this (single) process."""

    conversations: list[tuple[Any, ...]]
    turns: list[tuple[Any, ...]]
    parse_seconds: float
    encode_seconds: float


def prepare_rows(files: list[bytes], owner_id: uuid.UUID) -> Prepared:
    """Parse + validate and gzip every file exactly as the API does, into COPY records."""
    started = time.perf_counter()
    drafts: list[ConversationDraft] = [parse_seed_document(orjson.loads(raw)) for raw in files]
    parsed = time.perf_counter()
    docs = [store.encode(owner_id, draft) for draft in drafts]
    encoded = time.perf_counter()
    conversations: list[tuple[Any, ...]] = []
    turns: list[tuple[Any, ...]] = []
    for draft, doc in zip(drafts, docs, strict=True):
        values = {
            **{name: getattr(draft, name) for name in _CONVERSATION_COLUMNS[2:-3]},
            "id": doc.id,
            "owner_id": owner_id,
            "object_key": doc.key,
            "byte_size": len(doc.body),
            "sha256": doc.sha256,
        }
        values["quality_metrics"] = orjson.dumps(draft.quality_metrics).decode()
        for name in ("tier", "status", "source"):
            values[name] = values[name].value
        conversations.append(tuple(values[name] for name in _CONVERSATION_COLUMNS))
        for turn in draft.turns:
            turns.append(
                (doc.id, owner_id, turn.turn_number, turn.role.value, turn.content,
                 turn.token_count, turn.char_count, turn.word_count, turn.sentence_count,
                 turn.detected_emotion, turn.emotion_confidence, turn.emotion_intensity,
                 turn.strategy, turn.tone, orjson.dumps(turn.metadata).decode())
            )  # fmt: skip
    return Prepared(conversations, turns, parsed - started, encoded - parsed)


async def copy_baseline(db: BenchDatabase, prepared: Prepared) -> Result:
    """COPY conversations then turns in one transaction, as the superuser (COPY ignores RLS)."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        postgres = PostgresProcesses(db.name)
        before = await snapshot([], postgres)
        started = time.perf_counter()
        async with conn.transaction():
            await conn.copy_records_to_table(
                "conversations", records=prepared.conversations, columns=_CONVERSATION_COLUMNS
            )
            await conn.copy_records_to_table(
                "conversation_turns", records=prepared.turns, columns=_TURN_COLUMNS
            )
        seconds = time.perf_counter() - started
        usage = cpu_usage(before, await snapshot([], postgres))
    finally:
        await conn.close()
    return Result("baseline: COPY conversations + turns", len(prepared.conversations), seconds,
                  usage)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# Through the API


async def reset_tables(db: BenchDatabase) -> None:
    """Empty the conversation tables so every run starts from the same state.

    No VACUUM/ANALYZE afterwards: TRUNCATE leaves the tables "never vacuumed" as on a fresh
    install. Statistics saying "empty" would make the API connections cache a sequential-scan
    plan for the foreign-key checks of every turn, which gets slower as the table grows."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute(
            "TRUNCATE conversation_reviews, conversation_turns, conversations CASCADE"
        )
        await conn.execute("CHECKPOINT")
    finally:
        await conn.close()


async def check_stored(db: BenchDatabase, files: int, pairs: int) -> None:
    """Every file landed: one row, 2*pairs + 1 turns and one review row each."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        rows = await conn.fetchval("SELECT count(*) FROM conversations")
        turns = await conn.fetchval("SELECT count(*) FROM conversation_turns")
    finally:
        await conn.close()
    expected = (files, files * (2 * pairs + 1))
    if (rows, turns) != expected:
        raise RuntimeError(f"stored {rows} rows / {turns} turns, expected {expected}")


async def post_batches(
    server: ApiServer, account: BenchAccount, bodies: list[tuple[int, bytes]], concurrency: int
) -> Latencies:
    """POST every batch body, `concurrency` at a time."""
    queue: asyncio.Queue[tuple[int, bytes]] = asyncio.Queue()
    for body in bodies:
        queue.put_nowait(body)
    stats = Latencies()
    headers = {**account.headers, "Content-Type": "application/json"}
    url = f"{server.base_url}/v1/conversations/batch"

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            count, body = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
            if response.status != 200:
                stats.error(f"{response.status}: {payload[:300]!r}")
                continue
            created = orjson.loads(payload)["created"]
            if created != count:
                stats.error(f"batch created {created} of {count}: {payload[:300]!r}")
            stats.samples.append(time.perf_counter() - started)

    timeout = aiohttp.ClientTimeout(total=300)
    # A fresh connection per batch: with a handful of keep-alive connections the kernel may hand
    # all of them to one uvicorn worker and leave the other idle for the whole run.
    connector = aiohttp.TCPConnector(limit=concurrency, force_close=True)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        stats.wall = time.perf_counter() - started
    return stats


async def post_singles(
    server: ApiServer, account: BenchAccount, files: list[bytes], concurrency: int
) -> Latencies:
    """POST every file on its own, `concurrency` requests in flight."""
    queue: asyncio.Queue[bytes] = asyncio.Queue()
    for raw in files:
        queue.put_nowait(raw)
    stats = Latencies()
    headers = {**account.headers, "Content-Type": "application/json"}
    url = f"{server.base_url}/v1/conversations"

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            raw = queue.get_nowait()
            started = time.perf_counter()
            async with session.post(url, data=raw, headers=headers) as response:
                payload = await response.read()
            if response.status != 201:
                stats.error(f"{response.status}: {payload[:300]!r}")
                continue
            stats.samples.append(time.perf_counter() - started)

    timeout = aiohttp.ClientTimeout(total=300)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        started = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        stats.wall = time.perf_counter() - started
    return stats


async def api_run(
    db: BenchDatabase,
    server: ApiServer,
    account: BenchAccount,
    files: list[bytes],
    args: argparse.Namespace,
    mode: str,
) -> Result:
    """One timed import of every file through the API, verified in the database afterwards."""
    await reset_tables(db)
    postgres = PostgresProcesses(db.name)
    before = await snapshot(server.worker_pids(), postgres)
    if mode == "batch":
        bodies = batch_bodies(files, args.batch_size)
        stats = await post_batches(server, account, bodies, args.batch_concurrency)
        label = (f"API batch ({args.batch_size}/req, {args.batch_concurrency} in flight), "
                 f"{server.workers} worker(s)")  # fmt: skip
    else:
        stats = await post_singles(server, account, files, args.single_concurrency)
        label = (f"API single ({args.single_concurrency} in flight), "
                 f"{server.workers} worker(s)")  # fmt: skip
    usage = cpu_usage(before, await snapshot(server.worker_pids(), postgres))
    if stats.errors:
        raise RuntimeError(f"{stats.errors} failed requests, e.g. {stats.error_examples}")
    await check_stored(db, len(files), args.pairs)
    result = Result(label, len(files), stats.wall, usage, stats)
    log(f"{label}: {result.rate:.0f} files/s")
    return result


async def profiled_run(
    db: BenchDatabase, account: BenchAccount, files: list[bytes], args: argparse.Namespace
) -> None:
    """One batch run under cProfile (1 worker); prints where the API process spends its time."""
    with tempfile.TemporaryDirectory(prefix="convoforge-bench-prof-") as tmp:
        profile = Path(tmp) / "api.prof"
        async with ApiServer(db.app_dsn, workers=1, profile=profile) as server:
            await api_run(db, server, account, files, args, "batch")
        stats = pstats.Stats(str(profile))
        print("\ncProfile of the API process (1 worker, batch mode; cProfile slows it down):")
        stats.sort_stats("tottime").print_stats(25)


# ---------------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1,000 files, one worker setting")
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--pairs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--batch-concurrency", type=int, default=4)
    parser.add_argument("--single-concurrency", type=int, default=16)
    parser.add_argument("--workers", default="1,2", help="API_WORKERS values to try, e.g. 1,2")
    parser.add_argument("--mode", choices=("batch", "single", "both"), default="both")
    parser.add_argument("--profile", action="store_true", help="also cProfile the API process")
    args = parser.parse_args()
    if args.quick:
        args.files = min(args.files, 1_000)
        args.workers = "2"
    return args


async def main(args: argparse.Namespace) -> None:
    wall_started = time.monotonic()
    workers = [int(value) for value in args.workers.split(",")]
    modes = ["batch", "single"] if args.mode == "both" else [args.mode]
    log(f"generating {args.files} files x {args.pairs} pairs")
    files = make_files(args.files, args.pairs)
    mean_kib = sum(map(len, files)) / len(files) / 1024
    async with bench_database("import") as db:
        account = await create_account(db.app_dsn)
        log("baseline: parsing + gzipping in-process, then COPY")
        prepared = prepare_rows(files, account.user_id)
        await reset_tables(db)
        baseline = await copy_baseline(db, prepared)
        log(f"baseline: {baseline.rate:.0f} files/s")
        results: list[Result] = []
        for count in workers:
            async with ApiServer(db.app_dsn, workers=count) as server:
                for mode in modes:
                    results.append(await api_run(db, server, account, files, args, mode))
        if args.profile:
            await profiled_run(db, account, files, args)
        pg = await postgres_settings(db.admin_dsn)

    print(f"\nmachine: {machine_line()}")
    print("postgres: " + ", ".join(f"{key}={value}" for key, value in sorted(pg.items())))
    print(f"input: {args.files} files x {args.pairs} pairs ({2 * args.pairs + 1} turns each), "
          f"mean {mean_kib:.1f} KiB/file")  # fmt: skip
    rows = [Row(baseline.label, f"{baseline.rate:,.0f} files/s")]
    target = f">= {TARGET_FILES_PER_SECOND:.0f} files/s"
    for result in results:
        rows.append(
            Row(result.label, f"{result.rate:,.0f} files/s", f"{baseline.rate:,.0f} files/s",
                f"{result.rate / baseline.rate:.2f}x", target,
                verdict(result.rate >= TARGET_FILES_PER_SECOND))
        )  # fmt: skip
        if result.cpu is not None:
            # What the same work would reach if it had both cores to itself (see "other").
            estimate = result.cpu.capacity(result.files)
            rows.append(
                Row("  ^ CPU-bound estimate, cores not shared", f"{estimate:,.0f} files/s",
                    f"{baseline.rate:,.0f} files/s", f"{estimate / baseline.rate:.2f}x", target,
                    f"({verdict(estimate >= TARGET_FILES_PER_SECOND)})")
            )  # fmt: skip
    print_table("Import throughput", rows)
    per_file_parse = 1000 * prepared.parse_seconds / args.files
    per_file_encode = 1000 * prepared.encode_seconds / args.files
    print("\nWhere the time goes (CPU share of the 2 cores during each run; ms CPU per file):")
    print(f"  in-process reference: parse+validate {per_file_parse:.2f} ms/file, "
          f"gzip+sha256 {per_file_encode:.2f} ms/file (single thread)")  # fmt: skip
    for result in [baseline, *results]:
        if result.cpu is not None:
            print(f"  {result.label}:\n    {result.cpu.describe(result.files, 'file')}")
        if result.latencies is not None:
            lat = result.latencies.summary()
            print(f"    request latency p50 {lat['p50']:.0f} ms, p95 {lat['p95']:.0f} ms, "
                  f"max {lat['max']:.0f} ms")  # fmt: skip
    print(f"\ntotal bench time {time.monotonic() - wall_started:.0f} s")


if __name__ == "__main__":
    run(main(parse_args()))
