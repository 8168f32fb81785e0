"""One quality_check item: gate, then the same attempt loop as generation, then the verdict.

`JudgeRun` is an `ItemRun` (engine.py) whose call carries the `record_scores` tool and whose
answer becomes scores instead of a conversation: the fleet limiter, cost-cap gate, retries,
attempt rows (purpose `judge`) and deferrals are generation's own. What never reaches Claude:
a conversation that is gone, or one the structural gate refuses (its judge_error says why).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.generator import items
from services.generator.attempts import held
from services.generator.engine import Budget, ItemRun, Step
from services.generator.items import ItemRef
from services.generator.judging.gate import structural_problems, structural_score
from services.generator.judging.store import land_verdict, record_failure
from services.generator.llm.client import LLMResponse
from services.generator.providers import Fleet
from shared.db.pool import tenant_transaction
from shared.db.repositories import generation as generation_repo
from shared.db.repositories import quality as quality_repo
from shared.llm.pricing import CHARS_PER_TOKEN
from shared.logging import get_logger
from shared.models.generation import BatchJob, GenerationItem, LogStatus, NewLog, StopReason
from shared.quality.judge import TOOL, TOOL_CHOICE, TOOL_NAME, prefix, transcript
from shared.quality.scores import JudgeOutputError, Scores, parse_scores, place
from shared.storage import ObjectStore

log = get_logger(__name__)


@dataclass(frozen=True)
class Refusal:
    """Why the item ends before any call: its error code and message."""

    code: str
    message: str


class JudgeRun(ItemRun):
    """Judges one conversation under the item's lease."""

    subject: quality_repo.Subject
    rubric_version: int

    async def _call(self) -> LLMResponse:
        response: LLMResponse = await self.fleet.provider.create_message(  # type: ignore[call-arg]
            system=self.request.prefix, temperature=self.request.temperature,
            messages=[{"role": "user", "content": self.request.user_prompt}],
            max_tokens=self.request.max_tokens, cache_ttl=self.cache_ttl,
            tools=[TOOL], tool_choice=TOOL_CHOICE,
        )  # fmt: skip
        return response

    def _log(self, attempts: int, status: LogStatus, elapsed: float, **fields: Any) -> NewLog:
        return super()._log(attempts, status, elapsed, purpose="judge", **fields)

    async def _answered(self, response: LLMResponse, permit: Any, attempts: int) -> Step:
        cost = await self._settle_answer(response, permit)
        entry = self._answer_log(response, cost, attempts, None)
        try:
            scores = self._scores(response)
        except JudgeOutputError as error:
            failed = entry.model_copy(
                update={"status": LogStatus.FAILED, "error_code": error.code,
                        "error_message": str(error)[:1000]}
            )  # fmt: skip
            await self._book(failed, consumed=True)
            await self._fail(error.code, f"the judge's answer was not usable: {error}")
            return Step("failed")
        self.spent += cost
        landed = await held(
            lambda: land_verdict(
                self.pool, self.ref, self.subject.id, self._verdict(scores, response), entry,
                self.request.template_id,
            ),
            deadline=self.budget.deadline, what="land",
        )  # fmt: skip
        if not landed:
            await self._book(entry, consumed=True)  # the call was still paid for
            return Step("lost")
        return Step("completed")

    def _scores(self, response: LLMResponse) -> Scores:
        if TOOL_NAME not in response.tool_inputs:
            raise JudgeOutputError(f"no {TOOL_NAME} call (stop_reason {response.stop_reason})")
        numbers = {int(turn["turn_number"]) for turn in self.subject.turns}
        return parse_scores(response.tool_inputs[TOOL_NAME], numbers)

    def _verdict(self, scores: Scores, response: LLMResponse) -> quality_repo.Verdict:
        found = self.subject
        placed = place(
            found.status, found.is_flagged, found.flag_reason, scores,
            self.request.quality_threshold,
        )  # fmt: skip
        return quality_repo.Verdict(
            values=scores.values, overall=scores.overall, quality_score=scores.quality_score,
            rationale=scores.rationale, rubric_version=self.rubric_version,
            model=response.model or self.fleet.provider.model, status=placed.status,
            is_flagged=placed.is_flagged, flag_reason=placed.flag_reason,
        )  # fmt: skip

    async def _fail(self, code: str, message: str, *, stop: StopReason | None = None) -> None:
        # Not ItemRun._fail: a failed judgement is no failed conversation in the metrics.
        await held(
            lambda: items.fail(self.pool, self.ref, code, message, stop=stop),
            deadline=self.budget.deadline, what="fail",
        )  # fmt: skip
        log.info("generator.judge.failed", code=code, stop=stop.value if stop else None)
        await self.record(f"{code}: {message}")

    async def record(self, error: str) -> None:
        """The conversation's judge_error (its judge columns NULL)."""
        await held(
            lambda: record_failure(
                self.pool, self.ref.owner_id, self.subject.id, error,
                self.fleet.provider.model, structural_score(self.subject.turns),
            ),
            deadline=self.budget.deadline, what="judge_error",
        )  # fmt: skip


async def prepare(
    fleet: Fleet,
    pool: asyncpg.Pool,
    storage: ObjectStore,
    ref: ItemRef,
    claimed: tuple[BatchJob, GenerationItem],
    budget: Budget,
    *,
    cls: type[JudgeRun] = JudgeRun,
) -> JudgeRun | Refusal:
    """Load the conversation and the pinned rubric; gate; build the run (or say why not)."""
    batch, item = claimed
    request = item.request
    conversation_id, version = request.judge_conversation_id, request.judge_rubric_version
    if conversation_id is None or version is None:
        return Refusal("not_a_judge_item", "the item names no conversation or rubric version")
    async with tenant_transaction(pool, ref.owner_id) as conn:
        found = await quality_repo.subject(conn, conversation_id)
        rubric = await quality_repo.rubric_version(conn, version)
    if found is None:
        return Refusal("conversation_gone", "the conversation was deleted before it was judged")
    if rubric is None:
        return Refusal("rubric_missing", f"rubric version {version} is not stored")
    problems = structural_problems(found.turns, fleet.settings.judge_max_conversation_chars)
    if problems:
        return Refusal("structural_gate", "not sent to the judge: " + "; ".join(problems))
    system, user = prefix(rubric), transcript(found.turns, found.brief)
    built = request.model_copy(
        update={"system_prompt": system, "user_prompt": user,
                "estimated_input_tokens": math.ceil((len(system) + len(user)) / CHARS_PER_TOKEN)
                + 400}
    )  # fmt: skip
    run = cls(fleet, pool, storage, ref, (batch, item.model_copy(update={"request": built})),
              budget)  # fmt: skip
    run.subject, run.rubric_version = found, version
    return run


async def refuse(pool: asyncpg.Pool, ref: ItemRef, item: GenerationItem, why: Refusal) -> str:
    """Fail the item without a call, and say why on the conversation (when there is one)."""
    await items.fail(pool, ref, why.code, why.message)
    conversation_id: UUID | None = item.request.judge_conversation_id
    if conversation_id is not None and why.code != "conversation_gone":
        async with tenant_transaction(pool, ref.owner_id) as conn:
            found = await quality_repo.subject(conn, conversation_id)
            score = structural_score(found.turns) if found is not None else None
            await quality_repo.write_failure(
                conn, conversation_id, f"{why.code}: {why.message}", None, score
            )
    log.info("generator.judge.refused", code=why.code)
    return "failed"


async def record_stopped(run: JudgeRun) -> None:
    """The job stopped (cost cap, cancel, spend limit) before this conversation was judged."""
    async with tenant_transaction(run.pool, run.ref.owner_id) as conn:
        item = await generation_repo.get_item(conn, run.ref.batch_id, run.ref.index)
    reason = item.error_code if item is not None and item.error_code else "stopped"
    await run.record(f"not judged: the job stopped ({reason})")
