"""Saved export configurations: presets CRUD, running one, default format, last-used config;
option combinations refused with every problem; downloads served with their content type."""

from __future__ import annotations

import base64
import io
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg
import httpx
import pyarrow.parquet as pq
import pytest

from shared.db.pool import acquire
from shared.models.conversation import Conversation
from shared.settings import Settings
from shared.storage import LocalObjectStore
from tests.exporter import helpers
from tests.support.api import api_client
from tests.support.factories import Account, create_account

Json = dict[str, Any]
PRESET = {"scope": "all_approved", "format": "jsonl", "target": "sharegpt",
          "include_metadata": True}  # fmt: skip


@pytest.fixture
def own_settings(settings: Settings) -> Settings:
    """A queue of this module's own."""
    return settings.model_copy(update={"queue_prefix": f"cfpre-{uuid.uuid4().hex[:8]}"})


@pytest.fixture
async def api(own_settings: Settings, db: asyncpg.Pool) -> AsyncIterator[httpx.AsyncClient]:
    """The API on the local backend."""
    async with api_client(own_settings) as client:
        yield client


@pytest.fixture
def files(own_settings: Settings) -> LocalObjectStore:
    """The local backend the API serves downloads from."""
    secret = own_settings.storage_signing_secret.get_secret_value().encode()
    return LocalObjectStore(
        own_settings.storage_local_dir, base_url=own_settings.public_base_url, signing_secret=secret
    )


@pytest.fixture
async def approved(
    db: asyncpg.Pool, files: LocalObjectStore, account: Account
) -> list[Conversation]:
    """The kit's seed conversations, approved."""
    return await helpers.store_fixtures(db, files, account.user.id)


async def test_preset_crud_and_tenancy(
    api: httpx.AsyncClient, account: Account, db: asyncpg.Pool
) -> None:
    h = account.headers
    created = await api.post(
        "/v1/export-presets", json={"name": "ShareGPT", "config": PRESET}, headers=h
    )
    assert created.status_code == 201, created.text
    preset = created.json()
    assert preset["config"]["target"] == "sharegpt"
    taken = await api.post(
        "/v1/export-presets", json={"name": "ShareGPT", "config": PRESET}, headers=h
    )
    assert taken.status_code == 409
    renamed = await api.put(
        f"/v1/export-presets/{preset['id']}",
        json={"name": "Renamed", "config": {**PRESET, "target": "trl", "include_metadata": False}},
        headers=h,
    )
    assert renamed.json()["config"]["target"] == "trl"
    listed = (await api.get("/v1/export-presets", headers=h)).json()
    assert [p["name"] for p in listed["items"]] == ["Renamed"]
    async with acquire(db) as conn:
        other = await create_account(conn)
    for method in ("get", "delete"):
        response = await api.request(
            method, f"/v1/export-presets/{preset['id']}", headers=other.headers
        )
        assert response.status_code == 404
    assert (await api.get("/v1/export-presets", headers=other.headers)).json()["total"] == 0
    assert (await api.delete(f"/v1/export-presets/{preset['id']}", headers=h)).status_code == 204
    assert (await api.get(f"/v1/export-presets/{preset['id']}", headers=h)).status_code == 404


async def test_bad_presets_are_422_listing_every_problem(
    api: httpx.AsyncClient, account: Account
) -> None:
    bad = {"scope": "all", "format": "csv", "target": "bedrock-claude", "include_metadata": True,
           "fold_system": True, "license": "mit"}  # fmt: skip
    response = await api.post("/v1/export-presets", json={"name": "x", "config": bad},
                              headers=account.headers)  # fmt: skip
    assert response.status_code == 422
    text = response.text
    for fragment in ("needs format 'jsonl'", "allows no metadata", "fold_system applies",
                     "license is written in the dataset card"):  # fmt: skip
        assert fragment in text
    blank = await api.post("/v1/export-presets", json={"name": " \t", "config": PRESET},
                           headers=account.headers)  # fmt: skip
    assert blank.status_code == 422


async def test_export_runs_a_preset_and_remembers_the_config(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation]
) -> None:
    h = account.headers
    preset = (
        await api.post("/v1/export-presets", json={"name": "p", "config": PRESET}, headers=h)
    ).json()
    started = await api.post("/v1/exports", json={"preset_id": preset["id"]}, headers=h)
    assert started.status_code == 202, started.text
    assert started.json()["config"]["target"] == "sharegpt"
    prefs = (await api.get("/v1/export-preferences", headers=h)).json()
    assert prefs["last_config"]["target"] == "sharegpt"
    both = await api.post(
        "/v1/exports", json={"preset_id": preset["id"], "config": PRESET}, headers=h
    )
    assert both.status_code == 422
    mismatch = await api.post(
        "/v1/exports",
        json={"preset_id": preset["id"], "conversation_ids": [str(uuid.uuid4())]},
        headers=h,
    )
    assert mismatch.status_code == 422
    assert mismatch.json()["error"]["code"] == "preset_mismatch"
    unknown = await api.post("/v1/exports", json={"preset_id": str(uuid.uuid4())}, headers=h)
    assert unknown.status_code == 404


async def test_default_format_applies_when_the_config_names_none(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation]
) -> None:
    h = account.headers
    saved = await api.put("/v1/export-preferences", json={"default_format": "parquet"}, headers=h)
    assert saved.json()["default_format"] == "parquet"
    implicit = await api.post("/v1/exports", json={"config": {"scope": "all"}}, headers=h)
    assert implicit.json()["format"] == "parquet"
    explicit = await api.post(
        "/v1/exports", json={"config": {"scope": "all", "format": "csv"}}, headers=h
    )
    assert explicit.json()["format"] == "csv"
    await api.put("/v1/export-preferences", json={"default_format": None}, headers=h)
    plain = await api.post("/v1/exports", json={"config": {"scope": "all"}}, headers=h)
    assert plain.json()["format"] == "jsonl"


@pytest.mark.parametrize(
    ("config", "content_type"),
    [
        ({"format": "jsonl"}, "application/jsonl"),
        ({"format": "jsonl", "compress": True}, "application/gzip"),
        ({"format": "parquet"}, "application/vnd.apache.parquet"),
        ({"format": "txt"}, "text/plain; charset=utf-8"),
        ({"format": "markdown"}, "text/markdown; charset=utf-8"),
        ({"format": "jsonl", "split": {"validation": 0.5}}, "application/zip"),
    ],
)
async def test_local_downloads_carry_their_content_type(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation], db: asyncpg.Pool,
    files: LocalObjectStore, own_settings: Settings, config: Json, content_type: str,
) -> None:  # fmt: skip
    body = (await api.post("/v1/exports", json={"config": {"scope": "all", **config}},
                           headers=account.headers)).json()  # fmt: skip
    result = await helpers.run(helpers.resources(own_settings, db, files), UUID(body["id"]))
    assert result["status"] == "completed"
    redirect = await api.get(f"/v1/exports/{body['id']}/download", headers=account.headers)
    location = urlsplit(redirect.headers["location"])
    served = await api.get(f"{location.path}?{location.query}")
    assert served.status_code == 200
    assert served.headers["content-type"] == content_type


async def test_preview_renders_approval_history_and_targets(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation]
) -> None:
    config = {"scope": "all", "include_metadata": True, "include_approval_history": True,
              "include_parent_references": True}  # fmt: skip
    for fmt in ("jsonl", "json"):
        preview = await api.post("/v1/exports/preview", json={"config": {**config, "format": fmt}},
                                 headers=account.headers)  # fmt: skip
        assert preview.status_code == 200, preview.text
        assert preview.json()["render_failures"] == []
        assert preview.json()["conversation_count"] == 2
    bedrock = await api.post("/v1/exports/preview",
                             json={"config": {"scope": "all", "target": "bedrock-claude"}},
                             headers=account.headers)  # fmt: skip
    assert bedrock.json()["content"].startswith('{"system":')


async def test_parquet_preview_is_base64_of_a_readable_file(
    api: httpx.AsyncClient, account: Account, approved: list[Conversation]
) -> None:
    config = {"scope": "all", "format": "parquet"}
    preview = await api.post(
        "/v1/exports/preview", json={"config": config}, headers=account.headers
    )
    assert preview.status_code == 200, preview.text
    body = preview.json()
    assert body["content_encoding"] == "base64"
    table = pq.read_table(io.BytesIO(base64.b64decode(body["content"])))
    assert table.num_rows == 2
