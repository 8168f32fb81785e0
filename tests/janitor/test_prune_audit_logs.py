"""prune-audit-logs: finished export logs past retention go to a gzip JSONL archive, then away."""

from __future__ import annotations

import gzip
from dataclasses import replace

import orjson

from services.janitor.context import JanitorDeps
from services.janitor.exports import ARCHIVE_PREFIX
from services.janitor.runner import run_task
from shared.models.user import User
from tests.janitor.rows import ago, insert_export, row


async def test_archives_then_deletes_old_finished_logs(
    deps: JanitorDeps, owner: User, other_owner: User
) -> None:
    old = [
        await insert_export(deps.pool, owner.id, status=status, created_at=ago(days=40 + n))
        for n, status in enumerate(("expired", "failed", "cancelled"))
    ]
    other_old = await insert_export(
        deps.pool, other_owner.id, status="expired", created_at=ago(days=31)
    )
    young = await insert_export(deps.pool, owner.id, status="expired", created_at=ago(days=29))
    # Still promised to a user, or still running: never pruned, whatever their age.
    completed = await insert_export(
        deps.pool, owner.id, status="completed", created_at=ago(days=60), expires_at=ago(days=-1)
    )
    running = await insert_export(deps.pool, owner.id, status="processing", created_at=ago(days=60))

    report = await run_task(deps, "prune-audit-logs")

    assert report.outcome == "ok"
    assert (report.counts["archived"], report.counts["deleted"]) == (4, 4)
    for export_id in old:
        assert await row(deps.pool, owner.id, "export_logs", export_id) is None
    assert await row(deps.pool, other_owner.id, "export_logs", other_old) is None
    for export_id in (young, completed, running):
        assert await row(deps.pool, owner.id, "export_logs", export_id) is not None

    archives = [
        info.key async for info in deps.storage.list_prefix(f"{ARCHIVE_PREFIX}/{owner.id}/")
    ]
    assert len(archives) == 1
    assert archives[0].endswith(".jsonl.gz")
    lines = gzip.decompress(await deps.storage.get(archives[0])).splitlines()
    archived = [orjson.loads(line) for line in lines]
    assert sorted(item["id"] for item in archived) == sorted(str(i) for i in old)
    assert {item["owner_id"] for item in archived} == {str(owner.id)}
    assert {"status", "created_at", "format", "object_key"} <= set(archived[0])

    again = await run_task(deps, "prune-audit-logs")
    assert (again.counts["archived"], again.counts["deleted"]) == (0, 0)


async def test_retention_days_is_a_setting(local_deps: JanitorDeps, owner: User) -> None:
    export_id = await insert_export(
        local_deps.pool, owner.id, status="failed", created_at=ago(days=8)
    )
    weekly = replace(
        local_deps,
        settings=local_deps.settings.model_copy(update={"janitor_audit_log_retention_days": 7}),
    )
    assert (await run_task(local_deps, "prune-audit-logs")).counts["deleted"] == 0
    assert (await run_task(weekly, "prune-audit-logs")).counts["deleted"] == 1
    assert await row(local_deps.pool, owner.id, "export_logs", export_id) is None
