"""Bar charts as geometry for server-drawn SVG: no JavaScript, no float in the values.

A chart is one series on its own axis (one component, in its unit; one currency), so
nothing depends on telling colours apart: every bar's value is in its `<title>`, the
axis carries labelled ticks, and the page lists the same numbers in a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

__all__ = ["Bar", "Chart", "bar_chart", "days_between"]

WIDTH = Decimal(720)
HEIGHT = Decimal(200)
LEFT = Decimal(64)  # room for the axis labels
BOTTOM = Decimal(24)
TOP = Decimal(8)
_PIXEL = Decimal("0.1")


@dataclass(frozen=True, slots=True)
class Bar:
    x: Decimal
    y: Decimal
    width: Decimal
    height: Decimal
    label: str
    value: Decimal


@dataclass(frozen=True, slots=True)
class Tick:
    y: Decimal
    value: Decimal


@dataclass(frozen=True, slots=True)
class Chart:
    bars: list[Bar]
    ticks: list[Tick]
    width: Decimal = WIDTH
    height: Decimal = HEIGHT
    left: Decimal = LEFT
    baseline: Decimal = HEIGHT - BOTTOM

    @property
    def first_label(self) -> str:
        return self.bars[0].label if self.bars else ""

    @property
    def last_label(self) -> str:
        return self.bars[-1].label if self.bars else ""


def _px(value: Decimal) -> Decimal:
    return value.quantize(_PIXEL, rounding=ROUND_HALF_UP)


def nice_ceiling(value: Decimal) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 times a power of ten that is at least `value` (> 0)."""
    exponent = value.adjusted()
    for _ in range(2):
        for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5)):
            candidate = step.scaleb(exponent)
            if candidate >= value:
                return candidate
        exponent += 1
    return Decimal(10).scaleb(exponent)


def bar_chart(points: Sequence[tuple[str, Decimal]]) -> Chart:
    """Bars for (label, value) pairs, left to right; negative values draw as zero."""
    plot_width = WIDTH - LEFT
    plot_height = HEIGHT - BOTTOM - TOP
    largest = max((value for _, value in points), default=Decimal(0))
    top = nice_ceiling(largest) if largest > 0 else Decimal(1)
    slot = plot_width / max(len(points), 1)
    gap = min(slot / 5, Decimal(4))
    bars = []
    for index, (label, value) in enumerate(points):
        height = plot_height * max(value, Decimal(0)) / top
        bars.append(
            Bar(
                x=_px(LEFT + slot * index + gap / 2),
                y=_px(HEIGHT - BOTTOM - height),
                width=_px(slot - gap),
                height=_px(height),
                label=label,
                value=value,
            )
        )
    ticks = [
        Tick(y=_px(HEIGHT - BOTTOM - plot_height * share / 4), value=(top * share / 4).normalize())
        for share in range(5)
    ]
    return Chart(bars=bars, ticks=ticks)


def days_between(start: datetime, end: datetime) -> list[str]:
    """Every UTC day (`YYYY-MM-DD`) from `start`'s to `end`'s, both included."""
    first: date = start.date()
    count = (end.date() - first).days + 1
    return [(first + timedelta(days=n)).isoformat() for n in range(max(count, 0))]
