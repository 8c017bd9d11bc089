"""The proposal of `calibrate --data`, on hand-made labels and scores (no file, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from classifier import ATTRIBUTES
from service.models.file_calibration import held_together, propose_from_file

NAN = np.nan
TOXIC, INSULT = ATTRIBUTES.index("toxic"), ATTRIBUTES.index("insult")


def _file() -> tuple[np.ndarray, np.ndarray]:
    """Four rows: toxic labelled with two positives, insult labelled without any."""
    labels = np.full((4, len(ATTRIBUTES)), NAN)
    labels[:, TOXIC] = [1, 0, 1, 0]
    labels[:, INSULT] = [0, 0, 0, 0]
    proba = np.zeros((4, len(ATTRIBUTES)))
    proba[:, TOXIC] = [0.9, 0.2, 0.7, 0.1]
    proba[:, INSULT] = [0.6, 0.2, 0.2, 0.3]
    return labels, proba


def test_a_recall_target_proposes_only_for_labelled_attributes_with_positives() -> None:
    labels, proba = _file()

    proposal = propose_from_file(labels, proba, target_recall=1.0)

    assert proposal.chosen == {"toxic": 0.7}
    assert proposal.unproposed == [a for a in ATTRIBUTES if a != "toxic"]
    rows = {row["attribute"]: row for row in proposal.rows()}
    assert list(rows) == ["toxic", "insult"], "unlabelled attributes are left out"
    assert list(rows["toxic"]) == [
        "attribute", "n", "positives", "rule", "threshold", "hold_rate", "recall", "precision",
    ]  # fmt: skip
    assert rows["toxic"]["hold_rate"] == 0.5 and rows["toxic"]["precision"] == 1.0
    assert rows["insult"]["threshold"] is None and rows["insult"]["rule"] == "no positives"


def test_held_together_adds_the_current_thresholds_of_unproposed_attributes_when_given() -> None:
    labels, proba = _file()
    proposal = propose_from_file(labels, proba, target_recall=1.0)

    alone = held_together(labels, proba, proposal)
    with_current = held_together(
        labels, proba, proposal, current=dict.fromkeys(ATTRIBUTES, 0.15) | {"toxic": 0.01}
    )

    assert [row["thresholds"] for row in alone] == ["proposed, together"]
    assert alone[0]["hold_rate"] == 0.5
    assert with_current[0] == alone[0]
    assert with_current[1]["thresholds"].startswith("proposed + current for severe_toxic")
    # The proposal keeps toxic at 0.7; insult's current 0.15 also holds the two clean rows.
    assert with_current[1]["hold_rate"] == 1.0 and with_current[1]["precision"] == 0.5


def test_a_goal_outside_zero_to_one_or_two_goals_are_refused() -> None:
    labels, proba = _file()
    with pytest.raises(ValueError, match="exactly one"):
        propose_from_file(labels, proba, target_recall=0.9, max_hold_rate=0.1)
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        propose_from_file(labels, proba, max_hold_rate=1.5)
