"""One Message Batch result landed or booked exactly like a live attempt of the same item."""

from __future__ import annotations

import time
from typing import Any, Final

from services.generator import items, metrics
from services.generator.engine import Budget, ItemRun
from services.generator.items import ItemRef
from services.generator.judging.hook import after_landing
from services.generator.llm.batches import BatchResult
from services.generator.llm.client import RateLimitHeaders, SpendLimitReached, is_spend_limit
from services.generator.llm.client import message_from_body as parse_message
from services.generator.providers import Fleet
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as repo
from shared.models.generation import ItemStatus, JobMode, LogStatus, MessageBatch, StopReason
from shared.runtime import WorkerResources

Outcome = str  # completed | failed | resubmit | cancelled | lost | skipped
# Errors a resubmission cannot fix (our request is wrong, or the key is): fail at once.
PERMANENT_ERRORS: Final = frozenset(
    {"invalid_request_error", "authentication_error", "permission_error", "not_found_error"}
)
_LANDING_BUDGET_SECONDS: Final = 3600.0


class BatchItemRun(ItemRun):
    """An item of an open round, under the round's lease, whose result just arrived."""

    @classmethod
    async def load(
        cls,
        fleet: Fleet,
        resources: WorkerResources,
        owner_id: Any,
        row: MessageBatch,
        index: int,
    ) -> BatchItemRun | None:
        """The item if it still runs under the round's lease (else it was handled already)."""
        async with tenant_transaction(resources.pool, owner_id) as conn:
            pair = await repo.load(conn, row.job_id, index)
        if pair is None or pair[1].status != ItemStatus.RUNNING:
            return None
        if pair[1].lease_id != row.lease_id:
            return None
        ref = ItemRef(owner_id, row.job_id, index, row.lease_id)
        budget = Budget(deadline=time.monotonic() + _LANDING_BUDGET_SECONDS, call_need=0.0)
        run = cls(fleet, resources.pool, resources.storage, ref, pair, budget)
        run.mode = JobMode.BATCH
        run.on_landed = after_landing(resources, pair[0])
        return run

    async def handle(self, result: BatchResult) -> Outcome:
        """Land a success, book and resubmit or fail an error/expiry, cancel a canceled one."""
        if result.kind == "succeeded":
            try:
                response = parse_message(
                    result.message, request_id=None, rate_limits=RateLimitHeaders(), duration=0.0
                )
            except (KeyError, TypeError, ValueError, AttributeError):
                return await self._retry_or_fail(result, "invalid_response", "not a Messages body")
            return await self.land_answer(response, self.item.attempts)
        if result.kind == "canceled":
            return await self._canceled()
        if result.kind == "expired":
            return await self._retry_or_fail(
                result, "batch_expired", "the batch expired before this request was processed"
            )
        message = f"{result.error_type or 'error'}: {result.error_message}"
        return await self._retry_or_fail(result, "batch_errored", message)

    async def _retry_or_fail(self, result: BatchResult, code: str, message: str) -> Outcome:
        status = LogStatus.TIMEOUT if result.kind == "expired" else LogStatus.FAILED
        excerpt = {
            "custom_id": result.custom_id, "result": result.kind, "error_type": result.error_type
        }  # fmt: skip
        entry = self._log(
            self.item.attempts, status, 0.0, error_code=code, error_message=message,
            response_excerpt=excerpt,
        )  # fmt: skip
        attempts = await self._book(entry, consumed=True)
        metrics.LLM_REQUESTS.labels(self.fleet.provider.model, code).inc()
        if attempts is None:
            return "lost"
        if is_spend_limit(result.error_message):
            await self._fail(SpendLimitReached.code, message, stop=StopReason.SPEND_LIMIT)
            return "failed"
        if result.error_type in PERMANENT_ERRORS or attempts >= self.settings.llm_max_attempts:
            await self._fail(code, f"{message} (attempt {attempts})")
            return "failed"
        await items.release(self.pool, self.ref)
        return "resubmit"

    async def _canceled(self) -> Outcome:
        entry = self._log(
            self.item.attempts, LogStatus.CANCELLED, 0.0, error_code="batch_canceled",
            error_message="the Message Batch was canceled before this request ran",
        )  # fmt: skip
        await self._book(entry, consumed=False)
        async with tenant_transaction(self.pool, self.ref.owner_id) as conn:
            await repo.get_batch(conn, self.ref.batch_id, lock=True)
            await repo.finish_item(
                conn, self.ref.batch_id, self.ref.index, status=ItemStatus.CANCELLED,
                lease_id=self.ref.lease_id, error_code="cancelled",
                error="the Message Batch was canceled before this request ran",
            )  # fmt: skip
        metrics.CONVERSATIONS.labels(self.request.tier.value, "cancelled").inc()
        return "cancelled"
