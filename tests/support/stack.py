"""A live stack for tests that talk HTTP: the API and workers as real processes."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.support.servers import WorkerProcess, free_port, wait_http

WORKERS = ("generator", "exporter", "janitor")


@dataclass(frozen=True)
class LiveStack:
    """Where the running stack answers, and the environment its processes read."""

    base_url: str
    env: dict[str, str]
    processes: dict[str, WorkerProcess]


def stack_env(base: Mapping[str, str], services: Sequence[str]) -> dict[str, str]:
    """`base` plus a free API port and free worker metrics ports on loopback."""
    env = dict(base)
    env.pop("PUBLIC_BASE_URL", None)  # derived from API_PORT, as on a fresh machine
    env |= {"API_PORT": str(free_port()), "API_HOST": "127.0.0.1", "METRICS_HOST": "127.0.0.1"}
    for service in services:
        if service in WORKERS:
            env[f"{service.upper()}_METRICS_PORT"] = str(free_port())
    return env


@contextmanager
def live_stack(base: Mapping[str, str], logs: Path, services: Sequence[str]) -> Iterator[LiveStack]:
    """Start `services` (any of api, generator, exporter, janitor); stop them afterwards."""
    env = stack_env(base, services)
    processes = {name: WorkerProcess(name, env, logs / f"{name}.log") for name in services}
    try:
        for name in services:
            if name == "api":
                wait_http(f"http://127.0.0.1:{env['API_PORT']}/healthz", timeout=90)
            else:
                wait_http(
                    f"http://127.0.0.1:{env[f'{name.upper()}_METRICS_PORT']}/metrics", timeout=90
                )
        yield LiveStack(f"http://127.0.0.1:{env['API_PORT']}", env, processes)
    finally:
        for process in processes.values():
            process.stop()
