"""Bar geometry for the inline-SVG charts (the templates only draw what is computed here)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bar:
    """One bar: label, value and its rectangle."""

    label: str
    value: int
    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Bars:
    """A bar chart's bars and canvas size."""

    items: list[Bar]
    width: int
    height: int


def bars(values: list[tuple[str, int]], *, width: int = 420, height: int = 160) -> Bars:
    """Bars scaled to the largest value, with room for labels above and below."""
    top, bottom = 14, 16
    plot = height - top - bottom
    peak = max((value for _, value in values), default=0) or 1
    slot = width / max(len(values), 1)
    items = []
    for index, (label, value) in enumerate(values):
        h = round(plot * value / peak, 1)
        items.append(
            Bar(
                label,
                value,
                round(index * slot + slot * 0.15, 1),
                round(top + plot - h, 1),
                round(slot * 0.7, 1),
                h,
            )
        )
    return Bars(items, width, height)
