"""Quality metrics for NaN-masked multi-label scores: AUCs, calibration, threshold tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

from classifier.attributes import ATTRIBUTES

__all__ = [
    "DEFAULT_THRESHOLDS",
    "attribute_metrics",
    "expected_calibration_error",
    "recommend_thresholds",
    "threshold_table",
]

DEFAULT_THRESHOLDS: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def expected_calibration_error(target: np.ndarray, proba: np.ndarray, *, bins: int = 10) -> float:
    """Mean |predicted - observed| rate over equal-width probability bins, weighted by size."""
    target = np.asarray(target, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    if len(target) == 0:
        return float("nan")
    which = np.minimum((proba * bins).astype(np.int64), bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = which == b
        if in_bin.any():
            error += in_bin.mean() * abs(proba[in_bin].mean() - target[in_bin].mean())
    return float(error)


def _labelled(
    labels: np.ndarray, proba: np.ndarray, *, column: int
) -> tuple[np.ndarray, np.ndarray]:
    known = ~np.isnan(labels[:, column])
    return labels[known, column], proba[known, column]


def attribute_metrics(labels: np.ndarray, proba: np.ndarray) -> list[dict[str, Any]]:
    """Per attribute with labelled rows: n, positives, ROC-AUC, PR-AUC (average precision), ECE.

    AUCs are None when the labelled rows hold only one class.
    """
    rows = []
    for j, name in enumerate(ATTRIBUTES):
        target, score = _labelled(labels, proba, column=j)
        if len(target) == 0:
            continue
        positives = int(target.sum())
        both = 0 < positives < len(target)
        rows.append(
            {
                "attribute": name,
                "n": len(target),
                "positives": positives,
                "roc_auc": float(roc_auc_score(target, score)) if both else None,
                "pr_auc": float(average_precision_score(target, score)) if both else None,
                "ece": expected_calibration_error(target, score),
            }
        )
    return rows


def threshold_table(
    labels: np.ndarray, proba: np.ndarray, *, thresholds: Sequence[float] = DEFAULT_THRESHOLDS
) -> list[dict[str, Any]]:
    """For each labelled attribute and threshold: hold rate (share of rows scored >= t),
    recall and precision (None when undefined)."""
    rows = []
    for j, name in enumerate(ATTRIBUTES):
        target, score = _labelled(labels, proba, column=j)
        if len(target) == 0:
            continue
        positives = target.sum()
        for t in thresholds:
            held = score >= t
            rows.append(
                {
                    "attribute": name,
                    "threshold": float(t),
                    "hold_rate": float(held.mean()),
                    "recall": float(target[held].sum() / positives) if positives else None,
                    "precision": float(target[held].mean()) if held.any() else None,
                }
            )
    return rows


def recommend_thresholds(
    labels: np.ndarray,
    proba: np.ndarray,
    *,
    min_recall: float = 0.8,
    min_precision: float = 0.7,
    grid: Sequence[float] = tuple(np.round(np.arange(0.02, 0.99, 0.01), 2)),
) -> dict[str, dict[str, Any]]:
    """Hold thresholds per attribute, chosen on rows at natural prevalence.

    Rule: the lowest threshold on `grid` whose precision is at least `min_precision` (so most
    held comments really are bad), unless that catches less than `min_recall` of the positives;
    then the highest threshold that still reaches `min_recall` (a human reviews holds, so
    missing abuse costs more than an extra review). Attributes without positives get 0.5.
    """
    out: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(ATTRIBUTES):
        target, score = _labelled(labels, proba, column=j)
        positives = target.sum() if len(target) else 0.0
        if not positives:
            out[name] = {
                "threshold": 0.5,
                "rule": "no positives",
                "recall": None,
                "precision": None,
                "hold_rate": None,
            }
            continue
        stats = []
        for t in grid:
            held = score >= t
            recall = target[held].sum() / positives
            precision = target[held].mean() if held.any() else 0.0
            stats.append((float(t), float(recall), float(precision), float(held.mean())))
        precise = [s for s in stats if s[2] >= min_precision]
        chosen, rule = (precise[0], f"precision>={min_precision}") if precise else (None, "")
        if chosen is None or chosen[1] < min_recall:
            recalled = [s for s in stats if s[1] >= min_recall]
            chosen, rule = (
                (recalled[-1], f"recall>={min_recall}")
                if recalled
                else (stats[0], "lowest grid threshold")
            )
        out[name] = {
            "threshold": chosen[0],
            "rule": rule,
            "recall": chosen[1],
            "precision": chosen[2],
            "hold_rate": chosen[3],
        }
    return out
