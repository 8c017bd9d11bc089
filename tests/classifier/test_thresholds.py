"""Threshold proposals from a target recall or a maximum hold rate, on hand-made scores."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from classifier import ATTRIBUTES
from classifier.thresholds import combined_hold, propose_thresholds

NAN = np.nan
SCORES = np.asarray([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
TARGET = np.asarray([1, 1, 1, 1, 0, 0, 0, 0], dtype=float)


def _matrices() -> tuple[np.ndarray, np.ndarray]:
    """toxic labelled as TARGET, insult labelled all 0, the other attributes unlabelled."""
    labels = np.full((len(SCORES), len(ATTRIBUTES)), NAN)
    labels[:, 0] = TARGET
    labels[:, ATTRIBUTES.index("insult")] = 0.0
    proba = np.tile(SCORES[:, None], (1, len(ATTRIBUTES)))
    return labels, proba


def test_target_recall_picks_the_highest_threshold_reaching_it() -> None:
    labels, proba = _matrices()
    proposed = propose_thresholds(labels, proba, target_recall=0.75)
    assert set(proposed) == {"toxic", "insult"}  # only labelled attributes
    toxic = proposed["toxic"]
    assert toxic["threshold"] == pytest.approx(0.7)
    assert toxic["recall"] == 0.75 and toxic["hold_rate"] == 0.375 and toxic["precision"] == 1.0
    assert proposed["insult"]["threshold"] is None and proposed["insult"]["rule"] == "no positives"


def test_max_hold_rate_picks_the_lowest_threshold_within_it() -> None:
    labels, proba = _matrices()
    proposed = propose_thresholds(labels, proba, max_hold_rate=0.5)
    toxic = proposed["toxic"]
    assert toxic["threshold"] == pytest.approx(0.501)
    assert toxic["hold_rate"] == 0.5 and toxic["recall"] == 1.0
    assert proposed["insult"]["threshold"] == pytest.approx(0.501)  # no positives needed
    assert proposed["insult"]["recall"] is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"target_recall": 0.5, "max_hold_rate": 0.5},
        {"target_recall": 0.0},
        {"max_hold_rate": 1.5},
    ],
)
def test_exactly_one_goal_in_range_is_required(kwargs: dict[str, Any]) -> None:
    labels, proba = _matrices()
    with pytest.raises(ValueError):
        propose_thresholds(labels, proba, **kwargs)


def test_combined_hold_holds_when_any_attribute_crosses() -> None:
    labels = np.asarray([[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 0], [0] * 6, [NAN] * 6], float)
    proba = np.asarray(
        [[0.9, 0, 0, 0, 0, 0], [0.1, 0, 0, 0, 0.8, 0], [0.1, 0, 0, 0, 0.6, 0], [0.9] * 6]
    )
    result = combined_hold(labels, proba, {"toxic": 0.5, "insult": 0.7})
    assert result == {"n": 3, "hold_rate": pytest.approx(2 / 3), "recall": 1.0, "precision": 1.0}
    looser = combined_hold(labels, proba, {"toxic": 0.5, "insult": 0.5})
    assert looser["hold_rate"] == 1.0 and looser["precision"] == pytest.approx(2 / 3)
