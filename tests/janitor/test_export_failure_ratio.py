"""export-failure-ratio: failed / finished exports over the last hour, as a gauge and a warning."""

from __future__ import annotations

from prometheus_client import REGISTRY

from services.janitor import fleet
from services.janitor.context import JanitorDeps
from services.janitor.runner import run_task
from shared.models.user import User
from tests.janitor.rows import ago, insert_export


def _ratio() -> float | None:
    return REGISTRY.get_sample_value("convoforge_janitor_export_failure_ratio")


async def test_ratio_over_the_window(
    local_deps: JanitorDeps, owner: User, other_owner: User
) -> None:
    deps = local_deps
    for status in ("completed", "completed", "expired"):
        await insert_export(deps.pool, owner.id, status=status, completed_at=ago(minutes=10))
    await insert_export(deps.pool, other_owner.id, status="failed", completed_at=ago(minutes=20))
    # Outside the one-hour window, or not finished: not counted.
    await insert_export(deps.pool, owner.id, status="failed", completed_at=ago(hours=3))
    await insert_export(deps.pool, owner.id, status="processing")

    report = await run_task(deps, "export-failure-ratio")

    assert report.outcome == "ok"
    assert _ratio() == 0.25
    stored = await fleet.failure_ratio(deps.redis, deps.settings)
    assert stored == {"ratio": 0.25, "succeeded": 3.0, "failed": 1.0}


async def test_no_exports_is_a_zero_ratio(local_deps: JanitorDeps) -> None:
    await run_task(local_deps, "export-failure-ratio")
    assert _ratio() == 0.0
