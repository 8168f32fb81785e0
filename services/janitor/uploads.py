"""abort-stale-uploads: the unfinished uploads of exporters that died mid-export.

A worker killed between starting an upload and completing or aborting it (SIGKILL, OOM, machine
loss) leaves an incomplete S3 multipart upload (invisible, but its parts are billed) or a file
in the local backend's partial directory. Uploads older than JANITOR_STALE_UPLOAD_AGE_SECONDS
cannot belong to a running export (settings require the age to exceed
EXPORT_JOB_TIMEOUT_SECONDS), so the storage backend aborts or removes them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.janitor.context import Counts, JanitorDeps
from shared.logging import get_logger

log = get_logger(__name__)


async def abort_stale_uploads(deps: JanitorDeps, counts: Counts) -> None:
    """Abort S3 multipart uploads / remove local partial files older than the threshold."""
    age = deps.settings.janitor_stale_upload_age_seconds
    # The storage's clock decides an upload's age (S3 `Initiated`, file mtime); hours of margin
    # make the skew to ours irrelevant.
    started_before = datetime.now(UTC) - timedelta(seconds=age)
    sweep = await deps.storage.abort_stale_uploads(started_before=started_before)
    counts.add("aborted", sweep.aborted)
    counts.add("recent", sweep.recent)
    counts.add("failed", sweep.failed)
    if sweep.failed:
        log.warning("janitor.abort_stale_uploads.failures", failed=sweep.failed,
                    aborted=sweep.aborted)  # fmt: skip
