"""The dashboard: stats cards, charts, live jobs and exports, recent activity, spend."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response

from services.api.console.auth import ConsoleConnDep, SessionDep
from services.api.console.charts import bars
from services.api.console.render import render
from services.api.console.routing import ConsoleRoute
from services.api.conversations import service as conversations
from services.api.exports import service as exports
from services.api.exports.schemas import ExportOut
from services.api.generation import service as generation
from shared.db.repositories import generation as generation_repo
from shared.db.repositories import generation_logs as logs_repo
from shared.db.repositories.exports import HistoryFilters
from shared.models.conversation import Tier
from shared.models.export import ExportStatus
from shared.models.generation import TERMINAL_BATCH

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
_LIVE_EXPORTS = (ExportStatus.QUEUED, ExportStatus.PROCESSING)


@router.get("")
async def dashboard(request: Request, session: SessionDep, conn: ConsoleConnDep) -> Response:
    """Twin of GET /v1/conversations/stats, /v1/generation-jobs and /v1/exports."""
    owner = session.user_id
    stats = await conversations.stats(conn, owner)
    batches, _ = await generation_repo.page_batches(
        conn, owner_id=owner, status=None, after=None, limit=10
    )
    jobs = [generation.job_out(batch) for batch in batches[:10]]
    history = await exports.history(conn, HistoryFilters(), None, 10)
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    spend = await logs_repo.cost_summary(conn, owner_id=owner, created_from=month, created_to=None)
    histogram = [(bucket, count) for bucket, count in stats.quality_histogram.items()]
    context: dict[str, Any] = {
        "title": "Dashboard",
        "stats": stats,
        "histogram": bars(histogram),
        "tiers": bars(
            [(tier.value.replace("_", " "), stats.by_tier.get(tier.value, 0)) for tier in Tier]
        ),
        "judge_histogram": bars(list(stats.scores["quality_overall"].histogram.items())),
        "sources": bars(list(stats.by_quality_source.items())),
        "running_jobs": [job for job in jobs if job.status not in TERMINAL_BATCH],
        "running_exports": [e for e in history.items if e.status in _LIVE_EXPORTS],
        "activity": _activity(jobs, history.items),
        "spend": sum(float(row.cost_usd) for row in spend),
        "spend_requests": sum(row.requests for row in spend),
        "month": month,
    }
    return render(request, "dashboard.html", context)


def _activity(jobs: list[Any], exported: list[ExportOut]) -> list[dict[str, Any]]:
    """Jobs and exports, newest first."""
    entries = [
        {
            "when": job.created_at,
            "kind": "Generation",
            "status": job.status,
            "text": f"{job.total_items} conversations",
            "href": f"/console/jobs/{job.id}",
        }
        for job in jobs
    ] + [
        {
            "when": e.created_at,
            "kind": "Export",
            "status": e.status,
            "text": f"{e.format.value}, {e.conversation_count} conversations",
            "href": f"/console/exports#export-{e.id}",
        }
        for e in exported
    ]
    return sorted(entries, key=lambda entry: entry["when"], reverse=True)[:10]
