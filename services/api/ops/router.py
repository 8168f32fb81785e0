"""Health, readiness, metrics, the caller, ping jobs and signed local-file downloads."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from fastapi.responses import FileResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from services.api.deps import PrincipalDep, ResourcesDep
from services.api.ops import service
from services.api.ops.schemas import Health, JobStatusOut, Me, PingRequest, Readiness
from services.api.responses import JSONBytes
from shared.errors import NotFound, error_body
from shared.exports import content_types
from shared.metrics import registry_for_scrape
from shared.models.text import Text
from shared.queue import SERVICES, Service, job_state
from shared.storage import LocalObjectStore, StorageError
from shared.storage.signing import verify

router = APIRouter()


@router.get("/healthz", response_model=Health, tags=["ops"])
async def healthz() -> Health:
    """Liveness: the process answers."""
    return Health()


@router.get(
    "/readyz",
    response_model=Readiness,
    tags=["ops"],
    responses={503: {"description": "a dependency is down; details name it"}},
)
async def readyz(resources: ResourcesDep) -> Any:
    """Readiness of PostgreSQL, Redis and storage; 503 naming what is down."""
    checks = await service.readiness(resources)
    down = sorted(name for name, state in checks.items() if state != "ok")
    if down:
        body = error_body("not_ready", f"unavailable: {', '.join(down)}", {"checks": checks})
        return JSONBytes(body, status_code=503)
    return Readiness(status="ready", checks=checks)


@router.get("/metrics", tags=["ops"], include_in_schema=False)
async def metrics() -> Response:
    """Prometheus exposition (summed over processes in multiprocess mode)."""
    registry = registry_for_scrape()
    data = generate_latest(registry) if registry is not None else generate_latest()
    return Response(data, media_type=CONTENT_TYPE_LATEST)


@router.get("/v1/me", response_model=Me, tags=["ops"])
async def me(principal: PrincipalDep) -> Me:
    """The caller: user id, email, role and key prefix."""
    return Me(
        user_id=principal.user_id,
        email=principal.email,
        role=principal.role,
        key_prefix=principal.key_prefix,
    )


@router.post("/v1/ops/ping", response_model=JobStatusOut, status_code=202, tags=["ops"])
async def ping(body: PingRequest, _: PrincipalDep, resources: ResourcesDep) -> JobStatusOut:
    """Enqueue a ping job on a worker service; poll its status with the returned id."""
    jid = await service.enqueue_ping(resources, body.service)
    return JobStatusOut(job_id=jid, service=body.service, status="queued")


@router.get("/v1/ops/jobs/{service_name}/{job_id}", response_model=JobStatusOut, tags=["ops"])
async def ops_job(
    service_name: Text, job_id: Text, _: PrincipalDep, resources: ResourcesDep
) -> JobStatusOut:
    """A ping job's status and result."""
    if service_name not in SERVICES or not job_id.startswith("ping:"):
        raise NotFound("no such job")
    svc: Service = service_name
    state = await job_state(resources.redis, resources.settings, svc, job_id)
    if state.status == "not_found":
        raise NotFound("no such job")
    return JobStatusOut(
        job_id=job_id,
        service=svc,
        status=state.status,
        success=state.success,
        result=state.result,
    )


@router.get("/files/{key:path}", tags=["ops"], include_in_schema=False)
async def signed_file(
    key: Text,
    resources: ResourcesDep,
    expires: Annotated[int, Query()],
    signature: Annotated[Text, Query()],
    filename: Annotated[Text, Query()] = "",
) -> Response:
    """Serve a local-backend object behind an HMAC-signed, expiring URL."""
    storage = resources.storage
    if not isinstance(storage, LocalObjectStore):
        raise NotFound("no such file")
    secret = resources.settings.storage_signing_secret.get_secret_value().encode()
    if not verify(secret, key, expires, filename, signature):
        raise NotFound("link is invalid or has expired")
    try:
        path = storage.path_for(key)
    except StorageError as exc:
        raise NotFound("no such file") from exc
    if not path.is_file():
        raise NotFound("no such file")
    media_type = content_types.for_name(filename or key)
    return FileResponse(path, filename=filename or None, media_type=media_type)
