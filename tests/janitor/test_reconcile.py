"""reconcile: orphan objects past the grace period are deleted, rows missing objects flagged."""

from __future__ import annotations

import uuid
from dataclasses import replace

from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.conversations.store import object_key
from shared.conversations.versions import version_key
from shared.models.user import User
from tests.janitor.rows import ago, conversation, insert_export, row


async def test_orphan_objects_are_deleted_after_the_grace_period(
    deps: JanitorDeps, owner: User
) -> None:
    healthy = await conversation(deps.pool, deps.storage, owner.id)
    orphan = object_key(owner.id, uuid.uuid4())  # a crash between object write and row insert
    stranger = object_key(uuid.uuid4(), uuid.uuid4())  # an owner that no longer exists
    odd = f"conversations/{owner.id}/notes.txt"  # not our layout: never touched
    for key in (orphan, stranger, odd):
        await deps.storage.put(key, b"x")
    patient = replace(
        deps, settings=deps.settings.model_copy(update={"janitor_orphan_grace_seconds": 3600})
    )

    within_grace = await run_task(patient, "reconcile")
    assert within_grace.counts["orphans_deleted"] == 0
    assert within_grace.counts["orphans_in_grace"] >= 2
    assert await deps.storage.head(orphan) is not None

    report = await run_task(deps, "reconcile")  # grace 0: both orphans are old enough

    assert report.outcome == "ok"
    assert report.counts["orphans_deleted"] >= 2
    assert report.counts["missing_flagged"] == 0
    assert await deps.storage.head(orphan) is None
    assert await deps.storage.head(stranger) is None
    assert await deps.storage.head(odd) is not None
    assert await deps.storage.head(healthy.object_key) is not None
    stored = await row(deps.pool, owner.id, "conversations", healthy.id)
    assert stored is not None
    assert stored["is_flagged"] is False


async def test_row_whose_object_is_missing_is_flagged_once(deps: JanitorDeps, owner: User) -> None:
    lost = await conversation(deps.pool, deps.storage, owner.id)
    fine = await conversation(deps.pool, deps.storage, owner.id)
    await deps.storage.delete(lost.object_key)

    report = await run_task(deps, "reconcile")

    assert report.counts["missing_flagged"] == 1
    flagged = await row(deps.pool, owner.id, "conversations", lost.id)
    assert flagged is not None
    assert flagged["is_flagged"] is True
    assert "object_missing" in flagged["flag_reason"]
    untouched = await row(deps.pool, owner.id, "conversations", fine.id)
    assert untouched is not None
    assert untouched["is_flagged"] is False
    assert (await run_task(deps, "reconcile")).counts["missing_flagged"] == 0


async def test_export_files_reconcile_both_ways(deps: JanitorDeps, owner: User) -> None:
    kept_key = f"exports/{owner.id}/{uuid.uuid4()}/training.jsonl"
    orphan_key = f"exports/{owner.id}/{uuid.uuid4()}/training.jsonl"
    cancelled_key = f"exports/{owner.id}/{uuid.uuid4()}/training.jsonl"
    for key in (kept_key, orphan_key, cancelled_key):
        await deps.storage.put(key, b"{}\n")
    # A run that finished uploading after its export was cancelled: nobody wants the file.
    await insert_export(deps.pool, owner.id, status="cancelled", object_key=cancelled_key)
    kept = await insert_export(deps.pool, owner.id, object_key=kept_key,
                               completed_at=ago(minutes=5), expires_at=ago(hours=-20))  # fmt: skip
    vanished = await insert_export(
        deps.pool, owner.id, object_key=f"exports/{owner.id}/{uuid.uuid4()}/gone.jsonl",
        completed_at=ago(minutes=5), expires_at=ago(hours=-20),
    )  # fmt: skip

    report = await run_task(deps, "reconcile")

    assert report.counts["export_orphans_deleted"] >= 2
    assert report.counts["export_missing_failed"] == 1
    assert await deps.storage.head(orphan_key) is None
    assert await deps.storage.head(cancelled_key) is None
    assert await deps.storage.head(kept_key) is not None
    assert (await row(deps.pool, owner.id, "export_logs", kept) or {})["status"] == "completed"
    failed = await row(deps.pool, owner.id, "export_logs", vanished)
    assert failed is not None
    assert failed["status"] == "failed"
    assert "object_missing" in failed["error"]


async def test_version_objects_belong_to_their_conversation(deps: JanitorDeps, owner: User) -> None:
    healthy = await conversation(deps.pool, deps.storage, owner.id)
    kept = version_key(owner.id, healthy.id)  # an earlier or later version of a live conversation
    gone_id = uuid.uuid4()  # a conversation deleted while its versions' objects stayed
    gone = [object_key(owner.id, gone_id), version_key(owner.id, gone_id)]
    gone.append(version_key(owner.id, gone_id))
    for key in (kept, *gone):
        await deps.storage.put(key, b"x")

    report = await run_task(deps, "reconcile")

    assert report.counts["orphans_deleted"] >= 3
    assert await deps.storage.head(kept) is not None
    assert await deps.storage.head(healthy.object_key) is not None
    for key in gone:
        assert await deps.storage.head(key) is None
