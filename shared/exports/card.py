"""The dataset card (README.md) of a split export, in the Hugging Face dataset-card layout.

YAML front matter (license, task category, size, and the `configs` that map the files to the
train and validation splits, so a hub loads them as is), then counts by split, tier and
status, the quality score distribution, the models and judge versions used, the export date
and the export config.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from shared.models.export import ExportConversation

SPLITS = ("train", "validation")
# Score buckets [0, 1), [1, 2), ... [9, 10]; a 10 falls in the last one.
_BUCKETS = [f"{low}-{low + 1}" for low in range(10)]


@dataclass
class CardStats:
    """What the card reports, counted one exported conversation at a time."""

    tiers: dict[str, Counter[str]] = field(default_factory=lambda: {s: Counter() for s in SPLITS})
    statuses: Counter[str] = field(default_factory=Counter)
    scores: Counter[str] = field(default_factory=Counter)
    models: Counter[str] = field(default_factory=Counter)
    judges: Counter[str] = field(default_factory=Counter)

    def add(self, split: str, conv: ExportConversation) -> None:
        """Count one conversation written to `split`."""
        self.tiers[split][conv.tier] += 1
        self.statuses[conv.status] += 1
        score = conv.quality_score
        self.scores["unscored" if score is None else _BUCKETS[min(int(score), 9)]] += 1
        self.models[conv.model or "imported (no model)"] += 1
        judge = conv.quality_metrics.get("judge_version") if conv.quality_metrics else None
        self.judges[str(judge) if judge else "built-in heuristic scorer"] += 1


def _size_category(total: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if total < limit:
            return name
    return "100K<n<1M" if total < 1_000_000 else "n>1M"


def _front_matter(total: int, ext: str, license_id: str | None) -> list[str]:
    files = [f"  - split: {s}\n    path: {s}.{ext}" for s in SPLITS]
    return [
        "---",
        f"license: {license_id or 'other'}",
        "task_categories:\n- text-generation",
        "tags:\n- conversational\n- convoforge",
        f"size_categories:\n- {_size_category(total)}",
        "configs:\n- config_name: default\n  data_files:",
        *files,
        "---",
    ]


def _table(header: list[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(v) for v in row) + " |" for row in rows]


def render_card(
    stats: CardStats,
    *,
    title: str,
    ext: str,
    export_date: datetime,
    config: dict[str, Any],
    license_id: str | None,
) -> bytes:
    """The README.md bytes."""
    counts = {s: sum(stats.tiers[s].values()) for s in SPLITS}
    total = sum(counts.values())
    tiers = sorted(set(stats.tiers["train"]) | set(stats.tiers["validation"]))
    tier_rows = [[t, stats.tiers["train"][t], stats.tiers["validation"][t]] for t in tiers]
    score_keys = [b for b in [*_BUCKETS, "unscored"] if stats.scores[b]]
    lines = [
        *_front_matter(total, ext, license_id),
        f"\n# {title}\n",
        "Multi-turn conversations exported by Convoforge for supervised fine-tuning.\n",
        f"- Exported: {export_date.isoformat()}",
        f"- Conversations: {total} (train {counts['train']}, validation {counts['validation']})",
        f"- License: {license_id or 'not specified'}\n",
        "## Counts by tier\n",
        *_table(["tier", "train", "validation"], tier_rows),
        "\n## Counts by status\n",
        *_table(["status", "conversations"], sorted(stats.statuses.items())),
        "\n## Quality score distribution\n",
        *_table(["score", "conversations"], [[k, stats.scores[k]] for k in score_keys]),
        "\n## Models and judge versions\n",
        *_table(["model", "conversations"], sorted(stats.models.items())),
        "",
        *_table(["judge", "conversations"], sorted(stats.judges.items())),
        "\n## Export configuration\n",
        "```json",
        orjson.dumps(config, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS).decode(),
        "```",
        "",
    ]
    return "\n".join(lines).encode()
