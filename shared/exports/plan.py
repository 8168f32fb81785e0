"""What an export will produce: render options, file name and object key, from its row."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from shared.db.repositories.export_source import Scope, scope_for
from shared.exports import content_types
from shared.exports.formats import ExportOptions
from shared.exports.formats.base import transformer_class
from shared.models.export import ExportConfig, ExportLog
from shared.models.query import ConversationFilters


def render_options(config: ExportConfig, export_date: datetime) -> ExportOptions:
    """The formats package's options for a config (export_date pins the bytes across retries)."""
    return ExportOptions(
        format=config.format.value,
        include_metadata=config.include_metadata,
        include_quality_scores=config.include_quality_scores,
        include_timestamps=config.include_timestamps,
        include_approval_history=config.include_approval_history,
        include_parent_references=config.include_parent_references,
        include_full_content=config.include_full_content,
        target=config.target.value,
        fold_system=config.fold_system,
        export_date=export_date,
    )


def extension(config: ExportConfig) -> str:
    """The file extension: the format's, plus `.gz` when compressed."""
    if config.split is not None:
        return "zip"
    ext = transformer_class(render_options(config, datetime.min)).extension
    return f"{ext}.gz" if config.compress else ext


def content_type(config: ExportConfig) -> str:
    """What the stored object is served as (a .gz file stays a gzip file, not an encoding)."""
    return content_types.for_name(f"file.{extension(config)}")


def file_name(
    config: ExportConfig, export_date: datetime, count: int, tier_distribution: dict[str, int]
) -> str:
    """`training-data-{tier|all}-{YYYY-MM-DD}-{count}.{ext}`: the tier when only one is present."""
    tier = next(iter(tier_distribution)) if len(tier_distribution) == 1 else "all"
    return f"training-data-{tier}-{export_date:%Y-%m-%d}-{count}.{extension(config)}"


def object_key(export: ExportLog, run_id: UUID) -> str:
    """Per run, so a superseded run can never overwrite the file of the run that completed."""
    return f"exports/{export.owner_id}/{export.id}/{run_id}.{extension(export.export_config)}"


def scope_of(export: ExportLog) -> Scope:
    """The export's stored scope as a WHERE clause over conversations."""
    return scope_for(
        export.owner_id,
        export.scope,
        filters=ConversationFilters.model_validate(export.filters) if export.filters else None,
        selected_ids=export.selected_ids,
        exclude_near_duplicates=export.export_config.exclude_near_duplicates,
    )


def reads(options: ExportOptions) -> dict[str, bool]:
    """What the file shows beyond the turns, so the reader fetches only that.

    Metadata columns only when the metadata is printed; per-turn annotations only for the JSON
    document with metadata and full content; review history only with approval history.
    """
    metadata = options.include_metadata
    return {
        "metadata": metadata,
        "annotations": options.format == "json" and metadata and options.include_full_content,
        "reviews": metadata and options.include_approval_history,
    }
