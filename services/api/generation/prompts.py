"""Build the resolved prompt of one planned conversation (an ItemRequest) from its sources."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

from services.api.generation.schemas import InlineTemplate
from services.api.templates import templating
from shared.llm.pricing import estimate_tokens
from shared.models.conversation import ParentType, Tier
from shared.models.generation import ItemRequest
from shared.models.template import EdgeCase, Scenario, Template, VariableSpec

DEFAULT_SYSTEM: Final = (
    "You write realistic, emotionally intelligent multi-turn conversations between a user and a "
    "helpful assistant. They are used to fine-tune assistants, so the assistant's turns must be "
    "exemplary: empathetic, clear, specific and honest. Never mention that the conversation is "
    "synthetic."
)
DEFAULT_USER: Final = "Write a conversation with {{persona}} who feels {{emotion}} about {{topic}}."
DEFAULT_VARIABLES: Final = (
    VariableSpec(name="persona", default="a customer"),
    VariableSpec(name="emotion", default="uncertain"),
    VariableSpec(name="topic", default="a question they need help with"),
)
FORMAT_INSTRUCTIONS: Final = (
    "Write 8 to 16 turns, starting with the user and alternating user and assistant. Keep each "
    "turn between 100 and 400 characters.\n"
    "Reply with only this JSON object and no other text:\n"
    '{"title": "<short title>", "turns": [{"role": "user", "content": "..."}, '
    '{"role": "assistant", "content": "..."}]}'
)


@dataclass(frozen=True)
class TemplateSource:
    """What prompt building needs of a stored, inline or the built-in default template."""

    id: UUID | None
    name: str | None
    system_prompt: str
    user_prompt_template: str
    variables: tuple[VariableSpec, ...]
    quality_threshold: float | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    category: str | None = None
    personas: tuple[str, ...] = ()
    emotions: tuple[str, ...] = ()
    topics: tuple[str, ...] = ()

    @classmethod
    def stored(cls, template: Template) -> TemplateSource:
        """A template row."""
        return cls(
            id=template.id, name=template.name, system_prompt=template.system_prompt,
            user_prompt_template=template.user_prompt_template,
            variables=tuple(template.variables), quality_threshold=template.quality_threshold,
            temperature=template.default_temperature, max_tokens=template.default_max_tokens,
            category=template.category, personas=tuple(template.applicable_personas),
            emotions=tuple(template.applicable_emotions),
            topics=tuple(template.applicable_topics),
        )  # fmt: skip

    @classmethod
    def inline(cls, template: InlineTemplate) -> TemplateSource:
        """A template given in the request."""
        return cls(
            id=None, name=None, system_prompt=template.system_prompt,
            user_prompt_template=template.user_prompt_template,
            variables=tuple(template.variables), quality_threshold=template.quality_threshold,
        )  # fmt: skip


DEFAULT_TEMPLATE: Final = TemplateSource(
    id=None, name=None, system_prompt=DEFAULT_SYSTEM, user_prompt_template=DEFAULT_USER,
    variables=DEFAULT_VARIABLES,
)  # fmt: skip


@dataclass(frozen=True)
class Defaults:
    """Settings-derived defaults for what a request and its template leave open."""

    quality_threshold: float
    max_tokens: int
    expected_output_tokens: int


@dataclass(frozen=True)
class Ask:
    """One planned conversation before resolution."""

    tier: Tier
    source: TemplateSource
    scenario: Scenario | None = None
    edge_case: EdgeCase | None = None
    persona: str | None = None
    emotion: str | None = None
    topic: str | None = None
    parameters: Mapping[str, object] = field(default_factory=dict)
    temperature: float | None = None
    max_tokens: int | None = None
    parent_id: UUID | None = None
    parent_type: ParentType | None = None


def build(ask: Ask, defaults: Defaults) -> tuple[ItemRequest | None, list[templating.Problem]]:
    """The resolved request, or the variables that could not be resolved."""
    source, scenario = ask.source, ask.scenario
    persona = ask.persona or (scenario.persona if scenario else None)
    topic = ask.topic or (scenario.topic if scenario else None)
    supplied: dict[str, object] = dict(scenario.parameter_values) if scenario else {}
    builtins = {"persona": persona, "emotion": ask.emotion, "topic": topic,
                "emotional_arc": scenario.emotional_arc if scenario else None,
                "context": scenario.context if scenario else None}  # fmt: skip
    supplied |= {name: value for name, value in builtins.items() if value}
    supplied |= dict(ask.parameters)
    texts = (source.system_prompt, source.user_prompt_template)
    values, problems = templating.resolve_values(source.variables, texts, supplied)
    if problems:
        return None, problems
    system = templating.render(source.system_prompt, values) or DEFAULT_SYSTEM
    user = "\n\n".join(
        part
        for part in (templating.render(source.user_prompt_template, values), _context(ask, values))
        if part
    )
    max_tokens = ask.max_tokens or source.max_tokens or defaults.max_tokens
    request = ItemRequest(
        tier=ask.tier, template_id=source.id, template_name=source.name,
        scenario_id=scenario.id if scenario else None,
        edge_case_id=ask.edge_case.id if ask.edge_case else None,
        persona=values.get("persona") or persona, emotion=values.get("emotion") or ask.emotion,
        topic=values.get("topic") or topic,
        emotional_arc=scenario.emotional_arc if scenario else None,
        category=[source.category] if source.category else [],
        parameters=values, system_prompt=system, user_prompt=user,
        instructions=FORMAT_INSTRUCTIONS,
        temperature=ask.temperature if ask.temperature is not None else source.temperature,
        max_tokens=max_tokens,
        quality_threshold=(
            source.quality_threshold
            if source.quality_threshold is not None
            else defaults.quality_threshold
        ),
        parent_id=ask.parent_id, parent_type=ask.parent_type,
        estimated_input_tokens=estimate_tokens(f"{system}\n\n{FORMAT_INSTRUCTIONS}")
        + estimate_tokens(user),
        estimated_output_tokens=min(max_tokens, defaults.expected_output_tokens),
    )  # fmt: skip
    return request, []


def _context(ask: Ask, values: Mapping[str, str]) -> str:
    """Facts from the scenario / edge case the prompt should honour, one per line."""
    lines: list[tuple[str, str]] = []
    scenario, edge = ask.scenario, ask.edge_case
    if scenario is not None:
        lines += _facts(
            ("Scenario", scenario.name), ("Situation", scenario.context),
            ("Emotional arc", scenario.emotional_arc),
            ("Objectives", "; ".join(scenario.objectives)),
            ("Constraints", "; ".join(scenario.constraints)),
            ("Length", f"about {scenario.estimated_turns} turns" if scenario.estimated_turns
             else None),
        )  # fmt: skip
    if edge is not None:
        lines += _facts(
            ("Edge case", edge.name), ("Description", edge.description),
            ("Trigger", edge.trigger_condition), ("The assistant must", edge.expected_behavior),
            ("Example user input", edge.test_input), ("Risk", edge.risk_level.value),
        )  # fmt: skip
    used = set(values)
    extra = [f"- {label}: {value}" for label, value in _facts(
        ("Persona", ask.persona if "persona" not in used else None),
        ("Emotion", ask.emotion if "emotion" not in used else None),
        ("Topic", ask.topic if "topic" not in used else None),
    )]  # fmt: skip
    body = [f"- {label}: {value}" for label, value in lines] + extra
    return "Context:\n" + "\n".join(body) if body else ""


def _facts(*pairs: tuple[str, str | None]) -> list[tuple[str, str]]:
    return [(label, value) for label, value in pairs if value]
