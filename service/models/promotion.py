"""The promotion rule: may a retrained candidate replace the active model without a person?

A candidate is promoted automatically only if, on every fixed evaluation, each attribute that
the evaluation can measure scores a ROC-AUC no lower than the active model's minus `margin`,
and its identity-fairness table does not regress: no identity that was within the neutral
-sentence limit goes over it, and the combined bias score falls by no more than `margin`.
An evaluation that can measure no attribute (too few labelled rows of each class) cannot
vouch for the candidate, so it then waits for an operator. ROC-AUC is compared, not calibration:
a site's labelled rows are held comments that moderators reviewed plus the approved ones they
audited, not a natural sample; their weights (service/models/labels.py) make its ROC-AUC an estimate
of the ROC-AUC on the site's traffic, but calibration on so few reweighted rows is noise.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy.orm import Session

from classifier.attributes import ATTRIBUTES
from service.core.errors import ArtifactCorrupt, ModelNotFound
from service.core.tables import ModelVersion
from service.models.registry import promote

if TYPE_CHECKING:
    from classifier.fairness import BiasReport

__all__ = [
    "MIN_CLASS_ROWS",
    "Evaluation",
    "Verdict",
    "bias_view",
    "judge",
    "promote_checked",
]

# An attribute is compared on an evaluation only with this many labelled rows of each class:
# below it one row moves the AUC by more than any sensible margin.
MIN_CLASS_ROWS = 10


@dataclass(frozen=True)
class Evaluation:
    """One fixed evaluation set, scored by both models."""

    name: str
    labels: np.ndarray  # (n, 6), NaN = not labelled
    candidate: np.ndarray  # (n, 6) probabilities
    active: np.ndarray
    weights: np.ndarray | None = None  # per row; None: each row counts once

    def metrics(self) -> dict[str, Any]:
        """Unweighted figures of each model (the rule's own, weighted ones are in its verdict)."""
        # Here, not at the top: scikit-learn's metrics are for promoting, and an API process
        # that never promotes never pays for them (about 80 MB).
        from classifier.evaluation import attribute_metrics

        return {
            "rows": len(self.labels),
            "weighted": self.weights is not None,
            "candidate": attribute_metrics(self.labels, self.candidate),
            "active": attribute_metrics(self.labels, self.active),
        }


@dataclass(frozen=True)
class Verdict:
    """Whether the rule passed, every figure it compared, and why it failed if it did."""

    passed: bool
    comparisons: list[dict[str, Any]]
    failures: list[str]
    summary: str
    margin: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "margin": self.margin,
            "comparisons": self.comparisons,
            "failures": self.failures,
            "summary": self.summary,
        }


def _measurable(labels: np.ndarray, min_class_rows: int) -> list[int]:
    columns = []
    for j in range(len(ATTRIBUTES)):
        known = labels[~np.isnan(labels[:, j]), j]
        positives = int(known.sum())
        if positives >= min_class_rows and len(known) - positives >= min_class_rows:
            columns.append(j)
    return columns


def _auc(labels: np.ndarray, proba: np.ndarray, j: int, weights: np.ndarray | None) -> float:
    from sklearn.metrics import roc_auc_score  # see Evaluation.metrics

    known = ~np.isnan(labels[:, j])
    weight = None if weights is None else weights[known]
    return float(roc_auc_score(labels[known, j], proba[known, j], sample_weight=weight))


def bias_view(report: BiasReport) -> dict[str, Any]:
    """What the registry keeps of a bias evaluation: the summary, the table, who is over."""
    return {"summary": report.summary(), "over_limit": report.over_limit(), "rows": report.rows}


def _compare(
    evaluation: Evaluation, *, margin: float, min_class_rows: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """(comparisons, failures) of one evaluation: each measurable attribute's ROC-AUC."""
    comparisons: list[dict[str, Any]] = []
    failures: list[str] = []
    columns = _measurable(evaluation.labels, min_class_rows)
    if not columns:
        failures.append(
            f"{evaluation.name}: no attribute has {min_class_rows} labelled rows of each "
            f"class ({len(evaluation.labels)} rows), so it cannot vouch for the candidate"
        )
        return comparisons, failures
    for j in columns:
        candidate = _auc(evaluation.labels, evaluation.candidate, j, evaluation.weights)
        active = _auc(evaluation.labels, evaluation.active, j, evaluation.weights)
        ok = candidate >= active - margin
        comparisons.append(
            {
                "evaluation": evaluation.name,
                "metric": f"{ATTRIBUTES[j]} ROC-AUC"
                + (" (weighted)" if evaluation.weights is not None else ""),
                "candidate": round(candidate, 4),
                "active": round(active, 4),
                "ok": ok,
            }
        )
        if not ok:
            failures.append(
                f"{evaluation.name}: {ATTRIBUTES[j]} ROC-AUC {candidate:.4f} is "
                f"{active - candidate:.4f} below the active model's {active:.4f} "
                f"(margin {margin:g})"
            )
    return comparisons, failures


def _compare_bias(
    candidate_bias: BiasReport, active_bias: BiasReport, *, margin: float
) -> tuple[list[dict[str, Any]], list[str]]:
    """(comparisons, failures) of the identity-fairness tables."""
    failures: list[str] = []
    newly_over = sorted(set(candidate_bias.over_limit()) - set(active_bias.over_limit()))
    comparisons: list[dict[str, Any]] = [
        {
            "evaluation": "identity fairness",
            "metric": "identities over the neutral-sentence limit",
            "candidate": len(candidate_bias.over_limit()),
            "active": len(active_bias.over_limit()),
            "ok": not newly_over,
        }
    ]
    if newly_over:
        failures.append(
            "identity fairness: neutral sentences about "
            f"{', '.join(newly_over)} are now held above {candidate_bias.max_fpr:.0%}"
        )
    score_ok = candidate_bias.final_score >= active_bias.final_score - margin
    comparisons.append(
        {
            "evaluation": "identity fairness",
            "metric": "final bias score",
            "candidate": round(candidate_bias.final_score, 4),
            "active": round(active_bias.final_score, 4),
            "ok": score_ok,
        }
    )
    if not score_ok:
        failures.append(
            f"identity fairness: final bias score {candidate_bias.final_score:.4f} is "
            f"{active_bias.final_score - candidate_bias.final_score:.4f} below the active "
            f"model's {active_bias.final_score:.4f} (margin {margin:g})"
        )
    return comparisons, failures


def judge(
    evaluations: Sequence[Evaluation],
    *,
    candidate_bias: BiasReport,
    active_bias: BiasReport,
    margin: float,
    min_class_rows: int = MIN_CLASS_ROWS,
) -> Verdict:
    """Apply the promotion rule (see the module docstring) to figures measured on both models."""
    comparisons: list[dict[str, Any]] = []
    failures: list[str] = []
    for evaluation in evaluations:
        compared, failed = _compare(evaluation, margin=margin, min_class_rows=min_class_rows)
        comparisons += compared
        failures += failed
    compared, failed = _compare_bias(candidate_bias, active_bias, margin=margin)
    comparisons += compared
    failures += failed
    summary = "; ".join(
        f"{c['evaluation']} {c['metric']} {c['candidate']} (active {c['active']})"
        for c in comparisons
    )
    return Verdict(not failures, comparisons, failures, f"{summary}; margin {margin:g}", margin)


def _check_archive(session: Session, version: str) -> None:
    row = session.get(ModelVersion, version)
    if row is None:
        raise ModelNotFound(f"no model version {version!r}", field="version")
    if hashlib.sha256(row.archive).hexdigest() != row.archive_sha256:
        raise ArtifactCorrupt(
            f"model version {version!r}: its stored artifact does not match its sha256; "
            "it cannot be promoted",
            field="version",
        )


def promote_checked(
    session: Session, version: str, *, actor: str, reason: str, action: str = "promote"
) -> dict[str, Any]:
    """Promote `version` after checking its stored artifact, so the alias never points at a
    version that every process would refuse to load."""
    _check_archive(session, version)
    return promote(session, version, actor=actor, reason=reason, action=action)
