"""A comment's verdict under its site's rules, in one documented order (docs/rules.md):

1. a banned author, 2. a banned word, 3. a closed article: rejected unscored;
4. pre-moderation (`premoderate_all`, a premoderated author, `new_commenter`,
   `recent_rejections`): held, whatever the scores;
5. the reject band: rejected without a person;
6. the hold rules (links, repeats and floods, suspect words): held;
7. the thresholds: held; 8. another language: the site's language action; 9. approved.

The first step that fires decides; the reasons also carry what the later steps found, so a
moderator sees everything at once. Plain functions: what the rules read of the author's past
and activity is gathered beforehand (service/comments/decisions.py) and passed in as Facts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from service.core.tables import Trust
from service.rules.floods import Activity
from service.rules.history import AuthorHistory
from service.rules.language import LanguageGuess
from service.rules.links import domain_allowed, find_links
from service.rules.policy import (
    Policy,
    Verdict,
    apply_policy,
    author_verdict,
    language_verdict,
    reject_band,
)
from service.rules.reasons import Reason
from service.rules.word_lists import SiteLists, list_reason

__all__ = ["Facts", "before_scoring", "final_verdict"]

MAX_LISTED = 10  # links named in one reason


@dataclass(frozen=True)
class Facts:
    """What the rules know of a comment besides its text and its scores."""

    trust: str = Trust.NORMAL
    history: AuthorHistory | None = None  # None: no rule asked for it
    activity: Activity | None = None  # None: no rule asked, or it could not be counted


def before_scoring(
    policy: Policy, lists: SiteLists | None, text: str, trust: str
) -> Verdict | None:
    """Steps 1-3: the verdicts that need no scores, or None to go on."""
    banned_author = author_verdict(trust)
    if banned_author is not None:
        return banned_author
    found = lists.banned.find(text) if lists is not None else []
    if found:
        return Verdict("reject", [list_reason("banned", found)])
    if policy.closed:
        return Verdict(
            "reject",
            [{"code": Reason.ARTICLE_CLOSED, "rule": "closed", "action": policy.closed_action}],
        )
    return None


def final_verdict(
    policy: Policy,
    lists: SiteLists | None,
    text: str,
    facts: Facts,
    *,
    scores: Mapping[str, float] | None,
    language: LanguageGuess | None = None,
    failed: str | None = None,
) -> Verdict:
    """Steps 4-9 for a comment `before_scoring` let through. `scores` is None when the comment
    was not scored (another language) or could not be (`failed` says why)."""
    premoderated = _premoderation(policy, facts)
    holds = _hold_rules(policy, lists, text, facts)
    if failed is not None or scores is None:
        other = language_verdict(policy, language) if language is not None else None
        if failed is not None or other is None:
            error = {"code": Reason.SCORING_ERROR, "detail": (failed or "not scored")[:200]}
            return Verdict("hold", [*premoderated, *holds, error])
        if premoderated or holds:
            return Verdict("hold", [*premoderated, *holds, *other.reasons])
        return other
    band = reject_band(policy, scores)
    by_scores = apply_policy(policy, scores, trust=_score_trust(facts.trust))
    crossed = [r for r in by_scores.reasons if r["code"] != Reason.ALL_BELOW_THRESHOLD]
    if premoderated:
        return Verdict("hold", [*premoderated, *band, *holds, *crossed])
    if band:
        return Verdict("reject", band)
    if holds:
        return Verdict("hold", [*holds, *crossed])
    return by_scores


def _score_trust(trust: str) -> str:
    # A premoderated author is step 4's business; the thresholds judge their scores as anyone's.
    return Trust.NORMAL if trust == Trust.PREMODERATED else trust


def _premoderation(policy: Policy, facts: Facts) -> list[dict[str, Any]]:
    reasons: list[dict[str, Any]] = []
    if policy.premoderate_all:
        reasons.append({"code": Reason.PREMODERATE_ALL, "rule": "premoderate_all"})
    if facts.trust == Trust.PREMODERATED:
        reasons.append({"code": Reason.AUTHOR_PREMODERATED})
    # A trusted author has earned the site's trust: history rules do not second-guess it.
    if facts.trust == Trust.TRUSTED or facts.history is None:
        return reasons
    history = facts.history
    if policy.new_commenter and history.approved < policy.new_commenter.approved_comments:
        reasons.append(
            {
                "code": Reason.NEW_COMMENTER,
                "rule": "new_commenter",
                "settings": policy.new_commenter.model_dump(),
                "approved": history.approved,
            }
        )
    rule = policy.recent_rejections
    if rule and history.recent_decided >= rule.min_decided:
        rate = history.recent_rejected / history.recent_decided
        if rate >= rule.rate:
            reasons.append(
                {
                    "code": Reason.RECENT_REJECTIONS,
                    "rule": "recent_rejections",
                    "settings": rule.model_dump(),
                    "decided": history.recent_decided,
                    "rejected": history.recent_rejected,
                    "rate": round(rate, 4),
                }
            )
    return reasons


def _hold_rules(
    policy: Policy, lists: SiteLists | None, text: str, facts: Facts
) -> list[dict[str, Any]]:
    reasons = _links(policy, text, facts) + _activity(policy, facts)
    found = lists.suspect.find(text) if lists is not None else []
    if found:
        reasons.append(list_reason("suspect", found))
    return reasons


def _links(policy: Policy, text: str, facts: Facts) -> list[dict[str, Any]]:
    rule = policy.links
    if rule is None:
        return []
    links = find_links(text)
    if not links:
        return []
    # An allow-list may hold a thousand domains: every held comment's reasons need not.
    settings = rule.model_dump(exclude={"allowed_domains"})
    if rule.allowed_domains is not None:
        settings["allowed_domains_count"] = len(rule.allowed_domains)

    def reason(code: str, which: list[Any], **extra: Any) -> dict[str, Any]:
        named = [{"url": x.url, "start": x.start, "end": x.end} for x in which[:MAX_LISTED]]
        return {"code": code, "rule": "links", "settings": settings, "links": named, **extra}

    reasons = []
    if rule.max_links is not None and len(links) > rule.max_links:
        reasons.append(reason(Reason.TOO_MANY_LINKS, links, count=len(links)))
    if rule.allowed_domains is not None:
        outside = [x for x in links if not domain_allowed(x.host, rule.allowed_domains)]
        if outside:
            reasons.append(reason(Reason.LINK_NOT_ALLOWED, outside))
    approved = facts.history.approved if facts.history is not None else None
    new = approved is not None and approved < rule.min_approved
    if rule.min_approved and facts.trust != Trust.TRUSTED and new:
        reasons.append(reason(Reason.LINK_FROM_NEW_COMMENTER, links, approved=approved))
    return reasons


def _activity(policy: Policy, facts: Facts) -> list[dict[str, Any]]:
    rule, seen = policy.flood, facts.activity
    if rule is None or seen is None:
        return []
    settings = rule.model_dump()
    reasons = []
    if rule.max_repeats is not None and seen.repeats > rule.max_repeats:
        reasons.append(
            {
                "code": Reason.REPEATED_TEXT,
                "rule": "flood",
                "settings": settings,
                "count": seen.repeats,
            }
        )
    if rule.max_per_minute is not None and seen.last_minute > rule.max_per_minute:
        reasons.append(
            {"code": Reason.FLOOD, "rule": "flood", "settings": settings, "count": seen.last_minute}
        )
    return reasons
