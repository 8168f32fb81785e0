"""Message Batches in the fake Claude API: create, retrieve, results (JSONL), cancel.

A batch is ``in_progress`` for ``batch_delay`` seconds after its creation, then ends with one
result per request: ``succeeded`` unless the batch script (``batch_script``: outcome kinds taken in
request order across batches) says ``errored``, ``expired`` or ``canceled``. Cancelling before the
end makes it ``canceling``; it ends at the next look with every request ``canceled``.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tests.fakes._anthropic_content import error_body, validate_body

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_REQUESTS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024
BATCH_KINDS = frozenset({"succeeded", "errored", "expired", "canceled"})
Answer = Callable[[Mapping[str, Any], int], dict[str, Any]]


def _iso(epoch: float) -> str:
    """RFC 3339 with microseconds, as the API writes its timestamps."""
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


@dataclass
class FakeBatch:
    """One submitted batch."""

    id: str
    created_at: float
    ready_at: float
    requests: list[dict[str, Any]]
    cancel_at: float | None = None
    ended_at: float | None = None
    results: list[dict[str, Any]] = field(default_factory=list)

    def status(self) -> str:
        """in_progress, canceling or ended."""
        if self.ended_at is not None:
            return "ended"
        return "canceling" if self.cancel_at is not None else "in_progress"

    def to_json(self, base_url: str) -> dict[str, Any]:
        """The Message Batch object."""
        counts = dict.fromkeys(("succeeded", "errored", "canceled", "expired"), 0)
        for result in self.results:
            counts[result["result"]["type"]] += 1
        counts["processing"] = len(self.requests) - len(self.results)
        ended = _iso(self.ended_at) if self.ended_at is not None else None
        return {
            "id": self.id, "type": "message_batch", "processing_status": self.status(),
            "request_counts": counts, "created_at": _iso(self.created_at),
            "expires_at": _iso(self.created_at + 86_400),
            "ended_at": ended,
            "cancel_initiated_at": _iso(self.cancel_at) if self.cancel_at else None,
            "archived_at": None,
            "results_url": f"{base_url}/v1/messages/batches/{self.id}/results" if ended else None,
        }  # fmt: skip


class BatchStore:
    """Every batch the fake accepted, the outcome script, and what each create carried."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget every batch and the script."""
        with self.lock:
            self.batches: dict[str, FakeBatch] = {}
            self.script: deque[str] = deque()
            self.created: list[list[str]] = []
            self.seq = 0

    def set_script(self, kinds: list[Any]) -> None:
        """Outcomes for the next processed requests, in order."""
        bad = [k for k in kinds if k not in BATCH_KINDS]
        if bad:
            raise ValueError(f"unknown batch outcome: {bad[0]!r}")
        with self.lock:
            self.script = deque(kinds)

    def create(self, requests: list[dict[str, Any]], delay: float) -> FakeBatch:
        """Accept a validated batch."""
        now = time.time()
        batch = FakeBatch(f"msgbatch_fake_{uuid.uuid4().hex[:24]}", now, now + delay, requests)
        with self.lock:
            self.batches[batch.id] = batch
            self.created.append([r["custom_id"] for r in requests])
        return batch

    def look(self, batch_id: str, answer: Answer) -> FakeBatch | None:
        """The batch, ended first if its time has come (results built then, once)."""
        with self.lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.ended_at is not None:
                return batch
            now = time.time()
            if batch.cancel_at is None and now < batch.ready_at:
                return batch
            for request in batch.requests:
                kind = "canceled" if batch.cancel_at is not None else self._next_kind()
                self.seq += 1
                batch.results.append(_result(request, kind, answer, self.seq))
            batch.ended_at = now
            return batch

    def _next_kind(self) -> str:
        return self.script.popleft() if self.script else "succeeded"


def _result(request: dict[str, Any], kind: str, answer: Answer, seq: int) -> dict[str, Any]:
    custom_id = request["custom_id"]
    if kind == "succeeded":
        problem = validate_body(request["params"])
        if problem is not None:
            error = error_body("invalid_request_error", problem)
            return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
        message = answer(request["params"], 1_000_000 + seq)
        return {"custom_id": custom_id, "result": {"type": "succeeded", "message": message}}
    if kind == "errored":
        error = error_body("api_error", "Internal server error")
        return {"custom_id": custom_id, "result": {"type": "errored", "error": error}}
    return {"custom_id": custom_id, "result": {"type": kind}}


def validate_batch(body: Any) -> str | None:
    """The first problem with a create body, named like the real API."""
    if not isinstance(body, dict) or not isinstance(body.get("requests"), list):
        return "requests: Field required"
    requests = body["requests"]
    if not 1 <= len(requests) <= MAX_REQUESTS:
        return f"requests: a batch holds 1 to {MAX_REQUESTS} requests"
    seen: set[str] = set()
    for i, request in enumerate(requests):
        if not isinstance(request, dict) or not isinstance(request.get("params"), dict):
            return f"requests.{i}.params: Field required"
        custom_id = request.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            return f"requests.{i}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
        if custom_id in seen:
            return f"requests.{i}.custom_id: duplicate custom_id {custom_id!r}"
        seen.add(custom_id)
    return None


def _json(status: int, body: Mapping[str, Any]) -> Response:
    return Response(orjson.dumps(body), status, media_type="application/json")


def _not_found(batch_id: str) -> Response:
    return _json(404, error_body("not_found_error", f"batch {batch_id} not found"))


def base_url(request: Request) -> str:
    """The server's own address, for results_url."""
    return str(request.base_url).rstrip("/")


def created(batch: FakeBatch, request: Request) -> Response:
    """200 with the new batch."""
    return _json(200, batch.to_json(base_url(request)))


def retrieved(store: BatchStore, batch_id: str, request: Request, answer: Answer) -> Response:
    """200 with the batch, or 404."""
    batch = store.look(batch_id, answer)
    if batch is None:
        return _not_found(batch_id)
    return _json(200, batch.to_json(base_url(request)))


def results(store: BatchStore, batch_id: str, answer: Answer) -> Response:
    """The results file as JSONL, once the batch has ended."""
    batch = store.look(batch_id, answer)
    if batch is None:
        return _not_found(batch_id)
    if batch.ended_at is None:
        return _json(400, error_body("invalid_request_error", "batch is still in progress"))

    def lines() -> Iterator[bytes]:
        for result in batch.results:
            yield orjson.dumps(result) + b"\n"

    return StreamingResponse(lines(), media_type="application/binary")


def listed(store: BatchStore, request: Request, answer: Answer) -> Response:
    """The workspace's batches, newest first, paged by `limit` and `after_id` like the API."""
    try:
        limit = int(request.query_params.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 1000:
        return _json(400, error_body("invalid_request_error", "limit: must be 1 to 1000"))
    with store.lock:
        newest_first = sorted(store.batches.values(), key=lambda b: b.created_at, reverse=True)
    after = request.query_params.get("after_id")
    if after is not None:
        ids = [batch.id for batch in newest_first]
        if after not in ids:
            return _not_found(after)
        newest_first = newest_first[ids.index(after) + 1 :]
    page = [store.look(batch.id, answer) or batch for batch in newest_first[:limit]]
    data = [batch.to_json(base_url(request)) for batch in page]
    return _json(200, {
        "data": data, "has_more": len(newest_first) > limit,
        "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None,
    })  # fmt: skip


def cancel(store: BatchStore, batch_id: str, request: Request, answer: Answer) -> Response:
    """Start cancelling an in-progress batch (an ended one is returned unchanged)."""
    batch = store.look(batch_id, answer)
    if batch is None:
        return _not_found(batch_id)
    with store.lock:
        if batch.ended_at is None and batch.cancel_at is None:
            batch.cancel_at = time.time()
    return _json(200, batch.to_json(base_url(request)))
