"""The fake Claude API behaves like the real one where our client depends on it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.fakes._anthropic_content import (
    AUTH_ERROR,
    OVERLOADED_ERROR,
    RATE_LIMIT_ERROR,
    conversation_text,
)
from tests.fakes.anthropic import FakeAnthropic, FakeAnthropicProcess, FakeConfig

REPO = Path(__file__).resolve().parents[2]
FIXTURE_DIRS = (REPO / "tests/fixtures/anthropic", REPO.parent / "shared/fixtures/anthropic")
BODY: dict[str, Any] = {
    "model": "claude-test",
    "max_tokens": 4096,
    "messages": [{"role": "user", "content": "Write a conversation about budgeting."}],
}


def load_fixture(name: str) -> dict[str, Any]:
    """Load a sample Anthropic body from the first fixture directory that has it."""
    for directory in FIXTURE_DIRS:
        if (directory / name).exists():
            loaded: dict[str, Any] = orjson.loads((directory / name).read_bytes())
            return loaded
    pytest.skip(f"fixture {name} not found in {FIXTURE_DIRS}")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(FakeConfig(rpm=1000, window_seconds=1.0, timeout_sleep=5.0)) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeAnthropic) -> FakeAnthropic:
    server.reset()
    return server


@pytest.fixture
async def http(server: FakeAnthropic) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        yield client


def headers(fake: FakeAnthropic, **extra: str) -> dict[str, str]:
    return {"x-api-key": fake.api_key, "anthropic-version": "2023-06-01", **extra}


async def post(http: httpx.AsyncClient, fake: FakeAnthropic, body: Any = None) -> httpx.Response:
    return await http.post(
        "/v1/messages", json=BODY if body is None else body, headers=headers(fake)
    )


def conversation(response: httpx.Response) -> dict[str, Any]:
    text = response.json()["content"][0]["text"]
    inner = text.split("```json\n", 1)[1].rsplit("\n```", 1)[0]
    parsed: dict[str, Any] = orjson.loads(inner)
    return parsed


async def test_ok_answer_has_fenced_conversation_usage_and_headers(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    response = await post(http, fake)

    assert response.status_code == 200
    body = response.json()
    assert set(body) >= set(load_fixture("messages-response-ok.json"))
    assert body["stop_reason"] == "end_turn"
    assert body["usage"]["input_tokens"] == -(-len(BODY["messages"][0]["content"]) // 4)
    assert body["usage"]["output_tokens"] > 100
    turns = conversation(response)["turns"]
    assert 8 <= len(turns) <= 10
    assert [t["role"] for t in turns] == ["user", "assistant"] * (len(turns) // 2) + (
        ["user"] if len(turns) % 2 else []
    )
    assert all(100 <= len(t["content"]) <= 400 for t in turns)
    assert response.headers["anthropic-ratelimit-requests-limit"] == "1000"
    assert response.headers["anthropic-ratelimit-requests-remaining"] == "999"
    for name in ("requests", "tokens", "input-tokens", "output-tokens"):
        reset = response.headers[f"anthropic-ratelimit-{name}-reset"]
        assert reset.endswith("Z")
        assert datetime.fromisoformat(reset).tzinfo is not None
    assert response.headers["request-id"].startswith("req_")


def test_conversations_are_deterministic_per_seed_and_counter() -> None:
    assert conversation_text(1, 5, 8, 10) == conversation_text(1, 5, 8, 10)
    assert conversation_text(1, 5, 8, 10) != conversation_text(1, 6, 8, 10)


@pytest.mark.parametrize("key", [None, "sk-ant-wrong"])
async def test_bad_or_missing_key_is_401(
    fake: FakeAnthropic, http: httpx.AsyncClient, key: str | None
) -> None:
    sent = {"anthropic-version": "2023-06-01"} | ({"x-api-key": key} if key else {})

    response = await http.post("/v1/messages", json=BODY, headers=sent)

    assert response.status_code == 401
    assert response.json() == AUTH_ERROR == load_fixture("error-401-authentication.json")


async def test_missing_version_header_is_400(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    response = await http.post("/v1/messages", json=BODY, headers={"x-api-key": fake.api_key})

    assert response.status_code == 400
    assert "anthropic-version" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"model": None}, "model"),
        ({"max_tokens": None}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"messages": None}, "messages"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages.0.role"),
        ({"temperature": 3}, "temperature"),
    ],
)
async def test_invalid_body_is_400_naming_the_field(
    fake: FakeAnthropic, http: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    body = {k: v for k, v in (BODY | change).items() if v is not None}

    response = await post(http, fake, body)

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith(f"{field}:")


async def test_body_over_the_size_limit_is_413(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.configure(max_body_bytes=2048)
    body = BODY | {"messages": [{"role": "user", "content": "x" * 4096}]}

    response = await post(http, fake, body)

    assert response.status_code == 413
    assert response.json()["error"]["type"] == "request_too_large"


async def test_requests_per_minute_window_is_enforced(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.configure(rpm=3, window_seconds=0.5)

    statuses = [(await post(http, fake)).status_code for _ in range(3)]
    limited = await post(http, fake)
    await asyncio.sleep(0.55)
    after = await post(http, fake)

    assert statuses == [200, 200, 200]
    assert limited.status_code == 429
    assert limited.json() == RATE_LIMIT_ERROR == load_fixture("error-429-rate-limit.json")
    assert limited.headers["retry-after"] == "1"
    assert limited.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert after.status_code == 200
    assert fake.over_limit_count == 1
    assert [r.over_limit for r in fake.requests] == [False, False, False, True, False]


async def test_scripted_faults_are_served_in_order_then_normal(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.script("529", "500", "429", "spend_limit_429", "truncated", "malformed", "max_tokens")

    responses = [await post(http, fake) for _ in range(8)]

    assert [r.status_code for r in responses] == [529, 500, 429, 429, 200, 200, 200, 200]
    assert responses[0].json() == OVERLOADED_ERROR == load_fixture("error-529-overloaded.json")
    assert responses[2].headers["retry-after"] == "1"
    assert "usage limits" in responses[3].json()["error"]["message"]
    truncated, malformed, cut = (r.json() for r in responses[4:7])
    assert truncated["stop_reason"] == "end_turn"
    assert "```json" in truncated["content"][0]["text"]
    assert "\n```" not in truncated["content"][0]["text"].split("```json", 1)[1]
    assert "{" not in malformed["content"][0]["text"]
    assert cut["stop_reason"] == "max_tokens"
    assert cut["usage"]["output_tokens"] == BODY["max_tokens"]
    assert len(conversation(responses[7])["turns"]) >= 8
    assert fake.over_limit_count == 0


async def test_small_max_tokens_cuts_the_answer(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    response = await post(http, fake, BODY | {"max_tokens": 50})

    assert response.json()["stop_reason"] == "max_tokens"
    assert response.json()["usage"]["output_tokens"] == 50


async def test_fail_every_nth_request(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    fake.configure(fail_every_n=2, fail_every_kind="529")

    statuses = [(await post(http, fake)).status_code for _ in range(4)]

    assert statuses == [200, 529, 200, 529]


async def test_latency_global_and_per_step(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    fake.configure(latency=0.2)
    fake.state.configure({"script": [{"kind": "ok", "latency": 0.4}]})

    started = time.monotonic()
    await post(http, fake)
    first = time.monotonic() - started
    await post(http, fake)
    second = time.monotonic() - started - first

    assert first >= 0.4
    assert 0.2 <= second < 0.4


async def test_timeout_fault_outlasts_the_client(
    fake: FakeAnthropic, http: httpx.AsyncClient
) -> None:
    fake.script("timeout")

    with pytest.raises(httpx.ReadTimeout):
        await http.post("/v1/messages", json=BODY, headers=headers(fake), timeout=0.2)

    for _ in range(40):
        if fake.requests[0].outcome == "disconnected":
            break
        await asyncio.sleep(0.025)
    assert fake.requests[0].outcome == "disconnected"
    assert fake.requests[0].status is None


async def test_control_endpoints_over_http(fake: FakeAnthropic, http: httpx.AsyncClient) -> None:
    configured = await http.post("/_fake/config", json={"script": ["529"], "latency": 0})
    answered = await post(http, fake)
    seen = (await http.get("/_fake/requests")).json()
    rejected = await http.post("/_fake/config", json={"no_such_setting": 1})
    await http.post("/_fake/reset")
    after_reset = (await http.get("/_fake/requests")).json()

    assert configured.json()["script_remaining"] == 1
    assert answered.status_code == 529
    assert seen["total"] == 1
    assert seen["over_limit_count"] == 0
    record = seen["requests"][0]
    assert record["status"] == 529
    assert record["body"] == BODY
    assert "x-api-key" not in record["headers"]
    assert record["headers"]["anthropic-version"] == "2023-06-01"
    assert rejected.status_code == 400
    assert after_reset["total"] == 0


def test_subprocess_mode_starts_answers_and_limits() -> None:
    process = FakeAnthropicProcess("--latency", "0", "--rpm", "2", "--api-key", "sk-ant-sub")
    base_url = process.start()
    try:
        sent = {"x-api-key": "sk-ant-sub", "anthropic-version": "2023-06-01"}
        with httpx.Client(base_url=base_url, timeout=10) as client:
            statuses = [client.post("/v1/messages", json=BODY, headers=sent).status_code]
            statuses += [client.post("/v1/messages", json=BODY, headers=sent).status_code]
            statuses += [client.post("/v1/messages", json=BODY, headers=sent).status_code]
            seen = client.get("/_fake/requests").json()
    finally:
        process.stop()

    assert statuses == [200, 200, 429]
    assert seen["over_limit_count"] == 1
