"""Metrics on hand-made scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from classifier import (
    ATTRIBUTES,
    DataError,
    attribute_metrics,
    load_corpus,
    recommend_thresholds,
    threshold_table,
)
from classifier.evaluation import expected_calibration_error

NAN = np.nan


def _labels_and_scores() -> tuple[np.ndarray, np.ndarray]:
    labels = np.full((4, len(ATTRIBUTES)), NAN)
    proba = np.zeros((4, len(ATTRIBUTES)))
    labels[:, 0] = [0, 0, 1, 1]
    proba[:, 0] = [0.1, 0.6, 0.4, 0.9]
    labels[:2, 3] = [0, 0]  # threat: labelled on two rows, no positives
    return labels, proba


def test_auc_counts_only_labelled_rows_and_skips_unlabelled_attributes() -> None:
    rows = {r["attribute"]: r for r in attribute_metrics(*_labels_and_scores())}
    assert set(rows) == {"toxic", "threat"}
    assert rows["toxic"]["n"] == 4 and rows["toxic"]["positives"] == 2
    assert rows["toxic"]["roc_auc"] == pytest.approx(0.75)  # 3 of 4 pairs ordered right
    assert rows["toxic"]["pr_auc"] == pytest.approx((1 + 2 / 3) / 2)
    assert rows["threat"]["roc_auc"] is None


def test_threshold_table_reports_hold_rate_and_recall() -> None:
    rows = threshold_table(*_labels_and_scores(), thresholds=(0.5,))
    toxic = next(r for r in rows if r["attribute"] == "toxic")
    assert toxic == {
        "attribute": "toxic",
        "threshold": 0.5,
        "hold_rate": 0.5,
        "recall": 0.5,
        "precision": 0.5,
    }
    threat = next(r for r in rows if r["attribute"] == "threat")
    assert threat["recall"] is None and threat["precision"] is None


def test_expected_calibration_error() -> None:
    assert expected_calibration_error(np.array([0, 1]), np.array([0.0, 1.0])) == 0.0
    assert expected_calibration_error(np.array([0, 0]), np.array([0.95, 0.95])) == (
        pytest.approx(0.95)
    )


def test_recommended_threshold_prefers_precision_then_recall() -> None:
    labels = np.full((10, len(ATTRIBUTES)), NAN)
    proba = np.zeros((10, len(ATTRIBUTES)))
    labels[:, 0] = [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]
    proba[:, 0] = [0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 0.3, 0.6, 0.7, 0.8]
    # At 0.11 five rows are held, four of them bad: precision 0.8 with full recall.
    chosen = recommend_thresholds(labels, proba)["toxic"]
    assert chosen["threshold"] == pytest.approx(0.11)
    assert chosen["rule"] == "precision>=0.7"

    proba[:, 0] = [0.35, 0.35, 0.35, 0.35, 0.35, 0.55, 0.3, 0.6, 0.7, 0.8]
    # Precision reaches 0.7 only from 0.36, where recall is 0.75 < 0.8; so the highest
    # threshold keeping recall >= 0.8 (0.30, all positives) wins.
    chosen = recommend_thresholds(labels, proba)["toxic"]
    assert chosen["threshold"] == pytest.approx(0.3)
    assert chosen["recall"] == 1.0 and chosen["rule"] == "recall>=0.8"


def test_attribute_without_positives_gets_the_neutral_threshold() -> None:
    labels = np.zeros((3, len(ATTRIBUTES)))
    chosen = recommend_thresholds(labels, np.full((3, len(ATTRIBUTES)), 0.2))
    assert chosen["threat"]["threshold"] == 0.5


def test_a_corpus_with_bad_labels_short_rows_or_bad_bytes_is_a_data_error(tmp_path: Path) -> None:
    bad_label = tmp_path / "bad_label.csv"
    bad_label.write_text("id,comment_text,toxic\n1,fine,0\n2,hmm,yes\n")
    with pytest.raises(DataError, match="line 3: label 'yes' is not 0 or 1"):
        load_corpus(bad_label)
    fractional = tmp_path / "fractional.csv"
    fractional.write_text("id,comment_text,toxic\n1,fine,0.4\n")
    with pytest.raises(DataError, match="not 0 or 1"):
        load_corpus(fractional)
    short = tmp_path / "short.csv"
    short.write_text("id,comment_text,toxic\n2,you idiot\n")
    assert np.isnan(load_corpus(short).labels[0, 0]), "a missing cell is unlabelled"
    not_utf8 = tmp_path / "latin1.csv"
    not_utf8.write_bytes("id,comment_text,toxic\n1,caf\u00e9,0\n".encode("latin-1"))
    with pytest.raises(DataError, match="UTF-8"):
        load_corpus(not_utf8)
    fake_gz = tmp_path / "fake.csv.gz"
    fake_gz.write_bytes(b"not gzip at all")
    with pytest.raises(DataError, match="cannot be read"):
        load_corpus(fake_gz)
