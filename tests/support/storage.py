"""Storage leftovers as a dead writer leaves them, for the stale-upload sweep's tests."""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from shared.storage.local import LocalObjectStore


def stale_partial_file(store: LocalObjectStore, *, age: timedelta) -> Path:
    """What an exporter killed mid-export leaves locally: a partial file, last written `age` ago."""
    path = store.root / ".partial" / uuid.uuid4().hex
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b'{"messages": [')
    written = (datetime.now(UTC) - age).timestamp()
    os.utime(path, (written, written))
    return path
