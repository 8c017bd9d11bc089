"""The proposal rule of `calibrate --from-reviews`, on hand-made scores (no database, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from classifier import ATTRIBUTES
from service.models.labels import SiteLabels
from service.models.review_calibration import (
    MIN_HELD,
    ScoredReviews,
    SiteReviews,
    propose_from_reviews,
    propose_threshold,
    proposed_thresholds,
    trade_off_rows,
)

NO_TRAFFIC = np.empty(0)


def _reviews(rejected: list[float], approved: list[float]) -> tuple[np.ndarray, np.ndarray]:
    target = np.asarray([1.0] * len(rejected) + [0.0] * len(approved))
    return target, np.asarray(rejected + approved)


def test_a_precision_reached_only_by_fewer_than_min_held_comments_is_not_proposed() -> None:
    rejected = [0.9] * (MIN_HELD - 1)
    target, score = _reviews(rejected, [0.5] * 10)

    index, curve = propose_threshold(target, score, traffic=NO_TRAFFIC, target_precision=0.8)

    assert index is None
    assert np.nanmax(curve["precision"]) == 1.0, "reached, but on too few held comments"


def test_the_lowest_threshold_reaching_the_target_precision_is_proposed() -> None:
    target, score = _reviews([0.6, 0.7, 0.8, 0.9, 0.95], [0.1, 0.2, 0.3, 0.4, 0.5, 0.65])

    index, curve = propose_threshold(target, score, traffic=NO_TRAFFIC, target_precision=0.8)

    assert index is not None
    assert curve["threshold"][index] == pytest.approx(0.501)  # holds 5 rejected of 6
    assert curve["precision"][index] >= 0.8 > curve["precision"][index - 1]
    assert curve["held"][index] == 6


def test_nothing_below_the_lowest_reviewed_score_is_proposed() -> None:
    target, score = _reviews([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], [0.35])

    index, curve = propose_threshold(target, score, traffic=NO_TRAFFIC, target_precision=0.8)

    assert index is not None
    assert curve["threshold"][index] == pytest.approx(0.3)
    assert curve["precision"][0] >= 0.8, "every lower threshold reaches it too, unjudged"


def test_a_proposal_below_the_current_threshold_is_flagged_and_marked_in_the_trade_off() -> None:
    target, score = _reviews([0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9], [0.35, 0.1, 0.2, 0.25, 0.28])
    labels = np.full((len(target), len(ATTRIBUTES)), np.nan)
    labels[:, 0] = target
    proba = np.zeros((len(target), len(ATTRIBUTES)))
    proba[:, 0] = score
    reviews = SiteReviews(
        site="news",
        labels=SiteLabels(["text"] * len(target), labels, []),
        thresholds=dict.fromkeys(ATTRIBUTES, 0.5),
        traffic=[],
    )
    scored = ScoredReviews(
        reviews=reviews, proba=proba, traffic_proba=np.empty((0, len(ATTRIBUTES))), version="v"
    )

    toxic, *others = propose_from_reviews(scored, target_precision=0.8)

    assert toxic.attribute == "toxic" and toxic.threshold == pytest.approx(0.281)
    assert toxic.flag == "below current"
    assert all(p.curve is None and p.threshold is None for p in others), "too few reviews"
    assert proposed_thresholds([toxic, *others]) == {"toxic": toxic.threshold}
    marks = {row.threshold: row.mark for row in trade_off_rows(toxic) if row.mark}
    assert marks == {0.281: "proposed", 0.5: "current"}
