"""The judge end to end: API → quality_check job → fake Claude's record_scores → columns."""

from __future__ import annotations

import asyncio
import time
import uuid
from decimal import Decimal
from uuid import UUID

import asyncpg
import httpx
import pytest

from shared.db.pool import tenant_transaction
from shared.llm.pricing import Usage, cost_usd, table_for
from shared.runtime import WorkerResources
from tests.fakes._anthropic_judge import expected_scores
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    conversations,
    fake_requests,
    plain_items,
    running_worker,
    wait_batch,
    worker_resources,
)
from tests.quality.helpers import imported, job_items, judge_logs, judged, score
from tests.support.api import api_client
from tests.support.factories import Account


def _judge_calls(claude: FakeAnthropic) -> list[dict[str, object]]:
    return [r.body for r in fake_requests(claude) if "tools" in (r.body or {})]


async def test_scores_land_in_columns_with_rationale_rubric_version_and_cost(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(
        api, account, user_text="Is my pension safe? [judge all=0.9]",
        assistant_text='Let us look at it "calmly", step by step [weak] 🙂',
    )  # fmt: skip
    async with running_worker(resources):
        job = await score(api, account, cid)
    assert (job["status"], job["completed_items"], job["failed_items"]) == ("completed", 1, 0)

    row = await judged(resources.pool, account, cid)
    assert [row[f"{n}_score"] for n in ("coherence", "relevance", "completeness")] == [
        pytest.approx(0.9)
    ] * 3
    assert row["empathy_score"] == pytest.approx(4.6)
    assert row["brand_voice_score"] == pytest.approx(4.6)
    assert row["quality_overall"] == pytest.approx(0.9)
    assert float(row["quality_score"]) == 9.0
    assert (row["quality_source"], row["judge_rubric_version"]) == ("judge", 1)
    assert row["judge_model"] == resources.settings.judge_model
    assert row["judge_error"] is None
    assert row["judged_at"] is not None
    assert (row["status"], row["is_flagged"]) == ("pending_review", False)
    rationale = row["judge_rationale"]
    assert set(rationale) == set(expected_scores(""))
    assistant_turns = rationale["coherence"]["weakest_turns"]
    assert assistant_turns
    assert all(isinstance(n, int) for n in assistant_turns)

    [sent] = _judge_calls(claude)
    assert sent["model"] == resources.settings.judge_model
    assert sent["tool_choice"] == {"type": "tool", "name": "record_scores"}
    assert sent["system"][0]["cache_control"]["type"] == "ephemeral"  # type: ignore[index]
    assert "RUBRIC (version 1)" in sent["system"][0]["text"]  # type: ignore[index]
    assert "[judge all=0.9]" in sent["messages"][0]["content"]  # type: ignore[index]

    [entry] = await judge_logs(resources.pool, account, job["id"])
    assert (entry["status"], entry["purpose"], entry["model"]) == (
        "success", "judge", resources.settings.judge_model,
    )  # fmt: skip
    assert entry["conversation_id"] == UUID(cid)
    _, price = table_for(resources.settings).price_for(resources.settings.judge_model)
    usage = Usage(
        entry["input_tokens"], entry["output_tokens"], entry["cache_write_tokens"],
        entry["cache_read_tokens"],
    )  # fmt: skip
    assert entry["cost_usd"] == cost_usd(price, usage) > 0
    assert Decimal(str(job["cost_so_far_usd"])) == entry["cost_usd"]
    listed = await api.get("/v1/generation-logs?purpose=judge", headers=account.headers)
    assert listed.status_code == 200, listed.text
    assert [(r["purpose"], r["job_id"]) for r in listed.json()["items"]] == [("judge", job["id"])]
    other = await api.get("/v1/generation-logs?purpose=generation", headers=account.headers)
    assert other.json()["items"] == []
    wrong = await api.get("/v1/generation-logs?purpose=judging", headers=account.headers)
    assert wrong.status_code == 422


async def test_below_the_global_threshold_goes_to_needs_revision_naming_weak_criteria(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    # 0.4·0.1 + 0.4·0.2 + 0.2·0.8 = 0.28 < 0.3; completeness (0.8) is not weak.
    weak = await imported(api, account, user_text="[judge coherence=0.1] [judge relevance=0.2]")
    # 0.4·0.3 + 0.4·0.3 + 0.2·0.3 = 0.3: at the threshold is not below it.
    edge = await imported(api, account, user_text="[judge all=0.3]")
    async with running_worker(resources):
        await score(api, account, weak)
        await score(api, account, edge)

    flagged = await judged(resources.pool, account, weak)
    assert flagged["quality_overall"] == pytest.approx(0.28)
    assert float(flagged["quality_score"]) == 2.8
    assert (flagged["status"], flagged["is_flagged"]) == ("needs_revision", True)
    reason = flagged["flag_reason"]
    assert reason.startswith("judge:")
    assert "coherence 0.1" in reason
    assert "relevance 0.2" in reason
    assert "completeness" not in reason
    history = await api.get(f"/v1/conversations/{weak}/reviews", headers=account.headers)
    assert history.status_code == 200, history.text
    judged_entries = [r for r in history.json()["items"] if r["action"] == "judge"]
    assert [(r["from_status"], r["to_status"]) for r in judged_entries] == [
        ("pending_review", "needs_revision")
    ]
    passed = await judged(resources.pool, account, edge)
    assert (passed["status"], passed["is_flagged"], passed["flag_reason"]) == (
        "pending_review", False, None,
    )  # fmt: skip


async def test_a_template_threshold_overrides_the_setting(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    created = await api.post(
        "/v1/templates",
        json={"name": f"strict {uuid.uuid4().hex[:6]}", "user_prompt_template": "Talk about {{x}}",
              "judge_flag_threshold": 0.95},
        headers=account.headers,
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["judge_flag_threshold"] == pytest.approx(0.95)
    strict = await imported(api, account, user_text="[judge all=0.9]")
    lax = await imported(api, account, user_text="[judge all=0.9]")
    async with tenant_transaction(resources.pool, account.user.id) as conn:
        await conn.execute(
            "UPDATE conversations SET template_id = $2 WHERE id = $1",
            UUID(strict), UUID(created.json()["id"]),
        )  # fmt: skip
    async with running_worker(resources):
        await score(api, account, strict)
        await score(api, account, lax)
    assert (await judged(resources.pool, account, strict))["status"] == "needs_revision"
    assert (await judged(resources.pool, account, lax))["status"] == "pending_review"


async def test_bulk_score_judges_every_own_id_and_404s_the_rest(
    api: httpx.AsyncClient,
    account: Account,
    other: Account,
    resources: WorkerResources,
    claude: FakeAnthropic,
) -> None:
    mine = [await imported(api, account, user_text=f"[judge all=0.{n}]") for n in (5, 7)]
    theirs = await imported(api, other)
    unknown = str(uuid.uuid4())
    async with running_worker(resources):
        response = await api.post(
            "/v1/conversations/bulk-action",
            json={"action": "score", "ids": [*mine, theirs, unknown, mine[0]]},
            headers=account.headers,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert [r["ok"] for r in body["results"]] == [True, True, False, False, True]
        assert body["results"][2]["error"]["code"] == "not_found"
        job = await wait_batch(api, account.headers, body["job_id"])
    assert (job["total_items"], job["completed_items"]) == (2, 1 + 1)
    overall = [(await judged(resources.pool, account, cid))["quality_overall"] for cid in mine]
    assert overall == [pytest.approx(0.5), pytest.approx(0.7)]
    untouched = await judged(resources.pool, other, theirs)
    assert untouched["quality_overall"] is None
    assert untouched["judge_error"] is None
    # The other tenant's id is a 404 on the single route too, and the job is not theirs.
    refused = await api.post(f"/v1/conversations/{theirs}/score", headers=account.headers)
    assert refused.status_code == 404
    hidden = await api.get(f"/v1/generation-jobs/{body['job_id']}", headers=other.headers)
    assert hidden.status_code == 404


async def test_rescoring_replaces_the_scores(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.2]")
    async with running_worker(resources):
        await score(api, account, cid)
        assert (await judged(resources.pool, account, cid))["status"] == "needs_revision"
        async with tenant_transaction(resources.pool, account.user.id) as conn:
            await conn.execute(
                "UPDATE conversation_turns SET content = replace(content, 'all=0.2', 'all=0.9') "
                "WHERE conversation_id = $1",
                UUID(cid),
            )
        await score(api, account, cid)
    row = await judged(resources.pool, account, cid)
    assert row["quality_overall"] == pytest.approx(0.9)
    assert (row["status"], row["is_flagged"], row["flag_reason"]) == ("pending_review", False, None)


@pytest.mark.parametrize(
    ("script", "code"),
    [
        (["500", "500", "500"], "server_error"),
        (["malformed"], "judge_output_invalid"),
        (["truncated"], "judge_output_invalid"),
        (["spend_limit_429"], "spend_limit_reached"),
    ],
)
async def test_a_judge_failure_leaves_null_scores_and_says_why(
    api: httpx.AsyncClient,
    account: Account,
    resources: WorkerResources,
    claude: FakeAnthropic,
    script: list[str],
    code: str,
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.9]")
    before = await judged(resources.pool, account, cid)
    claude.script(*script)
    async with running_worker(resources):
        job = await score(api, account, cid)
    assert (job["status"], job["failed_items"], job["completed_items"]) == ("failed", 1, 0)
    [item] = await job_items(resources.pool, account, job["id"])
    assert (item["status"], item["error_code"]) == ("failed", code)
    row = await judged(resources.pool, account, cid)
    for name in ("coherence_score", "quality_overall", "empathy_score", "judge_rationale",
                 "judge_rubric_version", "judged_at"):  # fmt: skip
        assert row[name] is None, name
    assert row["judge_error"].startswith(code)
    # The 0-10 score is still the structural one it had, and says so.
    assert (row["quality_score"], row["quality_source"]) == (
        before["quality_score"], before["quality_source"],
    )  # fmt: skip
    logs = await judge_logs(resources.pool, account, job["id"])
    assert len(logs) == len(script)
    assert {entry["purpose"] for entry in logs} == {"judge"}


async def test_a_failed_rescore_drops_the_old_judgement(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.9]")
    async with running_worker(resources):
        await score(api, account, cid)
        claude.script("malformed")
        await score(api, account, cid)
    row = await judged(resources.pool, account, cid)
    assert row["quality_overall"] is None
    assert row["judge_error"].startswith("judge_output")
    assert row["quality_source"] == "structural"
    assert row["quality_score"] is not None


async def test_structural_gate_spends_no_call(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account)
    async with tenant_transaction(resources.pool, account.user.id) as conn:
        await conn.execute(
            "UPDATE conversation_turns SET role = 'user' WHERE conversation_id = $1 "
            "AND role = 'assistant'",
            UUID(cid),
        )
    async with running_worker(resources):
        job = await score(api, account, cid)
    assert (job["status"], job["failed_items"]) == ("failed", 1)
    assert _judge_calls(claude) == []
    assert await judge_logs(resources.pool, account, job["id"]) == []
    [item] = await job_items(resources.pool, account, job["id"])
    assert item["error_code"] == "structural_gate"
    assert item["attempts"] == 0
    row = await judged(resources.pool, account, cid)
    assert row["judge_error"].startswith("structural_gate: not sent to the judge")
    assert "alternate" in row["judge_error"]
    assert row["quality_overall"] is None


async def test_offline_judge_is_deterministic_and_labelled(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, pool: asyncpg.Pool
) -> None:
    offline = resources.settings.model_copy(
        update={"llm_provider": "offline", "anthropic_api_key": None}
    )
    async with (
        api_client(offline) as offline_api,
        worker_resources(offline, pool, resources.settings.storage_local_dir) as local,
        running_worker(local),
    ):
        cid = await imported(offline_api, account)
        first_job = await score(offline_api, account, cid)
        first = await judged(pool, account, cid)
        await score(offline_api, account, cid)
        second = await judged(pool, account, cid)
    assert first_job["status"] == "completed"
    assert first_job["cost_so_far_usd"] == 0
    assert first["judge_model"] == "offline-judge"
    assert first["quality_source"] == "judge"
    assert "offline judge" in first["judge_rationale"]["coherence"]["rationale"]
    keys = ("coherence_score", "relevance_score", "completeness_score", "empathy_score")
    assert [first[k] for k in keys] == [second[k] for k in keys]
    assert 0 <= first["quality_overall"] <= 1


@pytest.mark.parametrize("judge", [True, False])
async def test_a_generation_job_judges_what_it_lands_when_asked(
    api: httpx.AsyncClient,
    account: Account,
    resources: WorkerResources,
    claude: FakeAnthropic,
    judge: bool,
) -> None:
    created = await api.post(
        "/v1/generation-jobs", json={**plain_items(2), "judge": judge}, headers=account.headers
    )
    assert created.status_code == 202, created.text
    async with running_worker(resources):
        await wait_batch(api, account.headers, created.json()["id"])
        landed = await conversations(resources.pool, account.user.id, created.json()["id"])
        assert len(landed) == 2
        jobs = await _judge_jobs(resources.pool, account, len(landed) if judge else 0)
        for job in jobs:
            await wait_batch(api, account.headers, str(job))
    for conversation in landed:
        row = await judged(resources.pool, account, str(conversation["id"]))
        assert (row["quality_source"] == "judge") is judge
        assert (row["quality_overall"] == pytest.approx(0.8)) is judge
    assert len(_judge_calls(claude)) == (2 if judge else 0)


async def _judge_jobs(pool: asyncpg.Pool, account: Account, expected: int) -> list[UUID]:
    deadline = time.monotonic() + 20
    while True:
        async with tenant_transaction(pool, account.user.id) as conn:
            ids = [r["id"] for r in await conn.fetch(
                "SELECT id FROM batch_jobs WHERE job_type = 'quality_check'"
            )]  # fmt: skip
        if len(ids) >= expected or time.monotonic() > deadline:
            await asyncio.sleep(0.2 if expected == 0 else 0)
            return ids
        await asyncio.sleep(0.05)


async def test_the_rubric_prefix_is_cached_across_judge_calls(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    # The built-in prefix (instructions, rubric, tool) is ~1,400 tokens: under claude-haiku-4-5's
    # 4,096-token minimum the API caches nothing, so the fake is told a lower minimum here.
    claude.configure(cache_min_tokens=1000)
    first = await imported(api, account, user_text="[judge all=0.6]")
    second = await imported(api, account, user_text="[judge all=0.7]")
    async with running_worker(resources):
        jobs = [await score(api, account, first), await score(api, account, second)]
    logs = [(await judge_logs(resources.pool, account, job["id"]))[0] for job in jobs]
    assert logs[0]["cache_write_tokens"] > 0
    assert logs[0]["cache_read_tokens"] == 0
    assert logs[1]["cache_read_tokens"] == logs[0]["cache_write_tokens"]
    assert logs[1]["cost_usd"] < logs[0]["cost_usd"]


async def test_a_batch_mode_generation_job_judges_what_it_lands(
    account: Account, resources: WorkerResources, claude: FakeAnthropic, pool: asyncpg.Pool
) -> None:
    fast = resources.settings.model_copy(
        update={"llm_batch_poll_min_seconds": 0.05, "llm_batch_poll_max_seconds": 0.2}
    )
    async with (
        api_client(fast) as fast_api,
        worker_resources(fast, pool, fast.storage_local_dir) as local,
        running_worker(local),
    ):
        created = await fast_api.post(
            "/v1/generation-jobs", json={**plain_items(2), "judge": True, "mode": "batch"},
            headers=account.headers,
        )  # fmt: skip
        assert created.status_code == 202, created.text
        done = await wait_batch(fast_api, account.headers, created.json()["id"])
        assert done["mode"] == "batch"
        landed = await conversations(pool, account.user.id, created.json()["id"])
        for job in await _judge_jobs(pool, account, len(landed)):
            await wait_batch(fast_api, account.headers, str(job))
    assert len(landed) == 2
    for conversation in landed:
        row = await judged(pool, account, str(conversation["id"]))
        assert row["quality_source"] == "judge"
