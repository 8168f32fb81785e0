"""Checks the trainer targets share: message shapes, alternation, non-blank text."""

from __future__ import annotations

from typing import Any

from shared.conversations.text_stats import blank


def text_problem(value: Any, where: str) -> str | None:
    """Why a message text is unusable (not a string, or blank in effect), else None."""
    if type(value) is not str:
        return f"{where} must be a string"
    if blank(value):
        return f"{where} is blank"
    return None


def pairs_problem(
    messages: Any, *, role_key: str, text_key: str, roles: frozenset[str]
) -> str | None:
    """Each message must be exactly {role_key, text_key} with a known role and usable text."""
    if type(messages) is not list or not messages:
        return "needs a non-empty list of messages"
    keys = {role_key, text_key}
    # Runs on every line of every target file: the usual message is decided inline (a text
    # whose first character is visible ASCII is not blank); `text_problem` has the last word.
    for index, message in enumerate(messages):
        if type(message) is not dict or message.keys() != keys:
            return f"message {index} must be exactly {{{role_key!r}, {text_key!r}}}"
        role = message[role_key]
        if type(role) is not str or role not in roles:
            return f"message {index} has unknown {role_key} {role!r}"
        text = message[text_key]
        if type(text) is str and "!" <= text[:1] <= "~":
            continue
        problem = text_problem(text, f"message {index} {text_key}")
        if problem:
            return problem
    return None


def alternation_problem(sequence: list[str], *, first: str, second: str) -> str | None:
    """`first`, `second`, `first`, ... strictly alternating, ending with `second`."""
    if not sequence:
        return f"needs a {first} and a {second} message"
    if len(sequence) % 2 == 0 and sequence == [first, second] * (len(sequence) // 2):
        return None  # the usual case, decided in one comparison
    for index, role in enumerate(sequence):
        expected = first if index % 2 == 0 else second
        if role != expected:
            return f"message {index} is {role!r}; {expected!r} expected (strict alternation)"
    if sequence[-1] != second:
        return f"the last message must be {second!r}"
    return None
