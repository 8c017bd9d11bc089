"""The stats page's chart, drawn server-side as inline SVG: hold rate and queue size per hour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from markupsafe import Markup, escape

__all__ = ["hourly_chart"]

_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 48, 16, 36


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times 10^n at or above value: axes in round steps."""
    if value <= 0:
        return 1.0
    power = math.pow(10, math.floor(math.log10(value)))
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * power:
            return step * power
    return 10 * power


def _path(points: Sequence[tuple[float, float] | None]) -> str:
    """An SVG path through the points; a None (an hour with nothing decided) breaks the line."""
    commands: list[str] = []
    pen_down = False
    for point in points:
        if point is None:
            pen_down = False
            continue
        commands.append(f"{'L' if pen_down else 'M'}{point[0]:.1f},{point[1]:.1f}")
        pen_down = True
    return " ".join(commands)


@dataclass(frozen=True)
class _Frame:
    """The plot's geometry: where hour i sits across, and where a fraction of an axis sits up."""

    width: int
    height: int
    hours: int

    @property
    def plot_w(self) -> float:
        return self.width - _LEFT - _RIGHT

    @property
    def plot_h(self) -> float:
        return self.height - _TOP - _BOTTOM

    @property
    def slot(self) -> float:
        return self.plot_w / self.hours

    def x(self, i: int) -> float:
        return _LEFT + self.slot * (i + 0.5)

    def y(self, fraction: float) -> float:
        return _TOP + self.plot_h * (1 - fraction)


def _axes(frame: _Frame, rate_top: float, size_top: float) -> list[str]:
    """Five grid lines, labelled with the hold rate on the left and the queue size on the right."""
    parts = []
    for tick in range(5):
        fraction = tick / 4
        y = frame.y(fraction)
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{frame.width - _RIGHT}" '
            f'y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        parts.append(
            f'<text class="axis rate" x="{_LEFT - 6}" y="{y + 4:.1f}" '
            f'text-anchor="end">{rate_top * fraction * 100:g}%</text>'
        )
        parts.append(
            f'<text class="axis size" x="{frame.width - _RIGHT + 6}" y="{y + 4:.1f}">'
            f"{size_top * fraction:g}</text>"
        )
    return parts


def _bars(
    frame: _Frame,
    series: Sequence[dict[str, Any]],
    *,
    rates: Sequence[float | None],
    sizes: Sequence[int],
    size_top: float,
) -> list[str]:
    """A bar per hour for the queue size, titled for a pointer, and at most eight hour labels."""
    parts = []
    for i, row in enumerate(series):
        bar_h = frame.plot_h * sizes[i] / size_top
        hour = row["hour"].astimezone(UTC) if row.get("hour") is not None else None
        label = hour.strftime("%d %b %H:00") if hour is not None else ""
        rate = rates[i]
        rate_text = "no decisions" if rate is None else f"hold rate {rate * 100:.1f}%"
        parts.append(
            f'<rect class="bar" x="{frame.x(i) - frame.slot * 0.35:.1f}" '
            f'y="{_TOP + frame.plot_h - bar_h:.1f}" '
            f'width="{frame.slot * 0.7:.1f}" height="{bar_h:.1f}">'
            f"<title>{escape(label)}: queue {sizes[i]}, {rate_text}</title></rect>"
        )
        # At most eight hour labels: more would overlap.
        if hour is not None and (i % max(1, math.ceil(frame.hours / 8)) == 0):
            parts.append(
                f'<text class="axis" x="{frame.x(i):.1f}" y="{frame.height - _BOTTOM + 16}" '
                f'text-anchor="middle">{escape(hour.strftime("%H:00"))}</text>'
            )
    return parts


def _rate_line(frame: _Frame, rates: Sequence[float | None], rate_top: float) -> list[str]:
    points = [
        None if r is None else (frame.x(i), frame.y(r / rate_top)) for i, r in enumerate(rates)
    ]
    parts = [f'<path class="rate-line" d="{_path(points)}"/>']
    parts.extend(
        f'<circle class="rate-dot" cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="2.5"/>'
        for p in points
        if p is not None
    )
    return parts


def hourly_chart(
    series: Sequence[dict[str, Any]], *, width: int = 760, height: int = 260
) -> Markup:
    """Hold rate (left axis, a line) and queue size (right axis, bars) for each hour."""
    frame = _Frame(width, height, max(len(series), 1))
    rates = [row.get("hold_rate") for row in series]
    sizes = [int(row.get("queue_size") or 0) for row in series]
    rate_top = _nice_ceiling(max([r for r in rates if r is not None] or [0.0]) or 0.1)
    # Four steps of a round whole number, so the queue axis never reads 1.25 comments.
    size_top = 4 * max(1.0, _nice_ceiling(max(sizes or [0]) / 4))
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Hold rate and queue size per hour</title>',
        f'<desc id="chart-desc">{frame.hours} hours; hold rate from 0 to {rate_top * 100:g}% on '
        f"the left, queue size from 0 to {size_top:g} on the right.</desc>",
        *_axes(frame, rate_top, size_top),
        *_bars(frame, series, rates=rates, sizes=sizes, size_top=size_top),
        *_rate_line(frame, rates, rate_top),
        f'<text class="legend rate" x="{_LEFT}" y="{height - 4}">— hold rate (left)</text>'
        f'<text class="legend size" x="{width - _RIGHT}" y="{height - 4}" '
        'text-anchor="end">▮ queue size (right)</text>',
        "</svg>",
    ]
    return Markup("".join(parts))
