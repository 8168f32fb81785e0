"""`convoforge conversations import PATH...`: seed files and folders through the API."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from shared.cli_client import render
from shared.cli_client.http import Api, ApiError, common_options, open_api
from shared.settings import Settings

# One POST /v1/conversations/batch per chunk: well under the API's 10 MiB body limit.
CHUNK_FILES = 50
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass
class Outcome:
    """What happened to one file."""

    path: str
    ok: bool
    id: str | None = None
    error: str | None = None


def add_parser(sub: Any) -> None:
    """`conversations import`."""
    conversations = sub.add_parser("conversations", help="conversations (over the HTTP API)")
    actions = conversations.add_subparsers(dest="conversations_command", required=True)
    imp = actions.add_parser("import", parents=[common_options()], help="import seed files")
    imp.add_argument("paths", nargs="+", type=Path, help="files, or folders of *.json files")


def files_in(paths: Sequence[Path]) -> Iterator[Path]:
    """Each named file, and every *.json under each named folder, in a stable order."""
    for path in paths:
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*.json") if p.is_file())
        else:
            yield path


def chunks(files: Sequence[Path], outcomes: list[Outcome]) -> Iterator[list[tuple[Path, Any]]]:
    """Parsed files in batches; unreadable or non-JSON files become failed outcomes at once."""
    batch: list[tuple[Path, Any]] = []
    size = 0
    for path in files:
        try:
            raw = path.read_bytes()
            document = orjson.loads(raw)
        except OSError as exc:
            outcomes.append(Outcome(str(path), ok=False, error=f"cannot read: {exc.strerror}"))
            continue
        except orjson.JSONDecodeError as exc:
            outcomes.append(Outcome(str(path), ok=False, error=f"not JSON: {exc}"))
            continue
        if batch and (len(batch) >= CHUNK_FILES or size + len(raw) > CHUNK_BYTES):
            yield batch
            batch, size = [], 0
        batch.append((path, document))
        size += len(raw)
    if batch:
        yield batch


def _error_text(error: dict[str, Any] | None) -> str:
    if not error:
        return "failed"
    text = f"{error.get('code')}: {error.get('message')}"
    details = error.get("details")
    if isinstance(details, list) and details:
        text += " (" + "; ".join(f"{d.get('path')}: {d.get('message')}" for d in details[:5]) + ")"
    return text


async def import_files(api: Api, files: Sequence[Path], *, quiet: bool) -> list[Outcome]:
    """Send every file, chunk by chunk, with a progress bar."""
    outcomes: list[Outcome] = []
    with render.progress_bar() as bar:
        task = bar.add_task("importing", total=len(files), visible=not quiet)
        for batch in chunks(files, outcomes):
            body = await api.post("/v1/conversations/batch", {"items": [d for _, d in batch]})
            for result in body["results"]:
                path = str(batch[result["index"]][0])
                ok = bool(result["ok"])
                error = None if ok else _error_text(result.get("error"))
                outcomes.append(Outcome(path, ok=ok, id=result.get("id"), error=error))
            bar.update(task, completed=len(outcomes))
        bar.update(task, completed=len(outcomes))
    return outcomes


async def run(settings: Settings, args: argparse.Namespace) -> None:
    """Import, report each failure by file, exit non-zero when any file failed."""
    files = list(files_in(args.paths))
    missing = [str(path) for path in files if not path.exists()]
    if missing:
        raise ApiError(f"no such file: {', '.join(missing)}")
    if not files:
        raise ApiError("no *.json files found in the given paths")
    async with open_api(settings, args) as api:
        outcomes = await import_files(api, files, quiet=args.json)
    failed = [o for o in outcomes if not o.ok]
    if args.json:
        render.emit_json([o.__dict__ for o in outcomes])
    else:
        for outcome in failed:
            render.errors.print(f"[red]{outcome.path}[/red]: {outcome.error}", markup=True,
                                highlight=False)  # fmt: skip
        render.console.print(f"imported {len(outcomes) - len(failed)} of {len(outcomes)} file(s)")
    if failed:
        raise ApiError(f"{len(failed)} file(s) were not imported")
