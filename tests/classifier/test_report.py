"""The HTML evaluation report: files written, plots per labelled attribute, text escaped."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from classifier import ATTRIBUTES, ToxicityModel
from classifier.report import PLOTS, html_table, write_report

from .conftest import CorpusFactory


def test_report_writes_index_and_every_plot_per_labelled_attribute(
    model: ToxicityModel, make_corpus: CorpusFactory, tmp_path: Path
) -> None:
    texts, labels = make_corpus()
    labels[:, ATTRIBUTES.index("identity_hate")] = np.nan  # unlabelled: no plots for it
    labels[:, ATTRIBUTES.index("severe_toxic")] = 0.0  # one class: no ROC/PR/trade-off
    proba = model.predict_proba(texts)
    index = write_report(
        labels,
        proba,
        tmp_path / "report",
        title="synthetic <b>corpus</b>",
        thresholds={"toxic": 0.2},
    )
    assert index == tmp_path / "report" / "index.html"
    page = index.read_text(encoding="utf-8")
    assert "synthetic &lt;b&gt;corpus&lt;/b&gt;" in page and "<b>corpus" not in page
    for name in ("toxic", "obscene", "threat", "insult"):
        for stem in PLOTS:
            png = tmp_path / "report" / f"{name}_{stem}.png"
            assert png.stat().st_size > 1000, png
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert f'src="{png.name}"' in page
    written = {p.name for p in (tmp_path / "report").glob("*.png")}
    assert not any(p.startswith("identity_hate") for p in written)
    assert {"severe_toxic_calibration.png", "severe_toxic_histogram.png"} <= written
    assert "severe_toxic_roc.png" not in written
    assert "roc_auc" in page and "hold_rate" in page


def test_html_table_escapes_cells_and_shows_missing_values_as_dash() -> None:
    table = html_table([{"name": "<script>", "value": None, "share": 0.5}])
    assert "&lt;script&gt;" in table and "<script>" not in table
    assert "—" in table and "0.5000" in table
    assert html_table([]) == "<p>(no rows)</p>"
