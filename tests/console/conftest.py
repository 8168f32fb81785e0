"""Real processes for the console's browser and SSE tests: API replica(s), workers, Chromium."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize, async_playwright

from shared.settings import Settings
from tests.support.servers import ROOT, WorkerProcess, free_port, wait_http
from tests.support.settings import settings_env

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = ROOT / "docs" / "console"
VIEWPORT: ViewportSize = {"width": 1366, "height": 768}


@dataclass
class Stack:
    """Running API replicas and workers, all on the session's database and Redis."""

    urls: list[str]
    processes: list[WorkerProcess] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The first API replica."""
        return self.urls[0]

    def stop(self) -> None:
        """Stop every process."""
        for process in self.processes:
            process.stop()


def start_stack(
    settings: Settings, logs: Path, *, apis: int, workers: tuple[str, ...], env: dict[str, str]
) -> Stack:
    """`python -m services.api` ×apis and each worker, as real child processes."""
    ports = [free_port() for _ in range(apis)]
    base = {**settings_env(settings), "PUBLIC_BASE_URL": f"http://127.0.0.1:{ports[0]}", **env}
    stack = Stack([f"http://127.0.0.1:{port}" for port in ports])
    try:
        for index, port in enumerate(ports):
            api_env = {**base, "API_PORT": str(port), "API_HOST": "127.0.0.1"}
            stack.processes.append(WorkerProcess("api", api_env, logs / f"api-{index}.log"))
        for name in workers:
            worker_env = {
                **base,
                f"{name.upper()}_METRICS_PORT": str(free_port()),
                "METRICS_HOST": "127.0.0.1",
            }
            stack.processes.append(WorkerProcess(name, worker_env, logs / f"{name}.log"))
        for url in stack.urls:
            wait_http(url + "/healthz", timeout=120)  # a busy 2-core machine starts slowly
    except BaseException:
        stack.stop()
        raise
    return stack


@pytest.fixture(scope="module")
def web(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One API and the generator and exporter workers (offline Claude provider)."""
    logs = tmp_path_factory.mktemp("console-stack")
    env = {"EXPORT_HEARTBEAT_SECONDS": "0.5", "GENERATOR_HEARTBEAT_SECONDS": "1"}
    stack = start_stack(settings, logs, apis=1, workers=("generator", "exporter"), env=env)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    """Debian's Chromium through Playwright (never a downloaded browser)."""
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        await chromium.close()


@pytest.fixture
async def page(browser: Browser, web: Stack) -> AsyncIterator[Page]:
    """A fresh browser context (no cookies) at 1366×768 on the API's origin."""
    context: BrowserContext = await browser.new_context(
        viewport=VIEWPORT, base_url=web.url, accept_downloads=True
    )
    context.set_default_timeout(15_000)
    tab = await context.new_page()
    yield tab
    await context.close()


async def screenshot(page: Page, name: str, *, full_page: bool = False) -> None:
    """Save the page into docs/console/ (the README links these)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)
