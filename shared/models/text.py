"""Text that PostgreSQL can store: no NUL characters, no lone surrogates (invalid UTF-8)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

NUL_MESSAGE = "must not contain NUL (\\u0000) characters"
SURROGATE_MESSAGE = "must not contain lone surrogates (text that is not valid Unicode)"


def text_problem(value: str) -> str | None:
    """Why `value` cannot be stored as PostgreSQL text or jsonb, or None when it can."""
    if "\x00" in value:
        return NUL_MESSAGE
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return SURROGATE_MESSAGE
    return None


def _check_text(value: str) -> str:
    problem = text_problem(value)
    if problem is not None:
        raise PydanticCustomError("invalid_text", problem)
    return value


def bad_strings(value: object, path: str = "$") -> Iterator[tuple[str, str]]:
    """(JSON path, message) for every key or string in a JSON value that cannot be stored."""
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            yield path, problem
    elif isinstance(value, dict):
        for key, item in value.items():
            child = f"{path}.{key!s}"
            if isinstance(key, str) and (problem := text_problem(key)) is not None:
                yield path, f"key {key!r} {problem}"
                continue
            yield from bad_strings(item, child)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from bad_strings(item, f"{path}[{index}]")


def _check_json(value: Any) -> Any:
    for path, problem in bad_strings(value):
        context = {"path": path, "problem": problem}
        raise PydanticCustomError("invalid_text", "{path}: {problem}", context)
    return value


# Every string that comes into the API (bodies, query strings, path params) has this type.
Text = Annotated[str, AfterValidator(_check_text)]
# Free-form JSON that lands in jsonb: every key and string inside is checked.
JsonValue = Annotated[Any, AfterValidator(_check_json)]
