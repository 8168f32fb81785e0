"""A train/validation split: one zip holding ``train.<ext>``, ``validation.<ext>`` (+ README.md).

Each conversation goes to validation when ``md5("{seed}:{id}")`` is at most its stratum's
threshold (`export_source.split_thresholds`: the share of each tier, or status, rounded),
so a seed gives the same split of the same conversations every time. The train file is
deflated into the zip as it streams; the validation file waits in a temporary file on disk
(memory stays flat) and is added after it, then the dataset card. Each part is checked by its
format's validator, like a file of its own.
"""

from __future__ import annotations

import asyncio
import hashlib
import tempfile
import zipfile
from collections.abc import AsyncGenerator, Iterator
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from shared.exports.card import SPLITS, CardStats, render_card
from shared.exports.formats import ExportConversation, ExportOptions, Validator, get_validator
from shared.exports.formats.sink import Drain
from shared.exports.stream import (
    CHUNK_BYTES,
    MAX_REPORTED_FAILURES,
    YIELD_EVERY,
    AfterBatch,
    Batches,
    ExportStream,
    NothingRendered,
    Tally,
    failure_warnings,
)
from shared.models.export import SplitConfig


def split_hash(seed: int, id: UUID) -> str:
    """The hash that places a conversation (PostgreSQL computes the same one)."""
    return hashlib.md5(f"{seed}:{id}".encode(), usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class Splitter:
    """Which part a conversation belongs to."""

    config: SplitConfig
    thresholds: dict[str, str]

    def part(self, conv: ExportConversation) -> str:
        """ "train" or "validation"."""
        stratum = "" if self.config.stratify is None else getattr(conv, self.config.stratify)
        threshold = self.thresholds.get(stratum)
        if threshold is not None and split_hash(self.config.seed, conv.id) <= threshold:
            return "validation"
        return "train"


@dataclass(frozen=True)
class CardSpec:
    """What the dataset card needs besides the counts."""

    title: str
    config: dict[str, Any]
    license: str | None


class SplitStream:
    """Two export streams, one per part, writing one zip."""

    def __init__(
        self, options: ExportOptions, splitter: Splitter, card: CardSpec | None = None
    ) -> None:
        self.options = options
        self.splitter = splitter
        self.card = card
        self.card_stats = CardStats()
        self.parts = {s: ExportStream(options, compress=False) for s in SPLITS}
        self.validators: dict[str, Validator] = {s: get_validator(options) for s in SPLITS}
        self.ext = self.parts["train"].transformer.extension
        self.read = 0
        self._sink = Drain()
        self._zip = zipfile.ZipFile(self._sink, "w", zipfile.ZIP_DEFLATED, compresslevel=6)
        self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed in finish()/close()
        self._train = self._zip.open(f"train.{self.ext}", "w", force_zip64=True)

    def header(self) -> None:
        """Start both files."""
        for split in SPLITS:
            self.parts[split].header()
            self._route(split)

    def add(self, conv: ExportConversation) -> None:
        """Render one conversation into its part."""
        split = self.splitter.part(conv)
        stream = self.parts[split]
        before = stream.tally.summary.conversation_count
        stream.add(conv)
        if stream.tally.summary.conversation_count > before:
            self.card_stats.add(split, conv)
        self._route(split)

    @property
    def chunk_ready(self) -> bool:
        """Whether enough zip bytes are pending."""
        return self._sink.pending >= CHUNK_BYTES

    def take(self) -> bytes:
        """The zip bytes written so far."""
        return self._sink.take()

    def finish(self) -> Iterator[bytes]:
        """Close both parts (validated), copy validation in, add the card, close the zip."""
        for split in SPLITS:
            stream = self.parts[split]
            data = stream.footer()
            self.validators[split].feed(data)
            stream.verify(self.validators[split].finish())
            self._write(split, data)
        tally = self.tally
        if tally.failure_count and not tally.summary.conversation_count:
            raise NothingRendered(tally)
        self._train.close()
        yield self.take()
        yield from self._copy_validation()
        if self.card is not None:
            self._zip.writestr("README.md", self._card_bytes())
        self._zip.close()
        self._spool.close()
        yield self.take()

    def close(self) -> None:
        """Release the temporary file (after a failure too)."""
        self._spool.close()

    @property
    def tally(self) -> Tally:
        """Both parts' tallies as one."""
        return merged(self.parts["train"].tally, self.parts["validation"].tally)

    @property
    def split_counts(self) -> dict[str, int]:
        """Conversations written per part."""
        return {s: self.parts[s].tally.summary.conversation_count for s in SPLITS}

    def warnings(self) -> list[str]:
        """Warnings of both parts, without repeats."""
        found = self.parts["train"].transformer.warnings()
        found += self.parts["validation"].transformer.warnings()
        return list(dict.fromkeys(found + failure_warnings(self.tally)))

    def _route(self, split: str) -> None:
        data = self.parts[split].take()
        if data:
            self.validators[split].feed(data)
            self._write(split, data)

    def _write(self, split: str, data: bytes) -> None:
        if split == "train":
            self._train.write(data)
        else:
            self._spool.write(data)

    def _copy_validation(self) -> Iterator[bytes]:
        self._spool.seek(0)
        with self._zip.open(f"validation.{self.ext}", "w", force_zip64=True) as member:
            while chunk := self._spool.read(CHUNK_BYTES):
                member.write(chunk)
                yield self.take()

    def _card_bytes(self) -> bytes:
        assert self.card is not None
        return render_card(
            self.card_stats,
            title=self.card.title,
            ext=self.ext,
            export_date=self.options.export_date,
            config=self.card.config,
            license_id=self.card.license,
        )


def merged(a: Tally, b: Tally) -> Tally:
    """One tally holding what two hold."""
    out = Tally()
    for part in (a, b):
        s = part.summary
        out.summary.conversation_count += s.conversation_count
        out.summary.total_turns += s.total_turns
        out.summary.quality_sum += s.quality_sum
        out.summary.quality_count += s.quality_count
        for tier, n in s.tier_distribution.items():
            out.summary.tier_distribution[tier] = out.summary.tier_distribution.get(tier, 0) + n
        out.quality.merge(part.quality)
        out.failures += part.failures[: MAX_REPORTED_FAILURES - len(out.failures)]
        out.failure_count += part.failure_count
        out.exported_ids += part.exported_ids
    return out


async def split_chunks(
    stream: SplitStream, batches: Batches, after_batch: AfterBatch
) -> AsyncGenerator[bytes, None]:
    """The zip as chunks; every part validated before the last chunk leaves."""
    try:
        stream.header()
        async for batch in batches:
            for start in range(0, len(batch), YIELD_EVERY):
                for conv in batch[start : start + YIELD_EVERY]:
                    assert type(conv) is ExportConversation
                    stream.add(conv)
                await asyncio.sleep(0)
            stream.read += len(batch)
            if stream.chunk_ready:
                yield stream.take()
            await after_batch(stream.read)
        for chunk in stream.finish():
            if chunk:
                yield chunk
    finally:
        stream.close()
