"""The bias check of `evaluate --bias`, with a stand-in model that flags one identity."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from classifier import ATTRIBUTES
from service.models.bias_check import bias_at, offenders, summary_rows

TOXIC, INSULT = ATTRIBUTES.index("toxic"), ATTRIBUTES.index("insult")


class FlagsOneIdentity:
    """Scores every sentence naming `term` 0.5 on toxic, the rest 0.1; insult always 0.3."""

    def __init__(self, term: str) -> None:
        self.term = term

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        proba = np.zeros((len(texts), len(ATTRIBUTES)))
        proba[:, TOXIC] = [0.5 if self.term in t else 0.1 for t in texts]
        proba[:, INSULT] = 0.3
        return proba


def test_false_positives_count_at_the_toxic_threshold_and_holds_at_any() -> None:
    hold = dict.fromkeys(ATTRIBUTES, 0.9) | {"toxic": 0.4}

    report = bias_at(FlagsOneIdentity("Muslim"), hold)

    assert report.threshold == 0.4
    rows = {row["identity"]: row for row in report.rows}
    assert rows["Muslim"]["fpr"] == 1.0 and rows["Muslim"]["hold_rate"] == 1.0
    assert all(row["fpr"] == 0.0 for name, row in rows.items() if name != "Muslim")
    assert offenders(report) == [("Muslim", 1.0)]


def test_a_hold_for_another_attribute_makes_every_identity_an_offender_at_its_hold_rate() -> None:
    hold = dict.fromkeys(ATTRIBUTES, 0.9) | {"toxic": 0.4, "insult": 0.25}

    report = bias_at(FlagsOneIdentity("Muslim"), hold)

    assert offenders(report) == [(row["identity"], 1.0) for row in report.rows]


def test_the_summary_rows_name_each_figure_once() -> None:
    report = bias_at(FlagsOneIdentity("Muslim"), dict.fromkeys(ATTRIBUTES, 0.4))

    rows = summary_rows(report)

    assert [row["summary"] for row in rows] == list(report.summary())
    assert {"summary": "identities_over_limit", "value": 1} in rows
