"""The Grafana dashboard in docs/ asks only for metrics the service exposes."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import Counter, Gauge, Histogram

from service.core import metrics
from service.http.metrics import BACKLOG_METRICS

DASHBOARD = Path(__file__).resolve().parents[2] / "docs" / "grafana-dashboard.json"


def _exposed() -> set[str]:
    names = set(BACKLOG_METRICS)
    for value in vars(metrics).values():
        # prometheus-client keeps a counter's name without its `_total`.
        name = getattr(value, "_name", None)
        if isinstance(value, Counter):
            names.add(f"{name}_total")
        elif isinstance(value, Histogram):
            names |= {f"{name}_bucket", f"{name}_sum", f"{name}_count"}
        elif isinstance(value, Gauge):
            names.add(str(name))
    return names


def test_every_panel_queries_metrics_the_service_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\bmoderation_[a-z_]+", expr)}
    assert used, "the dashboard queries nothing"
    assert used <= _exposed(), sorted(used - _exposed())
    titles = {panel["title"] for panel in dashboard["panels"]}
    for needed in ("Hold rate (15 min)", "Queue size", "Errors"):
        assert needed in titles
    assert any("Decision latency" in title for title in titles)


def test_the_panels_do_not_overlap() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in json.loads(DASHBOARD.read_text())["panels"]:
        box = panel["gridPos"]
        cells = {
            (x, y)
            for x in range(box["x"], box["x"] + box["w"])
            for y in range(box["y"], box["y"] + box["h"])
        }
        assert not cells & taken, panel["title"]
        assert box["x"] + box["w"] <= 24
        taken |= cells
