"""Site policy: turn per-attribute scores into approve or hold, with machine-readable reasons.

The model knows English only. A comment reliably detected to be in another language is not
judged by its scores: `language_verdict` holds it (or approves it, if the site's policy key
`"unsupported_language"` or the deployment's `MODERATION_UNSUPPORTED_LANGUAGE` says
`"approve"`) with the reason `{"code": Reason.UNSUPPORTED_LANGUAGE, "language", "confidence"}`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from service.rules.language import ENGLISH, LanguageGuess
from service.rules.reasons import Reason

__all__ = [
    "DEFAULT_TRUSTED_THRESHOLD",
    "LanguageAction",
    "Policy",
    "Verdict",
    "apply_policy",
    "author_verdict",
    "language_verdict",
    "policy_for_site",
]

LanguageAction = Literal["hold", "approve"]
# A trusted author's comment is held only when an attribute reaches this (or its own higher
# threshold): trust skips the borderline holds, not the clear ones.
DEFAULT_TRUSTED_THRESHOLD = 0.9
SUPPORTED_LANGUAGES = frozenset({ENGLISH})


@dataclass(frozen=True)
class Policy:
    """Hold when any attribute's score is at or above its threshold.

    `unsupported_language` says what happens to a comment in a language the model does not
    know: "hold" it for a moderator (the default) or "approve" it unscored.
    """

    thresholds: Mapping[str, float]
    unsupported_language: LanguageAction = "hold"
    trusted_threshold: float = DEFAULT_TRUSTED_THRESHOLD


@dataclass(frozen=True)
class Verdict:
    action: str  # "approve" | "hold"
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return {"approve": "approved", "hold": "held", "reject": "rejected"}[self.action]


def policy_for_site(
    defaults: Mapping[str, float],
    site_policy: Mapping[str, Any],
    *,
    unsupported_language: LanguageAction = "hold",
) -> Policy:
    """The deployment's defaults (thresholds, unsupported-language action) with the site's own
    overrides on top. An unknown unsupported-language action holds: a typo must not publish."""
    thresholds = dict(defaults)
    thresholds.update(site_policy.get("thresholds") or {})
    action = site_policy.get("unsupported_language", unsupported_language)
    if action not in get_args(LanguageAction):
        action = "hold"
    trusted = site_policy.get("trusted_threshold", DEFAULT_TRUSTED_THRESHOLD)
    if not isinstance(trusted, int | float) or not 0.0 <= trusted <= 1.0:
        trusted = DEFAULT_TRUSTED_THRESHOLD
    return Policy(
        thresholds=thresholds, unsupported_language=action, trusted_threshold=float(trusted)
    )


def author_verdict(trust: str) -> Verdict | None:
    """A banned author's comment is rejected unscored; every other author's is judged."""
    if trust == "banned":
        return Verdict("reject", [{"code": Reason.AUTHOR_BANNED}])
    return None


def language_verdict(policy: Policy, guess: LanguageGuess) -> Verdict | None:
    """The verdict for a comment the model cannot judge, or None when it should be scored.

    Only a reliable guess of another language counts: short, mixed and undetermined texts are
    scored as English.
    """
    if not guess.reliable or guess.language is None or guess.language in SUPPORTED_LANGUAGES:
        return None
    reason = {
        "code": Reason.UNSUPPORTED_LANGUAGE,
        "language": guess.language,
        "confidence": round(guess.confidence, 4),
    }
    return Verdict(policy.unsupported_language, [reason])


def apply_policy(policy: Policy, scores: Mapping[str, float], *, trust: str = "normal") -> Verdict:
    """Hold when an attribute reaches its threshold (a trusted author's: the trusted threshold,
    if higher); a premoderated author's comment is held whatever its scores."""
    if trust == "trusted":
        policy = Policy(
            thresholds={a: max(t, policy.trusted_threshold) for a, t in policy.thresholds.items()},
            unsupported_language=policy.unsupported_language,
            trusted_threshold=policy.trusted_threshold,
        )
    verdict = _by_scores(policy, scores)
    if trust == "premoderated" and verdict.action == "approve":
        return Verdict("hold", [{"code": Reason.AUTHOR_PREMODERATED}, *verdict.reasons])
    if trust == "trusted":
        verdict.reasons.append(
            {"code": Reason.AUTHOR_TRUSTED, "threshold": policy.trusted_threshold}
        )
    return verdict


def _by_scores(policy: Policy, scores: Mapping[str, float]) -> Verdict:
    crossed = [
        {
            "code": Reason.ATTRIBUTE_OVER_THRESHOLD,
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
                "code": Reason.ALL_BELOW_THRESHOLD,
                "attribute": nearest,
                "score": round(scores[nearest], 4),
                "threshold": policy.thresholds[nearest],
            }
        ],
    )
