"""MinHash signatures of a conversation's user and assistant turns (system prompts excluded).

Text is case-folded and reduced to its words (Unicode letters and digits: punctuation, emoji
and the brackets of markup such as `<script>` are separators), then cut into overlapping 3-word
shingles per turn. User turns and assistant turns get one signature each, and system prompts
none: a templated system prompt cannot make two conversations look alike.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from datasketch import MinHash

from shared.models.conversation import Role

NUM_PERM = 128
SEED = 1
SHINGLE_WORDS = 3
# datasketch's 32-bit scheme: uint32 hash values, stored little-endian (512 bytes per side).
SCHEME = "affine32"
# CRC-32 is stable across processes and ~3x cheaper than datasketch's SHA-1 default; the
# affine32 scheme mixes it with MurmurHash3's finalizer before permuting.
_DTYPE = np.dtype("<u4")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class Side:
    """One side's MinHash values and how many distinct shingles it was built from."""

    values: np.ndarray
    shingles: int

    @property
    def empty(self) -> bool:
        return self.shingles == 0

    def to_bytes(self) -> bytes:
        return self.values.astype(_DTYPE).tobytes()

    @classmethod
    def from_bytes(cls, raw: bytes, shingles: int) -> Side:
        return cls(np.frombuffer(raw, dtype=_DTYPE), shingles)


@dataclass(frozen=True)
class Signature:
    """A conversation's user-side and assistant-side signatures."""

    user: Side
    assistant: Side
    # Band digests by (bands, rows), computed once however often the index asks.
    bands: dict[tuple[int, int], list[bytes | None]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def empty(self) -> bool:
        return self.user.empty and self.assistant.empty


def shingles(text: str) -> set[bytes]:
    """The normalised 3-word shingles of one turn (a shorter turn is one shingle)."""
    words = _WORD.findall(text.casefold())
    if len(words) <= SHINGLE_WORDS:
        return {" ".join(words).encode()} if words else set()
    return {
        " ".join(words[i : i + SHINGLE_WORDS]).encode()
        for i in range(len(words) - SHINGLE_WORDS + 1)
    }


@lru_cache(maxsize=1)
def _permutations() -> tuple[np.ndarray, np.ndarray]:
    # Built once: datasketch otherwise draws them anew for every MinHash it creates.
    perms: tuple[np.ndarray, np.ndarray] = MinHash(
        num_perm=NUM_PERM, seed=SEED, scheme=SCHEME
    ).permutations
    return perms


def side(texts: Iterable[str]) -> Side:
    """The MinHash of the union of the turns' shingles."""
    union: set[bytes] = set()
    for text in texts:
        union |= shingles(text)
    minhash = MinHash(
        num_perm=NUM_PERM,
        seed=SEED,
        permutations=_permutations(),
        scheme=SCHEME,
        hashfunc=zlib.crc32,
    )
    if union:
        minhash.update_batch(union)
    return Side(minhash.hashvalues.astype(_DTYPE), len(union))


def signature(turns: Iterable[tuple[str, object]]) -> Signature:
    """A conversation's signature from its (role, content) turns; system turns ignored."""
    by_role: dict[str, list[str]] = {Role.USER: [], Role.ASSISTANT: []}
    for role, content in turns:
        if role in by_role and isinstance(content, str):
            by_role[role].append(content)
    return Signature(side(by_role[Role.USER]), side(by_role[Role.ASSISTANT]))


def side_similarity(a: Side, b: Side) -> float | None:
    """Estimated Jaccard of two sides; None when both are empty (nothing to compare)."""
    if a.empty and b.empty:
        return None
    if a.empty or b.empty:
        return 0.0
    return float(np.count_nonzero(a.values == b.values)) / NUM_PERM


def similarities(mine: Signature, others: Sequence[Signature]) -> list[float]:
    """`similarity(mine, other)` for each of `others`, in one vectorised pass."""
    if not others:
        return []
    sides = []
    for pick in (_user, _assistant):
        me, theirs = pick(mine), [pick(other) for other in others]
        equal = np.count_nonzero(np.stack([t.values for t in theirs]) == me.values, axis=1)
        empty = np.array([t.empty for t in theirs])
        values = np.where(empty | me.empty, 0.0, equal / NUM_PERM)
        sides.append((values, ~(empty & me.empty)))
    (user, user_known), (assistant, assistant_known) = sides
    both = np.minimum(user, assistant)
    one = np.where(user_known, user, np.where(assistant_known, assistant, 0.0))
    result: list[float] = np.where(user_known & assistant_known, both, one).tolist()
    return result


def _user(signature: Signature) -> Side:
    return signature.user


def _assistant(signature: Signature) -> Side:
    return signature.assistant


def similarity(a: Signature, b: Signature) -> float:
    """How alike two conversations are: the lower of the user and assistant similarities.

    Both sides must be near copies for the conversation to be one: the same customer script
    answered differently (or the same answer to different questions) is a useful variant, not a
    duplicate. A side empty in both is left out; two conversations with no user or assistant
    text at all are never alike (0.0).
    """
    sides = [side_similarity(a.user, b.user), side_similarity(a.assistant, b.assistant)]
    known = [value for value in sides if value is not None]
    return min(known) if known else 0.0
