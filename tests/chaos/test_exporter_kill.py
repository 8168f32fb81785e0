"""An exporter SIGKILLed mid-export: another replica restarts it from scratch within 60 s,
the dead run's partial file is gone, and the file that lands is whole."""

from __future__ import annotations

import signal
import time
from uuid import UUID

import orjson

from shared.db.pool import tenant_transaction
from shared.storage import LocalObjectStore
from tests.chaos.conftest import Stack
from tests.chaos.harness import until
from tests.exporter import helpers

CONVERSATIONS = 40
TARGET = 60.0


async def _export_row(stack: Stack, export_id: str) -> dict[str, object]:
    async with tenant_transaction(stack.pool, stack.account.user.id) as conn:
        row = await conn.fetchrow("SELECT * FROM export_logs WHERE id = $1", UUID(export_id))
    assert row is not None
    return dict(row)


async def test_a_killed_exporters_export_restarts_and_leaves_no_partial_file(
    stack: Stack,
) -> None:
    owner = stack.account.user.id
    storage = LocalObjectStore(stack.settings.storage_local_dir, base_url="http://test",
                               signing_secret=b"unused")  # fmt: skip
    first = await helpers.store(stack.pool, storage, owner,
                                helpers.seed_bytes("chaos"), status="approved")  # fmt: skip
    await helpers.clone(stack.pool, owner, first.id, CONVERSATIONS - 1)
    slow = {"EXPORT_MAX_CONVERSATIONS_PER_SECOND": "8"}  # ~5 s per run: time to kill one
    doomed, _ = stack.fleet.start("exporter", **slow)
    body = {"config": {"scope": "all", "format": "jsonl"}}
    created = await stack.api.post("/v1/exports", headers=stack.account.headers, json=body)
    assert created.status_code == 202, created.text
    export_id = created.json()["id"]

    async def started() -> bool:
        return float(str((await _export_row(stack, export_id))["progress_percent"])) > 0

    await until(started, within=30, what="export under way")
    doomed.proc.send_signal(signal.SIGKILL)
    doomed.proc.wait()
    killed_at = time.monotonic()
    stack.fleet.start("exporter", **slow)

    async def finished() -> bool:
        return (await _export_row(stack, export_id))["status"] == "completed"

    await until(finished, within=TARGET, what="export completed after the kill")
    assert time.monotonic() - killed_at < TARGET
    row = await _export_row(stack, export_id)
    assert row["restarts"] == 1
    assert str(row["restart_reason"]).startswith("restarted from scratch")
    assert list((storage.root / ".partial").iterdir()) == []  # the dead run's file is gone
    objects = [info.key async for info in storage.list_prefix(f"exports/{owner}/{export_id}/")]
    assert objects == [row["object_key"]]
    lines = (await storage.get(str(row["object_key"]))).splitlines()
    assert len(lines) == CONVERSATIONS
    assert all(orjson.loads(line)["messages"] for line in lines)
