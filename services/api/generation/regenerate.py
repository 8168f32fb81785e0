"""Regenerate a conversation: whole, or from a turn on, with instructions and new parameters.

The result is a one-item job whose conversation names the original as its parent
(parent_type 'conversation'). With `from_turn`, the turns before it are copied into the item's
request as they are now (every field), shown to Claude in the prompt, and land unchanged before
the turns Claude writes (shared/conversations/continuation.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg

from services.api.generation import planning
from services.api.generation.prompts import DEFAULT_TEMPLATE, Ask, TemplateSource, build
from services.api.generation.schemas import JobOut, RegenerateIn
from services.api.generation.service import dispatch, insert_job, job_out
from services.api.templates import templating
from shared.conversations import continuation
from shared.db.pool import tenant_transaction
from shared.db.repositories import conversations as conversations_repo
from shared.db.repositories import generation as repo
from shared.db.repositories import templates as sources_repo
from shared.errors import NotFound, ValidationFailed
from shared.llm.pricing import estimate_tokens
from shared.models.conversation import Conversation, ParentType, Turn
from shared.models.generation import ItemRequest
from shared.queue import ArqRedis
from shared.settings import Settings

_TURN_EXTRAS = ("detected_emotion", "emotion_confidence", "emotion_intensity", "strategy", "tone")


@dataclass(frozen=True)
class ParameterField:
    """One parameter a regenerate may change, with the value the conversation was made with."""

    name: str
    value: str
    allowed: list[str] | None = None
    description: str | None = None


async def parameter_fields(
    conn: asyncpg.Connection, original: Conversation
) -> list[ParameterField]:
    """The template's variables (the values the conversation was made with, else their
    defaults), then any other stored parameter: what a regenerate form offers to change."""
    base = await _original_request(conn, original)
    stored = base.parameters if base is not None else original.parameters
    template = None
    if original.template_id is not None:
        template = await sources_repo.get(
            conn, "templates", owner_id=original.owner_id, id=original.template_id
        )
    specs = template.variables if template is not None else []
    fields = [
        ParameterField(
            spec.name,
            _text(stored.get(spec.name, spec.default)),
            spec.allowed_values,
            spec.description,
        )
        for spec in specs
    ]
    declared = {field.name for field in fields}
    fields += [
        ParameterField(name, _text(value))
        for name, value in stored.items()
        if name not in declared and isinstance(value, str | int | float)
    ]
    return fields


def changed_parameters(fields: list[ParameterField], submitted: dict[str, str]) -> dict[str, str]:
    """The submitted values that differ from what the conversation was made with (none: the
    original request is replayed as it was)."""
    current = {field.name: field.value for field in fields}
    return {name: value for name, value in submitted.items() if current.get(name) != value}


def _text(value: object) -> str:
    return "" if value is None else str(value)


async def regenerate(
    pool: asyncpg.Pool,
    queue: ArqRedis,
    settings: Settings,
    owner_id: UUID,
    conversation_id: UUID,
    body: RegenerateIn,
) -> JobOut:
    """A one-item job whose conversation replaces this one; 422 lists every problem."""
    async with tenant_transaction(pool, owner_id) as conn:
        original = await conversations_repo.get(conn, conversation_id)
        if original is None or original.owner_id != owner_id:
            raise NotFound("no such conversation")
        request = await _replacement(conn, owner_id, original, body, settings)
        source = {
            "kind": "regenerate", "conversation_id": str(conversation_id),
            "from_turn": body.from_turn, "instructions": body.instructions,
            "parameters": body.parameters,
        }  # fmt: skip
        config = {"source": source, "judge": settings.judge_after_generation}
        batch = await insert_job(conn, owner_id, [request], body, settings, config)
    await dispatch(queue, settings, batch.id, [0], now=1)
    created: JobOut = job_out(batch)
    return created


async def _replacement(
    conn: asyncpg.Connection,
    owner_id: UUID,
    original: Conversation,
    body: RegenerateIn,
    settings: Settings,
) -> ItemRequest:
    problems = _from_turn_problems(body, original)
    base = await _original_request(conn, original)
    if base is None or body.parameters:
        rebuilt, unresolved = await _rebuilt_request(conn, owner_id, original, settings, base, body)
        problems += [problem.detail("$.parameters") for problem in unresolved]
        base = rebuilt
    if problems:
        raise ValidationFailed(f"{len(problems)} problem(s) with the regenerate", details=problems)
    assert base is not None
    kept = await _kept_turns(conn, original, body.from_turn)
    revision = continuation.revision_prompt(kept, body.from_turn, body.instructions)
    changes: dict[str, Any] = {
        "parent_id": original.id, "parent_type": ParentType.CONVERSATION, "kept_turns": kept,
        "revision_prompt": revision,
        "estimated_input_tokens": base.estimated_input_tokens + estimate_tokens(revision),
    }  # fmt: skip
    if body.temperature is not None:
        changes["temperature"] = body.temperature
    if body.max_tokens is not None:
        changes["max_tokens"] = body.max_tokens
        changes["estimated_output_tokens"] = min(body.max_tokens, base.estimated_output_tokens)
    return base.model_copy(update=changes)


def _from_turn_problems(body: RegenerateIn, original: Conversation) -> list[dict[str, Any]]:
    if body.from_turn is None or body.from_turn <= original.turn_count:
        return []
    return [{
        "path": "$.from_turn", "type": "out_of_range",
        "message": f"must be at most {original.turn_count}: the conversation has "
        f"{original.turn_count} turns (a system turn counts as turn 1)",
    }]  # fmt: skip


async def _kept_turns(
    conn: asyncpg.Connection, original: Conversation, from_turn: int | None
) -> list[dict[str, Any]]:
    """The turns before `from_turn` as they are stored now, every field kept."""
    if from_turn is None or from_turn <= 1:
        return []
    turns = await conversations_repo.turns(conn, original.id)
    return [_kept(turn) for turn in turns if turn.turn_number < from_turn]


def _kept(turn: Turn) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": turn.role.value, "content": turn.content}
    entry |= {name: getattr(turn, name) for name in _TURN_EXTRAS if getattr(turn, name) is not None}
    if turn.metadata:
        entry["metadata"] = turn.metadata
    return entry


async def _original_request(conn: asyncpg.Connection, original: Conversation) -> ItemRequest | None:
    """The exact request that generated the conversation, when it came from a batch."""
    if original.generation_job_id is None or original.generation_item_index is None:
        return None
    item = await repo.get_item(conn, original.generation_job_id, original.generation_item_index)
    return item.request if item is not None else None


async def _rebuilt_request(
    conn: asyncpg.Connection, owner_id: UUID, original: Conversation, settings: Settings,
    base: ItemRequest | None, body: RegenerateIn,
) -> tuple[ItemRequest | None, list[templating.Problem]]:  # fmt: skip
    """A request rendered again from the conversation's template and sources, with the
    original's parameters and the body's merged over them."""
    template = scenario = edge = None
    if original.template_id is not None:
        template = await sources_repo.get(
            conn, "templates", owner_id=owner_id, id=original.template_id
        )
    if original.scenario_id is not None:
        scenario = await sources_repo.get(
            conn, "scenarios", owner_id=owner_id, id=original.scenario_id
        )
    if original.edge_case_id is not None:
        edge = await sources_repo.get(
            conn, "edge_cases", owner_id=owner_id, id=original.edge_case_id
        )
    stored = base.parameters if base is not None else original.parameters
    parameters: dict[str, object] = {
        k: v for k, v in stored.items() if isinstance(v, str | int | float)
    }
    parameters |= body.parameters or {}
    ask = Ask(
        tier=original.tier,
        source=TemplateSource.stored(template) if template else DEFAULT_TEMPLATE,
        scenario=scenario, edge_case=edge, persona=original.persona, emotion=original.emotion,
        topic=original.topic, parameters=parameters,
        temperature=base.temperature if base is not None else original.temperature,
        max_tokens=base.max_tokens if base is not None else original.max_tokens,
    )  # fmt: skip
    return build(ask, planning.defaults_from(settings))
