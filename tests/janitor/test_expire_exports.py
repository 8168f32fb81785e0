"""expire-exports: files of completed exports past expires_at are deleted, rows marked expired."""

from __future__ import annotations

import uuid

import httpx

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.models.user import User
from tests.janitor.rows import ago, insert_export, row
from tests.support.factories import Account


async def test_expires_past_due_exports_and_keeps_the_rest(
    deps: JanitorDeps, owner: User, other_owner: User
) -> None:
    keys = [f"exports/{o.id}/{n}/training.jsonl" for o in (owner, other_owner) for n in range(2)]
    for key in keys:
        await deps.storage.put(key, b'{"messages": []}\n')
    due = await insert_export(deps.pool, owner.id, object_key=keys[0], expires_at=ago(hours=1))
    fresh = await insert_export(deps.pool, owner.id, object_key=keys[1], expires_at=ago(hours=-5))
    other = await insert_export(
        deps.pool, other_owner.id, object_key=keys[2], expires_at=ago(minutes=1)
    )
    failed = await insert_export(deps.pool, other_owner.id, status="failed", expires_at=ago(days=1))

    report = await run_task(deps, "expire-exports")

    assert (report.outcome, report.counts["expired"], report.counts["failed"]) == ("ok", 2, 0)
    assert await deps.storage.head(keys[0]) is None
    assert await deps.storage.head(keys[2]) is None
    assert await deps.storage.head(keys[1]) is not None
    assert await deps.storage.head(keys[3]) is not None
    statuses = [
        (await row(deps.pool, o.id, "export_logs", i) or {})["status"]
        for o, i in ((owner, due), (owner, fresh), (other_owner, other), (other_owner, failed))
    ]
    assert statuses == ["expired", "completed", "expired", "failed"]

    again = await run_task(deps, "expire-exports")
    assert again.counts["expired"] == 0


async def test_missing_file_still_expires_the_row(deps: JanitorDeps, owner: User) -> None:
    gone = await insert_export(
        deps.pool, owner.id, object_key=f"exports/{owner.id}/gone.jsonl", expires_at=ago(hours=2)
    )
    no_key = await insert_export(deps.pool, owner.id, object_key=None, expires_at=ago(hours=2))
    report = await run_task(deps, "expire-exports")
    assert report.counts["expired"] == 2
    for export_id in (gone, no_key):
        assert (await row(deps.pool, owner.id, "export_logs", export_id) or {})[
            "status"
        ] == "expired"


async def test_one_failure_does_not_stop_the_others(local_deps: JanitorDeps, owner: User) -> None:
    # A key the local backend refuses (it escapes the storage root) makes that delete fail.
    bad = await insert_export(
        local_deps.pool, owner.id, object_key="../outside.jsonl", expires_at=ago(hours=3)
    )
    good_key = f"exports/{owner.id}/ok.jsonl"
    await local_deps.storage.put(good_key, b"x")
    good = await insert_export(
        local_deps.pool, owner.id, object_key=good_key, expires_at=ago(hours=1)
    )

    report = await run_task(local_deps, "expire-exports")

    assert (report.outcome, report.counts["expired"], report.counts["failed"]) == ("ok", 1, 1)
    assert (await row(local_deps.pool, owner.id, "export_logs", bad) or {})["status"] == "completed"
    assert (await row(local_deps.pool, owner.id, "export_logs", good) or {})["status"] == "expired"


async def test_download_after_expiry_is_410(
    local_deps: JanitorDeps, client: httpx.AsyncClient, account: Account
) -> None:
    key = f"exports/{account.user.id}/{uuid.uuid4()}/training.jsonl"
    await local_deps.storage.put(key, b'{"messages": []}\n')
    export_id = await insert_export(local_deps.pool, account.user.id, object_key=key,
                                    completed_at=ago(days=2), expires_at=ago(hours=1))  # fmt: skip

    assert (await run_task(local_deps, "expire-exports")).counts["expired"] == 1

    download = await client.get(f"/v1/exports/{export_id}/download", headers=account.headers)
    assert download.status_code == 410, download.text
    assert download.json()["error"]["code"]
    assert await local_deps.storage.head(key) is None
