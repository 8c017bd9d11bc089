"""Site policy: turn per-attribute scores into approve or hold, with machine-readable reasons.

The model knows English only. A comment reliably detected to be in another language is not
judged by its scores: `language_verdict` holds it (or approves it, if the site's policy key
`"unsupported_language"` or the deployment's `MODERATION_UNSUPPORTED_LANGUAGE` says
`"approve"`) with the reason `{"code": Reason.UNSUPPORTED_LANGUAGE, "language", "confidence"}`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar, get_args

import structlog
from pydantic import BaseModel, ValidationError

from service.rules.language import ENGLISH, LanguageGuess
from service.rules.policy_body import (
    FloodRule,
    LinksRule,
    NewCommenterRule,
    RecentRejectionsRule,
    merge_policies,
)
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
    "reject_band",
    "resolve_policy",
]

log = structlog.get_logger(__name__)
R = TypeVar("R", bound=BaseModel)

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
    # Reject without a person at or above these (attribute_over_reject_threshold); none: off.
    reject_thresholds: Mapping[str, float] = field(default_factory=dict)
    links: LinksRule | None = None
    flood: FloodRule | None = None
    new_commenter: NewCommenterRule | None = None
    recent_rejections: RecentRejectionsRule | None = None
    premoderate_all: bool = False
    closed: bool = False
    closed_action: str = "refuse"

    @property
    def approved_needed(self) -> int:
        """How many approved comments a rule asks of an author: counting further is waste."""
        return max(
            self.new_commenter.approved_comments if self.new_commenter else 0,
            self.links.min_approved if self.links else 0,
        )

    @property
    def needs_history(self) -> bool:
        """Whether a rule reads the author's decided comments."""
        return bool(
            self.new_commenter
            or self.recent_rejections
            or (self.links is not None and self.links.min_approved > 0)
        )


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
    return resolve_policy(defaults, site_policy, unsupported_language=unsupported_language)


def resolve_policy(
    defaults: Mapping[str, float],
    *levels: Mapping[str, Any],
    unsupported_language: LanguageAction = "hold",
) -> Policy:
    """The policy in force under the levels' bodies (site, then section, then article)."""
    merged = merge_policies(*levels)
    thresholds = {**defaults, **(merged.get("thresholds") or {})}
    action = merged.get("unsupported_language", unsupported_language)
    if action not in get_args(LanguageAction):
        action = "hold"
    trusted = merged.get("trusted_threshold", DEFAULT_TRUSTED_THRESHOLD)
    if not isinstance(trusted, int | float) or not 0.0 <= trusted <= 1.0:
        trusted = DEFAULT_TRUSTED_THRESHOLD
    rules = merged.get("rules") or {}
    return Policy(
        thresholds=thresholds,
        unsupported_language=action,
        trusted_threshold=float(trusted),
        # Never below the hold threshold in force: levels written apart (a section's band, then
        # a site's higher threshold) must not reject what the policy would not even hold.
        reject_thresholds={
            a: max(r, thresholds.get(a, 0.0))
            for a, r in (merged.get("reject_thresholds") or {}).items()
        },
        links=_rule(LinksRule, rules.get("links")),
        flood=_rule(FloodRule, rules.get("flood")),
        new_commenter=_rule(NewCommenterRule, rules.get("new_commenter")),
        recent_rejections=_rule(RecentRejectionsRule, rules.get("recent_rejections")),
        premoderate_all=merged.get("premoderate_all") is True,
        closed=merged.get("closed") is True,
        closed_action="reject" if merged.get("closed_action") == "reject" else "refuse",
    )


def _rule(kind: type[R], settings: Mapping[str, Any] | None) -> R | None:
    """The rule, if on. Stored settings were checked when written; should they fail now, the
    rule is off and the failure logged rather than every comment of the site failing."""
    if settings is None:  # a level that names the rule, even as {}, turns it on
        return None
    try:
        rule = kind.model_validate(settings)
    except ValidationError:
        log.exception("stored_rule_invalid", rule=kind.__name__)
        return None
    return rule if getattr(rule, "enabled", True) else None


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
        raised = {a: max(t, policy.trusted_threshold) for a, t in policy.thresholds.items()}
        policy = dataclasses.replace(policy, thresholds=raised)
    verdict = _by_scores(policy, scores)
    if trust == "premoderated" and verdict.action == "approve":
        return Verdict("hold", [{"code": Reason.AUTHOR_PREMODERATED}, *verdict.reasons])
    if trust == "trusted":
        verdict.reasons.append(
            {"code": Reason.AUTHOR_TRUSTED, "threshold": policy.trusted_threshold}
        )
    return verdict


def reject_band(policy: Policy, scores: Mapping[str, float]) -> list[dict[str, Any]]:
    """The attributes at or above their reject threshold, highest first."""
    return [
        {
            "code": Reason.ATTRIBUTE_OVER_REJECT_THRESHOLD,
            "attribute": attribute,
            "score": round(score, 4),
            "threshold": policy.reject_thresholds[attribute],
        }
        for attribute, score in sorted(scores.items(), key=lambda item: -item[1])
        if attribute in policy.reject_thresholds and score >= policy.reject_thresholds[attribute]
    ]


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
