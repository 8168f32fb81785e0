"""Economy benchmark (issue 15, DESIGN §10): cost per landed conversation three ways.

    .venv/bin/python bench/economy.py             # 100 items, batch processing delay 2 s
    .venv/bin/python bench/economy.py --items 30  # quicker

The same 100-item plan (one template whose system prompt is a ~1,600-token style guide, the
shared prefix) runs against the fake Messages API (`python -m tests.fakes.anthropic`, which
enforces its rate limit, counts over-limit requests, and accounts prompt caching and batches as
the real API reports them), priced with the shipped list prices of the configured model:
- naive: live calls, no prompt caching (the seeds' method; baseline);
- live + caching: live calls, the shared prefix cached for 5 minutes;
- batch + caching: Message Batches (50 % off), the prefix cached for an hour.
Each run gets a fresh account, a fresh fake (reset) and an in-process generator worker; the
figures come from the run's generation_logs rows (what every cost summary reads).
Targets: batch + caching <= 45 % of naive per conversation, live + caching < naive, 0 over-limit
requests, identical conversation counts.
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
from shared.settings import Settings
from tests.fakes.anthropic import DEFAULT_API_KEY, FakeAnthropicProcess
from tests.generator.harness import running_worker, wait_batch, worker_resources
from tests.support.api import api_client

TARGET_BATCH_RATIO = 0.45
STYLE = " ".join(
    f"Rule {n}: the assistant stays warm, specific and honest, names the user's feeling, "
    "and never rushes them toward a decision."
    for n in range(70)
)
WAYS = (
    ("naive", "live", False), ("live + caching", "live", True),
    ("batch + caching", "batch", True),
)  # fmt: skip
_TOTALS = """SELECT count(*) AS requests, coalesce(sum(input_tokens), 0) AS input,
                    coalesce(sum(cache_write_tokens), 0) AS cache_write,
                    coalesce(sum(cache_read_tokens), 0) AS cache_read,
                    coalesce(sum(output_tokens), 0) AS output, coalesce(sum(cost_usd), 0) AS usd,
                    (SELECT count(*) FROM conversations WHERE generation_job_id = $1) AS landed
               FROM generation_logs WHERE job_id = $1"""


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--batch-delay", type=float, default=2.0)
    parser.add_argument("--latency", type=float, default=0.3)
    parser.add_argument("--rpm", type=int, default=600)
    return parser.parse_args()


def _job(items: int, mode: str) -> dict[str, Any]:
    template = {"system_prompt": STYLE, "user_prompt_template": "Talk to {{persona}}: {{topic}}."}
    topics = ("an emergency fund", "a pension", "a first budget", "market volatility")
    return {
        "items": [
            {"template": template, "persona": f"saver {n}", "topic": topics[n % len(topics)]}
            for n in range(items)
        ],
        "mode": mode, "concurrency": 20,
    }  # fmt: skip


async def _fake_stats(url: str) -> tuple[int, int]:
    async with httpx.AsyncClient() as http:
        body = (await http.get(f"{url}/_fake/requests")).json()
    return int(body["total"]) + int(body["batch_creates"]), int(body["over_limit_count"])


async def _configure(url: str, **changes: Any) -> None:
    async with httpx.AsyncClient() as http:
        await http.post(f"{url}/_fake/reset")
        (await http.post(f"{url}/_fake/config", json=changes)).raise_for_status()


async def one_way(base: Settings, dsn: str, tmp: Path, url: str, way: tuple[str, str, bool],
                  args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    """Run the plan one way; its figures from the database and the fake."""
    name, mode, caching = way
    settings = base.model_copy(update={
        "llm_prompt_caching": caching, "queue_prefix": f"{base.queue_prefix}-{mode}{int(caching)}",
    })  # fmt: skip
    # Token limits far above the plan's needs: the comparison is about price, not throttling.
    await _configure(url, batch_delay=args.batch_delay, input_tpm=10_000_000, output_tpm=10_000_000)
    account = await create_account(dsn)
    pool = await create_pool(settings)
    try:
        async with api_client(settings) as api, worker_resources(settings, pool, tmp / name) as res:
            started = time.perf_counter()
            created = await api.post("/v1/generation-jobs", json=_job(args.items, mode),
                                     headers=account.headers)  # fmt: skip
            created.raise_for_status()
            async with running_worker(res, max_jobs=20):
                done = await wait_batch(api, account.headers, created.json()["id"], within=900)
            wall = time.perf_counter() - started
        async with tenant_transaction(pool, account.user_id) as conn:
            row = await conn.fetchrow(_TOTALS, uuid.UUID(done["id"]))
        assert row is not None
        totals = dict(row)
    finally:
        await pool.close()
    calls, over = await _fake_stats(url)
    log(f"{name}: {done['status']}, {totals['landed']} landed in {wall:.1f}s")
    return {"name": name, "wall_s": wall, "http_calls": calls, "over_limit": over, **totals}


COLUMNS = (
    "way",
    "attempt rows",
    "API requests",
    "input",
    "cache write",
    "cache read",
    "output",
    "USD",
    "USD/conv",
    "landed",
    "wall s",
    "vs naive",
)


def _line(cells: list[str], widths: list[int]) -> str:
    return " | ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def _report(results: list[dict[str, Any]], model: str) -> None:
    per_conv = {r["name"]: float(r["usd"]) / max(1, r["landed"]) for r in results}
    naive = per_conv["naive"]
    table = [list(COLUMNS)] + [
        [r["name"], str(r["requests"]), str(r["http_calls"]), str(r["input"]),
         str(r["cache_write"]), str(r["cache_read"]), str(r["output"]), f"{float(r['usd']):.4f}",
         f"{per_conv[r['name']]:.5f}", str(r["landed"]), f"{r['wall_s']:.1f}",
         f"{per_conv[r['name']] / naive:.1%}"]
        for r in results
    ]  # fmt: skip
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    print(machine_line())
    print(f"\nCost per landed conversation, {model}, shipped list prices (baseline: naive)")
    for index, row in enumerate(table):
        print(_line(row, widths))
        if index == 0:
            print("-+-".join("-" * w for w in widths))
    batch_ratio = per_conv["batch + caching"] / naive
    live_ratio = per_conv["live + caching"] / naive
    over = sum(r["over_limit"] for r in results)
    counts = sorted({r["landed"] for r in results})
    print_table("Targets", [
        Row("batch + caching $/conv", f"{per_conv['batch + caching']:.5f}", f"{naive:.5f}",
            f"{batch_ratio:.1%}", f"<= {TARGET_BATCH_RATIO:.0%}",
            verdict(batch_ratio <= TARGET_BATCH_RATIO)),
        Row("live + caching $/conv", f"{per_conv['live + caching']:.5f}", f"{naive:.5f}",
            f"{live_ratio:.1%}", "< 100%", verdict(live_ratio < 1)),
        Row("over-limit requests", str(over), "", "", "0", verdict(over == 0)),
        Row("landed conversations", "/".join(map(str, counts)), "", "", "identical",
            verdict(len(counts) == 1)),
    ])  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    """Set up the fake and a database, run the three ways, report, clean up."""
    tmp = Path(tempfile.mkdtemp(prefix="convoforge-econbench-"))
    fake = FakeAnthropicProcess("--rpm", str(args.rpm), "--window-seconds", "60",
                                "--latency", str(args.latency))  # fmt: skip
    try:
        url = fake.start()
        async with bench_database("eco") as db:
            base = Settings(
                environment="test", database_url=db.app_dsn, database_admin_url=None,
                redis_url=REDIS_URL, queue_prefix=f"cfbench-eco-{uuid.uuid4().hex[:8]}",
                storage_backend="local", storage_local_dir=tmp / "storage",
                llm_provider="anthropic", anthropic_api_key=SecretStr(DEFAULT_API_KEY),
                anthropic_base_url=url, llm_requests_per_minute=args.rpm,
                llm_batch_poll_min_seconds=0.5, llm_batch_poll_max_seconds=2.0,
                llm_count_tokens_sample=0, log_level="WARNING", log_format="json",
                api_rate_limit_per_minute=0, generator_max_jobs=20,
            )  # fmt: skip
            results = [await one_way(base, db.app_dsn, tmp, url, way, args) for way in WAYS]
        _report(results, base.llm_model)
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    run(main(_args()))
