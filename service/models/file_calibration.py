"""Hold thresholds proposed from a labelled file (`calibrate --data`).

Per labelled attribute, the threshold meeting one goal, a target recall or a maximum hold rate
(`classifier.thresholds.propose_thresholds`), and what holding at the proposals does when a
comment is held as soon as any attribute crosses. Printing it is the CLI's job
(`service.cli.calibrate`); the same for a site's moderator decisions is
`service.models.review_calibration`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from classifier import ATTRIBUTES
from classifier.thresholds import combined_hold, propose_thresholds

__all__ = ["FileProposal", "held_together", "propose_from_file"]

_COUNTS = ("n", "positives", "rule", "threshold")
_RATES = ("hold_rate", "recall", "precision")


@dataclass(frozen=True)
class FileProposal:
    """Per labelled attribute, the `propose_thresholds` row: threshold (None when the goal
    cannot be met), hold rate, recall, precision, n, positives and the rule applied."""

    proposed: dict[str, dict[str, Any]]

    @property
    def chosen(self) -> dict[str, float]:
        """The thresholds to use: the attributes with a proposal."""
        return {k: v["threshold"] for k, v in self.proposed.items() if v["threshold"] is not None}

    @property
    def unproposed(self) -> list[str]:
        """The attributes left at their current threshold (unlabelled or goal not met)."""
        chosen = self.chosen
        return [a for a in ATTRIBUTES if a not in chosen]

    def rows(self) -> list[dict[str, Any]]:
        """One row per labelled attribute: its counts and rule, then the rates at the proposal."""
        return [
            {"attribute": k, **{c: v[c] for c in _COUNTS}} | {c: v[c] for c in _RATES}
            for k, v in self.proposed.items()
        ]


def propose_from_file(
    labels: np.ndarray,
    proba: np.ndarray,
    *,
    target_recall: float | None = None,
    max_hold_rate: float | None = None,
) -> FileProposal:
    """Propose a threshold per labelled attribute of `labels` (NaN: unknown) from the model's
    scores `proba`, for exactly one goal in (0, 1]; ValueError otherwise."""
    return FileProposal(
        propose_thresholds(labels, proba, target_recall=target_recall, max_hold_rate=max_hold_rate)
    )


def held_together(
    labels: np.ndarray,
    proba: np.ndarray,
    proposal: FileProposal,
    *,
    current: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """What is held when any attribute crosses: at the proposed thresholds alone, then (given
    `current`, the thresholds in force) with the current ones for the unproposed attributes.

    Each row names its thresholds, then n, hold rate, recall and precision on the labelled rows.
    """
    rows = [{"thresholds": "proposed, together", **combined_hold(labels, proba, proposal.chosen)}]
    if proposal.unproposed and current is not None:
        rows.append(
            {
                "thresholds": f"proposed + current for {', '.join(proposal.unproposed)}",
                **combined_hold(labels, proba, {**current, **proposal.chosen}),
            }
        )
    return rows
