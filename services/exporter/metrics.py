"""Exporter metrics (DESIGN.md §9): exports by format and status, duration, size, volume."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from shared.models.export import ExportFormat

EXPORTS = Counter(
    "convoforge_export_exports_total",
    "Export runs that finished, by format and final status (completed, failed, cancelled).",
    ["format", "status"],
)
DURATION = Histogram(
    "convoforge_export_duration_seconds",
    "Time from claim to the file being complete, by format.",
    ["format"],
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800),
)
FILE_SIZE = Histogram(
    "convoforge_export_file_size_bytes",
    "Size of completed export files as stored, by format.",
    ["format"],
    buckets=(1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10),
)
CONVERSATIONS = Counter(
    "convoforge_export_conversations_total",
    "Conversations written into completed export files, by format.",
    ["format"],
)
RENDER_FAILURES = Counter(
    "convoforge_export_render_failures_total",
    "Conversations left out of an export because they could not be rendered, by format.",
    ["format"],
)


def initialise() -> None:
    """Create every known label set at 0, so rates and alerts work from the first scrape."""
    for fmt in ExportFormat:
        for status in ("completed", "failed", "cancelled"):
            EXPORTS.labels(fmt.value, status)
        for metric in (DURATION, FILE_SIZE, CONVERSATIONS, RENDER_FAILURES):
            metric.labels(fmt.value)
