"""Economy on live jobs: prompt caching priced from the table, header-driven limits, estimates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from uuid import UUID

import httpx
from prometheus_client import REGISTRY

from shared.llm.pricing import CacheTtl, Usage, cost_usd, list_cost_usd, table_for
from shared.runtime import WorkerResources
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import rows, running_worker, wait_batch
from tests.support.factories import Account

# A style guide long enough to cache (about 1,600 tokens; Sonnet's minimum is 1,024).
STYLE = " ".join(
    f"Rule {n}: the assistant stays warm, specific and honest, and never rushes the user."
    for n in range(80)
)


def _job(count: int, system: str, **fields: Any) -> dict[str, Any]:
    template = {"system_prompt": system, "user_prompt_template": "Talk to {{persona}}."}
    items = [{"template": template, "persona": f"saver number {n}"} for n in range(count)]
    return {"items": items, "concurrency": 1, **fields}


async def _run(api: httpx.AsyncClient, account: Account, res: WorkerResources, body: Any) -> Any:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    async with running_worker(res):
        return await wait_batch(api, account.headers, created.json()["id"])


def _cache_tokens(model: str, kind: str) -> float:
    value = REGISTRY.get_sample_value(
        "convoforge_llm_cache_tokens_total", {"model": model, "kind": kind}
    )
    return value or 0.0


async def test_shared_prefix_is_written_once_then_read_and_priced_from_the_table(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    model = resources.settings.llm_model
    reads_before = _cache_tokens(model, "read")
    done = await _run(gen_api, account, resources, _job(3, STYLE))

    assert (done["status"], done["completed_items"]) == ("completed", 3)
    logs = await rows(
        resources.pool, account.user.id,
        "SELECT input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, cost_usd, "
        "list_cost_usd, cache_ttl, price_entry, prices FROM generation_logs WHERE job_id = $1 "
        "ORDER BY item_index", UUID(done["id"]),
    )  # fmt: skip
    prefix = logs[0]["cache_write_tokens"]
    assert prefix > 1024
    assert [(e["cache_write_tokens"], e["cache_read_tokens"]) for e in logs] == [
        (prefix, 0), (0, prefix), (0, prefix),
    ]  # fmt: skip
    entry, price = table_for(resources.settings).price_for(model)
    for log in logs:
        usage = Usage(
            log["input_tokens"], log["output_tokens"], log["cache_write_tokens"],
            log["cache_read_tokens"],
        )  # fmt: skip
        assert log["cost_usd"] == cost_usd(price, usage, cache_ttl=CacheTtl.FIVE_MINUTES)
        assert log["list_cost_usd"] == list_cost_usd(price, usage)
        assert (log["cache_ttl"], log["price_entry"]) == ("5m", entry)
        assert log["prices"]["cache_read"] == "0.30"
    assert _cache_tokens(model, "read") - reads_before == 2 * prefix

    summary = (
        await gen_api.get("/v1/generation-logs/cost-summary", headers=account.headers)
    ).json()
    every_input = sum(e["input_tokens"] + e["cache_write_tokens"] + e["cache_read_tokens"]
                      for e in logs)  # fmt: skip
    assert summary["cache_read_tokens"] == 2 * prefix
    assert summary["cache_hit_rate"] == round(2 * prefix / every_input, 4)
    spent = sum(e["cost_usd"] for e in logs)
    listed = sum(e["list_cost_usd"] for e in logs)
    assert Decimal(str(summary["saved_usd"])) == listed - spent
    assert summary["saved_usd"] > 0


async def test_a_prefix_below_the_minimum_is_not_cached_and_the_estimate_says_so(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    body = _job(2, "You are brief.")
    estimate = (
        await gen_api.post("/v1/generation-jobs/estimate", json=body, headers=account.headers)
    ).json()
    assert "minimum of 1024 cacheable tokens" in estimate["cache_warning"]
    assert estimate["by_mode"]["live"]["cache_read_tokens"] == 0
    done = await _run(gen_api, account, resources, body)
    logs = await rows(
        resources.pool, account.user.id,
        "SELECT cache_write_tokens, cache_read_tokens FROM generation_logs WHERE job_id = $1",
        UUID(done["id"]),
    )  # fmt: skip
    assert {(e["cache_write_tokens"], e["cache_read_tokens"]) for e in logs} == {(0, 0)}


async def test_estimate_counts_tokens_with_the_key_and_prices_both_modes(
    gen_api: httpx.AsyncClient, account: Account, claude: FakeAnthropic
) -> None:
    body = _job(4, STYLE)
    estimate = (
        await gen_api.post("/v1/generation-jobs/estimate", json=body, headers=account.headers)
    ).json()

    assert estimate["token_count_method"] == "count_tokens"
    assert claude.state.count_tokens_calls > 0
    assert estimate["cache_warning"] is None
    live, batch = estimate["by_mode"]["live"], estimate["by_mode"]["batch"]
    # One write, three reads of the shared prefix in either mode.
    assert live["cache_read_tokens"] == 3 * live["cache_write_tokens"] > 0
    assert batch["cost_usd"] < live["cost_usd"] < live["list_cost_usd"]
    claude.configure(api_key="a-different-key")  # count_tokens now answers 401
    fallback = (
        await gen_api.post("/v1/generation-jobs/estimate", json=body, headers=account.headers)
    ).json()
    assert fallback["token_count_method"] == "heuristic"


async def test_pricing_lists_the_table_and_the_models_entry(
    gen_api: httpx.AsyncClient, account: Account
) -> None:
    response = await gen_api.get("/v1/generation/pricing", headers=account.headers)
    assert response.status_code == 200
    body = response.json()
    assert body["model_entry"] == "claude-sonnet-4-5"
    assert body["models"]["claude-sonnet-4-5"] == {
        "input": 3.0, "output": 15.0, "cache_write_5m": 3.75, "cache_write_1h": 6.0,
        "cache_read": 0.3, "batch_discount": 0.5, "min_cacheable_tokens": 1024,
    }  # fmt: skip
    assert body["models"]["seed-legacy"]["input"] == 15.0
    assert (await gen_api.get("/v1/generation/pricing")).status_code == 401


async def test_advertised_limit_slows_the_fleet_before_any_429(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    # Our settings allow 1000 requests a second; the API (the fake) allows 3 and says so.
    claude.configure(rpm=3)
    await _run(gen_api, account, resources, _job(1, "You are brief."))
    claude.reset()
    claude.configure(rpm=3)
    done = await _run(gen_api, account, resources, {**_job(7, "You are brief."), "concurrency": 7})

    assert (done["status"], done["completed_items"]) == ("completed", 7)
    assert claude.over_limit_count == 0
    assert [r.status for r in claude.requests] == [200] * 7
