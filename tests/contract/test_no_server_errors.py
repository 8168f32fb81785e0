"""Every operation in /openapi.json, sent NUL, nulls, extreme numbers and overlong text: no 5xx.

Two passes per operation: a sweep that corrupts each field of a valid request (path, query and
body) with each hostile value in turn, so every field is reached with an otherwise valid
request; then hypothesis-generated requests from the schema (seeded, bounded examples).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.api.app import create_app
from shared.settings import Settings
from tests.contract.cases import QUERY_SWEEP, body_corruptions, examples, unique
from tests.contract.conftest import LiveApi
from tests.contract.strategies import SchemaStrategies, as_query
from tests.support.seed_files import seed_file

EXAMPLES_PER_OPERATION = 10
PATH_SWEEP = ["not-a-uuid", "\x00", "\ud800", "x" * 8000, "-1"]
# Deletes last, so the rows the other operations use are still there for them.
OPERATIONS = sorted(
    ((method, path) for path, ops in create_app(Settings()).openapi()["paths"].items()
     for method in ops),
    key=lambda op: (op[0] == "delete", op[1], op[0]),
)  # fmt: skip
IDS = [f"{method.upper()} {path}" for method, path in OPERATIONS]


def _encode(value: Any) -> str:
    """Percent-encode, lone surrogates included (as the invalid UTF-8 a client could send)."""
    # 8,000 bytes: overlong for every field, and inside what clients and proxies send in a URL.
    return quote(as_query(value).encode("utf-8", "surrogatepass")[:8000], safe="")


def _url(live: LiveApi, path: str, values: dict[str, Any], query: dict[str, Any]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", _encode(value))
    pairs = "&".join(f"{quote(name)}={_encode(value)}" for name, value in query.items())
    return live.url + path + (f"?{pairs}" if pairs else "")


def _send(client: httpx.Client, live: LiveApi, method: str, url: str, body: Any) -> httpx.Response:
    content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
    headers = {**live.headers, "content-type": "application/json"}
    return client.request(method.upper(), url, content=content, headers=headers)


def _sweep(live: LiveApi, method: str, path: str) -> Iterator[tuple[str, str, Any]]:
    """(what was corrupted, url, body) for the valid request and each one-field corruption."""
    op = live.document["paths"][path][method]
    params = op.get("parameters", [])
    ids = {p["name"]: live.ids.get(p["name"], str(uuid4())) for p in params if p["in"] == "path"}
    example = examples(live.ids).get((method, path)) if "requestBody" in op else None
    yield "valid", _url(live, path, ids, {}), unique(example)
    for name in ids:
        for bad in PATH_SWEEP:
            yield f"path {name}={bad!r:.40}", _url(live, path, {**ids, name: bad}, {}), None
    for param in (p for p in params if p["in"] == "query"):
        for bad in QUERY_SWEEP:
            url = _url(live, path, ids, {param["name"]: bad})
            yield f"query {param['name']}={bad!r:.40}", url, unique(example)
    if example is not None:
        yield "truncated body", _url(live, path, ids, {}), json.dumps(example).encode()[:40]
        for where, body in body_corruptions(example):
            yield f"body {where}", _url(live, path, ids, {}), unique(body)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_every_field_corrupted_in_turn(live_api: LiveApi, method: str, path: str) -> None:
    failures = []
    with httpx.Client(timeout=30) as client:
        for what, url, body in _sweep(live_api, method, path):
            response = _send(client, live_api, method, url, body)
            if response.status_code >= 500:
                failures.append(f"{what}: {response.status_code} {response.text[:300]}")
    assert not failures, "\n".join(failures)


@pytest.mark.timeout(120)
@pytest.mark.parametrize(("method", "path"), OPERATIONS, ids=IDS)
def test_generated_requests(live_api: LiveApi, method: str, path: str) -> None:
    op = live_api.document["paths"][path][method]
    schemas = SchemaStrategies(live_api.document, list(live_api.ids.values()), seed_file("fuzz"))
    body_schema = op.get("requestBody", {}).get("content", {}).get("application/json")

    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(data=st.data())
    def check(client: httpx.Client, data: st.DataObject) -> None:
        values: dict[str, Any] = {}
        query: dict[str, Any] = {}
        for param in op.get("parameters", []):
            value = data.draw(schemas.value(param.get("schema", {})), label=param["name"])
            if param["in"] == "path":
                values[param["name"]] = value
            elif param["in"] == "query" and data.draw(st.booleans()):
                query[param["name"]] = value
        body = (
            data.draw(schemas.value(body_schema["schema"]), label="body") if body_schema else None
        )
        response = _send(client, live_api, method, _url(live_api, path, values, query), body)
        assert response.status_code < 500, f"{response.status_code} {response.text[:300]}"

    with httpx.Client(timeout=30) as client:
        check(client)
