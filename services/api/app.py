"""The FastAPI application: create_app() and the lifespan that owns every resource."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import Depends, FastAPI

from services.api.console import install_console
from services.api.conversations.router import router as conversations_router
from services.api.docs_pages import install_docs
from services.api.edits.router import router as edits_router
from services.api.errors import install_error_handlers
from services.api.events.router import router as events_router
from services.api.export_presets.router import router as export_presets_router
from services.api.exports.router import router as exports_router
from services.api.failsafe import UnhandledErrorMiddleware
from services.api.generation.router import router as generation_router
from services.api.middleware import BodyLimitMiddleware, MetricsMiddleware, RequestIdMiddleware
from services.api.openapi import install_openapi, operation_id
from services.api.ops.router import router as ops_router
from services.api.quality.calibration_router import router as calibration_router
from services.api.quality.router import router as quality_router
from services.api.resources import ApiResources
from services.api.strict_query import reject_unknown_query
from services.api.templates.router import router as templates_router
from shared.db.pool import create_pool
from shared.logging import configure_logging, get_logger
from shared.queue import create_redis
from shared.settings import Settings, get_settings
from shared.storage import open_storage

log = get_logger(__name__)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    pool = await create_pool(settings, min_size=0)
    redis = create_redis(settings)
    storage = await open_storage(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(30.0))
    app.state.resources = ApiResources(
        settings=settings, pool=pool, redis=redis, storage=storage, http=http
    )
    log.info(
        "api.started",
        storage=storage.name,
        llm_provider=settings.llm_provider,
        public_base_url=settings.public_base_url,
    )
    try:
        yield
    finally:
        await http.aclose()
        await storage.close()
        await redis.aclose()
        await pool.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API; settings default to the environment's."""
    settings = settings or get_settings()
    configure_logging(settings)
    app = FastAPI(
        title="Convoforge API",
        version="0.1.0",
        description="Generate, review and export multi-turn fine-tuning conversations.",
        lifespan=_lifespan,
        docs_url=None,
        redoc_url=None,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(reject_unknown_query)],
    )
    app.state.settings = settings
    install_error_handlers(app)
    install_docs(app)
    install_openapi(app)
    app.include_router(ops_router)
    app.include_router(quality_router)
    app.include_router(conversations_router)
    app.include_router(edits_router)
    app.include_router(templates_router)
    app.include_router(generation_router)
    app.include_router(exports_router)
    app.include_router(export_presets_router)
    app.include_router(events_router)
    app.include_router(calibration_router)
    install_console(app)
    # Outermost last: request ids wrap everything, then metrics, the failsafe 500, the body limit.
    app.add_middleware(BodyLimitMiddleware, limit=settings.api_body_limit_bytes)
    app.add_middleware(UnhandledErrorMiddleware)
    app.add_middleware(MetricsMiddleware)
    app.add_middleware(RequestIdMiddleware)
    return app
