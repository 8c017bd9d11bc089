"""Judge texts on the spot, nothing stored: what the compatibility routes answer within a request.

Perspective's, Coral's and OpenAI's callers wait for the answer (Coral gives up after 800 ms,
its external phase after 200 ms), so these texts skip the queue: the API process scores them
with the model it holds, under the same site policy and language routing as a queued comment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.comments.decisions import Scorer, language_of, probabilities
from service.core.tables import Author, Site, Trust
from service.rules.language import LanguageGuess
from service.rules.policy import (
    LanguageAction,
    Policy,
    Verdict,
    apply_policy,
    author_verdict,
    language_verdict,
    policy_for_site,
)
from service.rules.reasons import Reason

__all__ = ["Judged", "author_trust", "judge_texts", "site_policy"]


@dataclass(frozen=True)
class Judged:
    """One text's verdict: `scores` are the model's probabilities, empty when it was not scored
    (another language, a banned author, a model error)."""

    scores: dict[str, float]
    verdict: Verdict
    language: LanguageGuess


def site_policy(
    session: Session,
    site_id: int,
    *,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
) -> Policy:
    """The site's effective policy: the deployment's defaults under the site's own."""
    overrides = session.scalar(select(Site.policy).where(Site.id == site_id))
    return policy_for_site(
        default_thresholds, overrides or {}, unsupported_language=unsupported_language
    )


def author_trust(session: Session, site_id: int, external_id: str | None) -> str:
    """An author's standing on the site (by the site's own author id); unknown: normal."""
    if not external_id:
        return Trust.NORMAL
    trust = session.scalar(
        select(Author.trust).where(Author.site_id == site_id, Author.external_id == external_id)
    )
    return trust or Trust.NORMAL


def judge_texts(
    scorer: Scorer, texts: Sequence[str], policy: Policy, *, trust: str = Trust.NORMAL
) -> list[Judged]:
    """Each text's scores and verdict, with one model call for all that need scoring."""
    languages = [language_of(text) for text in texts]
    routed = [author_verdict(trust) or language_verdict(policy, language) for language in languages]
    scored = [i for i, verdict in enumerate(routed) if verdict is None]
    rows = dict(zip(scored, probabilities(scorer, [texts[i] for i in scored]), strict=True))
    judged = []
    for i, (verdict, language) in enumerate(zip(routed, languages, strict=True)):
        row = rows.get(i)
        if verdict is not None:
            judged.append(Judged({}, verdict, language))
        elif row is None:  # the model failed on this text: a person looks, as for a comment
            failed = Verdict("hold", [{"code": Reason.SCORING_ERROR}])
            judged.append(Judged({}, failed, language))
        else:
            scores = {a: float(p) for a, p in zip(scorer.attributes, row, strict=True)}
            judged.append(Judged(scores, apply_policy(policy, scores, trust=trust), language))
    return judged
