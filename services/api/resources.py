"""What the API's lifespan builds once and every request borrows."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import httpx

from shared.queue import ArqRedis
from shared.settings import Settings
from shared.storage import ObjectStore


@dataclass
class ApiResources:
    """Pool, Redis, storage and the outbound HTTP client."""

    settings: Settings
    pool: asyncpg.Pool
    redis: ArqRedis
    storage: ObjectStore
    http: httpx.AsyncClient
