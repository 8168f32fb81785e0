"""Economy routes of the fake Claude API: count_tokens, Message Batches, prompt-cache usage."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tests.fakes import _anthropic_batches as batches
from tests.fakes._anthropic_content import (
    AUTH_ERROR,
    RATE_LIMIT_ERROR,
    TOO_LARGE_ERROR,
    build_message,
    error_body,
    prompt_tokens,
    validate_body,
)
from tests.fakes._anthropic_state import FakeState

PARSE_ERROR = error_body("invalid_request_error", "There was an error parsing the body")


def json_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    return Response(orjson.dumps(body), status, dict(headers or {}), "application/json")


async def read_body(request: Request, limit: int) -> bytes | None:
    """Drain the body; return it, or None when it exceeds ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
    return b"".join(chunks) if size <= limit else None


def cached_message(
    state: FakeState, kind: str, body: Mapping[str, Any], seq: int
) -> dict[str, Any]:
    """A Messages body whose usage splits the prompt into fresh, cache-written and cache-read."""
    cfg = state.config
    message = build_message(kind, body, seq, seed=cfg.seed, turns=(cfg.min_turns, cfg.max_turns))
    state.cache.min_tokens_override = None if cfg.cache_min_tokens < 0 else cfg.cache_min_tokens
    usage = state.cache.account(body, message["usage"]["input_tokens"])
    message["usage"] |= asdict(usage)
    return message


def _checked(request: Request, state: FakeState) -> Response | None:
    """401/400 for a missing key or version, as on every route of the real API."""
    if request.headers.get("x-api-key") != state.config.api_key:
        return json_response(401, AUTH_ERROR)
    if not request.headers.get("anthropic-version"):
        return json_response(
            400, error_body("invalid_request_error", "anthropic-version: header is required")
        )
    return None


async def count_tokens(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    refused = _checked(request, state)
    if refused is not None:
        return refused
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return json_response(
            400, error_body("invalid_request_error", "There was an error parsing the body")
        )
    problem = validate_body({"max_tokens": 1, **body}) if isinstance(body, dict) else "body"
    if problem is not None:
        return json_response(400, error_body("invalid_request_error", problem))
    with state.lock:
        state.count_tokens_calls += 1
    return json_response(200, {"input_tokens": prompt_tokens(body)})


def _batch_answer(state: FakeState) -> Callable[[Mapping[str, Any], int], dict[str, Any]]:
    return lambda params, seq: cached_message(state, "ok", params, seq)


async def batches_root(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    refused = _checked(request, state)
    if refused is not None:
        return refused
    if request.method == "GET":
        return batches.listed(state.batch_store, request, _batch_answer(state))
    raw = await read_body(request, batches.MAX_BATCH_BYTES)
    if raw is None:
        return json_response(413, TOO_LARGE_ERROR)
    wait = state.admit()
    if wait is not None:
        headers = {**state.rate_headers(), "retry-after": str(max(1, math.ceil(wait)))}
        return json_response(429, RATE_LIMIT_ERROR, headers)
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json_response(
            400, error_body("invalid_request_error", "There was an error parsing the body")
        )
    problem = batches.validate_batch(body)
    if problem is not None:
        return json_response(400, error_body("invalid_request_error", problem))
    batch = state.batch_store.create(body["requests"], state.config.batch_delay)
    return batches.created(batch, request)


async def batch(request: Request) -> Response:
    state: FakeState = request.app.state.fake
    refused = _checked(request, state)
    if refused is not None:
        return refused
    batch_id, action = request.path_params["batch_id"], request.path_params.get("action")
    answer = _batch_answer(state)
    if action == "results":
        return batches.results(state.batch_store, batch_id, answer)
    if action == "cancel" and request.method == "POST":
        return batches.cancel(state.batch_store, batch_id, request, answer)
    if action is None and request.method == "GET":
        return batches.retrieved(state.batch_store, batch_id, request, answer)
    return json_response(404, error_body("not_found_error", "no such route"))
