"""Export benchmark (DESIGN.md §10): N conversations x 10 turns to JSONL, Parquet and Bedrock
JSONL, local and S3 backends.

For each backend and size it runs a real `python -m services.exporter` process (fresh, so its
peak RSS, VmHWM, belongs to that one export) and compares the export's duration with a baseline
measured in the same run on the same rows: `COPY (SELECT ... ORDER BY ...) TO STDOUT` written to
a local file, and the same COPY output uploaded to the same S3 server with the exporter's own
multipart uploader (same part size). Everything it needs is started here (a database of its
own, moto's S3 server) and removed at the end.

    .venv/bin/python bench/export.py            # 10,000 and 100,000, local and s3 (~1.5 min)
    .venv/bin/python bench/export.py --sizes 2000 --backends local
    .venv/bin/python bench/export.py --targets parquet bedrock --backends local --repeat 1

Targets: export <= 2x baseline on each backend; exporter peak RSS <= 200 MB and flat in size
(within 16 MB from the smallest to the largest size). The report ends with one line per backend
and size: COPY, then each target's export time, its ratio to COPY and its peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from _support import (
    REDIS_URL,
    BenchDatabase,
    bench_database,
    cpu_seconds,
    log,
)
from pydantic import SecretStr

from services.exporter.upload import upload_pipelined
from shared.db.pool import create_pool, tenant_transaction
from shared.db.repositories import exports as exports_repo
from shared.models.export import ExportConfig, ExportLog
from shared.queue import RUN_EXPORT, create_redis, enqueue, job_id
from shared.settings import Settings
from shared.storage import S3ObjectStore
from tests.support.servers import free_port, moto_server, wait_http

REPO = Path(__file__).resolve().parents[1]
BUCKET = "convoforge-bench"
PART_SIZE = 8 * 1024 * 1024
TURNS = 10
MAX_RSS_MB = 200
# "Flat": ten times the rows may move the exporter's peak by less than this.
FLAT_RSS_MB = 16

SEED_CONVERSATIONS = """
INSERT INTO conversations (owner_id, conversation_id, title, persona, emotion, topic, tier,
    status, source, quality_score, turn_count, object_key, byte_size, sha256, created_at)
SELECT $1, 'bench-' || g, 'Bench conversation ' || g,
       (ARRAY['Anxious pre-retiree', 'First-time investor', 'Small business owner'])[1 + g % 3],
       (ARRAY['fear', 'hope', 'frustration', 'relief'])[1 + g % 4], 'retirement planning',
       (ARRAY['template', 'scenario', 'edge_case'])[1 + g % 3], 'approved', 'import',
       6 + (g % 40) / 10.0, 10, 'bench/none', 0, repeat('0', 64),
       now() - make_interval(secs => $2 - g)
  FROM generate_series(1, $2) AS g
"""
# ~300 characters a turn, with quotes, commas, a newline and non-ASCII text.
SEED_TURNS = """
INSERT INTO conversation_turns (conversation_id, owner_id, turn_number, role, content, char_count)
SELECT c.id, c.owner_id, n, CASE WHEN n % 2 = 1 THEN 'user' ELSE 'assistant' END,
       format('Turn %s of %s: I hear how "worrying" this is, and that matters.%s'
              'Let''s look at it together — step by step, %s', n, c.conversation_id, E'\n',
              repeat('calmly, ', 25)), 300
  FROM conversations c CROSS JOIN generate_series(1, $2) AS n
 WHERE c.owner_id = $1
 ORDER BY c.created_at, c.id, n  -- a conversation's turns land together, as an import writes them
"""
BASELINE_SQL = """
SELECT c.id, c.conversation_id, c.title, c.tier, t.turn_number, t.role, t.content
  FROM conversations c JOIN conversation_turns t ON t.conversation_id = c.id
 WHERE c.owner_id = $1 AND c.deleted_at IS NULL AND c.status = 'approved'
 ORDER BY c.created_at, c.id, t.turn_number
"""


@dataclass(frozen=True)
class Figures:
    """One backend x size measurement."""

    backend: str
    size: int
    baseline_s: float
    export_s: float
    counts_s: float
    peak_rss_mb: float
    file_mb: float
    cpu_s: float

    @property
    def ratio(self) -> float:
        """Export time over baseline time."""
        return self.export_s / self.baseline_s

    @property
    def rate(self) -> float:
        """Conversations per second."""
        return self.size / self.export_s


async def seed(db: BenchDatabase, size: int) -> uuid.UUID:
    """A user owning `size` approved conversations of 10 turns (server-side, as the app role)."""
    conn = await asyncpg.connect(db.app_dsn)
    try:
        owner: uuid.UUID = await conn.fetchval(
            "INSERT INTO users (email) VALUES ($1) RETURNING id", f"bench-{size}@example.com"
        )
        async with conn.transaction():
            await conn.execute("SELECT set_config('app.user_id', $1, true)", str(owner))
            await conn.execute(SEED_CONVERSATIONS, owner, size)
            await conn.execute(SEED_TURNS, owner, TURNS)
    finally:
        await conn.close()
    return owner


async def vacuum(db: BenchDatabase) -> None:
    """Fresh statistics and visibility maps, as a production table would have."""
    conn = await asyncpg.connect(db.admin_dsn)
    try:
        await conn.execute("VACUUM ANALYZE conversations")
        await conn.execute("VACUUM ANALYZE conversation_turns")
    finally:
        await conn.close()


def settings_for(db: BenchDatabase, backend: str, s3_url: str, workdir: Path) -> Settings:
    """The exporter's settings for one run."""
    return Settings(
        environment="test",
        database_url=db.app_dsn,
        database_admin_url=None,
        redis_url=REDIS_URL,
        queue_prefix=f"cfbench-export-{uuid.uuid4().hex[:8]}",
        storage_backend="s3" if backend == "s3" else "local",
        storage_local_dir=workdir / "storage",
        s3_endpoint_url=s3_url,
        s3_bucket=BUCKET,
        s3_access_key_id=SecretStr("bench"),
        s3_secret_access_key=SecretStr("bench"),
        s3_create_bucket=True,
        log_level="WARNING",
        log_format="json",
        llm_provider="offline",
        export_part_size_bytes=PART_SIZE,
    )


def environment(settings: Settings, metrics_port: int) -> dict[str, str]:
    """The settings as the exporter process reads them."""
    env = dict(os.environ)
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        secret = getattr(value, "get_secret_value", None)
        text = secret() if secret else value
        env[name.upper()] = ("true" if text else "false") if isinstance(text, bool) else str(text)
    env.pop("DATABASE_ADMIN_URL", None)
    return env | {"EXPORTER_METRICS_PORT": str(metrics_port), "METRICS_HOST": "127.0.0.1"}


async def copy_rows(dsn: str, owner: uuid.UUID, sink: Any) -> None:
    """The baseline's read: COPY of the same rows, as the app role under row-level security."""
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            await conn.execute("SELECT set_config('app.user_id', $1, true)", str(owner))
            await conn.copy_from_query(BASELINE_SQL, owner, output=sink)
    finally:
        await conn.close()


async def baseline_local(dsn: str, owner: uuid.UUID, workdir: Path) -> float:
    """COPY ... TO STDOUT written to a local file."""
    target = workdir / "baseline.copy"
    started = time.perf_counter()
    with target.open("wb") as out:

        async def sink(chunk: bytes) -> None:
            await asyncio.to_thread(out.write, chunk)

        await copy_rows(dsn, owner, sink)
    seconds = time.perf_counter() - started
    target.unlink()
    return seconds


async def baseline_s3(dsn: str, owner: uuid.UUID, settings: Settings) -> float:
    """The same COPY output uploaded with the exporter's multipart uploader."""
    store = await _s3(settings)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)
    buffer = bytearray()

    async def sink(chunk: bytes) -> None:
        # COPY hands over one row at a time; gather 1 MiB like the exporter's chunks.
        buffer.extend(chunk)
        if len(buffer) >= 1024 * 1024:
            await queue.put(bytes(buffer))
            buffer.clear()

    async def produce() -> None:
        await copy_rows(dsn, owner, sink)
        await queue.put(bytes(buffer))
        await queue.put(None)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    key = f"bench/baseline-{uuid.uuid4().hex}.copy"
    started = time.perf_counter()
    producer = asyncio.create_task(produce())
    await upload_pipelined(store, key, chunks(), content_type="text/plain", part_size=PART_SIZE)
    await producer
    seconds = time.perf_counter() - started
    await store.delete(key)
    await store.close()
    return seconds


async def _s3(settings: Settings) -> S3ObjectStore:
    return await S3ObjectStore.open(
        bucket=settings.s3_bucket,
        endpoint_url=settings.s3_endpoint_url,
        region=settings.s3_region,
        access_key_id="bench",
        secret_access_key="bench",
        create_bucket=True,
    )


async def run_exporter(
    db: BenchDatabase, settings: Settings, owner: uuid.UUID, workdir: Path, target: str
) -> tuple[ExportLog, float, float]:
    """One export by a fresh exporter process: the finished row, its peak RSS (MB) and the
    CPU seconds the exporter spent on the job (start-up excluded)."""
    port = free_port()
    log_path = workdir / "exporter.log"
    proc = start_exporter(settings, port, log_path)
    try:
        try:
            wait_http(f"http://127.0.0.1:{port}/metrics", timeout=90)  # slow on a busy machine
        except httpx.TransportError as exc:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the exporter did not start:\n{tail}") from exc
        cpu_before = cpu_seconds(proc.pid)
        export = await _export_once(db, settings, owner, target)
        cpu = cpu_seconds(proc.pid) - cpu_before
        rss = _peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    if export.status.value != "completed":
        raise RuntimeError(
            f"export {export.status}: {export.error}\n{log_path.read_text()[-3000:]}"
        )
    return export, rss, cpu


def start_exporter(settings: Settings, port: int, log_path: Path) -> subprocess.Popen[bytes]:
    """`python -m services.exporter` with these settings, logging to `log_path`."""
    with log_path.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.exporter"],
            cwd=REPO, env=environment(settings, port), stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip


# What each --targets name exports: plain JSONL (PostgreSQL renders it), Parquet, Bedrock JSONL.
TARGET_CONFIGS: dict[str, dict[str, str]] = {
    "jsonl": {"format": "jsonl"},
    "parquet": {"format": "parquet"},
    "bedrock": {"format": "jsonl", "target": "bedrock-claude"},
}


async def _export_once(
    db: BenchDatabase, settings: Settings, owner: uuid.UUID, target: str
) -> ExportLog:
    pool = await create_pool(settings, min_size=1)
    redis = create_redis(settings)
    try:
        async with tenant_transaction(pool, owner) as conn:
            export = await exports_repo.insert(
                conn, owner_id=owner, created_by=owner, filters={}, selected_ids=[],
                config=ExportConfig.model_validate(
                    {"scope": "all_approved", **TARGET_CONFIGS[target]}
                ),
            )  # fmt: skip
        jid = job_id("export", export.id)
        await enqueue(redis, settings, "exporter", RUN_EXPORT, str(export.id), job_id=jid)
        while True:
            await asyncio.sleep(0.1)
            async with tenant_transaction(pool, owner) as conn:
                row = await exports_repo.get(conn, export.id)
            assert row is not None
            finished = row.status.value in ("failed", "cancelled")
            if finished or row.counts_applied_at is not None:
                return row
    finally:
        keys = [key async for key in redis.scan_iter(f"{settings.queue_prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await pool.close()


def _peak_rss_mb(pid: int) -> float:
    """VmHWM: the process's peak resident set size."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM")


async def measure(
    db: BenchDatabase, backend: str, size: int, owner: uuid.UUID, s3_url: str, target: str
) -> Figures:
    """Baseline, then the exporter, on the same rows and backend."""
    with tempfile.TemporaryDirectory(prefix="convoforge-bench-export-") as tmp:
        workdir = Path(tmp)
        settings = settings_for(db, backend, s3_url, workdir)
        if backend == "s3":
            baseline = await baseline_s3(db.app_dsn, owner, settings)
        else:
            baseline = await baseline_local(db.app_dsn, owner, workdir)
        export, rss, cpu = await run_exporter(db, settings, owner, workdir, target)
        if backend == "s3" and export.object_key:
            store = await _s3(settings)
            await store.delete(export.object_key)  # moto keeps objects in memory
            await store.close()
    assert export.started_at is not None
    assert export.completed_at is not None
    assert export.counts_applied_at is not None
    assert export.conversation_count == size, export.conversation_count
    return Figures(
        backend=f"{backend}:{target}",
        size=size,
        baseline_s=baseline,
        export_s=(export.completed_at - export.started_at).total_seconds(),
        counts_s=(export.counts_applied_at - export.completed_at).total_seconds(),
        peak_rss_mb=rss,
        file_mb=(export.byte_size or 0) / 1e6,
        cpu_s=cpu,
    )


def report(results: list[Figures]) -> None:
    """The figures (stdout): every run, each target next to COPY per size, the verdicts."""
    print(
        f"{'run':<16}{'size':>9}{'baseline s':>12}{'export s':>10}{'ratio':>7}"
        f"{'conv/s':>9}{'CPU s':>7}{'peak RSS MB':>13}{'file MB':>9}{'count bump s':>14}"
    )
    for r in results:
        print(
            f"{r.backend:<16}{r.size:>9,}{r.baseline_s:>12.2f}{r.export_s:>10.2f}{r.ratio:>7.2f}"
            f"{r.rate:>9,.0f}{r.cpu_s:>7.2f}{r.peak_rss_mb:>13.1f}{r.file_mb:>9.1f}"
            f"{r.counts_s:>14.2f}"
        )
    groups: dict[tuple[str, int], list[Figures]] = {}
    for r in results:
        groups.setdefault((r.backend, r.size), []).append(r)
    print()
    next_to_copy(groups)
    print()
    for (backend, size), runs in groups.items():
        ratio = statistics.median(r.ratio for r in runs)
        verdict = "met" if ratio <= 2 else "NOT met"
        print(
            f"{backend} {size:,}: export <= 2x baseline {verdict} (median {ratio:.2f}x of "
            f"{len(runs)}; baseline {statistics.median(r.baseline_s for r in runs):.2f}s, export "
            f"{statistics.median(r.export_s for r in runs):.2f}s, exporter CPU "
            f"{statistics.median(r.cpu_s for r in runs):.2f}s)"
        )
    spreads = {
        backend: max(r.peak_rss_mb for r in rows) - min(r.peak_rss_mb for r in rows)
        for backend in {r.backend for r in results}
        if (rows := [r for r in results if r.backend == backend])
    }
    rss_ok = all(r.peak_rss_mb <= MAX_RSS_MB for r in results)
    flat_ok = all(spread <= FLAT_RSS_MB for spread in spreads.values())
    flat = ", ".join(f"{b} {spread:.1f} MB" for b, spread in sorted(spreads.items()))
    print(
        f"peak RSS <= {MAX_RSS_MB} MB: {'met' if rss_ok else 'NOT met'}; flat between sizes "
        f"(spread <= {FLAT_RSS_MB} MB): {'met' if flat_ok else 'NOT met'} ({flat})"
    )
    print(
        "export s = claim to file complete (export_logs.started_at -> completed_at); "
        "COPY s = the baseline measured before each export (median); x = export / its COPY; "
        "CPU s = the exporter process's CPU for the job (incl. the count bump's round trips); "
        "count bump s = export_count/last_exported_at update that follows (not in export s)"
    )


def next_to_copy(groups: dict[tuple[str, int], list[Figures]]) -> None:
    """Per backend and size: COPY, then each target's export time, ratio and peak RSS."""
    targets = list(dict.fromkeys(key[0].split(":", 1)[1] for key in groups))
    header = f"{'backend':<8}{'size':>9}{'COPY s':>8}"
    header += "".join(f"{t + ' s':>13}{'x':>6}{'RSS MB':>8}" for t in targets)
    print(header)
    for backend, size in dict.fromkeys((k[0].split(":", 1)[0], k[1]) for k in groups):
        runs = [r for t in targets for r in groups.get((f"{backend}:{t}", size), [])]
        line = f"{backend:<8}{size:>9,}{statistics.median(r.baseline_s for r in runs):>8.2f}"
        for target in targets:
            mine = groups.get((f"{backend}:{target}", size), [])
            if not mine:
                line += f"{'-':>13}{'-':>6}{'-':>8}"
                continue
            line += (
                f"{statistics.median(r.export_s for r in mine):>13.2f}"
                f"{statistics.median(r.ratio for r in mine):>6.2f}"
                f"{max(r.peak_rss_mb for r in mine):>8.0f}"
            )
        print(line)


async def main(args: argparse.Namespace) -> None:
    """Seed, measure every backend x size, report, clean up."""
    results: list[Figures] = []
    with moto_server() as s3_url:
        async with bench_database("export") as db:
            owners: dict[int, uuid.UUID] = {}
            for size in args.sizes:
                started = time.perf_counter()
                owners[size] = await seed(db, size)
                log(f"seeded {size:,} conversations x {TURNS} turns in "
                    f"{time.perf_counter() - started:.1f}s")  # fmt: skip
            await vacuum(db)
            for size in args.sizes:
                # Warm the page cache once, so neither side of the comparison pays for it.
                await copy_rows(db.app_dsn, owners[size], _discard)
                for _ in range(args.repeat):
                    for backend, target in itertools.product(args.backends, args.targets):
                        figures = await measure(db, backend, size, owners[size], s3_url, target)
                        log(
                            f"{backend} {size:,}: baseline {figures.baseline_s:.2f}s, "
                            f"export {figures.export_s:.2f}s (exporter CPU "
                            f"{figures.cpu_s:.2f}s), RSS {figures.peak_rss_mb:.0f} MB"
                        )
                        results.append(figures)
    report(results)


async def _discard(_: bytes) -> None:
    return None


def parse_args() -> argparse.Namespace:
    """--sizes, --backends, --repeat."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--backends", nargs="+", choices=["local", "s3"], default=["local", "s3"])
    parser.add_argument(
        "--targets", nargs="+", choices=sorted(TARGET_CONFIGS),
        default=["jsonl", "parquet", "bedrock"],
        help="what to export (each next to the same COPY baseline)",
    )  # fmt: skip
    parser.add_argument(
        "--repeat", type=int, default=3,
        help="baseline + export pairs per backend and size; the verdict uses the median ratio",
    )  # fmt: skip
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse_args()))
