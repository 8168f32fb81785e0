"""The CLI's API client: where the API is, the key, and errors as one readable line."""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

import httpx

from shared.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]
URL_ENV, KEY_ENV = "CONVOFORGE_API_URL", "CONVOFORGE_API_KEY"


class ApiError(Exception):
    """The API refused the request, or could not be reached; printed as `error: ...`."""


def common_options() -> argparse.ArgumentParser:
    """`--api-url`, `--api-key` and `--json`, shared by every HTTP command."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--api-url", help=f"the API (${URL_ENV}; default: the local API)")
    parent.add_argument("--api-key", help=f"an API key (${KEY_ENV})")
    parent.add_argument("--json", action="store_true", help="print JSON instead of tables")
    return parent


def api_url(settings: Settings, args: argparse.Namespace) -> str:
    """--api-url, else CONVOFORGE_API_URL, else this machine's API (API_HOST/API_PORT)."""
    url: str = args.api_url or os.environ.get(URL_ENV) or settings.public_base_url
    return url.rstrip("/")


def describe(response: httpx.Response) -> str:
    """One line from the API's error body (`{"error": {"code", "message", "details"}}`)."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return f"HTTP {response.status_code}: {response.text[:200]}"
    line = f"HTTP {response.status_code} {error.get('code')}: {error.get('message')}"
    details = error.get("details")
    if isinstance(details, list) and details:
        problems = "; ".join(f"{d.get('path')}: {d.get('message')}" for d in details[:5])
        line += f" ({problems})"
    return line


class Api:
    """A thin async client over /v1 that raises ApiError for anything but success."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        """Send; return the JSON body (None for 204)."""
        try:
            response = await self.client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(
                f"cannot reach the API at {self.client.base_url} ({exc}); start it "
                f"(`make run`) or pass --api-url / set {URL_ENV}"
            ) from exc
        if response.status_code >= 400:
            raise ApiError(describe(response))
        return None if response.status_code == 204 else response.json()

    async def get(self, path: str, **params: Any) -> Any:
        """GET with query parameters (None values left out)."""
        query = {name: value for name, value in params.items() if value is not None}
        return await self.request("GET", path, params=query)

    async def post(self, path: str, body: Any = None) -> Any:
        """POST a JSON body."""
        return await self.request("POST", path, json=body)


@asynccontextmanager
async def open_api(settings: Settings, args: argparse.Namespace) -> AsyncIterator[Api]:
    """An Api for the chosen URL and key; a missing key is an error before any request."""
    key = args.api_key or os.environ.get(KEY_ENV)
    if not key:
        raise ApiError(
            f"no API key: pass --api-key or set {KEY_ENV} (`convoforge create-api-key EMAIL`)"
        )
    headers = {"Authorization": f"Bearer {key}"}
    timeout = httpx.Timeout(30.0, connect=5.0)
    async with httpx.AsyncClient(
        base_url=api_url(settings, args), headers=headers, timeout=timeout
    ) as client:
        yield Api(client)
