"""Worker probes on the metrics port (/healthz, /readyz, /metrics) and the Redis backoff."""

from __future__ import annotations

import httpx

from shared.metrics import serve_metrics
from shared.resilience import Backoff, Readiness


def test_readyz_names_what_is_down_and_recovers() -> None:
    readiness = Readiness()
    port = serve_metrics("127.0.0.1", 0, readiness.problems)
    base = f"http://127.0.0.1:{port}"

    assert httpx.get(f"{base}/readyz").json() == {"status": "ok", "down": {}}
    reason = "ConnectionError: Error 111 connecting to 127.0.0.1:6390"
    readiness.down("redis", reason)
    down = httpx.get(f"{base}/readyz")
    assert down.status_code == 503
    assert down.json()["down"] == {"redis": reason}
    assert httpx.get(f"{base}/healthz").status_code == 200  # alive, only not ready
    assert "python_info" in httpx.get(f"{base}/metrics").text
    readiness.up("redis")
    assert httpx.get(f"{base}/readyz").status_code == 200


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff(cap=3.0)

    delays = [backoff.next() for _ in range(5)]
    backoff.reset()

    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert backoff.next() == 0.5
