"""An HTML evaluation report with PNG plots per labelled attribute (ROC, PR, calibration...)."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import precision_recall_curve, roc_auc_score, roc_curve

from classifier.attributes import ATTRIBUTES
from classifier.evaluation import attribute_metrics, threshold_table
from classifier.thresholds import curve_on_grid

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["PLOTS", "html_table", "write_report"]

# File stem -> caption; one PNG per labelled attribute and plot.
PLOTS: dict[str, str] = {
    "roc": "ROC curve",
    "pr": "Precision-recall curve",
    "calibration": "Calibration (reliability diagram)",
    "histogram": "Score histogram by label",
    "tradeoff": "Hold rate vs recall",
}
_MARKED = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def _figure() -> tuple[Figure, Axes]:
    # Figure without pyplot draws on the Agg canvas and leaves the global backend alone.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.8, 3.6), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def _roc(ax: Axes, target: np.ndarray, *, score: np.ndarray, threshold: float | None) -> None:
    fpr, tpr, _ = roc_curve(target, score)
    ax.plot(fpr, tpr, label=f"AUC {roc_auc_score(target, score):.4f}")
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey")
    if threshold is not None:
        negatives, positives = target == 0, target == 1
        x, y = (score[negatives] >= threshold).mean(), (score[positives] >= threshold).mean()
        ax.plot([x], [y], "o", color="tab:red", label=f"threshold {threshold:g}")
    ax.set(xlabel="false-positive rate", ylabel="true-positive rate (recall)")
    ax.legend(loc="lower right")


def _pr(ax: Axes, target: np.ndarray, *, score: np.ndarray, threshold: float | None) -> None:
    precision, recall, _ = precision_recall_curve(target, score)
    ax.plot(recall, precision)
    ax.axhline(target.mean(), linestyle=":", color="grey", label=f"prevalence {target.mean():.3f}")
    if threshold is not None and (score >= threshold).any():
        held = score >= threshold
        point = (target[held].sum() / target.sum(), target[held].mean())
        ax.plot(*point, "o", color="tab:red", label=f"threshold {threshold:g}")
    ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02))
    ax.legend(loc="lower left")


def _calibration(ax: Axes, target: np.ndarray, *, score: np.ndarray) -> None:
    bins = np.minimum((score * 10).astype(np.int64), 9)
    filled = [b for b in range(10) if (bins == b).any()]
    predicted = [score[bins == b].mean() for b in filled]
    observed = [target[bins == b].mean() for b in filled]
    counts = [int((bins == b).sum()) for b in filled]
    ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="perfectly calibrated")
    ax.plot(predicted, observed, "o-", label="model")
    for x, y, n in zip(predicted, observed, counts, strict=True):
        ax.annotate(str(n), (x, y), textcoords="offset points", xytext=(3, -10), fontsize=7)
    ax.set(xlabel="mean predicted probability", ylabel="observed positive share")
    ax.set(xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left", fontsize=8)


def _histogram(ax: Axes, target: np.ndarray, *, score: np.ndarray, threshold: float | None) -> None:
    edges = np.linspace(0, 1, 41)
    for value, name, colour in ((0, "label 0", "tab:blue"), (1, "label 1", "tab:red")):
        chosen = score[target == value]
        if len(chosen):
            weights = np.full(len(chosen), 1 / len(chosen))
            ax.hist(chosen, bins=edges.tolist(), weights=weights, alpha=0.55, color=colour)
            ax.plot([], [], color=colour, label=f"{name} (n={len(chosen)})", linewidth=6)
    if threshold is not None:
        ax.axvline(threshold, color="black", linestyle="--", label=f"threshold {threshold:g}")
    ax.set(xlabel="score", ylabel="share of the label's rows", yscale="log")
    ax.legend(loc="upper center", fontsize=8)


def _tradeoff(ax: Axes, target: np.ndarray, *, score: np.ndarray, threshold: float | None) -> None:
    curve = curve_on_grid(target, score)
    ax.plot(curve["hold_rate"], curve["recall"])
    for t in _MARKED:
        i = round(t * 1000)
        ax.plot(curve["hold_rate"][i], curve["recall"][i], ".", color="black")
        ax.annotate(
            f"{t:g}",
            (curve["hold_rate"][i], curve["recall"][i]),
            textcoords="offset points",
            xytext=(4, -8),
            fontsize=7,
        )
    if threshold is not None:
        i = int(np.argmin(np.abs(curve["threshold"] - threshold)))
        ax.plot(
            curve["hold_rate"][i], curve["recall"][i], "o", color="tab:red", label=f"{threshold:g}"
        )
        ax.legend(loc="lower right", title="threshold")
    ax.set(
        xlabel="hold rate (share of comments held)", ylabel="recall", xlim=(0, 1), ylim=(0, 1.02)
    )


def _attribute_plots(
    out_dir: Path,
    name: str,
    *,
    target: np.ndarray,
    score: np.ndarray,
    threshold: float | None,
) -> list[tuple[str, str]]:
    """Write the PNGs of one attribute; return (file name, caption) pairs."""
    both = 0 < target.sum() < len(target)
    written = []
    for stem, caption in PLOTS.items():
        if stem in ("roc", "pr", "tradeoff") and not both:
            continue  # undefined with a single class
        figure, ax = _figure()
        if stem == "roc":
            _roc(ax, target, score=score, threshold=threshold)
        elif stem == "pr":
            _pr(ax, target, score=score, threshold=threshold)
        elif stem == "calibration":
            _calibration(ax, target, score=score)
        elif stem == "histogram":
            _histogram(ax, target, score=score, threshold=threshold)
        else:
            _tradeoff(ax, target, score=score, threshold=threshold)
        ax.set_title(f"{name}: {caption}", fontsize=10)
        ax.grid(alpha=0.3)
        file_name = f"{name}_{stem}.png"
        figure.savefig(out_dir / file_name)
        written.append((file_name, caption))
    return written


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.4f}"
    return html.escape(str(value))


def html_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows of dicts (same keys) as an escaped HTML table."""
    if not rows:
        return "<p>(no rows)</p>"
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row.values()) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; max-width: 1100px; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.6rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { display: inline-block; margin: 0.4rem; }
figcaption { font-size: 0.8rem; color: #555; }
img { max-width: 480px; }
"""


def write_report(
    labels: np.ndarray,
    proba: np.ndarray,
    out_dir: str | Path,
    *,
    title: str,
    thresholds: Mapping[str, float] | None = None,
    notes: Sequence[str] = (),
    extra_tables: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
) -> Path:
    """Write out_dir/index.html and its PNGs for every attribute with labelled rows.

    `thresholds` (attribute -> hold threshold, e.g. the service's) are marked on the plots.
    The page holds the metric table, the hold rate / recall / precision table by threshold,
    any `extra_tables` (title -> rows) and the plots. Returns the path of index.html.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    labels, proba = np.asarray(labels, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    sections = []
    for j, name in enumerate(ATTRIBUTES):
        known = ~np.isnan(labels[:, j])
        if not known.any():
            continue
        threshold = None if thresholds is None else thresholds.get(name)
        figures = _attribute_plots(
            out_dir, name, target=labels[known, j], score=proba[known, j], threshold=threshold
        )
        images = "".join(
            f'<figure><img src="{html.escape(f)}" alt="{html.escape(f"{name}: {c}")}">'
            f"<figcaption>{html.escape(c)}</figcaption></figure>"
            for f, c in figures
        )
        sections.append(f"<h3>{html.escape(name)}</h3>{images}")
    tables = {
        "Metrics per attribute": attribute_metrics(labels, proba),
        "Hold rate, recall and precision by threshold": threshold_table(labels, proba),
        **(extra_tables or {}),
    }
    marked = ""
    if thresholds:
        marked = html_table([{"attribute": k, "threshold": v} for k, v in thresholds.items()])
    page = "".join(
        [
            "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
            f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
            f"<h1>{html.escape(title)}</h1>",
            "".join(f"<p>{html.escape(n)}</p>" for n in notes),
            *(f"<h2>{html.escape(t)}</h2>{html_table(rows)}" for t, rows in tables.items()),
            f"<h2>Thresholds marked on the plots</h2>{marked}" if marked else "",
            "<h2>Plots</h2>",
            *sections,
            "</body></html>\n",
        ]
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
