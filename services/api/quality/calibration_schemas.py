"""Response bodies of GET /v1/quality/calibration."""

from __future__ import annotations

from pydantic import BaseModel, Field


class CalibrationBucket(BaseModel):
    """Reviewed conversations whose quality_overall is in [low, high) (the last includes 1.0)."""

    low: float
    high: float
    count: int
    approved: int
    rejected: int
    approval_rate: float | None = Field(description="approved / count; null for an empty bucket")


class Agreement(BaseModel):
    """ "Judge would flag" (quality_overall < threshold) against "reviewer rejected"."""

    threshold: float
    true_positive: int = Field(description="flagged and rejected")
    false_positive: int = Field(description="flagged, yet approved")
    false_negative: int = Field(description="not flagged, yet rejected")
    true_negative: int = Field(description="not flagged and approved")
    precision: float | None = Field(description="of the flagged, the share rejected")
    recall: float | None = Field(description="of the rejected, the share flagged")
    f1: float | None
    accuracy: float | None = Field(description="share of decisions the flag agrees with")


class Calibration(BaseModel):
    """How well the judge's scores predict the reviewers' decisions."""

    reviewed: int = Field(description="approved + rejected conversations with a judge score")
    approved: int
    rejected: int
    reviewed_unjudged: int = Field(description="decisions on conversations without a judge score")
    buckets: list[CalibrationBucket]
    agreement: Agreement = Field(description="at the requested (or configured) threshold")
    suggested: Agreement | None = Field(
        description="the threshold (0.01 steps) with the best F1, ties to higher accuracy, then "
        "to the lower threshold; null when no judged conversation was rejected"
    )
