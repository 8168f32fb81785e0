"""API keys: `cf_<prefix>_<secret>`, stored as a SHA-256 hash with the prefix visible."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

KEY_SCHEME = "cf"


@dataclass(frozen=True)
class NewKey:
    """A freshly minted key: the plaintext is shown once and never stored."""

    plaintext: str
    prefix: str
    digest: bytes


def mint_key() -> NewKey:
    """A random key with 256 bits of secret."""
    prefix = f"{KEY_SCHEME}_{secrets.token_hex(4)}"
    plaintext = f"{prefix}_{secrets.token_urlsafe(32)}"
    return NewKey(plaintext=plaintext, prefix=prefix, digest=hash_key(plaintext))


def hash_key(plaintext: str) -> bytes:
    """Keys are long random strings, so a fast hash is enough (no password stretching)."""
    return hashlib.sha256(plaintext.encode()).digest()


def looks_like_key(value: str) -> bool:
    """Cheap shape check before touching the database."""
    parts = value.split("_", 2)
    return len(parts) == 3 and parts[0] == KEY_SCHEME and len(parts[1]) == 8 and len(parts[2]) > 20
