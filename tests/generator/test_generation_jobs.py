"""A batch end to end in one process: API → arq → generate_item → fake Claude → PostgreSQL."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import pytest

from services.api.generation.prompts import FORMAT_INSTRUCTIONS
from shared.llm.pricing import Usage, cost_usd, table_for
from shared.runtime import WorkerResources
from shared.settings import Settings
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    conversations,
    items,
    logs,
    plain_items,
    running_worker,
    wait_batch,
    worker_resources,
)
from tests.support.api import api_client
from tests.support.factories import Account


async def test_batch_lands_every_item_with_costs_that_add_up(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    created = await gen_api.post(
        "/v1/generation-jobs", json=plain_items(4, temperature=0.7), headers=account.headers
    )
    assert created.status_code == 202, created.text
    batch = created.json()
    assert (batch["status"], batch["total_items"]) == ("queued", 4)

    async with running_worker(resources):
        done = await wait_batch(gen_api, account.headers, batch["id"])

    assert (done["status"], done["completed_items"], done["failed_items"]) == ("completed", 4, 0)
    assert done["progress_percent"] == 100.0
    owner = account.user.id
    landed = await conversations(resources.pool, owner, batch["id"])
    assert [c["generation_item_index"] for c in landed] == [0, 1, 2, 3]
    assert {c["status"] for c in landed} == {"pending_review"}
    attempts = await logs(resources.pool, owner, batch["id"])
    assert [a["status"] for a in attempts] == ["success"] * 4
    assert all(a["request_excerpt"] is None and len(a["prompt_sha256"]) == 64 for a in attempts)
    _, price = table_for(resources.settings).price_for(resources.settings.llm_model)
    expected = sum(
        (cost_usd(price, Usage(a["input_tokens"], a["output_tokens"])) for a in attempts),
        Decimal(0),
    )
    assert expected > 0
    assert Decimal(str(done["cost_so_far_usd"])) == expected
    assert sum(c["actual_cost_usd"] for c in landed) == expected
    assert {a["conversation_id"] for a in attempts} == {c["id"] for c in landed}
    sent = [r.body for r in claude.requests]
    assert len(sent) == 4
    assert all(body["temperature"] == 0.7 and "JSON" in body["system"][0]["text"]
               for body in sent)  # fmt: skip
    for item in await items(resources.pool, owner, batch["id"]):
        assert (item["status"], item["attempts"]) == ("completed", 1)
        assert isinstance(item["conversation_id"], UUID)


async def _create(api: httpx.AsyncClient, account: Account, body: dict[str, Any]) -> str:
    created = await api.post("/v1/generation-jobs", json=body, headers=account.headers)
    assert created.status_code == 202, created.text
    batch_id: str = created.json()["id"]
    return batch_id


async def _run_batch(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, body: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    batch_id = await _create(api, account, body)
    async with running_worker(resources):
        done = await wait_batch(api, account.headers, batch_id)
    return batch_id, done


async def test_retryable_errors_back_off_then_succeed(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.script("529", "500")
    batch_id, done = await _run_batch(gen_api, account, resources, plain_items(1))

    assert (done["status"], done["completed_items"]) == ("completed", 1)
    attempts = await logs(resources.pool, account.user.id, batch_id)
    assert [(a["attempt"], a["status"], a["error_code"]) for a in attempts] == [
        (1, "failed", "overloaded"),
        (2, "failed", "server_error"),
        (3, "success", None),
    ]
    assert [i["attempts"] for i in await items(resources.pool, account.user.id, batch_id)] == [3]


async def test_attempts_run_out_and_the_item_fails_with_its_reason(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.script("529", "529", "529", "529")
    batch_id, done = await _run_batch(gen_api, account, resources, plain_items(1))

    assert (done["status"], done["failed_items"], done["completed_items"]) == ("failed", 1, 0)
    assert done["errors"][0]["error_code"] == "overloaded"
    assert len(claude.requests) == 3  # LLM_MAX_ATTEMPTS
    [item] = await items(resources.pool, account.user.id, batch_id)
    assert (item["status"], item["attempts"], item["error_code"]) == ("failed", 3, "overloaded")


async def test_plain_429_pauses_the_fleet_without_using_an_attempt(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.configure(scripted_retry_after=1)
    claude.script("429")
    batch_id, done = await _run_batch(gen_api, account, resources, plain_items(1))

    assert done["status"] == "completed"
    first, second = claude.requests
    assert second.arrived_at - first.arrived_at >= 0.95  # waited out retry-after
    attempts = await logs(resources.pool, account.user.id, batch_id)
    assert [(a["attempt"], a["status"]) for a in attempts] == [(1, "rate_limited"), (1, "success")]
    assert [i["attempts"] for i in await items(resources.pool, account.user.id, batch_id)] == [1]


async def test_spend_limit_429_is_not_retried_and_stops_the_batch(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.script("spend_limit_429")
    batch_id, done = await _run_batch(
        gen_api, account, resources, {**plain_items(3), "concurrency": 1}
    )

    assert len(claude.requests) == 1
    assert (done["status"], done["stop_reason"]) == ("failed", "spend_limit_reached")
    assert (done["failed_items"], done["skipped_items"]) == (1, 2)
    states = [
        (i["status"], i["error_code"])
        for i in await items(resources.pool, account.user.id, batch_id)
    ]
    assert states == [("failed", "spend_limit_reached")] + [("skipped", "spend_limit_reached")] * 2


async def test_unusable_answers_fail_with_a_redacted_excerpt(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    claude.script("malformed", "max_tokens")
    batch_id, done = await _run_batch(
        gen_api, account, resources, {**plain_items(2), "concurrency": 1}
    )

    assert (done["status"], done["failed_items"]) == ("failed", 2)
    attempts = await logs(resources.pool, account.user.id, batch_id)
    assert [a["error_code"] for a in attempts] == ["no_json", "max_tokens"]
    assert all(a["cost_usd"] > 0 and a["response_excerpt"]["excerpt"] for a in attempts)
    assert Decimal(str(done["cost_so_far_usd"])) == sum(a["cost_usd"] for a in attempts)


async def test_cost_cap_stops_the_batch_before_crossing_it(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    body = {**plain_items(6, max_tokens=1500), "concurrency": 3, "cost_cap_usd": 0.044}
    batch_id, done = await _run_batch(gen_api, account, resources, body)

    assert done["stop_reason"] == "cost_cap_reached"
    assert done["status"] == "completed"
    assert 1 <= done["completed_items"] < 6
    assert done["completed_items"] + done["skipped_items"] == 6
    assert 0 < done["cost_so_far_usd"] <= 0.044
    assert len(claude.requests) == done["completed_items"]
    landed = await conversations(resources.pool, account.user.id, batch_id)
    assert len(landed) == done["completed_items"]


async def test_offline_provider_is_labelled_and_free(
    account: Account,
    pool: asyncpg.Pool,
    tmp_path: Path,
    gen_settings: Settings,
    claude: FakeAnthropic,
) -> None:
    offline = gen_settings.model_copy(update={"llm_provider": "offline", "anthropic_api_key": None})
    async with api_client(offline) as api, worker_resources(offline, pool, tmp_path) as res:
        batch_id, done = await _run_batch(api, account, res, plain_items(2))

    assert (done["status"], done["completed_items"], done["cost_so_far_usd"]) == ("completed", 2, 0)
    assert claude.requests == []
    for landed in await conversations(pool, account.user.id, batch_id):
        assert landed["model"] == "offline-sample"
        assert landed["is_flagged"]
        assert "offline-sample" in landed["tags"]


async def test_template_items_logs_cost_summary_and_template_stats(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    template = (
        await gen_api.post(
            "/v1/templates",
            json={
                "name": "Saver",
                "system_prompt": "You are a {{role}}.",
                "user_prompt_template": "Talk to {{persona}} about {{topic}}.",
                "variables": [{"name": "role", "default": "planner"}, {"name": "topic"}],
                "quality_threshold": 9.5,
            },
            headers=account.headers,
        )
    ).json()
    claude.configure(min_turns=4, max_turns=4)  # scores 8.0: 4 turns earn 1 point, not 3
    params = {"topic": "tax"}
    request = {"template_id": template["id"], "persona": "a retiree", "parameters": params}
    batch_id, done = await _run_batch(gen_api, account, resources, {"items": [request] * 2})

    assert done["completed_items"] == 2
    sent = claude.requests[0].body
    # One cache-marked block: the template's system prompt, then the fixed instructions.
    (system,) = sent["system"]
    assert system["text"] == f"You are a planner.\n\n{FORMAT_INSTRUCTIONS}"
    assert system["cache_control"] == {"type": "ephemeral", "ttl": "5m"}
    assert sent["messages"][0]["content"].startswith("Talk to a retiree about tax.")
    # The template's threshold (9.5) sends them to needs_revision, flagged.
    landed = await conversations(resources.pool, account.user.id, batch_id)
    assert {(c["status"], c["is_flagged"]) for c in landed} == {("needs_revision", True)}

    listed = await gen_api.get(
        "/v1/generation-logs", params={"job_id": batch_id}, headers=account.headers
    )
    assert (listed.json()["total"], listed.json()["items"][0]["status"]) == (2, "success")
    by_status = await gen_api.get(
        "/v1/generation-logs", params={"status": "failed"}, headers=account.headers
    )
    assert by_status.json()["total"] == 0
    summary = (
        await gen_api.get("/v1/generation-logs/cost-summary", headers=account.headers)
    ).json()
    assert (summary["requests"], summary["cost_usd"]) == (2, done["cost_so_far_usd"])
    assert summary["days"][0]["model"] == "claude-sonnet-4-5-20250929"

    stats = (await gen_api.get(f"/v1/templates/{template['id']}", headers=account.headers)).json()
    assert stats["usage_count"] == 2
    assert stats["success_rate"] == 1.0
    assert (stats["stats"]["usage_count"], stats["stats"]["success_rate"]) == (2, 1.0)
    assert stats["stats"]["average_quality"] == pytest.approx(
        sum(float(c["quality_score"]) for c in landed) / 2, abs=0.01
    )


async def test_a_source_deleted_mid_batch_does_not_lose_the_conversation(
    gen_api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    body = {"name": "Short-lived", "user_prompt_template": "Talk about {{topic}}."}
    template = (await gen_api.post("/v1/templates", json=body, headers=account.headers)).json()
    item = {"template_id": template["id"], "parameters": {"topic": "rent"}}
    batch_id = await _create(gen_api, account, {"items": [item]})
    deleted = await gen_api.delete(f"/v1/templates/{template['id']}", headers=account.headers)
    assert deleted.status_code == 204

    async with running_worker(resources):
        done = await wait_batch(gen_api, account.headers, batch_id)

    assert done["completed_items"] == 1
    [landed] = await conversations(resources.pool, account.user.id, batch_id)
    assert landed["status"] == "pending_review"
    [attempt] = await logs(resources.pool, account.user.id, batch_id)
    assert attempt["conversation_id"] == landed["id"]
