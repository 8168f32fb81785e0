"""Janitor schedules: five-field cron strings (UTC) turned into arq's cron keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypedDict

# (name, lowest, highest) of each field, in crontab order.
_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day", 1, 31), ("month", 1, 12), ("weekday", 0, 7))


class CronFields(TypedDict, total=False):
    """arq's cron keyword arguments (a missing or None field matches every value)."""

    minute: set[int] | None
    hour: set[int] | None
    day: set[int] | None
    month: set[int] | None
    weekday: set[int] | None


class ScheduleError(ValueError):
    """A schedule setting that is not a cron expression we support."""


@dataclass(frozen=True)
class Schedule:
    """When a janitor task runs; `fields` are arq cron kwargs (None = every value)."""

    expression: str
    fields: CronFields

    @property
    def enabled(self) -> bool:
        """False for the schedule "off" (the task then runs only from the CLI)."""
        return bool(self.fields)


def parse_schedule(expression: str) -> Schedule:
    """Parse "minute hour day month weekday" (`*`, `n`, `a-b`, `*/s`, `a-b/s`, lists) or "off"."""
    text = " ".join(expression.split())
    if text.lower() == "off":
        return Schedule(expression="off", fields={})
    parts = text.split(" ")
    if len(parts) != 5:
        raise ScheduleError(f"{expression!r}: expected five fields or 'off'")
    minute, hour, day, month, weekday = (
        _parse_field(part, name, low, high)
        for part, (name, low, high) in zip(parts, _FIELDS, strict=True)
    )
    if day is not None and weekday is not None:
        # cron ORs day and weekday, arq ANDs them: refuse rather than silently differ.
        raise ScheduleError(f"{expression!r}: restrict day-of-month or weekday, not both")
    if weekday is not None:
        # cron counts from Sunday (0 or 7), Python's weekday() from Monday.
        weekday = {(value - 1) % 7 for value in weekday}
    fields = CronFields(minute=minute, hour=hour, day=day, month=month, weekday=weekday)
    return Schedule(expression=text, fields=fields)


def _parse_field(text: str, name: str, low: int, high: int) -> set[int] | None:
    if text == "*":
        return None
    values: set[int] = set()
    for item in text.split(","):
        values |= _parse_item(item, name, low, high)
    return values


def _parse_item(item: str, name: str, low: int, high: int) -> set[int]:
    span, _, step_text = item.partition("/")
    try:
        step = int(step_text) if step_text else 1
        if span == "*":
            first, last = low, high
        elif "-" in span:
            first, last = (int(value) for value in span.split("-", 1))
        else:
            first = int(span)
            last = high if step_text else first  # "5/15" means 5, 20, 35, 50
    except ValueError as exc:
        raise ScheduleError(f"{name} field {item!r} is not a number, range or step") from exc
    if step < 1 or not low <= first <= last <= high:
        raise ScheduleError(f"{name} field {item!r} is outside {low}-{high}")
    if span == "*" and name == "weekday":
        last = 6  # 7 is Sunday again
    return set(range(first, last + 1, step))
