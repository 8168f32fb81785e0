"""Calibration: how well "the judge would flag" (quality_overall < threshold) predicts "the
reviewer rejected" (docs/quality.md "Calibration").

Everything is computed from a tally of reviewed, judged conversations per hundredth of
quality_overall (`cents` = floor(100 x score), 100 for a perfect 1.0), which PostgreSQL groups
in one pass: at most 101 rows whatever the tenant's size. A candidate threshold k/100 flags
exactly the cents below k, so every candidate's confusion matrix is exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

BUCKET_CENTS = 10  # buckets 0.1 wide: [0.0, 0.1), ..., [0.9, 1.0] (1.0 in the last)


@dataclass(frozen=True, slots=True)
class Tally:
    """Reviewed conversations whose quality_overall is in [cents/100, (cents+1)/100)."""

    cents: int
    approved: int
    rejected: int


@dataclass(frozen=True, slots=True)
class Confusion:
    """Judge flag (positive) vs reviewer rejection (positive)."""

    true_positive: int  # flagged and rejected
    false_positive: int  # flagged, yet approved
    false_negative: int  # not flagged, yet rejected
    true_negative: int  # not flagged and approved

    @property
    def total(self) -> int:
        """Every reviewed, judged conversation counted."""
        return self.true_positive + self.false_positive + self.false_negative + self.true_negative

    def metrics(self) -> dict[str, Any]:
        """The four counts with precision, recall, F1 and accuracy (None where undefined)."""
        tp, fp, fn = self.true_positive, self.false_positive, self.false_negative
        precision = _ratio(tp, tp + fp)
        recall = _ratio(tp, tp + fn)
        f1 = _ratio(2 * tp, 2 * tp + fp + fn)
        return {
            "true_positive": tp, "false_positive": fp, "false_negative": fn,
            "true_negative": self.true_negative, "precision": precision, "recall": recall,
            "f1": f1, "accuracy": _ratio(tp + self.true_negative, self.total),
        }  # fmt: skip


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def buckets(tallies: list[Tally]) -> list[dict[str, Any]]:
    """Ten 0.1-wide buckets of quality_overall: count, approved, rejected, approval rate."""
    out = []
    for index in range(100 // BUCKET_CENTS):
        inside = [t for t in tallies if min(t.cents // BUCKET_CENTS, 9) == index]
        approved = sum(t.approved for t in inside)
        rejected = sum(t.rejected for t in inside)
        out.append({
            "low": index / 10, "high": (index + 1) / 10, "count": approved + rejected,
            "approved": approved, "rejected": rejected,
            "approval_rate": _ratio(approved, approved + rejected),
        })  # fmt: skip
    return out


def confusion_below(tallies: list[Tally], cents: int) -> Confusion:
    """The matrix for threshold cents/100: scores below it are flagged."""
    flagged = [t for t in tallies if t.cents < cents]
    passed = [t for t in tallies if t.cents >= cents]
    return Confusion(
        true_positive=sum(t.rejected for t in flagged),
        false_positive=sum(t.approved for t in flagged),
        false_negative=sum(t.rejected for t in passed),
        true_negative=sum(t.approved for t in passed),
    )


def suggest(tallies: list[Tally]) -> tuple[float, Confusion] | None:
    """The threshold (0.01 to 1.00) with the best F1 of "flag predicts reject"; ties go to the
    higher accuracy, then to the lower threshold (fewer flags). F1 rather than accuracy: when
    few conversations are rejected, "flag nothing" is accurate and useless. None without any
    rejection (nothing to predict)."""
    if not any(t.rejected for t in tallies):
        return None
    best: tuple[float, float, int] | None = None
    for cents in range(1, 101):
        matrix = confusion_below(tallies, cents)
        metrics = matrix.metrics()
        key = (metrics["f1"] or 0.0, metrics["accuracy"] or 0.0, -cents)
        if best is None or key > best:
            best = key
    assert best is not None
    cents = -best[2]
    return cents / 100, confusion_below(tallies, cents)
