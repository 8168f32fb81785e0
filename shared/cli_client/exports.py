"""`convoforge exports create|watch|download`: exports over HTTP."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import httpx

from shared.cli_client import render
from shared.cli_client.http import Api, ApiError, common_options, open_api
from shared.cli_client.jobs import watch
from shared.settings import Settings

EXPORTS = "/v1/exports"
FORMATS = ("jsonl", "json", "csv", "markdown")
SCOPES = ("all_approved", "all", "selected")
SHOWN = ("id", "status", "format", "scope", "progress_percent", "conversation_count",
         "turn_count", "file_name", "byte_size", "eta_seconds", "duration_seconds",
         "error")  # fmt: skip


def add_parser(sub: Any) -> None:
    """`exports` and its actions."""
    exports = sub.add_parser("exports", help="exports (over the HTTP API)")
    actions = exports.add_subparsers(dest="exports_command", required=True)
    common = common_options()
    create = actions.add_parser("create", parents=[common], help="request an export")
    create.add_argument("--format", choices=FORMATS, default="jsonl")
    create.add_argument("--scope", choices=SCOPES, default="all_approved")
    create.add_argument("--id", dest="ids", action="append", help="a conversation (selected)")
    create.add_argument("--metadata", action="store_true", help="include metadata")
    create.add_argument("--compress", action="store_true", help="gzip the file")
    create.add_argument("--wait", action="store_true", help="watch it until it ends")
    create.add_argument("--interval", type=float, default=1.0)
    watching = actions.add_parser("watch", parents=[common], help="a progress bar until it ends")
    watching.add_argument("export_id")
    watching.add_argument("--interval", type=float, default=1.0)
    download = actions.add_parser("download", parents=[common], help="save the finished file")
    download.add_argument("export_id")
    download.add_argument("-o", "--output", type=Path, help="file or folder (default: here)")


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Dispatch `exports ACTION`."""
    async with open_api(settings, args) as api:
        if args.exports_command == "create":
            export = await api.post(EXPORTS, _request(args))
            if args.wait:
                await watch(api, f"{EXPORTS}/{export['id']}", args, progress_of=export_progress)
            else:
                _show(args, export)
        elif args.exports_command == "watch":
            await watch(api, f"{EXPORTS}/{args.export_id}", args, progress_of=export_progress)
        else:
            await download(api, args)


def _request(args: argparse.Namespace) -> dict[str, Any]:
    config = {"scope": args.scope, "format": args.format, "include_metadata": args.metadata,
              "compress": args.compress}  # fmt: skip
    body: dict[str, Any] = {"config": config}
    if args.ids:
        body["conversation_ids"] = args.ids
    return body


def export_progress(export: dict[str, Any]) -> tuple[int, int]:
    """(percent done, 100) of an export."""
    return round(export["progress_percent"]), 100


def _show(args: argparse.Namespace, export: dict[str, Any]) -> None:
    if args.json:
        render.emit_json(export)
    else:
        render.fields(f"export {export['id']}", export, SHOWN)


async def download(api: Api, args: argparse.Namespace) -> Path:
    """Fetch the signed link, then stream the file to disk with a progress bar."""
    link = await api.get(f"{EXPORTS}/{args.export_id}/download", redirect="false")
    target = args.output or Path(".")
    if target.is_dir():
        target = target / link["file_name"]
    partial = target.with_name(target.name + ".part")
    # A client of its own: the signed link carries its own authority, never our API key.
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(60.0, connect=5.0)) as plain,
        plain.stream("GET", link["url"]) as response,
    ):
        if response.status_code != 200:
            raise ApiError(f"download failed: HTTP {response.status_code} from the file link")
        size = int(response.headers.get("content-length", 0)) or None
        await _save(response, partial, size, quiet=args.json)
    partial.replace(target)
    if args.json:
        render.emit_json({"path": str(target), "bytes": target.stat().st_size, **link})
    else:
        render.console.print(f"saved {target} ({target.stat().st_size} bytes)")
    return target


async def _save(response: httpx.Response, path: Path, size: int | None, *, quiet: bool) -> None:
    with render.progress_bar() as bar, path.open("wb") as out:
        task = bar.add_task(path.name.removesuffix(".part"), total=size, visible=not quiet)
        async for chunk in response.aiter_bytes():
            out.write(chunk)
            bar.advance(task, len(chunk))
