"""Orphan age with whole-second Last-Modified stamps (Swift's S3 layer rounds them up)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.janitor.reconcile import written_before

CUTOFF = datetime(2026, 12, 6, 12, 0, 0, 500_000, tzinfo=UTC)


def test_whole_second_stamp_rounded_up_from_before_the_cutoff_counts_as_older() -> None:
    # Written at 12:00:00.2, reported as 12:00:01: it was written before a 12:00:00.5 cutoff.
    assert written_before(datetime(2026, 12, 6, 12, 0, 1, tzinfo=UTC), CUTOFF)
    assert written_before(datetime(2026, 12, 6, 12, 0, 0, tzinfo=UTC), CUTOFF)


def test_whole_second_stamp_past_the_cutoff_second_is_younger() -> None:
    assert not written_before(datetime(2026, 12, 6, 12, 0, 2, tzinfo=UTC), CUTOFF)


def test_precise_stamps_compare_exactly() -> None:
    assert written_before(CUTOFF - timedelta(microseconds=1), CUTOFF)
    assert not written_before(CUTOFF + timedelta(microseconds=1), CUTOFF)
    assert not written_before(CUTOFF, CUTOFF)
