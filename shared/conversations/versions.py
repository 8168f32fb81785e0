"""Versions of a stored conversation document: read one, edit a turn, encode the next one.

Every version is its own object (`conversation.<hex>.json.gz` beside the original
`conversation.json.gz`): a new version is written under a new key before its row commits, so a
failed edit leaves the current version untouched and earlier versions stay readable.
"""

from __future__ import annotations

import difflib
import gzip
import hashlib
import re
import uuid
from copy import deepcopy
from dataclasses import dataclass
from typing import Any, Final
from uuid import UUID

import orjson

from shared.conversations.scoring import QualityScore, score_conversation
from shared.conversations.store import DOCUMENT_NAME
from shared.conversations.text_stats import measure
from shared.storage import ObjectStore

# The original document or a later version: what the janitor's reconcile recognises as a
# conversation's object.
DOCUMENT_NAMES: Final = re.compile(r"conversation(\.[0-9a-f]{32})?\.json\.gz")
_GZIP_LEVEL: Final = 6


@dataclass(frozen=True)
class EditedDocument:
    """A document with one turn replaced, what it replaced and its recomputed totals."""

    document: dict[str, Any]
    role: str
    old_content: str
    turn_count: int
    total_tokens: int
    quality: QualityScore


@dataclass(frozen=True)
class EncodedVersion:
    """A version ready to upload: key, gzip bytes and their digest."""

    key: str
    body: bytes
    sha256: str


def version_key(owner_id: UUID, conversation_id: UUID) -> str:
    """A fresh key for a new version of the conversation's document."""
    return f"conversations/{owner_id}/{conversation_id}/conversation.{uuid.uuid4().hex}.json.gz"


def is_document_name(name: str) -> bool:
    """Whether the last part of a key names a conversation document (any version)."""
    return name == DOCUMENT_NAME or DOCUMENT_NAMES.fullmatch(name) is not None


async def read(storage: ObjectStore, key: str) -> dict[str, Any]:
    """The decoded JSON document stored under `key`."""
    document: dict[str, Any] = orjson.loads(gzip.decompress(await storage.get(key)))
    return document


def edit_turn(document: dict[str, Any], turn_number: int, content: str) -> EditedDocument:
    """A copy of the document with turn `turn_number`'s text (and its statistics) replaced."""
    edited = deepcopy(document)
    turns: list[dict[str, Any]] = edited["turns"]
    entry = next(turn for turn in turns if turn["turn_number"] == turn_number)
    old_content: str = entry["content"]
    stats = measure(content)
    entry.update(
        content=content, token_count=stats.token_count, char_count=stats.char_count,
        word_count=stats.word_count, sentence_count=stats.sentence_count,
    )  # fmt: skip
    if entry["role"] == "system" and isinstance(edited.get("metadata"), dict):
        edited["metadata"]["system_prompt"] = content  # the system turn is the system prompt
    total_tokens = sum(int(turn["token_count"]) for turn in turns)
    quality = score_conversation([{"role": t["role"], "content": t["content"]} for t in turns])
    edited["stats"] = {"turn_count": len(turns), "total_tokens": total_tokens}
    edited["quality"] = {"score": quality.score, "scale": "0-10", "metrics": dict(quality.parts)}
    return EditedDocument(edited, entry["role"], old_content, len(turns), total_tokens, quality)


def encode(owner_id: UUID, conversation_id: UUID, document: dict[str, Any]) -> EncodedVersion:
    """Gzip the document under a fresh key; sha256 is of the stored (gzip) bytes."""
    body = gzip.compress(orjson.dumps(document), compresslevel=_GZIP_LEVEL, mtime=0)
    key = version_key(owner_id, conversation_id)
    return EncodedVersion(key, body, hashlib.sha256(body).hexdigest())


def turn_diff(turn_number: int, old: str, new: str, *, old_version: int, new_version: int) -> str:
    """The unified diff of a turn's text between two versions."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"turn {turn_number} (version {old_version})",
        tofile=f"turn {turn_number} (version {new_version})",
    )  # fmt: skip
    # A last line without a newline would glue itself to the next diff line.
    return "".join(line if line.endswith("\n") else f"{line}\n" for line in lines)
