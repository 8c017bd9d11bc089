"""Judge texts on the spot, nothing stored: what the compatibility routes answer within a request.

Perspective's, Coral's and OpenAI's callers wait for the answer (Coral gives up after 800 ms,
its external phase after 200 ms), so these texts skip the queue: the API process scores them
with the model it holds, under the same site policy and language routing as a queued comment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.comments.decisions import Scorer, language_of, probabilities
from service.core.tables import Author, Site, Trust
from service.rules.language import LanguageGuess
from service.rules.overrides import current_policies
from service.rules.pipeline import Facts, before_scoring, final_verdict
from service.rules.policy import LanguageAction, Policy, Verdict, language_verdict
from service.rules.word_lists import SiteLists, current_lists

__all__ = ["Judged", "SiteRules", "author_trust", "judge_texts", "site_policy"]


@dataclass(frozen=True)
class Judged:
    """One text's verdict: `scores` are the model's probabilities, empty when it was not scored
    (another language, a banned author, a model error)."""

    scores: dict[str, float]
    verdict: Verdict
    language: LanguageGuess


@dataclass(frozen=True)
class SiteRules:
    """What judges a text on the spot: the site's policy and its word lists."""

    policy: Policy
    lists: SiteLists | None = None


def site_policy(
    session: Session,
    site_id: int,
    *,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    article_id: str | None = None,
) -> SiteRules:
    """The site's policy (with the article's own, when the caller names one: Coral's story)
    and its lists."""
    versions = session.execute(
        select(Site.policy_version, Site.lists_version).where(Site.id == site_id)
    ).one()
    policy = current_policies(session, site_id, versions.policy_version).resolve(
        session, default_thresholds, None, article_id, unsupported_language=unsupported_language
    )
    return SiteRules(policy, current_lists(session, site_id, versions.lists_version))


def author_trust(session: Session, site_id: int, external_id: str | None) -> str:
    """An author's standing on the site (by the site's own author id); unknown: normal."""
    if not external_id:
        return Trust.NORMAL
    trust = session.scalar(
        select(Author.trust).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    return trust or Trust.NORMAL


def judge_texts(
    scorer: Scorer,
    texts: Sequence[str],
    rules: SiteRules | Policy,
    *,
    trust: str = Trust.NORMAL,
) -> list[Judged]:
    """Each text's scores and verdict, with one model call for all that need scoring.

    The rules are those of a queued comment (service/rules/pipeline.py) but for what needs a
    stored past: the author's history and flood counts are not read on these routes."""
    if isinstance(rules, Policy):
        rules = SiteRules(rules)
    policy, lists, facts = rules.policy, rules.lists, Facts(trust)
    early = [before_scoring(policy, lists, text, trust) for text in texts]
    languages = [language_of(text) for text in texts]
    scored = [
        i
        for i, (verdict, language) in enumerate(zip(early, languages, strict=True))
        if verdict is None and language_verdict(policy, language) is None
    ]
    rows = dict(zip(scored, probabilities(scorer, [texts[i] for i in scored]), strict=True))
    judged = []
    for i, (text, language) in enumerate(zip(texts, languages, strict=True)):
        row = rows.get(i)
        if early[i] is not None:
            judged.append(Judged({}, cast(Verdict, early[i]), language))
        elif i not in rows:  # another language
            verdict = final_verdict(policy, lists, text, facts, scores=None, language=language)
            judged.append(Judged({}, verdict, language))
        elif row is None:  # the model failed on this text: a person looks, as for a comment
            failed = final_verdict(policy, lists, text, facts, scores=None, failed="scoring")
            judged.append(Judged({}, failed, language))
        else:
            scores = {a: float(p) for a, p in zip(scorer.attributes, row, strict=True)}
            verdict = final_verdict(policy, lists, text, facts, scores=scores)
            judged.append(Judged(scores, verdict, language))
    return judged
