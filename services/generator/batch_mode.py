"""Batch-mode jobs: items go to Claude as Message Batches, polled from any replica.

One arq job per generation job (`genbatch:{id}`) runs `step()` and defers itself until the next
poll. State lives in PostgreSQL (`message_batches`: one row per round, its provider batch id and
the lease its items run under), so a killed or different replica carries on where another left
off. A round's row is written before the create call; results are streamed and each one lands
exactly like a live answer (parse, score, store, log at the batch price) under the round's lease,
so a result landed twice is a no-op. Errored and expired items go back to the queue for the next
round (a new batch) until the attempt limit; `canceled` ones become cancelled.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final
from uuid import UUID

import asyncpg

from services.generator.batch_items import BatchItemRun, Outcome
from services.generator.batch_orphans import custom_id, find_orphan, parse_custom_id, round_tag
from services.generator.engine import INPUT_RESERVE_FACTOR, Budget
from services.generator.judging.batched import BatchJudgeRun, judge_params
from services.generator.llm.batches import BatchClient, BatchInfo, BatchResult
from services.generator.llm.client import (
    ConnectionFailed,
    LLMError,
    SpendLimitReached,
    Timeout,
)
from services.generator.providers import Fleet
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.db.repositories import message_batches as batches_repo
from shared.llm.params import message_params
from shared.llm.pricing import CacheTtl, Usage, cost_usd, table_for
from shared.logging import get_logger
from shared.models.generation import (
    OPEN_MESSAGE_BATCH,
    BatchJob,
    BatchStatus,
    GenerationItem,
    ItemRequest,
    ItemStatus,
    MessageBatch,
    MessageBatchStatus,
    StopReason,
)
from shared.runtime import WorkerResources

log = get_logger(__name__)
# Items of an open batch hold their lease past the API's 24-hour processing window.
BATCH_LEASE_SECONDS: Final = 30 * 3600.0
_LANDING_MARGIN_SECONDS: Final = 10.0


def request_params(request: ItemRequest, model: str, caching: bool) -> dict[str, Any]:
    """One item's Messages body; the shared prefix is cached for an hour (batches are slow)."""
    return message_params(
        model=model, system=request.prefix or None,
        messages=[{"role": "user", "content": request.user_message}],
        max_tokens=request.max_tokens, temperature=request.temperature,
        cache_ttl=CacheTtl.ONE_HOUR if caching else None,
    )  # fmt: skip


@dataclass
class BatchRunner:
    """One pass over a batch-mode job, holding the job's lock."""

    resources: WorkerResources
    fleet: Fleet
    client: BatchClient
    owner_id: UUID
    job_id: UUID
    deadline: float
    # A quality_check job: requests built from the conversations, results judged.
    judge: bool = False

    async def step(self) -> float | None:
        """Advance open rounds, submit queued items; seconds to the next pass, None when done."""
        batch = await self._batch()
        if batch is None:
            return None
        stopping = batch.status == BatchStatus.CANCELLED or bool(batch.stop_reason)
        for row in await self._open_rounds():
            await self._advance(row, stopping)
        if not stopping:
            await self._submit(batch)
        rounds = await self._open_rounds()
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            await batches_repo.heartbeat(conn, self.job_id)
            queued = await batches_repo.queued_count(conn, self.job_id)
        if not rounds and (queued == 0 or stopping):
            return None
        return self._next_poll(rounds)

    def _next_poll(self, rounds: list[MessageBatch]) -> float:
        settings = self.fleet.settings
        polls = min((row.polls for row in rounds), default=0)
        backoff = settings.llm_batch_poll_min_seconds * float(2 ** min(polls, 8))
        return float(min(settings.llm_batch_poll_max_seconds, backoff))

    async def _batch(self) -> BatchJob | None:
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            return await repo.get_batch(conn, self.job_id)

    async def _open_rounds(self) -> list[MessageBatch]:
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            rows = await batches_repo.for_job(conn, self.job_id)
        return [row for row in rows if row.status in OPEN_MESSAGE_BATCH]

    async def _update(self, row: MessageBatch, **fields: Any) -> None:
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            await batches_repo.update(conn, row.id, **fields)

    async def _advance(self, row: MessageBatch, stopping: bool) -> None:
        if row.provider_batch_id is None:
            # The create call's answer was never recorded (its run died, or it timed out).
            adopted = await self._adopt(row)
            if adopted is None:
                return
            row = adopted
        assert row.provider_batch_id is not None
        try:
            if stopping and row.status == MessageBatchStatus.IN_PROGRESS:
                await self.client.cancel(row.provider_batch_id)
                log.info("generator.batch.cancel_sent", provider_batch_id=row.provider_batch_id)
            info = await self.client.retrieve(row.provider_batch_id)
        except LLMError as error:
            log.warning("generator.batch.poll_failed", code=error.code, status=error.status)
            await self._update(row, polls=row.polls + 1)
            return
        await self._observe(row, info)

    async def _adopt(self, row: MessageBatch) -> MessageBatch | None:
        """The row with the batch its lost create call made, or None (abandoned or retry later)."""
        try:
            async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
                info = await find_orphan(self.client, conn, row, self.client.timeout)
        except LLMError:
            await self._update(row, polls=row.polls + 1)
            return None  # the API is unreachable: look again on the next pass
        if info is None:
            await self._abandon(row, "submission outcome unknown: no such batch at the API")
            return None
        fields: dict[str, Any] = {
            "provider_batch_id": info.id, "status": MessageBatchStatus.IN_PROGRESS,
            "request_counts": info.request_counts,
        }  # fmt: skip
        await self._update(row, **fields)
        log.info("generator.batch.adopted", round=row.round, provider_batch_id=info.id)
        return row.model_copy(update=fields)

    async def _observe(self, row: MessageBatch, info: BatchInfo) -> None:
        status = MessageBatchStatus.CANCELING if info.processing_status == "canceling" else None
        if not info.ended:
            await self._update(
                row, request_counts=info.request_counts, polls=row.polls + 1,
                **({"status": status} if status else {}),
            )  # fmt: skip
            return
        landed = await self._land(row)
        if landed is None:
            return  # out of time: the next pass streams the file again, skipping what landed
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            # Requests the results file did not mention get another round.
            missing = await batches_repo.release_round(conn, self.job_id, row.lease_id)
            await batches_repo.update(
                conn, row.id, status=MessageBatchStatus.ENDED,
                request_counts=info.request_counts, landed=row.landed + landed,
            )  # fmt: skip
        log.info(
            "generator.batch.ended", provider_batch_id=row.provider_batch_id,
            counts=info.request_counts, landed=landed, missing=missing,
        )  # fmt: skip

    async def _land(self, row: MessageBatch) -> int | None:
        assert row.provider_batch_id is not None
        landed = 0
        wanted = set(row.item_indexes)
        try:
            async for result in self.client.results(row.provider_batch_id):
                if time.monotonic() > self.deadline - _LANDING_MARGIN_SECONDS:
                    await self._update(row, landed=row.landed + landed)
                    return None
                outcome = await self._one(row, result, wanted)
                landed += outcome == "completed"
        except LLMError as error:
            log.warning("generator.batch.results_failed", code=error.code, status=error.status)
            return None
        return landed

    async def _one(self, row: MessageBatch, result: BatchResult, wanted: set[int]) -> Outcome:
        parsed = parse_custom_id(result.custom_id)
        index = parsed[1] if parsed is not None and parsed[0] == round_tag(row.id) else None
        if index is None or index not in wanted:
            log.warning("generator.batch.unknown_custom_id", custom_id=result.custom_id[:80])
            return "skipped"
        load = BatchJudgeRun.load_judge if self.judge else BatchItemRun.load
        run = await load(self.fleet, self.resources, self.owner_id, row, index)
        if run is None:
            return "skipped"  # landed by an earlier pass
        return await run.handle(result)

    async def _abandon(self, row: MessageBatch, reason: str) -> None:
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            await batches_repo.release_round(conn, self.job_id, row.lease_id)
            await batches_repo.update(conn, row.id, status=MessageBatchStatus.FAILED, error=reason)
        log.warning("generator.batch.round_abandoned", round=row.round, reason=reason)

    async def _submit(self, batch: BatchJob) -> None:
        """Queued items (first ones or errored/expired ones back) become a new batch."""
        lease = uuid.uuid4()
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            locked = await repo.get_batch(conn, self.job_id, lock=True)
            if locked is None or locked.stop_reason or locked.status in (BatchStatus.CANCELLED,):
                return
            indexes = await batches_repo.take_items(
                conn, self.job_id, lease_id=lease,
                limit=self.fleet.settings.llm_batch_max_requests,
                lease_seconds=BATCH_LEASE_SECONDS,
            )  # fmt: skip
            requests = [await repo.get_item(conn, self.job_id, i) for i in indexes]
            kept = await self._within_cap(conn, locked, lease, [r for r in requests if r])
            caching = self.fleet.settings.llm_prompt_caching
            judged = (
                await judge_params(conn, self.fleet, lease, kept, caching) if self.judge else {}
            )
            if self.judge:
                kept = [item for item in kept if item.item_index in judged]
            if not kept:
                return
            row = await batches_repo.insert(
                conn, owner_id=self.owner_id, job_id=self.job_id, lease_id=lease,
                indexes=[item.item_index for item in kept],
            )  # fmt: skip
            requests = list(kept)
        body = [
            {"custom_id": custom_id(row.id, item.item_index),
             "params": judged.get(item.item_index) or request_params(
                 item.request, self.fleet.provider.model, caching)}
            for item in requests if item is not None
        ]  # fmt: skip
        await self._create(row, body)

    async def _within_cap(
        self,
        conn: asyncpg.Connection,
        batch: BatchJob,
        lease: UUID,
        taken: list[GenerationItem],
    ) -> list[GenerationItem]:
        """The taken items whose worst-case cost fits the cap (reserved); the rest go back."""
        cap = batch.cost_cap_usd
        if cap is None:
            return taken
        room = cap - batch.cost_so_far_usd - await repo.reserved_by_others(conn, self.job_id, -1)
        kept: list[GenerationItem] = []
        for item in taken:
            worst = self._worst_case(item.request)
            if worst <= room:
                room -= worst
                kept.append(item)
                await repo.reserve(conn, self.job_id, item.item_index, lease, worst)
            else:
                await repo.release(conn, self.job_id, item.item_index, lease)
        if not kept and await repo.running_count(conn, self.job_id) == 0:
            message = f"cost cap ${cap} reached: ${batch.cost_so_far_usd} spent"
            reason = StopReason.COST_CAP.value
            await repo.set_stop(conn, self.job_id, reason=reason, error=message, cancel=False)
            await repo.skip_queued(
                conn, self.job_id, status=ItemStatus.SKIPPED, code=reason, error=message
            )
        return kept

    def _worst_case(self, request: ItemRequest) -> Decimal:
        """Every prompt token written to the cache, every call at max_tokens, batch price."""
        _, price = table_for(self.fleet.settings).price_for(self.fleet.provider.model)
        usage = Usage(
            cache_write_tokens=INPUT_RESERVE_FACTOR * request.estimated_input_tokens,
            output_tokens=request.max_tokens,
        )
        return cost_usd(price, usage, batch=True, cache_ttl=CacheTtl.ONE_HOUR)

    async def _create(self, row: MessageBatch, body: list[dict[str, Any]]) -> None:
        if self.fleet.limiter is not None:
            await self.fleet.limiter.acquire(timeout=max(1.0, self.deadline - time.monotonic()))
        try:
            info = await self.client.create(body)
        except (Timeout, ConnectionFailed) as error:
            # The batch may exist and be billed: the next pass looks for it before resubmitting.
            log.warning("generator.batch.create_outcome_unknown", code=error.code)
            return
        except LLMError as error:
            await self._create_failed(row, error)
            return
        await self._update(
            row, provider_batch_id=info.id, status=MessageBatchStatus.IN_PROGRESS,
            request_counts=info.request_counts,
        )  # fmt: skip
        log.info(
            "generator.batch.submitted",
            round=row.round,
            requests=len(body),
            provider_batch_id=info.id,
        )

    async def _create_failed(self, row: MessageBatch, error: LLMError) -> None:
        log.warning("generator.batch.create_failed", code=error.code, status=error.status)
        if error.retryable:
            await self._abandon(row, error.message)
            return
        stop = StopReason.SPEND_LIMIT if isinstance(error, SpendLimitReached) else None
        async with tenant_transaction(self.resources.pool, self.owner_id) as conn:
            await repo.get_batch(conn, self.job_id, lock=True)
            for index in row.item_indexes:
                await repo.finish_item(
                    conn, self.job_id, index, status=ItemStatus.FAILED, lease_id=row.lease_id,
                    error_code=error.code, error=error.message,
                )  # fmt: skip
            if stop is not None:
                await repo.set_stop(
                    conn, self.job_id, reason=stop.value, error=error.message, cancel=False
                )
                await repo.skip_queued(
                    conn,
                    self.job_id,
                    status=ItemStatus.SKIPPED,
                    code=stop.value,
                    error=error.message,
                )
            await batches_repo.update(
                conn, row.id, status=MessageBatchStatus.FAILED, error=error.message
            )


def budget_for(deadline: float) -> Budget:
    """A landing needs no call time: the whole budget is spare."""
    return Budget(deadline=deadline, call_need=0.0)
