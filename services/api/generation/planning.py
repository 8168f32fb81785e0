"""Expand a job body (a list of requests or a tier plan) into resolved ItemRequests; estimate."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from itertools import cycle
from typing import Any
from uuid import UUID

import asyncpg

from services.api.generation import economy
from services.api.generation.prompts import DEFAULT_TEMPLATE, Ask, Defaults, TemplateSource, build
from services.api.generation.schemas import (
    EstimateOut,
    GenerationRequestIn,
    JobIn,
    TierEstimate,
)
from shared.db.repositories import templates as sources_repo
from shared.errors import ValidationFailed
from shared.llm.pricing import CacheTtl, ModelPrice, Usage, cost_usd, table_for
from shared.models.conversation import Tier
from shared.models.generation import ItemRequest, JobMode
from shared.models.template import EdgeCase, Scenario, Template
from shared.settings import Settings


def defaults_from(settings: Settings) -> Defaults:
    """Request defaults from the settings."""
    return Defaults(
        quality_threshold=settings.generation_quality_threshold,
        max_tokens=settings.llm_default_max_tokens,
        expected_output_tokens=settings.llm_expected_output_tokens,
    )


async def expand(
    conn: asyncpg.Connection, owner_id: UUID, body: JobIn, settings: Settings
) -> list[ItemRequest]:
    """Every planned conversation, resolved; 422 listing every problem found."""
    if body.items is not None:
        asks = await _asks_for_items(conn, owner_id, body.items)
    else:
        asks = await _asks_for_plan(conn, owner_id, body)
    if len(asks) > settings.generation_max_items:
        raise ValidationFailed(
            f"a batch may have at most {settings.generation_max_items} items, this one has "
            f"{len(asks)}",
            details=[{"path": "$", "message": "too many items", "type": "too_many"}],
        )
    return _resolve(asks, defaults_from(settings))


def _resolve(asks: Sequence[tuple[str, Ask]], defaults: Defaults) -> list[ItemRequest]:
    requests: list[ItemRequest] = []
    details: dict[tuple[str, str], dict[str, Any]] = {}
    for path, ask in asks:
        request, problems = build(ask, defaults)
        for problem in problems:
            details.setdefault((path, problem.name), problem.detail(path))
        if request is not None:
            requests.append(request)
    if details:
        names = sorted({name for _, name in details})
        raise ValidationFailed(
            f"{len(details)} variable problem(s): {', '.join(names)}",
            details=list(details.values()),
            code="unresolved_variables",
        )
    return requests


async def _asks_for_items(
    conn: asyncpg.Connection, owner_id: UUID, items: Sequence[GenerationRequestIn]
) -> list[tuple[str, Ask]]:
    templates = await _load(conn, "templates", owner_id, [i.template_id for i in items])
    scenarios = await _load(conn, "scenarios", owner_id, [i.scenario_id for i in items])
    edges = await _load(conn, "edge_cases", owner_id, [i.edge_case_id for i in items])
    parents = [
        source.parent_template_id
        for source in [*scenarios.values(), *edges.values()]
        if source.parent_template_id is not None
    ]
    templates |= await _load(conn, "templates", owner_id, parents)
    missing = _missing_refs(items, templates, scenarios, edges)
    if missing:
        raise ValidationFailed(
            f"{len(missing)} reference(s) do not name anything of yours", details=missing
        )
    return [
        (f"$.items[{index}].parameters", _item_ask(item, templates, scenarios, edges))
        for index, item in enumerate(items)
    ]


async def _load(
    conn: asyncpg.Connection, kind: sources_repo.Kind, owner_id: UUID, ids: list[UUID | None]
) -> dict[UUID, Any]:
    wanted = sorted({i for i in ids if i is not None})
    if not wanted:
        return {}
    return await sources_repo.get_many(conn, kind, owner_id=owner_id, ids=wanted)


def _missing_refs(
    items: Sequence[GenerationRequestIn],
    templates: dict[UUID, Template],
    scenarios: dict[UUID, Scenario],
    edges: dict[UUID, EdgeCase],
) -> list[dict[str, Any]]:
    missing = []
    for index, item in enumerate(items):
        for name, value, known in (
            ("template_id", item.template_id, templates),
            ("scenario_id", item.scenario_id, scenarios),
            ("edge_case_id", item.edge_case_id, edges),
        ):
            if value is not None and value not in known:
                path = f"$.items[{index}].{name}"
                missing.append({"path": path, "message": "no such id", "type": "not_found"})
    return missing


def _item_ask(
    item: GenerationRequestIn,
    templates: dict[UUID, Template],
    scenarios: dict[UUID, Scenario],
    edges: dict[UUID, EdgeCase],
) -> Ask:
    scenario = scenarios.get(item.scenario_id) if item.scenario_id else None
    edge = edges.get(item.edge_case_id) if item.edge_case_id else None
    template_id = item.template_id or _parent(scenario) or _parent(edge)
    source = DEFAULT_TEMPLATE
    if item.template is not None:
        source = TemplateSource.inline(item.template)
    elif template_id is not None and template_id in templates:
        source = TemplateSource.stored(templates[template_id])
    tier = item.tier or (Tier.EDGE_CASE if edge else Tier.SCENARIO if scenario else Tier.TEMPLATE)
    return Ask(
        tier=tier, source=source, scenario=scenario, edge_case=edge, persona=item.persona,
        emotion=item.emotion, topic=item.topic, parameters=item.parameters,
        temperature=item.temperature, max_tokens=item.max_tokens,
    )  # fmt: skip


def _parent(source: Scenario | EdgeCase | None) -> UUID | None:
    return source.parent_template_id if source is not None else None


async def _asks_for_plan(
    conn: asyncpg.Connection, owner_id: UUID, body: JobIn
) -> list[tuple[str, Ask]]:
    assert body.plan is not None
    templates: list[Template] = await sources_repo.active(conn, "templates", owner_id=owner_id)
    scenarios: list[Scenario] = await sources_repo.active(conn, "scenarios", owner_id=owner_id)
    edges: list[EdgeCase] = await sources_repo.active(conn, "edge_cases", owner_id=owner_id)
    by_id: dict[UUID, Template] = {t.id: t for t in templates}
    parents: list[UUID | None] = [s.parent_template_id for s in scenarios]
    parents += [e.parent_template_id for e in edges]
    by_id |= await _load(conn, "templates", owner_id, parents)
    counts = body.plan.counts()
    pools: dict[Tier, Sequence[Any]] = {
        Tier.TEMPLATE: [t for t in templates if t.tier == Tier.TEMPLATE] or templates,
        Tier.SCENARIO: scenarios,
        Tier.EDGE_CASE: edges,
    }
    empty = [tier for tier, n in counts.items() if n and not pools[tier]]
    if empty:
        raise ValidationFailed(
            "the plan asks for tiers you have nothing active for",
            details=[
                {"path": f"$.plan.{tier.value}", "message": f"no active {_plural(tier)}",
                 "type": "no_sources"}
                for tier in empty
            ],
        )  # fmt: skip
    defaults = body.defaults or GenerationRequestIn()
    asks: list[tuple[str, Ask]] = []
    for tier, count in counts.items():
        asks += _tier_asks(tier, count, pools[tier], by_id, templates, defaults)
    return asks


def _plural(tier: Tier) -> str:
    return {Tier.TEMPLATE: "templates", Tier.SCENARIO: "scenarios",
            Tier.EDGE_CASE: "edge cases"}[tier]  # fmt: skip


def _tier_asks(
    tier: Tier,
    count: int,
    pool: Sequence[Any],
    by_id: dict[UUID, Template],
    templates: Sequence[Template],
    defaults: GenerationRequestIn,
) -> list[tuple[str, Ask]]:
    """`count` asks cycling over `pool`, varying persona/emotion/topic across rounds."""
    tier_templates = [t for t in templates if t.tier == tier]
    asks = []
    sources = cycle(pool)
    for ordinal in range(count):
        item = next(sources)
        round_ = ordinal // len(pool)
        if tier == Tier.TEMPLATE:
            template: Template | None = item
            scenario, edge = None, None
        else:
            scenario = item if tier == Tier.SCENARIO else None
            edge = item if tier == Tier.EDGE_CASE else None
            template = by_id.get(item.parent_template_id) if item.parent_template_id else None
            template = template or (tier_templates[0] if tier_templates else None)
        source = TemplateSource.stored(template) if template else DEFAULT_TEMPLATE
        path = f"$.plan.{tier.value}[{_name(item)}]"
        asks.append((path, Ask(
            tier=tier, source=source, scenario=scenario, edge_case=edge,
            persona=defaults.persona or (scenario and scenario.persona)
            or _pick(source.personas, round_),
            emotion=defaults.emotion or _pick(source.emotions, round_),
            topic=defaults.topic or (scenario and scenario.topic) or _pick(source.topics, round_),
            parameters=defaults.parameters, temperature=defaults.temperature,
            max_tokens=defaults.max_tokens,
        )))  # fmt: skip
    return asks


def _name(source: Template | Scenario | EdgeCase) -> str:
    return source.name


def _pick(values: Sequence[str], round_: int) -> str | None:
    return values[round_ % len(values)] if values else None


def estimate(
    requests: Sequence[ItemRequest],
    settings: Settings,
    *,
    mode: JobMode = JobMode.LIVE,
    deadline: datetime | None = None,
    scale: economy.TokenScale | None = None,
) -> EstimateOut:
    """Expected requests, tokens and cost per tier and per mode (and the worst case)."""
    offline = settings.offline_llm
    scale = scale or economy.TokenScale()
    entry, price = table_for(settings).price_for(settings.llm_model)
    planned = economy.plan(requests, scale)
    modes = economy.by_mode(planned, price, settings)
    chosen = economy.choose_mode(mode, len(requests), deadline, settings)
    return EstimateOut(
        requests=len(requests),
        input_tokens=sum(p.input_tokens for p in planned),
        output_tokens=sum(p.output_tokens for p in planned),
        cost_usd=0.0 if offline else modes[chosen.value].cost_usd,
        max_cost_usd=0.0 if offline else float(_worst(requests, planned, price, chosen)),
        model="offline-sample" if offline else settings.llm_model,
        provider=settings.llm_provider or "offline",
        price_entry=entry,
        input_price_per_1k=float(price.input / 1000),
        output_price_per_1k=float(price.output / 1000),
        requests_per_minute=settings.llm_requests_per_minute,
        estimated_duration_seconds=modes[chosen.value].estimated_duration_seconds,
        by_tier=_by_tier(requests, planned, price, offline),
        mode=mode,
        chosen_mode=chosen,
        by_mode=modes,
        token_count_method=scale.method,
        prefix_tokens=max((p.prefix_tokens for p in planned), default=0),
        min_cacheable_tokens=price.min_cacheable_tokens,
        cache_warning=economy.cache_warning(planned, price, settings),
    )


def _by_tier(
    requests: Sequence[ItemRequest],
    planned: Sequence[economy.Planned],
    price: ModelPrice,
    offline: bool,
) -> dict[str, TierEstimate]:
    """Per tier at list price (no cache, no discount): the by_mode figures carry the savings."""
    totals: dict[str, list[Any]] = {}
    for request, item in zip(requests, planned, strict=True):
        row = totals.setdefault(request.tier.value, [0, 0, 0, Decimal(0)])
        row[0] += 1
        row[1] += item.input_tokens
        row[2] += item.output_tokens
        if not offline:
            row[3] += cost_usd(price, Usage(item.input_tokens, item.output_tokens))
    return {
        tier: TierEstimate(requests=n, input_tokens=i, output_tokens=o, cost_usd=float(c))
        for tier, (n, i, o, c) in totals.items()
    }


def _worst(
    requests: Sequence[ItemRequest],
    planned: Sequence[economy.Planned],
    price: ModelPrice,
    mode: JobMode,
) -> Decimal:
    """Every call at max_tokens, every prompt token written to the cache (the dearest input)."""
    return sum(
        (
            cost_usd(
                price,
                Usage(cache_write_tokens=item.input_tokens, output_tokens=request.max_tokens),
                batch=mode == JobMode.BATCH,
                cache_ttl=CacheTtl.ONE_HOUR if mode == JobMode.BATCH else CacheTtl.FIVE_MINUTES,
            )
            for request, item in zip(requests, planned, strict=True)
        ),
        Decimal(0),
    )
