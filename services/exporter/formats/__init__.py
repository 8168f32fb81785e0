"""Export formats: transformers that stream conversations into bytes, and their validators."""

from services.exporter.formats.base import (
    ExportConversation,
    ExportOptions,
    ExportSummary,
    ExportTurn,
    RenderError,
    ReviewEntry,
    Transformer,
    get_transformer,
)
from services.exporter.formats.validate import (
    OutputInvalid,
    ValidationReport,
    Validator,
    get_validator,
)

__all__ = [
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
    "get_transformer",
    "get_validator",
]
