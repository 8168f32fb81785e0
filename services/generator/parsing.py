"""Extract and validate the conversation JSON object from Claude's text answer."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final, Literal, TypedDict

import orjson

ParseErrorCode = Literal["max_tokens", "no_json", "invalid_json", "invalid_turns"]
EXCERPT_EDGE: Final = 200
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\r?\n(.*?)```", re.DOTALL)
_SECRET = re.compile(r"sk-[A-Za-z0-9_-]{8,}")
Role = Literal["user", "assistant"]
_ROLES: Final[tuple[Role, Role]] = ("user", "assistant")
# Each scan may walk to the end of the text; bound the work on pathological answers.
_MAX_SCANS: Final = 200


class Turn(TypedDict):
    """One parsed turn."""

    role: Role
    content: str


@dataclass(frozen=True, slots=True)
class ParsedGeneration:
    """A validated conversation: its title (may be empty) and alternating turns."""

    title: str
    turns: list[Turn]


class GenerationParseError(Exception):
    """No usable conversation in the answer; ``excerpt`` keeps a redacted sample for debugging."""

    retryable = False

    def __init__(self, code: ParseErrorCode, message: str, excerpt: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.excerpt = excerpt


def extract_conversation(
    text: str, stop_reason: str, *, first_role: Role = "user", min_turns: int = 2
) -> ParsedGeneration:
    """Find the conversation object in ``text`` and validate its turns.

    A continuation (regenerate from a turn) starts with ``first_role`` and may be one turn.
    """
    if stop_reason == "max_tokens":
        raise _fail(text, "max_tokens", "the answer was cut off at max_tokens")
    document = _find_object(text)
    title = document.get("title")
    offset = _ROLES.index(first_role)
    turns = _validate_turns(text, document.get("turns"), offset, min_turns)
    return ParsedGeneration(title=title.strip() if isinstance(title, str) else "", turns=turns)


def redacted_excerpt(text: str, edge: int = EXCERPT_EDGE) -> str:
    """Return at most the first and last ``edge`` characters, with key-like strings masked."""
    if len(text) > 2 * edge:
        omitted = len(text) - 2 * edge
        text = f"{text[:edge]} …[{omitted} chars omitted]… {text[-edge:]}"
    return _SECRET.sub("[REDACTED]", text)


def _find_object(text: str) -> dict[str, Any]:
    """Return the first object with ``turns``, trying fenced blocks before bare prose."""
    for candidate in _candidates(text):
        value = _loads(candidate)
        inner = _with_turns(value) if isinstance(value, dict) else None
        if inner is not None:
            return inner
    if "{" not in text:
        raise _fail(text, "no_json", "the answer contains no JSON object")
    # A complete leading object without turns is a shape problem; anything else is broken JSON
    # (e.g. cut off), even if some inner fragments such as single turns happen to parse.
    first = text.index("{")
    end = _matching_brace(text, first)
    if end is not None and isinstance(_loads(text[first : end + 1]), dict):
        raise _fail(text, "invalid_turns", "the JSON object has no 'turns' list")
    raise _fail(text, "invalid_json", "no complete, valid JSON object in the answer")


def _loads(candidate: str) -> Any:
    try:
        return orjson.loads(candidate)
    except orjson.JSONDecodeError:
        return None


def _with_turns(value: dict[str, Any]) -> dict[str, Any] | None:
    """The object itself if it has ``turns``, else a direct child object that has them."""
    if "turns" in value:
        return value
    children = (v for v in value.values() if isinstance(v, dict) and "turns" in v)
    return next(children, None)


def _candidates(text: str) -> Iterator[str]:
    """Yield fenced block bodies, then every balanced ``{...}`` span outside the fences."""
    for match in _FENCE.finditer(text):
        yield match.group(1)
    start, tries = text.find("{"), 0
    while start != -1 and tries < _MAX_SCANS:
        tries += 1
        end = _matching_brace(text, start)
        if end is not None:
            yield text[start : end + 1]
        start = text.find("{", start + 1 if end is None else end + 1)


def _matching_brace(text: str, start: int) -> int | None:
    """Index of the brace closing the one at ``start``, skipping braces inside strings."""
    depth, in_string, escaped = 0, False, False
    for index in range(start, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index
    return None


def _validate_turns(text: str, raw: object, offset: int, min_turns: int) -> list[Turn]:
    if not isinstance(raw, list):
        raise _fail(text, "invalid_turns", "'turns' is missing or not a list")
    if len(raw) < min_turns:
        raise _fail(text, "invalid_turns", f"a conversation needs at least {min_turns} turns")
    return [_turn(text, index, item, offset) for index, item in enumerate(raw)]


def _turn(text: str, index: int, item: object, offset: int) -> Turn:
    if not isinstance(item, dict):
        raise _fail(text, "invalid_turns", f"turns[{index}] is not an object")
    role, content = item.get("role"), item.get("content")
    expected = _ROLES[(index + offset) % 2]
    if role != expected:
        raise _fail(
            text, "invalid_turns", f"turns[{index}].role is {role!r}, expected {expected!r}"
        )
    if not isinstance(content, str) or not content.strip():
        raise _fail(text, "invalid_turns", f"turns[{index}].content is empty")
    return Turn(role=expected, content=content.strip())


def _fail(text: str, code: ParseErrorCode, message: str) -> GenerationParseError:
    return GenerationParseError(code, message, redacted_excerpt(text))
