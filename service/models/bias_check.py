"""The identity-term bias check of `moderation evaluate --bias`, at the service's thresholds.

A model scores the identity templates (`classifier.fairness.identity_bias`): a neutral sentence
that crosses the toxic threshold is a false positive, and one that crosses any attribute's
threshold would be held. Printing it is the CLI's job (`service.cli.model`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from classifier.fairness import BiasReport, identity_bias

__all__ = ["MatrixScorer", "bias_at", "offenders", "summary_rows"]


class MatrixScorer(Protocol):
    """A model scoring every attribute (ToxicityModel is one): the hold rate needs them all."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def bias_at(model: MatrixScorer, hold_thresholds: Mapping[str, float]) -> BiasReport:
    """The bias report of `model` holding at `hold_thresholds` (attribute -> threshold, toxic
    among them): false positives counted at the toxic threshold, holds across all of them."""
    return identity_bias(model, threshold=hold_thresholds["toxic"], hold_thresholds=hold_thresholds)


def summary_rows(report: BiasReport) -> list[dict[str, Any]]:
    """The Jigsaw-style summary (AUCs, their power means, the final score) as name/value rows."""
    return [{"summary": k, "value": v} for k, v in report.summary().items()]


def offenders(report: BiasReport) -> list[tuple[str, float]]:
    """The identities over the report's limit, in table order, each with its worse rate on
    neutral sentences: flagged toxic or held for any attribute."""
    over = set(report.over_limit())
    return [
        (row["identity"], max(row["fpr"], row.get("hold_rate") or 0.0))
        for row in report.rows
        if row["identity"] in over
    ]
