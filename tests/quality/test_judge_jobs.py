"""quality_check jobs under generation's machinery: the cost cap, recovery, the shared entry."""

from __future__ import annotations

from uuid import UUID

import asyncpg
import httpx
import pytest

from services.generator.batch_orphans import parse_custom_id
from services.generator.recovery import ITEMS
from shared.db.pool import tenant_transaction
from shared.llm.pricing import CacheTtl, Usage, cost_usd, table_for
from shared.quality import enqueue as judging
from shared.queue import job_id
from shared.recovery import reconcile
from shared.runtime import WorkerResources
from shared.settings import Settings
from tests.fakes.anthropic import FakeAnthropic
from tests.generator.harness import (
    fake_requests,
    rows,
    running_worker,
    wait_batch,
    worker_resources,
)
from tests.quality.helpers import imported, job_items, judge_logs, judged, score
from tests.support.api import api_client
from tests.support.factories import Account


async def test_the_cost_cap_stops_judging_before_a_call(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.9]")
    async with running_worker(resources):
        response = await api.post(
            f"/v1/conversations/{cid}/score", json={"cost_cap_usd": 0.000001},
            headers=account.headers,
        )  # fmt: skip
        assert response.status_code == 202, response.text
        assert response.json()["cost_cap_usd"] == 0.000001
        job = await wait_batch(api, account.headers, response.json()["id"])
    assert (job["stop_reason"], job["completed_items"]) == ("cost_cap_reached", 0)
    assert fake_requests(claude) == []
    assert await judge_logs(resources.pool, account, job["id"]) == []
    [item] = await job_items(resources.pool, account, job["id"])
    assert item["status"] == "skipped"
    row = await judged(resources.pool, account, cid)
    assert row["quality_overall"] is None
    assert row["judge_error"] == "not judged: the job stopped (cost_cap_reached)"


async def test_a_judge_job_lost_from_redis_is_enqueued_again_by_the_reconciler(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.7]")
    # Written and committed, but its arq jobs never enqueued (as if Redis lost them).
    async with tenant_transaction(resources.pool, account.user.id) as conn:
        job = await judging.plan(
            conn, account.user.id, [UUID(cid)], resources.settings, reason="test"
        )
    assert job is not None
    counts = await reconcile(resources, ITEMS)
    assert counts["enqueued"] >= 1
    queued = await resources.redis.zscore(
        f"{resources.settings.queue_prefix}:generator", job_id("judge", job.batch.id, 0)
    )
    assert queued is not None
    async with running_worker(resources):
        done = await wait_batch(api, account.headers, str(job.batch.id))
    assert done["completed_items"] == 1
    assert (await judged(resources.pool, account, cid))["quality_overall"] == pytest.approx(0.7)


async def test_enqueue_judging_is_the_one_entry_point_and_skips_unknown_ids(
    api: httpx.AsyncClient,
    account: Account,
    other: Account,
    resources: WorkerResources,
    claude: FakeAnthropic,
) -> None:
    mine = await imported(api, account, user_text="[judge all=0.4]")
    theirs = await imported(api, other)
    settings = resources.settings
    nothing = await judging.enqueue_judging(
        resources.pool, resources.redis, settings, account.user.id, [UUID(theirs)]
    )
    assert nothing is None
    job = await judging.enqueue_judging(
        resources.pool, resources.redis, settings, account.user.id,
        [UUID(mine), UUID(theirs), UUID(mine)], reason="edit",
    )  # fmt: skip
    assert job is not None
    assert (job.conversation_ids, job.missing) == ([UUID(mine)], [UUID(theirs)])
    assert job.batch.config["source"] == {"kind": "judge", "reason": "edit"}
    async with running_worker(resources):
        await wait_batch(api, account.headers, str(job.batch.id))
    assert (await judged(resources.pool, account, mine))["quality_overall"] == pytest.approx(0.4)


async def test_retry_failed_judges_the_failed_items_again(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources, claude: FakeAnthropic
) -> None:
    cid = await imported(api, account, user_text="[judge all=0.65]")
    claude.script("500", "500", "500")
    async with running_worker(resources):
        response = await api.post(f"/v1/conversations/{cid}/score", headers=account.headers)
        job_id_ = response.json()["id"]
        failed = await wait_batch(api, account.headers, job_id_)
        assert failed["status"] == "failed"
        assert (await judged(resources.pool, account, cid))["judge_error"].startswith("server")
        retried = await api.post(
            f"/v1/generation-jobs/{job_id_}/retry-failed", headers=account.headers
        )
        assert retried.status_code == 202, retried.text
        done = await wait_batch(api, account.headers, job_id_)
    assert done["completed_items"] == 1
    row = await judged(resources.pool, account, cid)
    assert row["quality_overall"] == pytest.approx(0.65)
    assert row["judge_error"] is None


async def test_score_requests_with_bad_input_are_4xx_and_write_nothing(
    api: httpx.AsyncClient, account: Account, resources: WorkerResources
) -> None:
    cid = await imported(api, account)
    url = f"/v1/conversations/{cid}/score"
    for body in ({"cost_cap_usd": "lots"}, {"cost_cap_usd": -1}, {"bogus": True}, [1]):
        response = await api.post(url, json=body, headers=account.headers)
        assert response.status_code == 422, (body, response.text)
    truncated = await api.post(
        url, content=b'{"cost_cap_usd": 0.', headers={**account.headers,
                                                      "content-type": "application/json"},
    )  # fmt: skip
    assert truncated.status_code == 422
    assert (
        await api.post("/v1/conversations/not-a-uuid/score", headers=account.headers)
    ).status_code == 422
    deleted = await api.delete(f"/v1/conversations/{cid}", headers=account.headers)
    assert deleted.status_code == 204
    gone = await api.post(url, headers=account.headers)
    assert gone.status_code == 404
    bulk = await api.post(
        "/v1/conversations/bulk-action", json={"action": "score", "ids": [cid]},
        headers=account.headers,
    )  # fmt: skip
    assert bulk.status_code == 200
    assert (bulk.json()["failed"], bulk.json()["job_id"]) == (1, None)
    async with tenant_transaction(resources.pool, account.user.id) as conn:
        jobs = await conn.fetchval(
            "SELECT count(*) FROM batch_jobs WHERE job_type = 'quality_check'"
        )
    assert jobs == 0


async def test_judging_in_message_batches_lands_like_live_at_the_batch_price(
    api: httpx.AsyncClient,
    account: Account,
    resources: WorkerResources,
    claude: FakeAnthropic,
    pool: asyncpg.Pool,
) -> None:
    fast = resources.settings.model_copy(
        update={"llm_batch_poll_min_seconds": 0.05, "llm_batch_poll_max_seconds": 0.2}
    )
    good = await imported(api, account, user_text="[judge all=0.55]")
    broken = await imported(api, account)
    async with tenant_transaction(pool, account.user.id) as conn:
        await conn.execute(
            "UPDATE conversation_turns SET content = '' WHERE conversation_id = $1 "
            "AND turn_number = 2",
            UUID(broken),
        )
    async with (
        api_client(fast) as fast_api,
        worker_resources(fast, pool, fast.storage_local_dir) as local,
        running_worker(local),
    ):
        single = await fast_api.post(
            f"/v1/conversations/{good}/score", json={"mode": "batch"}, headers=account.headers
        )
        assert single.status_code == 202, single.text
        assert single.json()["mode"] == "batch"
        await wait_batch(fast_api, account.headers, single.json()["id"])
        job = await judging.enqueue_judging(
            pool, local.redis, fast, account.user.id, [UUID(good), UUID(broken)], batch=True
        )
        assert job is not None
        done = await wait_batch(fast_api, account.headers, str(job.batch.id))
    assert (done["completed_items"], done["failed_items"]) == (1, 1)
    # One request per batch, item 0 each time: the broken one was never sent.
    sent = [[parse_custom_id(c) for c in created] for created in claude.batch_creates]
    assert [[p[1] if p else None for p in created] for created in sent] == [[0], [0]]
    row = await judged(pool, account, good)
    assert row["quality_overall"] == pytest.approx(0.55)
    assert row["judge_error"] is None
    refused = await judged(pool, account, broken)
    assert refused["judge_error"].startswith("structural_gate: not sent to the judge: empty")
    [entry] = await rows(
        pool, account.user.id,
        "SELECT mode, purpose, input_tokens, output_tokens, cache_write_tokens, "
        "cache_read_tokens, cost_usd FROM generation_logs WHERE job_id = $1",
        job.batch.id,
    )  # fmt: skip
    assert (entry["mode"], entry["purpose"]) == ("batch", "judge")
    _, price = table_for(fast).price_for(fast.judge_model)
    usage = Usage(
        entry["input_tokens"], entry["output_tokens"], entry["cache_write_tokens"],
        entry["cache_read_tokens"],
    )  # fmt: skip
    assert entry["cost_usd"] == cost_usd(price, usage, batch=True, cache_ttl=CacheTtl.ONE_HOUR)


async def test_a_turn_edit_has_the_new_text_judged_when_judge_after_edit_is_on(
    judge_settings: Settings, pool: asyncpg.Pool, account: Account, resources: WorkerResources
) -> None:
    settings = judge_settings.model_copy(update={"judge_after_edit": True})
    async with api_client(settings) as api:
        cid = await imported(api, account)
        async with running_worker(resources):
            first = await score(api, account, cid)
        assert (await judged(pool, account, cid))["quality_overall"] == pytest.approx(0.8)
        detail = (await api.get(f"/v1/conversations/{cid}", headers=account.headers)).json()
        last = detail["turn_count"]  # the fake takes the last marker in the text
        edited = await api.patch(
            f"/v1/conversations/{cid}/turns/{last}",
            json={"content": "Calm down. [judge all=0.2]"}, headers=account.headers,
        )  # fmt: skip
        assert edited.status_code == 200, edited.text
        cleared = await judged(pool, account, cid)  # the old verdict judged the old text
        assert (cleared["quality_overall"], cleared["quality_source"]) == (None, "structural")
        jobs = await rows(
            pool, account.user.id,
            "SELECT id FROM batch_jobs WHERE job_type = 'quality_check' AND id <> $1",
            UUID(first["id"]),
        )  # fmt: skip
        assert len(jobs) == 1
        async with running_worker(resources):
            await wait_batch(api, account.headers, str(jobs[0]["id"]))
    row = await judged(pool, account, cid)
    assert (row["quality_overall"], row["quality_source"]) == (pytest.approx(0.2), "judge")
    assert row["status"] == "needs_revision"
