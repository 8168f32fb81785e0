"""Input models, the transformer contract and the running summary shared by every export format.

Rules every format follows (the docs quote them):

- Turns are rendered in ``turn_number`` order. When a conversation has no ``system`` turn but
  has a non-empty ``system_prompt``, a system turn numbered 0 is rendered first, so every
  format shows the same turns and the validators' turn counts agree with `ExportSummary`.
- A conversation without at least one ``user`` and one ``assistant`` turn raises
  `RenderError`; the transformer's state is unchanged, so the worker may skip it and go on.
- ``include_metadata`` is the master switch: the other ``include_*`` flags only add fields to
  the metadata and do nothing when it is off.
- ``include_full_content`` never shortens turn content (a truncated turn is corrupt training
  data); when it is off the bulky detail is left out: ``quality_metrics``, per-turn
  annotations (emotion, strategy, tone) and review notes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict

# The input models live in shared (the repository that reads them returns them); re-exported.
from shared.models.export import ExportConversation as ExportConversation
from shared.models.export import ExportTurn as ExportTurn
from shared.models.export import MessageColumns as MessageColumns
from shared.models.export import ReviewEntry as ReviewEntry
from shared.models.export import Role as Role

ExportFormat = Literal["jsonl", "json", "csv", "markdown", "parquet", "txt"]
Target = Literal["openai", "bedrock-claude", "sharegpt", "trl", "hf-chat"]

_BY_TURN_NUMBER = attrgetter("turn_number")
# Why a conversation is left out of a file (also reported for conversations PostgreSQL rendered).
NOT_TRAINABLE = "needs at least one user and one assistant turn"


class ExportOptions(BaseModel):
    """The part of an export's config that shapes the file's bytes."""

    model_config = ConfigDict(frozen=True)

    format: ExportFormat
    include_metadata: bool = True
    include_quality_scores: bool = True
    include_timestamps: bool = False
    include_approval_history: bool = False
    include_parent_references: bool = False
    include_full_content: bool = True
    target: Target = "openai"
    fold_system: bool = False
    # Required, not "now": a retried export job must produce the same bytes.
    export_date: datetime


class RenderError(Exception):
    """A conversation that cannot be rendered in the chosen format."""

    def __init__(self, conversation_id: str, reason: str) -> None:
        super().__init__(f"{conversation_id}: {reason}")
        self.conversation_id = conversation_id
        self.reason = reason


def sql_literal(text: str) -> str:
    """`text` as a PostgreSQL string literal (for the constants the render SQL returns)."""
    return "'" + text.replace("'", "''") + "'"


def _needs_system_turn(conv: ExportConversation) -> bool:
    """Whether the conversation's system prompt must be rendered as a synthetic turn 0."""
    return bool(conv.system_prompt) and all(t.role != "system" for t in conv.turns)


def rendered_turn_count(conv: ExportConversation) -> int:
    """How many turns every format renders for this conversation."""
    return len(conv.turns) + _needs_system_turn(conv)


def export_turns(conv: ExportConversation) -> list[ExportTurn]:
    """The turns to render, in order, or RenderError when there is nothing to train on."""
    turns = sorted(conv.turns, key=_BY_TURN_NUMBER)
    roles = {t.role for t in turns}
    if "user" not in roles or "assistant" not in roles:
        raise RenderError(conv.conversation_id, NOT_TRAINABLE)
    if _needs_system_turn(conv):
        turns.insert(0, ExportTurn(0, "system", conv.system_prompt or ""))
    return turns


@dataclass(slots=True)
class ExportSummary:
    """Counts accumulated one conversation at a time, so nothing is kept in memory."""

    conversation_count: int = 0
    total_turns: int = 0
    quality_sum: float = 0.0
    quality_count: int = 0
    tier_distribution: dict[str, int] = field(default_factory=dict)

    def add(self, conv: ExportConversation) -> None:
        """Count a conversation; call it only after its render() succeeded."""
        self.count(conv.tier, conv.quality_score, rendered_turn_count(conv))

    def count(self, tier: str, quality_score: float | None, turns: int) -> None:
        """Count a rendered conversation by its parts (`turns` as `rendered_turn_count`)."""
        self.conversation_count += 1
        self.total_turns += turns
        if quality_score is not None:
            self.quality_sum += quality_score
            self.quality_count += 1
        self.tier_distribution[tier] = self.tier_distribution.get(tier, 0) + 1

    @property
    def average_quality_score(self) -> float | None:
        """Mean quality score of the scored conversations, two decimals, or None."""
        if not self.quality_count:
            return None
        return round(self.quality_sum / self.quality_count, 2)

    def to_dict(self) -> dict[str, Any]:
        """The summary as stored in export_logs and written by the JSON footer."""
        return {
            "conversation_count": self.conversation_count,
            "total_turns": self.total_turns,
            "average_quality_score": self.average_quality_score,
            "tier_distribution": dict(self.tier_distribution),
        }


class Transformer(ABC):
    """Turns conversations into a file's bytes: header, one chunk per conversation, footer.

    A transformer is stateful (JSON commas, Markdown separators): use one per export.
    """

    content_type: ClassVar[str]
    extension: ClassVar[str]

    def __init__(self, options: ExportOptions) -> None:
        self.options = options

    def header(self) -> bytes:
        """Bytes written before the first conversation."""
        return b""

    @abstractmethod
    def render(self, conv: ExportConversation) -> bytes:
        """One conversation's bytes; raises RenderError without changing state."""

    def footer(self, summary: ExportSummary) -> bytes:
        """Bytes written after the last conversation."""
        return b""

    def render_columns(self, row: MessageColumns) -> bytes:
        """A conversation read as column pieces (only columnar formats read them)."""
        raise TypeError(f"{type(self).__name__} renders conversations, not column pieces")

    def check_line(self, data: bytes) -> str | None:
        """Why bytes PostgreSQL rendered with `needs_check` break the format's rules, or None."""
        return None

    def turns_of(self, conv: ExportConversation) -> int:
        """How many turns the file shows for a conversation render() accepted."""
        return rendered_turn_count(conv)

    def warnings(self) -> list[str]:
        """What a reader of the finished file should know (read after the footer)."""
        return []


def get_transformer(options: ExportOptions) -> Transformer:
    """A fresh transformer for the options' format."""
    return transformer_class(options)(options)


def transformer_class(options: ExportOptions) -> type[Transformer]:
    """The transformer class of the options' format (and JSONL target)."""
    # Imported here because every format module imports this one.
    from shared.exports.formats.csv_format import CsvTransformer
    from shared.exports.formats.json_doc import JsonTransformer
    from shared.exports.formats.jsonl import JsonlTransformer
    from shared.exports.formats.markdown import MarkdownTransformer
    from shared.exports.formats.parquet import ParquetTransformer
    from shared.exports.formats.targets import TargetTransformer
    from shared.exports.formats.txt import TxtTransformer

    if options.format == "jsonl" and options.target != "openai":
        return TargetTransformer
    classes: dict[str, type[Transformer]] = {
        "jsonl": JsonlTransformer,
        "json": JsonTransformer,
        "csv": CsvTransformer,
        "markdown": MarkdownTransformer,
        "parquet": ParquetTransformer,
        "txt": TxtTransformer,
    }
    return classes[options.format]
