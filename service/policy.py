"""Site policy: turn per-attribute scores into approve or hold, with machine-readable reasons."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Policy", "Verdict", "apply_policy", "policy_for_site"]


@dataclass(frozen=True)
class Policy:
    """Hold when any attribute's score is at or above its threshold."""

    thresholds: Mapping[str, float]


@dataclass(frozen=True)
class Verdict:
    action: str  # "approve" | "hold"
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return {"approve": "approved", "hold": "held", "reject": "rejected"}[self.action]


def policy_for_site(defaults: Mapping[str, float], site_policy: Mapping[str, Any]) -> Policy:
    """The deployment's default thresholds with the site's own overrides on top."""
    thresholds = dict(defaults)
    thresholds.update(site_policy.get("thresholds") or {})
    return Policy(thresholds=thresholds)


def apply_policy(policy: Policy, scores: Mapping[str, float]) -> Verdict:
    crossed = [
        {
            "code": "attribute_over_threshold",
            "attribute": attribute,
            "score": round(score, 4),
            "threshold": policy.thresholds[attribute],
        }
        for attribute, score in sorted(scores.items(), key=lambda item: -item[1])
        if attribute in policy.thresholds and score >= policy.thresholds[attribute]
    ]
    if crossed:
        return Verdict("hold", crossed)
    # Say how close the nearest attribute came, so an approval is explained too.
    nearest = max(
        (a for a in scores if a in policy.thresholds),
        key=lambda a: scores[a] - policy.thresholds[a],
    )
    return Verdict(
        "approve",
        [
            {
                "code": "all_below_threshold",
                "attribute": nearest,
                "score": round(scores[nearest], 4),
                "threshold": policy.thresholds[nearest],
            }
        ],
    )
