"""A live API process on real PostgreSQL and Redis, one account and a few rows of each kind."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest

from shared.db.pool import acquire
from shared.settings import Settings
from tests.support.factories import Account, create_account
from tests.support.live import api_process
from tests.support.seed_files import seed_file
from tests.support.settings import settings_env


@dataclass(frozen=True)
class LiveApi:
    """The running API, its OpenAPI document, a key and the ids of rows it owns."""

    url: str
    headers: dict[str, str]
    document: dict[str, Any]
    ids: dict[str, str]  # by the path parameter's name


@pytest.fixture(scope="module")
async def contract_account(pool: asyncpg.Pool) -> Account:
    """An account of its own (the module never empties the tables)."""
    async with acquire(pool) as conn:
        return await create_account(conn)


@pytest.fixture(scope="module")
def live_api(
    settings: Settings, contract_account: Account, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveApi]:
    """`python -m services.api` with the session's settings, rate limits off."""
    env = settings_env(settings)
    env.update(API_RATE_LIMIT_PER_MINUTE="0", API_AUTH_FAILURE_LIMIT="0", LOG_LEVEL="ERROR")
    log = tmp_path_factory.mktemp("contract") / "api.log"
    with api_process(env, log) as url, httpx.Client(base_url=url, timeout=30) as client:
        headers = contract_account.headers
        document = client.get("/openapi.json").raise_for_status().json()
        yield LiveApi(url, headers, document, _seed_rows(client, headers))


def _seed_rows(client: httpx.Client, headers: dict[str, str]) -> dict[str, str]:
    """One conversation, template, scenario, edge case, generation job and export."""

    def post(path: str, body: dict[str, Any]) -> str:
        response = client.post(path, json=body, headers=headers)
        assert response.status_code in (200, 201, 202), response.text
        return str(response.json()["id"])

    conversation = post("/v1/conversations", seed_file("contract_seed"))
    template = post("/v1/templates", {"name": "contract", "user_prompt_template": "Hi {{x}}"})
    scenario = post("/v1/scenarios", {"name": "contract", "parent_template_id": template})
    edge_case = post("/v1/edge-cases", {"name": "contract", "parent_template_id": template})
    job = post(
        "/v1/generation-jobs", {"items": [{"template_id": template, "parameters": {"x": 1}}]}
    )
    export = post("/v1/exports", {"config": {"scope": "all"}})
    return {
        "id": conversation, "conversation_id": conversation, "template_id": template,
        "scenario_id": scenario, "edge_case_id": edge_case, "job_id": job, "export_id": export,
        "turn_number": "2",
    }  # fmt: skip
