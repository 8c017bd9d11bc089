"""The stats chart: round axes, a line broken where nothing was decided, escaped labels."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from service.web.chart import hourly_chart


def _series(rates: list[float | None], sizes: list[int]) -> list[dict[str, object]]:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return [
        {"hour": start + timedelta(hours=i), "hold_rate": rate, "queue_size": size}
        for i, (rate, size) in enumerate(zip(rates, sizes, strict=True))
    ]


def test_axes_read_in_round_steps() -> None:
    svg = str(hourly_chart(_series([0.07, 0.09, 0.04], [3, 7, 5])))
    assert re.findall(r'class="axis size"[^>]*>([^<]*)<', svg) == ["0", "2", "4", "6", "8"]
    assert re.findall(r'class="axis rate"[^>]*>([^<]*)<', svg) == [
        "0%", "2.5%", "5%", "7.5%", "10%",
    ]  # fmt: skip


def test_an_hour_without_decisions_breaks_the_line() -> None:
    svg = str(hourly_chart(_series([0.1, None, 0.2, 0.3], [0, 0, 1, 1])))
    path = re.search(r'class="rate-line" d="([^"]*)"', svg)
    assert path
    assert path.group(1).count("M") == 2
    assert svg.count('<circle class="rate-dot"') == 3


def test_an_empty_period_still_draws_axes() -> None:
    svg = str(hourly_chart(_series([None] * 24, [0] * 24)))
    assert svg.count('<rect class="bar"') == 24
    assert 'd=""' in svg
