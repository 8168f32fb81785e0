"""An unexpected exception is a 500 JSON error with the request id, on a connection kept open."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request

from services.api.app import create_app
from shared.settings import Settings
from tests.support.live import serve_in_process


def _app_with_a_bug(settings: Settings) -> FastAPI:
    """The real app plus two routes: one that fails, one that says which connection it is on."""
    app = create_app(settings)

    @app.get("/test/bug")
    async def bug(request: Request) -> None:
        raise RuntimeError(f"secret detail from {request.client}")

    @app.get("/test/peer")
    async def peer(request: Request) -> dict[str, int]:
        assert request.client is not None
        return {"port": request.client.port}

    return app


@pytest.fixture
async def live(settings: Settings) -> AsyncIterator[str]:
    """The app on a real socket."""
    async with serve_in_process(_app_with_a_bug(settings)) as url:
        yield url


async def test_unexpected_error_is_json_500_with_request_id(live: str) -> None:
    async with httpx.AsyncClient(base_url=live) as client:
        response = await client.get("/test/bug", headers={"x-request-id": "req-123"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "error": {
            "code": "internal_error",
            "message": "internal server error",
            "details": {"request_id": "req-123"},
        }
    }
    assert "secret" not in response.text


async def test_keep_alive_connection_survives_a_500(live: str) -> None:
    async with httpx.AsyncClient(base_url=live) as client:
        before = (await client.get("/test/peer")).json()["port"]
        assert (await client.get("/test/bug")).status_code == 500
        after = (await client.get("/test/peer")).json()["port"]
    assert after == before, "the server closed the connection after the 500"
