"""HMAC-signed, expiring URLs for files the local backend serves through the API."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote, urlencode

FILES_PATH = "/files/"


def _signature(secret: bytes, key: str, expires: int, filename: str) -> str:
    message = f"{key}\n{expires}\n{filename}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign_url(
    base_url: str, secret: bytes, key: str, *, expires_in: int, filename: str | None = None
) -> str:
    """A URL for `key` valid for `expires_in` seconds."""
    expires = int(time.time()) + expires_in
    name = filename or ""
    query = {"expires": str(expires), "signature": _signature(secret, key, expires, name)}
    if name:
        query["filename"] = name
    return f"{base_url.rstrip('/')}{FILES_PATH}{quote(key)}?{urlencode(query)}"


def verify(secret: bytes, key: str, expires: int, filename: str, signature: str) -> bool:
    """True when the signature matches and the link has not expired."""
    if expires < time.time():
        return False
    expected = _signature(secret, key, expires, filename)
    return hmac.compare_digest(expected, signature)
