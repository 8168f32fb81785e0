"""Output: JSON with --json, rich tables and progress bars otherwise."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def emit_json(data: Any) -> None:
    """Machine-readable output, one document."""
    print(json.dumps(data, indent=2, sort_keys=True, default=str))


def table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """A human table."""
    grid = Table(title=title)
    for column in columns:
        grid.add_column(column)
    for row in rows:
        grid.add_row(*("" if value is None else str(value) for value in row))
    console.print(grid)


def fields(title: str, data: dict[str, Any], names: Sequence[str]) -> None:
    """One object as a two-column table of the named fields."""
    table(title, ("field", "value"), [(name, data.get(name)) for name in names])


def progress_bar() -> Progress:
    """A bar with count, percentage and time remaining (on stderr, so stdout stays clean)."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=False,
    )
