"""State of the fake Claude API: settings, the sliding window, the script and the records."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from typing import Any

from tests.fakes._anthropic_batches import BatchStore
from tests.fakes._anthropic_cache import PromptCache

DEFAULT_API_KEY = "sk-ant-fake-0000-test-key"
MAX_BODY_BYTES = 32 * 1024 * 1024
FAULT_KINDS = frozenset(
    {"ok", "500", "529", "429", "spend_limit_429", "credit_429", "timeout"}
    | {"truncated", "malformed", "max_tokens"}
)


@dataclass
class FakeConfig:
    """Runtime-tunable behaviour of the fake server."""

    api_key: str = DEFAULT_API_KEY
    rpm: int = 50
    window_seconds: float = 60.0
    latency: float = 0.0
    timeout_sleep: float = 120.0
    scripted_retry_after: int = 1
    fail_every_n: int = 0
    fail_every_kind: str = "500"
    input_tpm: int = 400_000
    output_tpm: int = 80_000
    max_body_bytes: int = MAX_BODY_BYTES
    seed: int = 0
    min_turns: int = 8
    max_turns: int = 10
    batch_delay: float = 0.0
    cache_min_tokens: int = -1  # -1: each model's documented minimum


@dataclass(frozen=True)
class ScriptStep:
    """One scripted response: a fault kind and an optional latency override."""

    kind: str
    latency: float | None = None


@dataclass
class RecordedRequest:
    """What the fake saw of one request and how it answered."""

    seq: int
    arrived_at: float
    headers: dict[str, str]
    body: Any = None
    outcome: str = "pending"
    status: int | None = None
    over_limit: bool = False

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


class FakeState:
    """Window, script and records shared by the handlers and the control surface."""

    def __init__(self, config: FakeConfig) -> None:
        self.initial = replace(config)
        self.lock = threading.Lock()
        self.closing = False
        self.cache = PromptCache()
        self.batch_store = BatchStore()
        self.reset()

    def reset(self) -> None:
        """Restore the start-up config and forget every request."""
        with self.lock:
            self.config = replace(self.initial)
            self.window: deque[float] = deque()
            self.tokens: deque[tuple[float, int, int]] = deque()
            self.script: deque[ScriptStep] = deque()
            self.records: list[RecordedRequest] = []
            self.over_limit_count = 0
            self.served = 0
            self.count_tokens_calls = 0
        self.cache.reset()
        self.batch_store.reset()

    def configure(self, changes: Mapping[str, Any]) -> None:
        """Apply setting changes; ``script`` replaces the scripted queue."""
        known = {f.name: type(getattr(self.config, f.name)) for f in fields(FakeConfig)}
        with self.lock:
            for key, value in changes.items():
                if key == "script":
                    self.script = deque(parse_steps(value))
                elif key == "batch_script":
                    self.batch_store.set_script(list(value))
                elif key not in known or not _type_ok(value, known[key]):
                    raise ValueError(f"bad setting: {key}")
                elif key == "fail_every_kind" and value not in FAULT_KINDS:
                    raise ValueError(f"unknown fault kind: {value}")
                else:
                    setattr(self.config, key, value)

    def open_record(self, headers: Mapping[str, str]) -> RecordedRequest:
        """Record an arriving request (its key headers dropped)."""
        kept = {k: v for k, v in headers.items() if k not in ("x-api-key", "authorization")}
        with self.lock:
            record = RecordedRequest(len(self.records) + 1, time.time(), kept)
            self.records.append(record)
        return record

    def admit(self) -> float | None:
        """Take a window slot; return None when admitted, else seconds until one frees."""
        now = time.monotonic()
        with self.lock:
            self._prune(now)
            if len(self.window) >= self.config.rpm:
                self.over_limit_count += 1
                return self.window[0] + self.config.window_seconds - now
            self.window.append(now)
            return None

    def next_step(self) -> ScriptStep:
        """Pop the next scripted step, or the every-Nth fault, or a normal answer."""
        with self.lock:
            self.served += 1
            if self.script:
                return self.script.popleft()
            n = self.config.fail_every_n
            if n > 0 and self.served % n == 0:
                return ScriptStep(self.config.fail_every_kind)
            return ScriptStep("ok")

    def add_tokens(self, input_tokens: int, output_tokens: int) -> None:
        """Count tokens in the window (reported in headers, not enforced)."""
        with self.lock:
            self.tokens.append((time.monotonic(), input_tokens, output_tokens))

    def rate_headers(self) -> dict[str, str]:
        """Build the ``anthropic-ratelimit-*`` headers for the current window."""
        now, wall = time.monotonic(), time.time()
        with self.lock:
            self._prune(now)
            cfg, window = self.config, self.config.window_seconds
            req_reset = self.window[0] + window if self.window else now
            tok_reset = self.tokens[0][0] + window if self.tokens else now
            used_in = sum(t[1] for t in self.tokens)
            used_out = sum(t[2] for t in self.tokens)
            rows = {
                "requests": (cfg.rpm, cfg.rpm - len(self.window), req_reset),
                "input-tokens": (cfg.input_tpm, cfg.input_tpm - used_in, tok_reset),
                "output-tokens": (cfg.output_tpm, cfg.output_tpm - used_out, tok_reset),
            }
        total = cfg.input_tpm + cfg.output_tpm
        rows["tokens"] = (total, total - used_in - used_out, tok_reset)
        headers: dict[str, str] = {}
        for name, (limit, remaining, reset) in rows.items():
            prefix = f"anthropic-ratelimit-{name}"
            headers[f"{prefix}-limit"] = str(limit)
            headers[f"{prefix}-remaining"] = str(max(0, remaining))
            headers[f"{prefix}-reset"] = rfc3339(wall + reset - now)
        return headers

    def _prune(self, now: float) -> None:
        edge = now - self.config.window_seconds
        while self.window and self.window[0] <= edge:
            self.window.popleft()
        while self.tokens and self.tokens[0][0] <= edge:
            self.tokens.popleft()


def _type_ok(value: object, expected: type) -> bool:
    if isinstance(value, bool):
        return expected is bool
    if expected is float:
        return isinstance(value, int | float)
    return isinstance(value, expected)


def parse_steps(value: Iterable[Any]) -> list[ScriptStep]:
    """Turn ``["529", {"kind": "ok", "latency": 0.5}]`` into script steps."""
    steps: list[ScriptStep] = []
    for item in value:
        step = item if isinstance(item, ScriptStep) else _step(item)
        if step.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind: {step.kind}")
        steps.append(step)
    return steps


def _step(item: Any) -> ScriptStep:
    if isinstance(item, str):
        return ScriptStep(item)
    if isinstance(item, dict) and isinstance(item.get("kind"), str):
        latency = item.get("latency")
        return ScriptStep(item["kind"], float(latency) if latency is not None else None)
    raise ValueError(f"bad script step: {item!r}")


def rfc3339(epoch: float) -> str:
    """Format an epoch time as RFC 3339 UTC with milliseconds, rounded up."""
    moment = datetime.fromtimestamp(math.ceil(epoch * 1000) / 1000, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
