"""Janitor schedules are settings: cron strings, "off", and the period the alert rule uses."""

from __future__ import annotations

import pytest

from services.janitor import worker
from services.janitor.runner import TASK_NAMES, schedule_of
from services.janitor.schedule import ScheduleError, parse_schedule
from shared.settings import Settings


def test_parses_cron_fields() -> None:
    schedule = parse_schedule("*/15 2,14 * * 1-5")
    assert schedule.fields == {
        "minute": {0, 15, 30, 45},
        "hour": {2, 14},
        "day": None,
        "month": None,
        "weekday": {0, 1, 2, 3, 4},  # cron Monday-Friday → Python's 0-4
    }
    assert parse_schedule("0 0 * * 0").fields["weekday"] == {6}  # Sunday
    assert parse_schedule("5/20 * * * *").fields["minute"] == {5, 25, 45}
    assert not parse_schedule("off").enabled


@pytest.mark.parametrize(
    "bad", ["* * * *", "61 * * * *", "0 0 1 * 1", "a * * * *", "*/0 * * * *", "5-2 * * * *"]
)
def test_rejects_what_it_cannot_honour(bad: str) -> None:
    with pytest.raises(ScheduleError):
        parse_schedule(bad)


def test_settings_reject_malformed_schedules() -> None:
    with pytest.raises(ValueError, match="five cron fields"):
        Settings(janitor_reconcile_schedule="hourly")


def test_default_schedules_and_periods() -> None:
    settings = Settings()
    periods = {name: worker.schedule_period(schedule_of(settings, name)) for name in TASK_NAMES}
    assert periods["expire-exports"] == 86_400  # daily 02:00 UTC
    assert periods["reconcile"] == 3_600
    assert periods["recover-stuck-jobs"] == periods["export-failure-ratio"] == 300
    assert 28 * 86_400 <= periods["prune-audit-logs"] <= 31 * 86_400
    assert periods["conversation-retention"] == 86_400
    assert periods["abort-stale-uploads"] == 3_600


def test_cron_jobs_follow_the_settings() -> None:
    settings = Settings(
        janitor_prune_audit_logs_schedule="off", janitor_reconcile_schedule="7 * * * *"
    )
    jobs = {job.name: job for job in worker.cron_jobs(settings)}
    assert set(jobs) == set(TASK_NAMES) - {"prune-audit-logs"}
    assert jobs["reconcile"].minute == {7}
    assert jobs["expire-exports"].hour == {2}
    assert all(job.unique and job.max_tries == 1 for job in jobs.values())
