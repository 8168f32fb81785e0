"""`convoforge jobs list|show|watch|cancel|retry-failed`: generation jobs over HTTP."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from shared.cli_client import render
from shared.cli_client.http import Api, ApiError, common_options, open_api
from shared.settings import Settings

JOBS = "/v1/generation-jobs"
TERMINAL = ("completed", "failed", "cancelled")
SUMMARY = ("id", "status", "progress_percent", "total_items", "completed_items", "failed_items",
           "skipped_items", "cost_so_far_usd", "eta_seconds", "created_at")  # fmt: skip
DETAIL = (*SUMMARY, "concurrency", "cost_cap_usd", "stop_reason", "error", "started_at",
          "completed_at", "items_by_status")  # fmt: skip


def add_parser(sub: Any) -> None:
    """`jobs` and its actions."""
    jobs = sub.add_parser("jobs", help="generation jobs (over the HTTP API)")
    actions = jobs.add_subparsers(dest="jobs_command", required=True)
    common = common_options()
    listing = actions.add_parser("list", parents=[common], help="the newest jobs")
    listing.add_argument("--status", choices=("queued", "running", *TERMINAL))
    listing.add_argument("--limit", type=int, default=25)
    for name, text in (("show", "one job with its errors"), ("cancel", "cancel a job"),
                       ("retry-failed", "re-run only the failed items")):  # fmt: skip
        actions.add_parser(name, parents=[common], help=text).add_argument("job_id")
    watch = actions.add_parser("watch", parents=[common], help="a progress bar until it ends")
    watch.add_argument("job_id")
    watch.add_argument("--interval", type=float, default=1.0, help="seconds between polls")


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Dispatch `jobs ACTION`."""
    async with open_api(settings, args) as api:
        if args.jobs_command == "list":
            await _list(api, args)
        elif args.jobs_command == "show":
            _show(args, await api.get(f"{JOBS}/{args.job_id}"))
        elif args.jobs_command == "watch":
            await watch(api, f"{JOBS}/{args.job_id}", args, progress_of=job_progress)
        else:
            action = "cancel" if args.jobs_command == "cancel" else "retry-failed"
            _show(args, await api.post(f"{JOBS}/{args.job_id}/{action}"))


async def _list(api: Api, args: argparse.Namespace) -> None:
    page = await api.get(JOBS, status=args.status, limit=args.limit)
    if args.json:
        render.emit_json(page)
        return
    rows = [[job.get(name) for name in SUMMARY] for job in page["items"]]
    render.table(f"generation jobs ({page['total']} in all)", SUMMARY, rows)


def _show(args: argparse.Namespace, job: dict[str, Any]) -> None:
    if args.json:
        render.emit_json(job)
        return
    render.fields(f"generation job {job['id']}", job, [n for n in DETAIL if n in job])
    for error in job.get("errors", [])[:10]:
        render.console.print(
            f"  item {error['item_index']}: {error['error_code']} {error['error']}"
        )


def job_progress(job: dict[str, Any]) -> tuple[int, int]:
    """(done, total) items of a generation job."""
    done = job["completed_items"] + job["failed_items"] + job["skipped_items"]
    return done, job["total_items"]


async def watch(api: Api, path: str, args: argparse.Namespace, *, progress_of: Any) -> Any:
    """Poll until the job or export ends, drawing a bar; an unsuccessful end is an error."""
    body = await api.get(path)
    if args.json:
        while body["status"] not in TERMINAL and body["status"] != "expired":
            await asyncio.sleep(args.interval)
            body = await api.get(path)
    else:
        with render.progress_bar() as bar:
            done, total = progress_of(body)
            task = bar.add_task(str(body["status"]), total=total, completed=done)
            while body["status"] not in TERMINAL and body["status"] != "expired":
                await asyncio.sleep(args.interval)
                body = await api.get(path)
                done, total = progress_of(body)
                bar.update(task, description=str(body["status"]), completed=done, total=total)
    _show_end(args, body)
    if body["status"] != "completed":
        raise ApiError(f"{path} ended {body['status']}: {body.get('error') or 'no error given'}")
    return body


def _show_end(args: argparse.Namespace, body: dict[str, Any]) -> None:
    if args.json:
        render.emit_json(body)
    else:
        render.console.print(f"{body['id']}: {body['status']}")
