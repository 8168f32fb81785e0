"""Routes of /v1/templates, /v1/scenarios and /v1/edge-cases: CRUD, lists, resolution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.api.deps import PrincipalDep, TenantConnDep
from services.api.pagination import CursorQuery, LimitQuery
from services.api.templates import service
from services.api.templates.schemas import (
    EdgeCaseIn,
    EdgeCasePage,
    EdgeCasePatch,
    ResolveIn,
    ResolveOut,
    ScenarioIn,
    ScenarioPage,
    ScenarioPatch,
    TemplateIn,
    TemplateOut,
    TemplatePage,
    TemplatePatch,
    patch_values,
)
from shared.models.conversation import Tier
from shared.models.template import EdgeCase, RiskLevel, Scenario, SourceStatus
from shared.models.text import Text

router = APIRouter()
NameQuery = Annotated[Text | None, Query(min_length=1, max_length=200, description="in name")]


@router.post("/v1/templates", status_code=201, response_model=TemplateOut, tags=["templates"])
async def create_template(body: TemplateIn, me: PrincipalDep, conn: TenantConnDep) -> TemplateOut:
    """Create a template; 409 when the name is taken."""
    row = await service.create(conn, "templates", me.user_id, body.model_dump())
    return (await service.with_stats(conn, me.user_id, [row]))[0]


@router.get("/v1/templates", response_model=TemplatePage, tags=["templates"])
async def list_templates(
    me: PrincipalDep,
    conn: TenantConnDep,
    is_active: bool | None = None,
    tier: Tier | None = None,
    category: Text | None = None,
    q: NameQuery = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> TemplatePage:
    """The caller's templates, newest first, with usage and quality stats."""
    filters = {"is_active": is_active, "tier": tier, "category": category}
    rows, next_cursor, total = await service.page(
        conn, "templates", me.user_id, filters=filters, cursor=cursor, limit=limit, name_query=q
    )
    items = await service.with_stats(conn, me.user_id, rows)
    return TemplatePage(items=items, next_cursor=next_cursor, total=total)


@router.get("/v1/templates/{template_id}", response_model=TemplateOut, tags=["templates"])
async def get_template(template_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> TemplateOut:
    """One template with its stats."""
    row = await service.get(conn, "templates", me.user_id, template_id)
    return (await service.with_stats(conn, me.user_id, [row]))[0]


@router.patch("/v1/templates/{template_id}", response_model=TemplateOut, tags=["templates"])
async def patch_template(
    template_id: UUID, body: TemplatePatch, me: PrincipalDep, conn: TenantConnDep
) -> TemplateOut:
    """Change fields; a prompt or variable change bumps `version`."""
    row = await service.update(conn, "templates", me.user_id, template_id, patch_values(body))
    return (await service.with_stats(conn, me.user_id, [row]))[0]


@router.delete("/v1/templates/{template_id}", status_code=204, tags=["templates"])
async def delete_template(template_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> Response:
    """Delete a template (conversations made from it keep existing)."""
    await service.delete(conn, "templates", me.user_id, template_id)
    return Response(status_code=204)


@router.post(
    "/v1/templates/{template_id}/resolve",
    response_model=ResolveOut,
    tags=["templates"],
    responses={422: {"description": "details name every missing or invalid variable"}},
)
async def resolve_template(
    template_id: UUID, body: ResolveIn, me: PrincipalDep, conn: TenantConnDep
) -> ResolveOut:
    """The template's prompts with `parameters` substituted."""
    template = await service.get(conn, "templates", me.user_id, template_id)
    return service.resolve(template, body)


@router.post("/v1/scenarios", status_code=201, response_model=Scenario, tags=["templates"])
async def create_scenario(body: ScenarioIn, me: PrincipalDep, conn: TenantConnDep) -> Scenario:
    """Create a scenario; 409 when the name is taken."""
    row: Scenario = await service.create(conn, "scenarios", me.user_id, body.model_dump())
    return row


@router.get("/v1/scenarios", response_model=ScenarioPage, tags=["templates"])
async def list_scenarios(
    me: PrincipalDep,
    conn: TenantConnDep,
    status: SourceStatus | None = None,
    parent_template_id: UUID | None = None,
    q: NameQuery = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> ScenarioPage:
    """The caller's scenarios, newest first."""
    filters = {"status": status, "parent_template_id": parent_template_id}
    rows, next_cursor, total = await service.page(
        conn, "scenarios", me.user_id, filters=filters, cursor=cursor, limit=limit, name_query=q
    )
    return ScenarioPage(items=rows, next_cursor=next_cursor, total=total)


@router.get("/v1/scenarios/{scenario_id}", response_model=Scenario, tags=["templates"])
async def get_scenario(scenario_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> Scenario:
    """One scenario."""
    row: Scenario = await service.get(conn, "scenarios", me.user_id, scenario_id)
    return row


@router.patch("/v1/scenarios/{scenario_id}", response_model=Scenario, tags=["templates"])
async def patch_scenario(
    scenario_id: UUID, body: ScenarioPatch, me: PrincipalDep, conn: TenantConnDep
) -> Scenario:
    """Change fields of a scenario."""
    values = patch_values(body)
    row: Scenario = await service.update(conn, "scenarios", me.user_id, scenario_id, values)
    return row


@router.delete("/v1/scenarios/{scenario_id}", status_code=204, tags=["templates"])
async def delete_scenario(scenario_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> Response:
    """Delete a scenario."""
    await service.delete(conn, "scenarios", me.user_id, scenario_id)
    return Response(status_code=204)


@router.post("/v1/edge-cases", status_code=201, response_model=EdgeCase, tags=["templates"])
async def create_edge_case(body: EdgeCaseIn, me: PrincipalDep, conn: TenantConnDep) -> EdgeCase:
    """Create an edge case; 409 when the name is taken."""
    row: EdgeCase = await service.create(conn, "edge_cases", me.user_id, body.model_dump())
    return row


@router.get("/v1/edge-cases", response_model=EdgeCasePage, tags=["templates"])
async def list_edge_cases(
    me: PrincipalDep,
    conn: TenantConnDep,
    status: SourceStatus | None = None,
    parent_template_id: UUID | None = None,
    category: Text | None = None,
    risk_level: RiskLevel | None = None,
    q: NameQuery = None,
    limit: LimitQuery = 25,
    cursor: CursorQuery = None,
) -> EdgeCasePage:
    """The caller's edge cases, newest first."""
    filters = {
        "status": status,
        "parent_template_id": parent_template_id,
        "category": category,
        "risk_level": risk_level,
    }
    rows, next_cursor, total = await service.page(
        conn, "edge_cases", me.user_id, filters=filters, cursor=cursor, limit=limit, name_query=q
    )
    return EdgeCasePage(items=rows, next_cursor=next_cursor, total=total)


@router.get("/v1/edge-cases/{edge_case_id}", response_model=EdgeCase, tags=["templates"])
async def get_edge_case(edge_case_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> EdgeCase:
    """One edge case."""
    row: EdgeCase = await service.get(conn, "edge_cases", me.user_id, edge_case_id)
    return row


@router.patch("/v1/edge-cases/{edge_case_id}", response_model=EdgeCase, tags=["templates"])
async def patch_edge_case(
    edge_case_id: UUID, body: EdgeCasePatch, me: PrincipalDep, conn: TenantConnDep
) -> EdgeCase:
    """Change fields of an edge case (`tested: true` also stamps last_tested_at)."""
    values = patch_values(body)
    if values.get("tested"):
        values["last_tested_at"] = datetime.now(UTC)
    row: EdgeCase = await service.update(conn, "edge_cases", me.user_id, edge_case_id, values)
    return row


@router.delete("/v1/edge-cases/{edge_case_id}", status_code=204, tags=["templates"])
async def delete_edge_case(edge_case_id: UUID, me: PrincipalDep, conn: TenantConnDep) -> Response:
    """Delete an edge case."""
    await service.delete(conn, "edge_cases", me.user_id, edge_case_id)
    return Response(status_code=204)
