"""A running export's heartbeat: progress to the row, and the signal to stop when it is lost.

A background task writes heartbeat_at and progress every EXPORT_HEARTBEAT_SECONDS. The write
only succeeds while this run owns the row (status processing, same run_id), so the first failed
beat means the export was cancelled, failed by the janitor or taken over by a re-run: the
pipeline stops at its next batch and the multipart upload is aborted.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from uuid import UUID

import asyncpg

from shared.db.pool import tenant_transaction
from shared.db.repositories import exports as repo
from shared.logging import get_logger
from shared.models.export import ExportStatus

log = get_logger(__name__)


class ExportStopped(Exception):
    """This run no longer owns the export: it was cancelled, failed elsewhere or superseded."""

    def __init__(self, status: str) -> None:
        super().__init__(f"export is {status}; this run stops")
        self.status = status


class RunControl:
    """Heartbeat task, stop signal and read pacing for one run."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        owner_id: UUID,
        export_id: UUID,
        run_id: UUID,
        *,
        interval: float,
        max_per_second: float = 0,
        on_beat: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self._pool = pool
        self._owner_id = owner_id
        self._export_id = export_id
        self._run_id = run_id
        self._interval = interval
        self._max_per_second = max_per_second
        self._on_beat = on_beat
        self._started = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self.total = 0
        self.read = 0
        self.stopped: ExportStopped | None = None

    async def __aenter__(self) -> RunControl:
        self._task = asyncio.create_task(self._beat_forever())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def after_batch(self, read: int) -> None:
        """Called between batches: stop if the row was lost, else keep to the read limit."""
        self.read = read
        if self.stopped is not None:
            raise self.stopped
        if self._max_per_second > 0:
            due = self._started + read / self._max_per_second
            await asyncio.sleep(max(0.0, due - time.monotonic()))

    @property
    def progress_percent(self) -> float:
        """Share of the snapshot's conversations read so far."""
        return 100.0 * self.read / self.total if self.total else 0.0

    async def _beat_forever(self) -> None:
        while self.stopped is None:
            await asyncio.sleep(self._interval)
            try:
                await self._beat()
            except (asyncpg.PostgresError, OSError) as exc:
                # A missed beat is not fatal; the janitor only acts after many of them.
                log.warning("exporter.heartbeat.failed", error=str(exc))

    async def _beat(self) -> None:
        async with tenant_transaction(self._pool, self._owner_id) as conn:
            alive = await repo.heartbeat(conn, self._export_id, self._run_id, self.progress_percent)
            export = None if alive else await repo.get(conn, self._export_id)
        if alive:
            if self._on_beat is not None:  # after the commit, so readers see the new progress
                await self._on_beat()
            return
        status = export.status.value if export is not None else "gone"
        if export is not None and export.status is ExportStatus.PROCESSING:
            status = "superseded"
        self.stopped = ExportStopped(status)
