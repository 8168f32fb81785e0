"""The local backend's signed, expiring download URLs served by the API."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx

from shared.settings import Settings
from shared.storage import LocalObjectStore
from shared.storage.signing import sign_url


def _store(settings: Settings) -> LocalObjectStore:
    return LocalObjectStore(
        settings.storage_local_dir,
        base_url="http://test",
        signing_secret=settings.storage_signing_secret.get_secret_value().encode(),
    )


async def test_signed_url_downloads_the_file(client: httpx.AsyncClient, settings: Settings) -> None:
    store = _store(settings)
    await store.put("exports/u/1/file.jsonl", b'{"messages": []}\n')
    url = await store.presign_get("exports/u/1/file.jsonl", expires_in=60, filename="data.jsonl")
    response = await client.get(url)
    assert response.status_code == 200
    assert response.content == b'{"messages": []}\n'
    assert 'filename="data.jsonl"' in response.headers["content-disposition"]


async def test_tampered_or_expired_links_are_refused(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    store = _store(settings)
    await store.put("exports/u/2/a.jsonl", b"a")
    await store.put("exports/u/2/b.jsonl", b"b")
    url = await store.presign_get("exports/u/2/a.jsonl", expires_in=60)
    tampered = url.replace("a.jsonl", "b.jsonl")
    assert (await client.get(tampered)).status_code == 404
    secret = settings.storage_signing_secret.get_secret_value().encode()
    expired = sign_url("http://test", secret, "exports/u/2/a.jsonl", expires_in=-1)
    assert (await client.get(expired)).status_code == 404
    query = parse_qs(urlsplit(url).query)
    assert int(query["expires"][0]) > time.time()


async def test_wrong_secret_is_refused(client: httpx.AsyncClient, settings: Settings) -> None:
    store = _store(settings)
    await store.put("exports/u/3/a.jsonl", b"a")
    forged = sign_url("http://test", b"not-the-secret", "exports/u/3/a.jsonl", expires_in=60)
    assert (await client.get(forged)).status_code == 404
