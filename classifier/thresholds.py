"""Proposing hold thresholds per attribute from a target recall or a maximum hold rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from classifier.attributes import ATTRIBUTES

__all__ = ["GRID", "combined_hold", "curve_on_grid", "propose_thresholds"]

# Thresholds are proposed on a 0.001 grid: fine enough to hit a target, short enough to paste.
GRID: np.ndarray = np.round(np.arange(0, 1001) / 1000, 3)


def curve_on_grid(
    target: np.ndarray, score: np.ndarray, *, grid: Sequence[float] | np.ndarray = GRID
) -> dict[str, np.ndarray]:
    """Hold rate, recall and precision (NaN where undefined) at every threshold of `grid`.

    A comment is held when its score is >= the threshold, as in the service's policy.
    """
    grid = np.asarray(grid, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    order = np.sort(np.asarray(score, dtype=np.float64))
    positive_scores = np.sort(np.asarray(score, dtype=np.float64)[target == 1])
    held = len(order) - np.searchsorted(order, grid, side="left")
    caught = len(positive_scores) - np.searchsorted(positive_scores, grid, side="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        hold_rate = held / max(len(order), 1)
        recall = (
            caught / len(positive_scores) if len(positive_scores) else np.full(len(grid), np.nan)
        )
        precision = np.where(held > 0, caught / np.maximum(held, 1), np.nan)
    return {"threshold": grid, "hold_rate": hold_rate, "recall": recall, "precision": precision}


def _none_if_nan(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def propose_thresholds(
    labels: np.ndarray,
    proba: np.ndarray,
    *,
    target_recall: float | None = None,
    max_hold_rate: float | None = None,
    grid: Sequence[float] | np.ndarray = GRID,
) -> dict[str, dict[str, Any]]:
    """Per labelled attribute, the threshold meeting exactly one of two goals.

    - `target_recall` R: the highest threshold that still holds >= R of the positives
      (the fewest holds for that recall);
    - `max_hold_rate` H: the lowest threshold that holds <= H of the rows (the most
      recall for that workload).

    Returns attribute -> {threshold, hold_rate, recall, precision, n, positives, rule};
    `threshold` is None when the goal cannot be met (no positives for a recall target, or
    more than H of the rows score the grid's top value). Unlabelled attributes are left out.
    Raises ValueError unless exactly one goal in (0, 1] is given.
    """
    if (target_recall is None) == (max_hold_rate is None):
        raise ValueError("give exactly one of target_recall and max_hold_rate")
    goal = target_recall if target_recall is not None else max_hold_rate
    assert goal is not None
    if not 0.0 < goal <= 1.0:
        raise ValueError(f"the goal must be in (0, 1], got {goal}")
    labels, proba = np.asarray(labels, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    out: dict[str, dict[str, Any]] = {}
    for j, name in enumerate(ATTRIBUTES):
        known = ~np.isnan(labels[:, j])
        if not known.any():
            continue
        target, score = labels[known, j], proba[known, j]
        curve = curve_on_grid(target, score, grid=grid)
        # A float grid and float rates: forgive rounding in the last place.
        if target_recall is not None:
            ok = np.flatnonzero(curve["recall"] >= target_recall - 1e-12)
            index, rule = (int(ok[-1]) if len(ok) else None), f"recall>={target_recall:g}"
        else:
            ok = np.flatnonzero(curve["hold_rate"] <= max_hold_rate + 1e-12)  # type: ignore[operator]
            index, rule = (int(ok[0]) if len(ok) else None), f"hold_rate<={max_hold_rate:g}"
        row: dict[str, Any] = {"threshold": None, "hold_rate": None, "recall": None}
        row["precision"] = None
        if index is not None:
            row = {
                "threshold": float(curve["threshold"][index]),
                "hold_rate": float(curve["hold_rate"][index]),
                "recall": _none_if_nan(curve["recall"][index]),
                "precision": _none_if_nan(curve["precision"][index]),
            }
        elif target_recall is not None:
            rule = "no positives"
        else:
            rule = f"no threshold holds <= {max_hold_rate:g}"
        out[name] = {**row, "n": int(known.sum()), "positives": int(target.sum()), "rule": rule}
    return out


def combined_hold(
    labels: np.ndarray, proba: np.ndarray, thresholds: Mapping[str, float]
) -> dict[str, Any]:
    """Hold a row as soon as any attribute in `thresholds` crosses; measure on labelled rows.

    A row counts as bad when any of its known labels is 1, and is measured when at least one
    label is known. Recall and precision are None when undefined.
    """
    labels, proba = np.asarray(labels, dtype=np.float64), np.asarray(proba, dtype=np.float64)
    cut = np.asarray([thresholds.get(name, np.inf) for name in ATTRIBUTES], dtype=np.float64)
    measured = ~np.isnan(labels).all(axis=1)
    held = (proba[measured] >= cut).any(axis=1)
    bad = np.nan_to_num(labels[measured]).max(axis=1) > 0
    return {
        "n": int(measured.sum()),
        "hold_rate": float(held.mean()) if len(held) else None,
        "recall": float(held[bad].mean()) if bad.any() else None,
        "precision": float(bad[held].mean()) if held.any() else None,
    }
