"""Which exports PostgreSQL renders (or reads as columns) instead of the Python renderers.

Each SQL lives next to the renderer it must match byte for byte (tests/exporter/
test_jsonl_sql.py and test_database_render.py prove it); previews and splits always use the
Python renderers.
"""

from __future__ import annotations

from shared.exports.formats.base import ExportOptions
from shared.exports.formats.jsonl import PLAIN_LINE_SQL
from shared.exports.formats.parquet import COLUMNS_SQL
from shared.exports.formats.targets import bedrock


def render_sql(options: ExportOptions) -> str | None:
    """The SQL that renders this export's lines in PostgreSQL, when there is one."""
    if options.format != "jsonl" or options.include_metadata:
        return None
    if options.target == "openai":
        return PLAIN_LINE_SQL
    if options.target == bedrock.NAME:
        return bedrock.LINE_SQL
    return None


def columns_sql(options: ExportOptions) -> str | None:
    """The SQL that reads this export's conversations as column pieces, when there is one."""
    if options.format == "parquet" and not options.include_metadata:
        return COLUMNS_SQL
    return None
