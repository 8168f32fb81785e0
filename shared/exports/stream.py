"""Conversations → a file's bytes: render, check and (optionally) gzip, in ~1 MiB chunks.

Memory is bounded by one read batch plus one output chunk, whatever the export's size. What
the file holds is tallied as it is written (counts, quality, tiers, render failures, and the
ids of the exported conversations at 16 bytes each, for the export_count bump).
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from shared.exports.formats import (
    NOT_TRAINABLE,
    ExportConversation,
    ExportOptions,
    ExportSummary,
    OutputInvalid,
    RenderError,
    ValidationReport,
    Validator,
    get_transformer,
    get_validator,
)
from shared.models.export import MessageColumns, RenderedConversation

CHUNK_BYTES = 1024 * 1024
YIELD_EVERY = 100
# The row keeps the first failures for reading; the count covers all of them.
MAX_REPORTED_FAILURES = 100
_GZIP_LEVEL = 6


@dataclass(slots=True)
class QualityStats:
    """Quality scores of the exported conversations, accumulated one at a time."""

    scored: int = 0
    unscored: int = 0
    total: float = 0.0
    low: float | None = None
    high: float | None = None

    def add(self, score: float | None) -> None:
        """Count one conversation's score."""
        if score is None:
            self.unscored += 1
            return
        self.scored += 1
        self.total += score
        self.low = score if self.low is None else min(self.low, score)
        self.high = score if self.high is None else max(self.high, score)

    def merge(self, other: QualityStats) -> None:
        """Add another accumulator's scores."""
        self.scored += other.scored
        self.unscored += other.unscored
        self.total += other.total
        for bound in (other.low, other.high):
            if bound is not None:
                self.low = bound if self.low is None else min(self.low, bound)
                self.high = bound if self.high is None else max(self.high, bound)

    def to_dict(self) -> dict[str, Any]:
        """As stored in export_logs.quality_stats."""
        average = round(self.total / self.scored, 2) if self.scored else None
        return {
            "average": average,
            "min": self.low,
            "max": self.high,
            "scored": self.scored,
            "unscored": self.unscored,
        }


@dataclass(slots=True)
class Tally:
    """Everything the exporter records about the file besides its bytes."""

    summary: ExportSummary = field(default_factory=ExportSummary)
    quality: QualityStats = field(default_factory=QualityStats)
    failures: list[dict[str, Any]] = field(default_factory=list)
    failure_count: int = 0
    exported_ids: bytearray = field(default_factory=bytearray)
    read: int = 0

    def exported(self, id: UUID, tier: str, quality: float | None, turns: int) -> None:
        """Count a conversation that made it into the file."""
        self.summary.count(tier, quality, turns)
        self.quality.add(quality)
        self.exported_ids += id.bytes

    def failed(self, id: UUID, conversation_id: str, reason: str) -> None:
        """Report a conversation that could not be rendered (never silently dropped)."""
        self.failure_count += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(
                {"id": str(id), "conversation_id": conversation_id, "reason": reason}
            )


def failure_warnings(tally: Tally) -> list[str]:
    """The warning of a partial export (conversations left out), if it is one."""
    failed = tally.failure_count
    if not failed:
        return []
    written = tally.summary.conversation_count
    return [
        f"partial export: {failed} of {failed + written} conversation(s) could not be "
        "rendered and are not in the file (see render_failures)"
    ]


class NothingRendered(Exception):
    """Every conversation in scope failed to render: there is no file to complete."""

    def __init__(self, tally: Tally) -> None:
        first = tally.failures[0]["reason"] if tally.failures else "unknown"
        reason = f"none of the {tally.failure_count} conversation(s) could be rendered: {first}"
        super().__init__(reason)
        self.reason = reason


class ExportStream:
    """One export's transformer and compressor, fed one conversation at a time."""

    def __init__(self, options: ExportOptions, *, compress: bool) -> None:
        self.transformer = get_transformer(options)
        self.tally = Tally()
        self._parts: list[bytes] = []
        self._pending = 0
        self._gzip = zlib.compressobj(_GZIP_LEVEL, zlib.DEFLATED, 31) if compress else None

    def header(self) -> None:
        """Start the file."""
        self._write(self.transformer.header())

    def add(self, conv: ExportConversation | RenderedConversation | MessageColumns) -> None:
        """Render one conversation (or take the bytes PostgreSQL rendered), or report why it
        cannot be."""
        tally = self.tally
        if type(conv) is RenderedConversation:
            self._add_rendered(conv)
            return
        if type(conv) is MessageColumns:
            if not conv.trainable:
                tally.failed(conv.id, conv.conversation_id, NOT_TRAINABLE)
                return
            tally.exported(conv.id, conv.tier, conv.quality_score, conv.turn_count)
            self._write(self.transformer.render_columns(conv))
            return
        assert type(conv) is ExportConversation
        try:
            data = self.transformer.render(conv)
        except RenderError as exc:
            tally.failed(conv.id, conv.conversation_id, exc.reason)
            return
        tally.exported(conv.id, conv.tier, conv.quality_score, self.transformer.turns_of(conv))
        self._write(data)

    def _add_rendered(self, conv: RenderedConversation) -> None:
        """Take a line PostgreSQL rendered, checked here when the database could not prove it
        follows the format's rules."""
        if conv.data is None:
            self.tally.failed(conv.id, conv.conversation_id, conv.failure or NOT_TRAINABLE)
            return
        problem = self.transformer.check_line(conv.data) if conv.needs_check else None
        if problem is not None:
            self.tally.failed(conv.id, conv.conversation_id, problem)
            return
        self.tally.exported(conv.id, conv.tier, conv.quality_score, conv.turn_count)
        self._write(conv.data)

    @property
    def chunk_ready(self) -> bool:
        """Whether enough output is pending to hand a chunk on."""
        return self._pending >= CHUNK_BYTES

    def take(self) -> bytes:
        """The pending output, as the file holds it before compression."""
        return b"".join(self.take_parts())

    def take_parts(self) -> list[bytes]:
        """The pending output in the pieces it was rendered in (header, conversations)."""
        parts = self._parts
        self._parts = []
        self._pending = 0
        return parts

    def footer(self) -> bytes:
        """The rest of the file: pending output and the format's footer."""
        self._write(self.transformer.footer(self.tally.summary))
        return self.take()

    def warnings(self) -> list[str]:
        """The format's warnings, and one naming the conversations left out, if any."""
        return self.transformer.warnings() + failure_warnings(self.tally)

    def stored(self, data: bytes, *, last: bool = False) -> bytes:
        """The bytes as stored: gzip members when compressing, else unchanged."""
        if self._gzip is None:
            return data
        out = self._gzip.compress(data)
        return out + self._gzip.flush() if last else out

    def verify(self, report: ValidationReport) -> None:
        """The validator must have counted exactly what was rendered."""
        summary = self.tally.summary
        written = (summary.conversation_count, summary.total_turns)
        if (report.conversations, report.turns) != written:
            raise OutputInvalid(
                f"validator counted {report.conversations} conversations and {report.turns} "
                f"turns; {summary.conversation_count} and {summary.total_turns} were written"
            )

    def _write(self, data: bytes) -> None:
        if data:
            self._parts.append(data)
            self._pending += len(data)


def render_small(
    options: ExportOptions, conversations: list[ExportConversation]
) -> tuple[bytes, Tally, str]:
    """A whole (small) file in memory, validated inline: previews. Returns bytes, tally, type."""
    stream = ExportStream(options, compress=False)
    validator = get_validator(options)
    stream.header()
    for conv in conversations:
        stream.add(conv)
    data = stream.footer()
    validator.feed(data)
    stream.verify(validator.finish())
    return data, stream.tally, stream.transformer.content_type


Batches = AsyncIterator[
    list[ExportConversation] | list[RenderedConversation] | list[MessageColumns]
]
AfterBatch = Callable[[int], Awaitable[None]]


async def file_chunks(
    stream: ExportStream, batches: Batches, validator: Validator, after_batch: AfterBatch
) -> AsyncGenerator[bytes, None]:
    """The stored file as chunks, each run through the format's validator before it leaves.

    `after_batch(read_so_far)` paces, reports progress or stops the run. The last chunk is
    yielded only after the validator's verdict, so storage never completes an invalid file.
    """
    stream.header()
    async for batch in batches:
        for start in range(0, len(batch), YIELD_EVERY):
            for conv in batch[start : start + YIELD_EVERY]:
                stream.add(conv)
            # Let the event loop run: the next batch's rows arrive while this one renders.
            await asyncio.sleep(0)
        stream.tally.read += len(batch)
        if stream.chunk_ready:
            parts = stream.take_parts()
            validator.feed_parts(parts)
            yield stream.stored(b"".join(parts))
        await after_batch(stream.tally.read)
    tail = stream.footer()
    validator.feed(tail)
    stream.verify(validator.finish())
    if stream.tally.failure_count and not stream.tally.summary.conversation_count:
        raise NothingRendered(stream.tally)
    last = stream.stored(tail, last=True)
    if last:
        yield last
