"""JSONL compiled for one trainer: a record per conversation, checked against its rules.

Each target module holds its renderer (`build`) next to its rules (`check`) and its turn
count (`turns`). `TargetTransformer` checks every record before it becomes a line (a breaking
conversation is a RenderError: reported, never written), and `TargetValidator` re-parses the
stream and applies the same rules, so the stored file is proven to follow them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson

from shared.exports.formats.base import (
    ExportConversation,
    ExportOptions,
    RenderError,
    Transformer,
    export_turns,
)
from shared.exports.formats.targets import bedrock, sharegpt, trl
from shared.exports.formats.validate import JsonlValidator


@dataclass(frozen=True)
class Rules:
    """A target's renderer, rule check and turn count."""

    build: Callable[[ExportConversation, list[Any], ExportOptions], dict[str, Any]]
    check: Callable[[Any], str | None]
    turns: Callable[[dict[str, Any]], int]


def rules_for(options: ExportOptions) -> Rules:
    """The rules of the options' target."""
    if options.target == bedrock.NAME:
        return Rules(bedrock.build, bedrock.check, bedrock.turns)
    if options.target == sharegpt.NAME:
        return Rules(sharegpt.build, sharegpt.check, sharegpt.turns)
    if options.target in trl.NAMES:
        return Rules(trl.build, partial(trl.check, folded=options.fold_system), trl.turns)
    raise ValueError(f"no rules for target {options.target!r}")


class TargetTransformer(Transformer):
    """One trainer's JSONL: a checked record per line."""

    content_type = "application/jsonl"
    extension = "jsonl"

    def __init__(self, options: ExportOptions) -> None:
        super().__init__(options)
        self.rules = rules_for(options)
        self._last_turns = 0

    def render(self, conv: ExportConversation) -> bytes:
        """The conversation's line, or RenderError naming the rule it breaks."""
        record = self.rules.build(conv, export_turns(conv), self.options)
        problem = self.rules.check(record)
        if problem is not None:
            raise RenderError(conv.conversation_id, f"{self.options.target}: {problem}")
        try:
            line = orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE)
        except orjson.JSONEncodeError as exc:
            raise RenderError(conv.conversation_id, f"not serializable: {exc}") from exc
        self._last_turns = self.rules.turns(record)
        return line

    def check_line(self, data: bytes) -> str | None:
        """The rule a line PostgreSQL rendered breaks, or None."""
        problem = self.rules.check(orjson.loads(data))
        return None if problem is None else f"{self.options.target}: {problem}"

    def turns_of(self, conv: ExportConversation) -> int:
        """The turns of the line just rendered (a folded or lifted system prompt differs)."""
        return self._last_turns


class TargetValidator(JsonlValidator):
    """Every line parses and follows the target's rules (fed one rendered line at a time, as
    JSONL is, without copying it)."""

    def __init__(self, options: ExportOptions) -> None:
        super().__init__()
        self.rules = rules_for(options)
        self.target = options.target

    def _line(self, line: bytes | memoryview) -> None:
        """Parse one record, apply the rules, count it."""
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            self._fail(f"not JSON: {exc}")
        problem = self.rules.check(record)
        if problem is not None:
            self._fail(f"{self.target}: {problem}")
        self.turns += self.rules.turns(record)
        self.conversations += 1

    def _end(self) -> None:
        """Nothing spans lines in JSONL."""
