"""`convoforge jobs|exports|conversations`: the CLI for people who live in a terminal.

These commands talk to the API over HTTP (never to the database), with `--api-url`/`--api-key`
or CONVOFORGE_API_URL/CONVOFORGE_API_KEY; `shared/cli.py` registers them.
"""

from __future__ import annotations

from typing import Any

from shared.cli_client import conversations, exports, jobs
from shared.cli_client.http import Handler

HANDLERS: dict[str, Handler] = {
    "jobs": jobs.run,
    "exports": exports.run,
    "conversations": conversations.run,
}


def register(sub: Any) -> None:
    """Add the HTTP commands to the `convoforge` parser."""
    jobs.add_parser(sub)
    exports.add_parser(sub)
    conversations.add_parser(sub)
