"""The promotion rule on hand-made figures, and promotion refusing a corrupt artifact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from classifier import ATTRIBUTES, BiasReport, save_model
from classifier.artifact import artifact_identity
from service.core.db import session_scope
from service.core.errors import ArtifactCorrupt
from service.core.tables import ModelVersion
from service.models.promotion import Evaluation, judge, promote_checked
from service.models.registry import active_version, ensure_registered, register_version
from tests.factories import tiny_model

NAN = np.nan


def _labels(n: int = 40) -> np.ndarray:
    """Half toxic, half not; only `toxic` labelled."""
    labels = np.full((n, len(ATTRIBUTES)), NAN)
    labels[:, 0] = np.arange(n) % 2
    return labels


def _scores(labels: np.ndarray, *, flipped: int) -> np.ndarray:
    """Perfect scores, except `flipped` positives scored below every negative."""
    proba = np.full(labels.shape, 0.5)
    proba[:, 0] = np.where(labels[:, 0] == 1, 0.9, 0.1)
    positives = np.flatnonzero(labels[:, 0] == 1)[:flipped]
    proba[positives, 0] = 0.05
    return proba


def _bias(score: float, over: tuple[str, ...] = ()) -> BiasReport:
    rows = [{"identity": term, "fpr": 0.5 if term in over else 0.0} for term in ("gay", "muslim")]
    kinds = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
    return BiasReport(0.2, "toxic", rows, score, dict.fromkeys(kinds, score), score, 100)


def test_a_candidate_within_the_margin_everywhere_passes_and_the_summary_names_the_figures() -> (
    None
):
    labels = _labels()
    evaluation = Evaluation(
        "site_holdout", labels, _scores(labels, flipped=0), _scores(labels, flipped=1)
    )
    verdict = judge([evaluation], candidate_bias=_bias(0.95), active_bias=_bias(0.955), margin=0.01)
    assert verdict.passed and not verdict.failures
    assert "site_holdout toxic ROC-AUC 1.0 (active 0.95)" in verdict.summary


def test_a_candidate_worse_by_more_than_the_margin_on_one_evaluation_waits() -> None:
    labels = _labels()
    good = Evaluation("base_test", labels, _scores(labels, flipped=0), _scores(labels, flipped=0))
    worse = Evaluation(
        "site_holdout", labels, _scores(labels, flipped=3), _scores(labels, flipped=0)
    )
    verdict = judge([good, worse], candidate_bias=_bias(0.9), active_bias=_bias(0.9), margin=0.01)
    assert not verdict.passed
    assert verdict.failures == [
        "site_holdout: toxic ROC-AUC 0.8500 is 0.1500 below the active model's 1.0000 (margin 0.01)"
    ]


def test_an_evaluation_too_small_to_measure_cannot_vouch_for_the_candidate() -> None:
    labels = _labels(12)  # 6 of each class, fewer than 10
    tiny = Evaluation(
        "site_holdout", labels, _scores(labels, flipped=0), _scores(labels, flipped=0)
    )
    verdict = judge([tiny], candidate_bias=_bias(0.9), active_bias=_bias(0.9), margin=0.01)
    assert not verdict.passed
    assert "cannot vouch" in verdict.failures[0]


def test_fairness_regressions_block_promotion() -> None:
    labels = _labels()
    same = Evaluation("base_test", labels, _scores(labels, flipped=0), _scores(labels, flipped=0))
    newly_over = judge(
        [same], candidate_bias=_bias(0.95, over=("gay",)), active_bias=_bias(0.95), margin=0.01
    )
    assert not newly_over.passed and "gay" in newly_over.failures[0]
    still_over = judge(
        [same],
        candidate_bias=_bias(0.95, over=("gay",)),
        active_bias=_bias(0.95, over=("gay",)),
        margin=0.01,
    )
    assert still_over.passed, "a known problem that did not get worse is no regression"
    lower_score = judge([same], candidate_bias=_bias(0.90), active_bias=_bias(0.95), margin=0.01)
    assert not lower_score.passed and "final bias score" in lower_score.failures[0]


def test_a_version_whose_stored_artifact_is_corrupt_is_never_promoted(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    first = save_model(tiny_model(0), tmp_path / "first")
    second = save_model(tiny_model(1), tmp_path / "second")
    version = artifact_identity(second)[0]
    with session_scope(sessions) as session:
        ensure_registered(session, first)
        register_version(session, second, created_by="test")
        session.execute(
            update(ModelVersion)
            .where(ModelVersion.version == version)
            .values(archive=b"PK\x03\x04 truncated")
        )
    with session_scope(sessions) as session, pytest.raises(ArtifactCorrupt, match="sha256"):
        promote_checked(session, version, actor="alice", reason="looks better")
    with session_scope(sessions) as session:
        assert active_version(session) == artifact_identity(first)[0]


def test_weights_make_the_site_holdout_speak_for_traffic_not_for_held_comments() -> None:
    """The candidate misses one rare, heavily weighted positive (an audited approval standing
    for 20): unweighted it is within the margin, weighted it is not."""
    labels = _labels(200)
    candidate, active = _scores(labels, flipped=1), _scores(labels, flipped=0)
    weights = np.ones(len(labels))
    weights[np.flatnonzero(labels[:, 0] == 1)[0]] = 20.0
    plain = Evaluation("site_holdout", labels, candidate, active)
    weighted = Evaluation("site_holdout", labels, candidate, active, weights=weights)
    candidate_bias, active_bias = _bias(0.9), _bias(0.9)
    assert judge(
        [plain], candidate_bias=candidate_bias, active_bias=active_bias, margin=0.05
    ).passed
    verdict = judge([weighted], candidate_bias=candidate_bias, active_bias=active_bias, margin=0.05)
    assert not verdict.passed
    assert verdict.comparisons[0]["metric"] == "toxic ROC-AUC (weighted)"
