"""Cheap text statistics for turns; runs on the import hot path."""

from __future__ import annotations

import re
import unicodedata
from typing import NamedTuple

_CLOSERS = "\"'\u201d\u2019\u00bb)]"
# A run of terminal punctuation plus closing quotes/brackets, then (group 1) whitespace if any.
# Matching every run, not only sentence ends, keeps the scan linear: a lookahead that fails
# inside a long run of dots would restart at each dot (quadratic). "4.5" and "a.m" have no
# whitespace after the dot and so end no sentence; "again." and "right?)" followed by a space do.
_TERMINAL_RUN = re.compile("[.!?]+[" + re.escape(_CLOSERS) + r"]*(\s)?")


class TextStats(NamedTuple):
    """The four counts a turn row stores."""

    char_count: int
    word_count: int
    sentence_count: int
    token_count: int


def char_count(text: str) -> int:
    """Length in Unicode code points."""
    return len(text)


def word_count(text: str) -> int:
    """Whitespace-separated tokens."""
    return len(text.split())


def sentence_count(text: str) -> int:
    """Runs of `.!?` followed by whitespace, plus one for the last sentence (punctuated or not)."""
    visible = text.rstrip()
    if not visible:
        return 0
    runs = _TERMINAL_RUN.findall(visible)
    return 1 + len(runs) - runs.count("")


def estimate_tokens(text: str) -> int:
    """About four characters per token, at least one for non-empty text."""
    return (len(text) + 3) // 4


def measure(text: str) -> TextStats:
    """All four counts at once."""
    return TextStats(len(text), word_count(text), sentence_count(text), estimate_tokens(text))


# Letters that render as nothing: Hangul fillers, the halfwidth filler, the blank Braille cell.
_INVISIBLE_LETTERS = frozenset("\u115f\u1160\u3164\uffa0\u2800")
# Separators (Z*), controls (Cc) and format characters (Cf: zero-width space/joiners, BOM).
_INVISIBLE_CATEGORIES = frozenset(("Zs", "Zl", "Zp", "Cc", "Cf"))


def blank(text: str) -> bool:
    """True when the text shows nothing: empty, whitespace, zero-width or filler characters."""
    if not text or text.isspace():
        return True
    if text[0].isprintable() and not text[0].isspace() and text[0] not in _INVISIBLE_LETTERS:
        return False  # the common case: a visible first character, decided at once
    return all(
        ch.isspace()
        or ch in _INVISIBLE_LETTERS
        or unicodedata.category(ch) in _INVISIBLE_CATEGORIES
        for ch in text
    )
