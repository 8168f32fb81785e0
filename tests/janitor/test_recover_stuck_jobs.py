"""recover-stuck-jobs: quiet exports and generation batches are re-enqueued, or failed."""

from __future__ import annotations

from typing import Any

from arq.jobs import Job
from arq.worker import Worker, func

from services.janitor.context import JanitorDeps
from services.janitor.recovery import export_job_id, item_job_id, runner_job_id
from services.janitor.runner import run_task
from shared.models.user import User
from shared.queue import (
    GENERATE_ITEM,
    RUN_EXPORT,
    RUN_MESSAGE_BATCHES,
    enqueue,
    job_state,
    queue_name,
)
from tests.janitor.rows import ago, insert_batch, insert_export, items, row, update


async def _job(deps: JanitorDeps, service: str, jid: str) -> tuple[str, tuple[Any, ...]] | None:
    info = await Job(jid, deps.redis, _queue_name=f"{deps.settings.queue_prefix}:{service}").info()
    return (info.function, tuple(info.args)) if info else None


async def test_stuck_generation_batch_is_recovered(local_deps: JanitorDeps, owner: User) -> None:
    deps = local_deps
    batch = await insert_batch(deps.pool, owner.id, heartbeat_at=ago(hours=1),
                               items=["completed", "running", "queued", "queued"])  # fmt: skip
    # Item 2's job still waits on the queue (slow, not stuck); items 1 and 3 lost theirs.
    await enqueue(deps.redis, deps.settings, "generator", GENERATE_ITEM, str(batch), 2,
                  job_id=item_job_id(batch, 2))  # fmt: skip

    report = await run_task(deps, "recover-stuck-jobs")

    assert report.counts["items_requeued"] == 2
    assert report.counts["batches_recovered"] == 1
    for index in (1, 2, 3):
        assert await _job(deps, "generator", item_job_id(batch, index)) == (
            GENERATE_ITEM,
            (str(batch), index),
        )
    assert await _job(deps, "generator", item_job_id(batch, 0)) is None
    stored = await row(deps.pool, owner.id, "batch_jobs", batch)
    assert stored is not None
    assert (stored["status"], stored["recovery_count"]) == ("running", 1)
    assert stored["heartbeat_at"] > ago(minutes=1)
    # The heartbeat clock restarted: an immediate second run leaves the batch alone.
    assert (await run_task(deps, "recover-stuck-jobs")).counts["items_requeued"] == 0


async def test_a_stuck_batch_mode_job_gets_its_runner_back_not_live_item_jobs(
    local_deps: JanitorDeps, owner: User
) -> None:
    deps = local_deps
    batch = await insert_batch(deps.pool, owner.id, heartbeat_at=ago(hours=1), mode="batch",
                               items=["completed", "running", "queued"])  # fmt: skip

    report = await run_task(deps, "recover-stuck-jobs")

    assert (report.counts["runners_requeued"], report.counts["items_requeued"]) == (1, 0)
    assert await _job(deps, "generator", runner_job_id(batch)) == (
        RUN_MESSAGE_BATCHES, (str(batch),),
    )  # fmt: skip
    for index in range(3):
        assert await _job(deps, "generator", item_job_id(batch, index)) is None
    stored = await row(deps.pool, owner.id, "batch_jobs", batch)
    assert stored is not None
    assert stored["recovery_count"] == 1
    # A runner still deferred between polls is alive: nothing more is enqueued.
    await update(deps.pool, owner.id, "batch_jobs", batch, heartbeat_at=ago(hours=1))
    report = await run_task(deps, "recover-stuck-jobs")
    assert report.counts.get("runners_requeued", 0) == 0
    assert report.counts["batches_waiting"] == 1


async def test_batch_fails_with_a_reason_after_too_many_recoveries(
    local_deps: JanitorDeps, owner: User
) -> None:
    deps = local_deps
    batch = await insert_batch(deps.pool, owner.id, heartbeat_at=ago(hours=2),
                               items=["completed", "running", "queued"],
                               recovery_count=deps.settings.janitor_max_recoveries)  # fmt: skip

    report = await run_task(deps, "recover-stuck-jobs")

    assert (report.counts["batches_failed"], report.counts["items_failed"]) == (1, 2)
    stored = await row(deps.pool, owner.id, "batch_jobs", batch)
    assert stored is not None
    assert stored["status"] == "failed"
    assert stored["error"].startswith("stuck: no heartbeat since")
    assert [item["status"] for item in await items(deps.pool, owner.id, batch)] == [
        "completed", "failed", "failed",
    ]  # fmt: skip
    assert await queue_depth_of(deps, "generator") == 0


async def test_quiet_batch_with_nothing_pending_is_finished(
    local_deps: JanitorDeps, owner: User
) -> None:
    batch = await insert_batch(local_deps.pool, owner.id, heartbeat_at=ago(hours=1),
                               items=["completed", "failed"])  # fmt: skip
    report = await run_task(local_deps, "recover-stuck-jobs")
    assert report.counts["batches_finished"] == 1
    stored = await row(local_deps.pool, owner.id, "batch_jobs", batch)
    assert stored is not None
    assert stored["status"] == "completed"


async def test_stuck_exports_are_requeued_or_failed(local_deps: JanitorDeps, owner: User) -> None:
    deps = local_deps
    lost = await insert_export(deps.pool, owner.id, status="processing", heartbeat_at=ago(hours=1))
    never_enqueued = await insert_export(deps.pool, owner.id, status="queued",
                                         created_at=ago(minutes=30))  # fmt: skip
    slow = await insert_export(deps.pool, owner.id, status="processing", heartbeat_at=ago(hours=1))
    await enqueue(deps.redis, deps.settings, "exporter", RUN_EXPORT, str(slow),
                  job_id=export_job_id(slow))  # fmt: skip
    hopeless = await insert_export(deps.pool, owner.id, status="processing",
                                   heartbeat_at=ago(hours=1), recovery_count=3)  # fmt: skip
    healthy = await insert_export(
        deps.pool, owner.id, status="processing", heartbeat_at=ago(seconds=5)
    )

    report = await run_task(deps, "recover-stuck-jobs")

    assert report.counts["exports_requeued"] == 2
    assert report.counts["exports_waiting"] == 1
    assert report.counts["exports_failed"] == 1
    for export_id in (lost, never_enqueued):
        assert await _job(deps, "exporter", export_job_id(export_id)) == (
            RUN_EXPORT,
            (str(export_id),),
        )
        stored = await row(deps.pool, owner.id, "export_logs", export_id)
        assert stored is not None
        assert stored["recovery_count"] == 1
    failed = await row(deps.pool, owner.id, "export_logs", hopeless)
    assert failed is not None
    assert failed["status"] == "failed"
    assert "gave up after 3 recoveries" in failed["error"]
    assert await _job(deps, "exporter", export_job_id(healthy)) is None


async def test_a_finished_job_id_is_forgotten_before_requeueing(
    local_deps: JanitorDeps, owner: User
) -> None:
    """arq refuses an id whose result it still keeps; recovery must clear it first."""
    deps = local_deps
    export_id = await insert_export(deps.pool, owner.id, status="processing")
    jid = export_job_id(export_id)
    ran: list[str] = []

    async def run_export(ctx: dict[str, Any], export: str) -> None:
        ran.append(export)  # "finishes" without touching the row, like a crashed exporter

    await enqueue(deps.redis, deps.settings, "exporter", RUN_EXPORT, str(export_id), job_id=jid)
    await _drain(deps, run_export)
    assert ran == [str(export_id)]
    assert (await job_state(deps.redis, deps.settings, "exporter", jid)).status == "complete"
    await update(deps.pool, owner.id, "export_logs", export_id, heartbeat_at=ago(hours=1))

    report = await run_task(deps, "recover-stuck-jobs")

    assert report.counts["exports_requeued"] == 1
    assert (await job_state(deps.redis, deps.settings, "exporter", jid)).status == "queued"
    await _drain(deps, run_export)
    assert ran == [str(export_id), str(export_id)]


async def _drain(deps: JanitorDeps, function: Any) -> None:
    worker = Worker(
        functions=[func(function, name=RUN_EXPORT)],
        queue_name=queue_name(deps.settings, "exporter"),
        redis_pool=deps.redis,
        burst=True,
        handle_signals=False,
        keep_result=3600,
        poll_delay=0.05,
    )
    # Not worker.close(): it would close the Redis client this test owns.
    await worker.main()


async def queue_depth_of(deps: JanitorDeps, service: str) -> int:
    depth: int = await deps.redis.zcard(queue_name(deps.settings, service))  # type: ignore[arg-type]
    return depth
