"""Export formats: transformers that stream conversations into bytes, and their validators."""

from shared.exports.formats.base import (
    NOT_TRAINABLE,
    ExportConversation,
    ExportOptions,
    ExportSummary,
    ExportTurn,
    RenderError,
    ReviewEntry,
    Transformer,
    get_transformer,
)
from shared.exports.formats.database import columns_sql as database_columns_sql
from shared.exports.formats.database import render_sql as database_render_sql
from shared.exports.formats.validate import (
    OutputInvalid,
    ValidationReport,
    Validator,
    get_validator,
)

__all__ = [
    "NOT_TRAINABLE",
    "ExportConversation",
    "ExportOptions",
    "ExportSummary",
    "ExportTurn",
    "OutputInvalid",
    "RenderError",
    "ReviewEntry",
    "Transformer",
    "ValidationReport",
    "Validator",
    "database_columns_sql",
    "database_render_sql",
    "get_transformer",
    "get_validator",
]
