"""What a stored export file is served as, by its name (local files carry no metadata)."""

from __future__ import annotations

from pathlib import PurePosixPath

BY_SUFFIX = {
    ".gz": "application/gzip",
    ".jsonl": "application/jsonl",
    ".json": "application/json",
    ".csv": "text/csv; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".txt": "text/plain; charset=utf-8",
    ".parquet": "application/vnd.apache.parquet",
    ".zip": "application/zip",
}
FALLBACK = "application/octet-stream"


def for_name(name: str) -> str:
    """The content type of a file name's last suffix (a .jsonl.gz file is a gzip file)."""
    return BY_SUFFIX.get(PurePosixPath(name).suffix.lower(), FALLBACK)
