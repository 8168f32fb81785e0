"""Job instrumentation: outcomes are counted as ok, error or deferred."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from shared.runtime import JobDeferred, WorkerContext, instrumented


def _count(function: str, outcome: str) -> float:
    value = REGISTRY.get_sample_value(
        "convoforge_worker_jobs_total",
        {"service": "generator", "function": function, "outcome": outcome},
    )
    return value or 0.0


@instrumented("generator")
async def probe_job(ctx: WorkerContext, mode: str) -> str:
    """Succeed, fail or ask to be run again later, as told."""
    if mode == "defer":
        raise JobDeferred("later")
    if mode == "fail":
        raise RuntimeError("boom")
    return "done"


async def test_outcomes_are_counted_separately() -> None:
    before = {o: _count("probe_job", o) for o in ("ok", "error", "deferred")}
    assert await probe_job({}, "ok") == "done"
    with pytest.raises(JobDeferred):
        await probe_job({}, "defer")
    with pytest.raises(RuntimeError):
        await probe_job({}, "fail")
    after = {o: _count("probe_job", o) for o in ("ok", "error", "deferred")}
    assert {o: after[o] - before[o] for o in after} == {"ok": 1, "error": 1, "deferred": 1}
