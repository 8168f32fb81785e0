"""The web console: server-rendered pages over the same services as /v1 (see docs/console.md)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.api.console import (
    conversations,
    dashboard,
    edits,
    exports,
    generate,
    login,
    patterns,
    review,
    sources,
)
from services.api.console.render import STATIC

PAGES = (login, dashboard, conversations, review, edits, sources, generate, exports, patterns)


def install_console(app: FastAPI) -> None:
    """Mount the console's pages and static files on the API app."""
    for module in PAGES:
        app.include_router(module.router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    app.include_router(patterns.fallback)
