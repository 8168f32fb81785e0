"""Health, readiness, metrics, error shape, body limit, request ids and the OpenAPI document."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from shared.settings import Settings
from tests.support.api import api_client
from tests.support.factories import Account
from tests.support.servers import free_port


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


async def test_readyz_all_up(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"postgres": "ok", "redis": "ok", "storage": "ok"},
    }


@pytest.fixture
async def no_redis_client(settings: Settings, db: object) -> AsyncIterator[httpx.AsyncClient]:
    """The API pointed at a port where no Redis listens."""
    dead = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with api_client(dead) as api:
        yield api


async def test_readyz_names_redis_when_it_is_down(no_redis_client: httpx.AsyncClient) -> None:
    response = await no_redis_client.get("/readyz")
    assert response.status_code == 503
    error = response.json()["error"]
    assert error["code"] == "not_ready"
    assert "redis" in error["message"]
    checks = error["details"]["checks"]
    assert checks["postgres"] == "ok"
    assert checks["redis"].startswith("down")


async def test_request_needing_redis_is_503_not_500(
    no_redis_client: httpx.AsyncClient, account: Account
) -> None:
    response = await no_redis_client.post(
        "/v1/ops/ping", json={"service": "generator"}, headers=account.headers
    )
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "unavailable"
    details = response.json()["error"]["details"]
    assert details == {"unavailable": ["redis"], "request_id": response.headers["x-request-id"]}


async def test_readyz_names_postgres_when_it_is_down(settings: Settings) -> None:
    dead = settings.model_copy(
        update={"database_url": f"postgresql://x:y@127.0.0.1:{free_port()}/none"}
    )
    async with api_client(dead) as api:
        response = await api.get("/readyz")
        me = await api.get("/v1/me", headers={"Authorization": "Bearer cf_12345678_" + "a" * 43})
    assert response.status_code == 503
    assert response.json()["error"]["details"]["checks"]["postgres"].startswith("down")
    assert me.status_code == 503
    assert me.json()["error"]["details"]["unavailable"] == ["postgres"]
    assert me.json()["error"]["details"]["request_id"] == me.headers["x-request-id"]


async def test_unknown_route_uses_error_shape(client: httpx.AsyncClient) -> None:
    response = await client.get("/v1/does-not-exist")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_validation_lists_every_problem(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post("/v1/ops/ping", json={"service": "nope"}, headers=account.headers)
    assert response.status_code == 422
    details = response.json()["error"]["details"]
    assert [d["path"] for d in details] == ["$.service"]


async def test_broken_json_is_422_not_500(client: httpx.AsyncClient, account: Account) -> None:
    response = await client.post(
        "/v1/ops/ping",
        content=b'{"service": "gen',
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_failed"


async def test_declared_body_over_limit_is_413(settings: Settings, db: object) -> None:
    small = settings.model_copy(update={"api_body_limit_bytes": 1024})
    async with api_client(small) as api:
        response = await api.post("/v1/ops/ping", content=b"x" * 2048)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


async def test_streamed_body_over_limit_is_413(settings: Settings, db: object) -> None:
    small = settings.model_copy(update={"api_body_limit_bytes": 1024})

    async def body() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"y" * 512

    async with api_client(small) as api:
        response = await api.post("/v1/ops/ping", content=body())
    assert response.status_code == 413


async def test_default_limit_is_ten_mib(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/ops/ping", content=b"z" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413


async def test_request_id_is_echoed_or_minted(client: httpx.AsyncClient) -> None:
    echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123"})
    minted = await client.get("/healthz")
    assert echoed.headers["x-request-id"] == "abc-123"
    assert len(minted.headers["x-request-id"]) == 32


async def test_metrics_by_route_template(client: httpx.AsyncClient, account: Account) -> None:
    await client.get("/v1/me", headers=account.headers)
    await client.get("/v1/ops/jobs/generator/ping:abc", headers=account.headers)
    text = (await client.get("/metrics")).text
    assert 'convoforge_api_requests_total{method="GET",route="/v1/me",status="200"}' in text
    assert 'route="/v1/ops/jobs/{service_name}/{job_id}",status="404"' in text
    assert "convoforge_api_request_duration_seconds_bucket" in text


async def test_openapi_is_served(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    assert "/v1/me" in schema["paths"]
    assert (await client.get("/docs")).status_code == 200


async def test_per_key_rate_limit(settings: Settings, account: Account) -> None:
    limited = settings.model_copy(update={"api_rate_limit_per_minute": 3})
    async with api_client(limited) as api:
        answers = [await api.get("/v1/me", headers=account.headers) for _ in range(4)]
    assert [r.status_code for r in answers] == [200, 200, 200, 429]
    assert answers[0].headers["ratelimit-limit"] == "3"
    assert answers[2].headers["ratelimit-remaining"] == "0"
    assert int(answers[3].headers["retry-after"]) > 0
    assert answers[3].json()["error"]["code"] == "rate_limited"
