"""Judge benchmark (issue 13): what a judgement costs next to the conversation it judges.

    flock /tmp/convoforge-bench.lock .venv/bin/python bench/judge.py            # 40 items
    flock /tmp/convoforge-bench.lock .venv/bin/python bench/judge.py --items 20

One generation job (LLM_MODEL, live, prompt caching on) lands the conversations against the fake
Messages API (`python -m tests.fakes.anthropic`, which answers the judge's record_scores tool
and reports usage as the real API does); then the same conversations are judged three ways:
- the default judge (JUDGE_MODEL = claude-haiku-4-5), live;
- the baseline: a judge on the generation model itself (what scoring with the writer would cost);
- the default judge in Message Batches.
Every figure comes from the run's generation_logs rows (purpose generation / judge), priced with
the shipped list prices. Targets: the default judge costs less per conversation than the
same-model baseline, batches halve it again, every conversation judged, 0 over-limit requests.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from _support import (
    REDIS_URL,
    REPO,
    Row,
    bench_database,
    create_account,
    log,
    machine_line,
    print_table,
    run,
    verdict,
)
from pydantic import SecretStr

sys.path.insert(0, str(REPO))  # tests.fakes / tests.support are not installed packages

from shared.db.pool import create_pool, tenant_transaction
from shared.quality.enqueue import enqueue_judging
from shared.queue import create_redis
from shared.settings import Settings
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropicProcess
from tests.generator.harness import running_worker, wait_batch, worker_resources
from tests.support.api import api_client

_TOTALS = """SELECT count(*) AS requests, coalesce(sum(input_tokens), 0) AS input,
                    coalesce(sum(cache_read_tokens), 0) AS cache_read,
                    coalesce(sum(output_tokens), 0) AS output, coalesce(sum(cost_usd), 0) AS usd,
                    count(*) FILTER (WHERE status = 'success') AS answered
               FROM generation_logs WHERE job_id = $1"""
_JUDGED = "SELECT count(*) FROM generation_items WHERE batch_id = $1 AND status = 'completed'"


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=40)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=int, default=600)
    return parser.parse_args()


def _plan(items: int) -> dict[str, Any]:
    topics = ("an emergency fund", "a pension", "a first budget", "market volatility")
    return {
        "items": [{"persona": f"saver {n}", "topic": topics[n % len(topics)]}
                  for n in range(items)],
        "concurrency": 20, "judge": False,
    }  # fmt: skip


async def _totals(pool: Any, owner: uuid.UUID, job_id: str) -> dict[str, Any]:
    async with tenant_transaction(pool, owner) as conn:
        row = await conn.fetchrow(_TOTALS, uuid.UUID(job_id))
    assert row is not None
    return dict(row)


async def _over_limit(url: str) -> int:
    async with httpx.AsyncClient() as http:
        return int((await http.get(f"{url}/_fake/requests")).json()["over_limit_count"])


async def _generate(base: Settings, dsn: str, tmp: Path, items: int) -> dict[str, Any]:
    account = await create_account(dsn)
    pool = await create_pool(base)
    try:
        async with api_client(base) as api, worker_resources(base, pool, tmp / "gen") as res:
            started = time.perf_counter()
            created = await api.post("/v1/generation-jobs", json=_plan(items),
                                     headers=account.headers)  # fmt: skip
            created.raise_for_status()
            async with running_worker(res, max_jobs=20):
                done = await wait_batch(api, account.headers, created.json()["id"], within=900)
            wall = time.perf_counter() - started
        totals = await _totals(pool, account.user_id, done["id"])
        async with tenant_transaction(pool, account.user_id) as conn:
            ids = [r["id"] for r in await conn.fetch(
                "SELECT id FROM conversations WHERE generation_job_id = $1", uuid.UUID(done["id"])
            )]  # fmt: skip
    finally:
        await pool.close()
    log(f"generation: {len(ids)} landed in {wall:.1f}s")
    return {"name": f"generation ({base.llm_model})", "wall_s": wall, "ids": ids,
            "account": account, "judged": len(ids), **totals}  # fmt: skip


async def _judge(
    base: Settings, tmp: Path, generated: dict[str, Any], name: str, model: str, batch: bool
) -> dict[str, Any]:
    settings = base.model_copy(update={
        "judge_model": model, "queue_prefix": f"{base.queue_prefix}-{uuid.uuid4().hex[:6]}",
    })  # fmt: skip
    account = generated["account"]
    pool = await create_pool(settings)
    redis = create_redis(settings)
    try:
        async with api_client(settings) as api, worker_resources(settings, pool, tmp / name) as res:
            started = time.perf_counter()
            job = await enqueue_judging(
                pool, redis, settings, account.user_id, generated["ids"], reason="bench",
                batch=batch,
            )  # fmt: skip
            assert job is not None
            async with running_worker(res, max_jobs=20):
                await wait_batch(api, account.headers, str(job.batch.id), within=900)
            wall = time.perf_counter() - started
        totals = await _totals(pool, account.user_id, str(job.batch.id))
        async with tenant_transaction(pool, account.user_id) as conn:
            judged = int(await conn.fetchval(_JUDGED, job.batch.id))
    finally:
        await redis.aclose()
        await pool.close()
    log(f"{name}: {judged} judged in {wall:.1f}s")
    return {"name": name, "wall_s": wall, "judged": judged, **totals}


def _report(rows: list[dict[str, Any]], over_limit: int) -> None:
    per = {r["name"]: float(r["usd"]) / max(1, r["judged"]) for r in rows}
    generation, default, same, batched = (r["name"] for r in rows)
    columns = ("run", "requests", "input", "cache read", "output", "USD", "USD/conv",
               "vs generation", "conversations", "wall s")  # fmt: skip
    table = [list(columns)] + [
        [r["name"], str(r["requests"]), str(r["input"]), str(r["cache_read"]), str(r["output"]),
         f"{float(r['usd']):.4f}", f"{per[r['name']]:.5f}",
         f"{per[r['name']] / per[generation]:.1%}", str(r["judged"]), f"{r['wall_s']:.1f}"]
        for r in rows
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(columns))]
    print(machine_line())
    print("\nCost per conversation: generating it, and judging it three ways (shipped list prices)")
    for index, row in enumerate(table):
        print(" | ".join(cell.rjust(width) for cell, width in zip(row, widths, strict=True)))
        if index == 0:
            print("-+-".join("-" * w for w in widths))
    count = rows[0]["judged"]
    print_table("Targets", [
        Row("default judge $/conv", f"{per[default]:.5f}", f"{per[same]:.5f}",
            f"{per[default] / per[same]:.1%}", "< same-model judge",
            verdict(per[default] < per[same])),
        Row("batched judge $/conv", f"{per[batched]:.5f}", f"{per[default]:.5f}",
            f"{per[batched] / per[default]:.1%}", "<= 50% + rounding",
            verdict(per[batched] <= 0.51 * per[default])),
        Row("conversations judged", "/".join(str(r["judged"]) for r in rows[1:]), str(count), "",
            "all", verdict(all(r["judged"] == count for r in rows))),
        Row("over-limit requests", str(over_limit), "", "", "0", verdict(over_limit == 0)),
    ])  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    """Set up the fake and a database, generate, judge three ways, report, clean up."""
    tmp = Path(tempfile.mkdtemp(prefix="convoforge-judgebench-"))
    fake = FakeAnthropicProcess("--rpm", str(args.rpm), "--window-seconds", "60",
                                "--latency", str(args.latency))  # fmt: skip
    try:
        url = fake.start()
        async with httpx.AsyncClient() as http:
            await http.post(f"{url}/_fake/config",
                            json={"input_tpm": 10_000_000, "output_tpm": 10_000_000})  # fmt: skip
        async with bench_database("judge") as db:
            base = Settings(
                environment="test", database_url=db.app_dsn, database_admin_url=None,
                redis_url=REDIS_URL, queue_prefix=f"cfbench-judge-{uuid.uuid4().hex[:8]}",
                storage_backend="local", storage_local_dir=tmp / "storage",
                llm_provider="anthropic", anthropic_api_key=SecretStr(DEFAULT_API_KEY),
                anthropic_base_url=url, llm_requests_per_minute=args.rpm,
                llm_batch_poll_min_seconds=0.5, llm_batch_poll_max_seconds=2.0,
                llm_count_tokens_sample=0, log_level="WARNING", log_format="json",
                api_rate_limit_per_minute=0, generator_max_jobs=20, judge_concurrency=20,
                judge_after_generation=False,
            )  # fmt: skip
            generated = await _generate(base, db.app_dsn, tmp, args.items)
            rows = [generated]
            for name, model, batch in (
                (f"judge {base.judge_model} (default)", base.judge_model, False),
                (f"judge {base.llm_model} (baseline)", base.llm_model, False),
                (f"judge {base.judge_model}, batch", base.judge_model, True),
            ):
                rows.append(await _judge(base, tmp, generated, name, model, batch))
        _report(rows, await _over_limit(url))
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main(_args()))
