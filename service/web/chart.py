"""The stats page's chart, drawn server-side as inline SVG: hold rate and queue size per hour."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC
from typing import Any

from markupsafe import Markup, escape

__all__ = ["hourly_chart"]

_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 48, 16, 36


def _nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 2.5 or 5 times 10^n at or above value: axes in round steps."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
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


def hourly_chart(
    series: Sequence[dict[str, Any]], *, width: int = 760, height: int = 260
) -> Markup:
    """Hold rate (left axis, a line) and queue size (right axis, bars) for each hour."""
    plot_w, plot_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM
    n = max(len(series), 1)
    slot = plot_w / n
    rates = [row.get("hold_rate") for row in series]
    sizes = [int(row.get("queue_size") or 0) for row in series]
    rate_top = _nice_ceiling(max([r for r in rates if r is not None] or [0.0]) or 0.1)
    # Four steps of a round whole number, so the queue axis never reads 1.25 comments.
    size_top = 4 * max(1.0, _nice_ceiling(max(sizes or [0]) / 4))

    def x(i: int) -> float:
        return _LEFT + slot * (i + 0.5)

    def y(fraction: float) -> float:
        return _TOP + plot_h * (1 - fraction)

    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        'role="img" aria-labelledby="chart-title chart-desc" xmlns="http://www.w3.org/2000/svg">',
        '<title id="chart-title">Hold rate and queue size per hour</title>',
        f'<desc id="chart-desc">{n} hours; hold rate from 0 to {rate_top * 100:g}% on the left, '
        f"queue size from 0 to {size_top:g} on the right.</desc>",
    ]
    for tick in range(5):
        fraction = tick / 4
        parts.append(
            f'<line class="grid" x1="{_LEFT}" x2="{width - _RIGHT}" '
            f'y1="{y(fraction):.1f}" y2="{y(fraction):.1f}"/>'
        )
        parts.append(
            f'<text class="axis rate" x="{_LEFT - 6}" y="{y(fraction) + 4:.1f}" '
            f'text-anchor="end">{rate_top * fraction * 100:g}%</text>'
        )
        parts.append(
            f'<text class="axis size" x="{width - _RIGHT + 6}" y="{y(fraction) + 4:.1f}">'
            f"{size_top * fraction:g}</text>"
        )
    for i, row in enumerate(series):
        bar_h = plot_h * sizes[i] / size_top
        hour = row["hour"].astimezone(UTC) if row.get("hour") is not None else None
        label = hour.strftime("%d %b %H:00") if hour is not None else ""
        rate = rates[i]
        rate_text = "no decisions" if rate is None else f"hold rate {rate * 100:.1f}%"
        parts.append(
            f'<rect class="bar" x="{x(i) - slot * 0.35:.1f}" y="{_TOP + plot_h - bar_h:.1f}" '
            f'width="{slot * 0.7:.1f}" height="{bar_h:.1f}">'
            f"<title>{escape(label)}: queue {sizes[i]}, {rate_text}</title></rect>"
        )
        # At most eight hour labels: more would overlap.
        if hour is not None and (i % max(1, math.ceil(n / 8)) == 0):
            parts.append(
                f'<text class="axis" x="{x(i):.1f}" y="{height - _BOTTOM + 16}" '
                f'text-anchor="middle">{escape(hour.strftime("%H:00"))}</text>'
            )
    points = [None if r is None else (x(i), y(r / rate_top)) for i, r in enumerate(rates)]
    parts.append(f'<path class="rate-line" d="{_path(points)}"/>')
    parts.extend(
        f'<circle class="rate-dot" cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="2.5"/>'
        for p in points
        if p is not None
    )
    parts.append(
        f'<text class="legend rate" x="{_LEFT}" y="{height - 4}">— hold rate (left)</text>'
        f'<text class="legend size" x="{width - _RIGHT}" y="{height - 4}" '
        'text-anchor="end">▮ queue size (right)</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))
