"""Near-duplicate benchmark (issue 13): 10,000 conversations with planted paraphrases.

    .venv/bin/python bench/dedup.py             # 10,000 conversations, ~2 minutes
    .venv/bin/python bench/dedup.py --quick     # 2,000, a smoke test

The corpus: original conversations (4-8 turn pairs of Zipf-distributed words over a 5,000-word
vocabulary, assistant turns opening with one of 20 templated sentences, one of 5 system
prompts), and planted copies of earlier originals placed later in the stream:

- paraphrases with 1 %, 2 % or 3 % of their words replaced (both sides): near-duplicates that
  must be caught (expected exact Jaccard of 3-word shingles ~0.94 / 0.89 / 0.84);
- rewrites with 15 % of the words replaced (Jaccard ~0.4) and "same script, new answer"
  copies (user turns identical, assistant turns from another conversation): must not be.

Measured: the real code path (shared/dedup: signatures, Redis LSH bands, candidate signatures
from PostgreSQL, rows + conversation_minhash written in the tenant transaction, bands added
after the commit), in batches like POST /v1/conversations/batch and one by one like a single
import or a generated landing. Baseline, same corpus, same run: exact Jaccard of the same
shingle sets between every pair (sparse-matrix products, row blocks), the same decision rule
(the earliest earlier conversation whose user and assistant similarities are both >= 0.8).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
import redis.asyncio as redis_asyncio
from _support import (
    REDIS_URL,
    Row,
    bench_database,
    create_account,
    log,
    machine_line,
    print_table,
    run,
)
from _support_dedup import Corpus, Item, build_corpus, exact_decisions, score

from shared.db.pool import create_pool, tenant_transaction
from shared.db.repositories import conversations as repo
from shared.dedup.service import Check, Deduplicator
from shared.models.conversation import ConversationDraft
from shared.settings import Settings


@dataclass
class Timing:
    """Where the indexing time went (seconds)."""

    check: float = 0.0  # signatures + Redis band lookup (and a rebuild, if one ran)
    verify: float = 0.0  # candidates' signatures from PostgreSQL, comparisons, own signatures
    publish: float = 0.0  # bands added after the commit
    rows: float = 0.0  # conversation rows, turns, review entry, commit: the import's own work
    decisions: dict[str, str | None] = field(default_factory=dict)

    @property
    def dedup(self) -> float:
        return self.check + self.verify + self.publish

    @property
    def total(self) -> float:
        return self.dedup + self.rows


async def index_all(
    dedup: Deduplicator, pool: asyncpg.Pool, owner: uuid.UUID, items: Sequence[Item], batch: int
) -> Timing:
    """Land every item through shared/dedup in batches of `batch`; their duplicate_of."""
    timing = Timing()
    for start in range(0, len(items), batch):
        chunk = items[start : start + batch]
        drafts = [item.draft for item in chunk]
        began = time.perf_counter()
        check = await dedup.check(owner, drafts)
        checked = time.perf_counter()
        ids = await _land(pool, owner, check, drafts, timing)
        landed = time.perf_counter()
        await check.publish()
        timing.check += checked - began
        timing.rows += landed - checked
        timing.publish += time.perf_counter() - landed
        for item, (id, marked) in zip(chunk, ids, strict=True):
            item.ids[batch] = id
            timing.decisions[item.name] = marked
    return timing


async def _land(
    pool: asyncpg.Pool,
    owner: uuid.UUID,
    check: Check,
    drafts: list[ConversationDraft],
    timing: Timing,
) -> list[tuple[uuid.UUID, str | None]]:
    """What import_batch does in its transaction, without the objects; dedup's share timed."""
    out = []
    spent = 0.0
    async with tenant_transaction(pool, owner) as conn:
        started = time.perf_counter()
        await check.load(conn)
        spent += time.perf_counter() - started
        for index, draft in enumerate(drafts):
            started = time.perf_counter()
            marked = check.mark(index, draft)
            spent += time.perf_counter() - started
            id = uuid.uuid4()
            row = await repo.insert(
                conn, id=id, owner_id=owner, draft=marked, object_key=f"bench/{id}",
                byte_size=1, sha256="0" * 64, action="imported",
            )  # fmt: skip
            started = time.perf_counter()
            check.accept(index, id, row.created_at)
            spent += time.perf_counter() - started
            out.append((id, str(marked.duplicate_of) if marked.duplicate_of else None))
        started = time.perf_counter()
        await check.save(conn)
        spent += time.perf_counter() - started
    timing.verify += spent
    timing.rows -= spent  # the caller adds the whole transaction to rows
    return out


def _names(corpus: Corpus, timing: Timing, batch: int) -> dict[str, str | None]:
    """duplicate_of as item names (so MinHash and exact decisions compare directly)."""
    by_id = {str(item.ids[batch]): item.name for item in corpus.items}
    return {
        name: by_id.get(target) if target else None for name, target in timing.decisions.items()
    }


async def _drop_keys(client: redis_asyncio.Redis, prefix: str) -> None:
    keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await client.delete(*keys[start : start + 1000])


async def main(args: argparse.Namespace) -> None:
    corpus = build_corpus(args.conversations, seed=args.seed)
    log(f"corpus: {len(corpus.items)} conversations, {corpus.summary()}")
    prefix = f"bench-dedup-{uuid.uuid4().hex[:8]}"
    client = redis_asyncio.Redis.from_url(REDIS_URL)
    async with bench_database("dedup") as database:
        settings = Settings(database_url=database.app_dsn, redis_url=REDIS_URL, queue_prefix=prefix)
        pool = await create_pool(settings, min_size=2)
        try:
            dedup = Deduplicator(pool, client, settings)
            rows = await _measure(dedup, pool, database.app_dsn, corpus, args, client, prefix)
        finally:
            await pool.close()
            await _drop_keys(client, prefix)
            await client.aclose()
    print(f"\nmachine: {machine_line()}")
    print(f"corpus: {len(corpus.items)} conversations, {corpus.summary()}")
    print_table("Near-duplicate detection (threshold 0.8)", rows)


async def _measure(
    dedup: Deduplicator,
    pool: asyncpg.Pool,
    dsn: str,
    corpus: Corpus,
    args: argparse.Namespace,
    client: redis_asyncio.Redis,
    prefix: str,
) -> list[Row]:
    n = len(corpus.items)
    owner = (await create_account(dsn)).user_id
    log(f"MinHash LSH, batches of {args.batch}: indexing {n} conversations")
    batched = await index_all(dedup, pool, owner, corpus.items, args.batch)
    minhash = score(corpus, _names(corpus, batched, args.batch))
    log(f"  {n / batched.dedup:.0f} conversations/s (dedup work); {minhash}")

    singles_n = min(n, args.singles)
    single_owner = (await create_account(dsn)).user_id
    log(f"MinHash LSH, one at a time: the first {singles_n} conversations (another tenant)")
    single = await index_all(dedup, pool, single_owner, corpus.items[:singles_n], 1)

    log("rebuild: the Redis index dropped, rebuilt from PostgreSQL on the next lookup")
    await _drop_keys(client, prefix)
    began = time.perf_counter()
    await dedup.index.ensure_ready(owner, dedup._stored)
    rebuild = time.perf_counter() - began

    log("baseline: exact all-pairs Jaccard on the same corpus")
    began = time.perf_counter()
    exact_names = exact_decisions(corpus, threshold=dedup.threshold)
    exact_seconds = time.perf_counter() - began
    exact = score(corpus, exact_names)
    log(f"  {n / exact_seconds:.0f} conversations/s; {exact}")
    mine = _names(corpus, batched, args.batch)
    agree = sum(
        (mine[item.name] is None) == (exact_names[item.name] is None) for item in corpus.items
    )
    exact_flags = [name for name, target in exact_names.items() if target]
    kept = sum(1 for name in exact_flags if mine[name]) / len(exact_flags) if exact_flags else 1.0
    per_ms = 1000 / n
    return [
        Row("MinHash LSH, batches of 100: conversations/s", f"{n / batched.dedup:,.0f}",
            f"{n / exact_seconds:,.0f} (exact)", f"{exact_seconds / batched.dedup:.1f}x"),
        Row("  ms per conversation: check | verify | publish",
            f"{batched.check * per_ms:.2f} | {batched.verify * per_ms:.2f} | "
            f"{batched.publish * per_ms:.2f}"),
        Row("  with the rows written (whole landing): conv/s", f"{n / batched.total:,.0f}"),
        Row("MinHash LSH, one at a time: conversations/s", f"{singles_n / single.dedup:,.0f}",
            "", "", f"{singles_n} conversations"),
        Row("  with the rows written (whole landing): conv/s", f"{singles_n / single.total:,.0f}"),
        Row("MinHash LSH: precision", f"{minhash.precision:.3f}", f"{exact.precision:.3f}"),
        Row("MinHash LSH: recall (planted 1-3 %)", f"{minhash.recall:.3f}", f"{exact.recall:.3f}"),
        *(
            Row(f"  recall of {rate} % paraphrases", f"{minhash.by_rate[rate]:.3f}",
                f"{exact.by_rate[rate]:.3f}")
            for rate in sorted(minhash.by_rate)
        ),
        Row("  flagged 15 % rewrites / same-script copies",
            f"{minhash.flagged_negatives}", f"{exact.flagged_negatives}"),
        Row("exact baseline's flags that MinHash also makes", f"{kept:.3f}"),
        Row("decisions equal to the exact baseline's", f"{agree / n:.2%}"),
        Row("rebuild of the Redis index from PostgreSQL", f"{rebuild:.2f} s", "", "",
            f"{n} signatures"),
        Row("exact all-pairs baseline time", f"{exact_seconds:.1f} s"),
    ]  # fmt: skip


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="2,000 conversations")
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=100, help="conversations per transaction")
    parser.add_argument("--singles", type=int, default=1_000, help="one-at-a-time landings")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if args.quick:
        args.conversations, args.singles = 2_000, 300
    return args


if __name__ == "__main__":
    run(main(_parse()))
