"""Decide pending comments: score them, apply the site policy, store the decision once.

A comment reliably detected to be in a language other than English is not scored: the model
would judge it as garbled English. Its decision stores empty scores and the reason
`unsupported_language`, and the site's policy says whether it is held or approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import numpy as np
import structlog
from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from service.comments.views import status_view
from service.core.db import rowcount
from service.core.tables import Comment, CommentStatus, Decision, Site, utcnow
from service.models.shadow import ShadowBatch, ShadowItem, record_shadow, score_shadow
from service.rules.language import UNDETERMINED, LanguageGuess, detect_language
from service.rules.policy import (
    LanguageAction,
    Policy,
    Verdict,
    apply_policy,
    author_verdict,
    language_verdict,
    policy_for_site,
)
from service.rules.reasons import Reason, reason_tags
from service.webhooks.config import COMMENT_DECIDED, record_event

__all__ = [
    "Decided",
    "Scorer",
    "decide_comments",
    "decide_pending",
    "language_of",
    "pending_batch",
    "probabilities",
]

EXPLAIN_TOP_K = 3

log = structlog.get_logger(__name__)


class SpanLike(Protocol):
    text: str
    start: int
    end: int
    weight: float


class Scorer(Protocol):
    """What deciding needs of a model (service.models.scoring.ModelScorer is one)."""

    # Read-only members: a class attribute of any sequence type (a tuple) or a property fits.
    @property
    def version(self) -> str: ...

    @property
    def attributes(self) -> Sequence[str]: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def explain_many(
        self, text: str, attributes: Sequence[str], top_k: int = 5
    ) -> Mapping[str, list[Any]]: ...


@dataclass(frozen=True)
class Decided:
    comment_id: str
    site_id: int
    external_id: str
    status: str
    decision: Decision
    # The comment.decided delivery to enqueue after commit, when the site has a webhook.
    webhook_delivery_id: str | None = None


def pending_batch(session: Session, comment_ids: Sequence[str], *, limit: int) -> list[str]:
    """Those of the comments asked for still pending, plus the oldest other pending ones, to
    decide in one go.

    Deciding a batch costs little more than deciding one (one model call, one transaction), so
    a busy worker catches up instead of paying the full price per comment. On PostgreSQL the
    rows are locked and other workers skip them rather than scoring them twice.
    """
    # Skip a row another worker has locked: that worker is deciding it right now.
    own = session.scalars(
        select(Comment.id)
        .where(Comment.id.in_(comment_ids), Comment.status == CommentStatus.PENDING)
        .with_for_update(skip_locked=True)
    ).all()
    if not own or len(own) >= limit:
        return list(own)
    others = session.scalars(
        select(Comment.id)
        .where(Comment.status == CommentStatus.PENDING, Comment.id.not_in(comment_ids))
        .order_by(Comment.created_at)
        .limit(limit - len(own))
        .with_for_update(skip_locked=True)
    ).all()
    return [*own, *others]


def _add_spans(scorer: Scorer, text: str, reasons: list[dict[str, Any]]) -> None:
    """Name the words behind each attribute that crossed its threshold (one pass for all)."""
    crossed = [r for r in reasons if r["code"] == Reason.ATTRIBUTE_OVER_THRESHOLD]
    if not crossed:
        return
    explained = scorer.explain_many(text, [r["attribute"] for r in crossed], top_k=EXPLAIN_TOP_K)
    for reason in crossed:
        reason["spans"] = [
            {"text": s.text, "start": s.start, "end": s.end, "weight": round(float(s.weight), 4)}
            for s in explained[reason["attribute"]]
        ]


def probabilities(scorer: Scorer, texts: list[str]) -> list[np.ndarray | None]:
    """One model call for the batch; if it fails, one call per text, so one bad text fails alone."""
    try:
        return list(scorer.predict_proba(texts))
    except Exception:
        log.exception("batch_scoring_failed", size=len(texts))
    rows: list[np.ndarray | None] = []
    for text in texts:
        try:
            rows.append(scorer.predict_proba([text])[0])
        except Exception:
            log.exception("scoring_failed")
            rows.append(None)
    return rows


def language_of(text: str) -> LanguageGuess:
    """The comment's language; if detection fails, the comment is scored as English."""
    try:
        return detect_language(text)
    except Exception:
        log.exception("language_detection_failed")
        return UNDETERMINED


def _verdict(
    scorer: Scorer, text: str, row: np.ndarray | None, policy: Policy, trust: str
) -> tuple[dict[str, float], Verdict]:
    """Scores and verdict; a comment that cannot be scored is held for a person, never published."""
    try:
        if row is None:
            raise ValueError("the model could not score this text")
        raw = {a: float(p) for a, p in zip(scorer.attributes, row, strict=True)}
        # Compare the exact probabilities: 0.19996 is below a 0.2 threshold even though it is
        # stored (and shown) rounded as 0.2.
        verdict = apply_policy(policy, raw, trust=trust)
        _add_spans(scorer, text, verdict.reasons)
        return {a: round(p, 4) for a, p in raw.items()}, verdict
    except Exception as exc:
        log.exception("decision_failed")
        return {}, Verdict("hold", [{"code": Reason.SCORING_ERROR, "detail": str(exc)[:200]}])


def _load_pending(
    session: Session, comment_ids: Sequence[str]
) -> Sequence[Row[Comment, dict[str, Any], str | None, str]]:
    """Those of the comments still pending, each with its site's policy, webhook url and name."""
    return session.execute(
        select(Comment, Site.policy, Site.webhook_url, Site.name)
        .join(Site, Site.id == Comment.site_id)
        .where(Comment.id.in_(comment_ids), Comment.status == CommentStatus.PENDING)
    ).all()


def _shadow_batch(
    shadow: Scorer | None,
    scorer: Scorer,
    comments: Sequence[Comment],
    policies: Sequence[Policy],
    scored: Sequence[int],
) -> ShadowBatch | None:
    """The shadow's verdicts on the comments the model scores, unless it is the model itself."""
    if shadow is None or not scored or shadow.version == scorer.version:
        return None
    items = [
        ShadowItem(comments[i].id, comments[i].text, policies[i], comments[i].author.trust)
        for i in scored
    ]
    return score_shadow(shadow, items)  # never raises: a broken shadow is logged


def _judge(
    scorer: Scorer,
    comments: Sequence[Comment],
    policies: Sequence[Policy],
    *,
    shadow: Scorer | None,
) -> tuple[list[tuple[dict[str, float], Verdict]], ShadowBatch | None]:
    """Each comment's scores and verdict, and the shadow's: all the slow work, no write."""
    routed = [
        author_verdict(comment.author.trust) or language_verdict(policy, language_of(comment.text))
        for comment, policy in zip(comments, policies, strict=True)
    ]
    scored = [i for i, verdict in enumerate(routed) if verdict is None]
    rows_scored = probabilities(scorer, [comments[i].text for i in scored]) if scored else []
    by_index = dict(zip(scored, rows_scored, strict=True))
    shadowed = _shadow_batch(shadow, scorer, comments, policies, scored)
    verdicts: list[tuple[dict[str, float], Verdict]] = []
    for i, (comment, policy, verdict) in enumerate(zip(comments, policies, routed, strict=True)):
        if verdict is not None:  # banned, or another language: scores would mean nothing
            verdicts.append(({}, verdict))
        else:
            trust = comment.author.trust
            verdicts.append(_verdict(scorer, comment.text, by_index[i], policy, trust))
    return verdicts, shadowed


def _record_decided(
    session: Session, comment: Comment, decision: Decision, *, status: str, webhook: tuple[str, str]
) -> str:
    """The comment.decided delivery to the site's webhook (url, site name); its id."""
    url, site_name = webhook
    view = status_view(comment.id, comment.external_id, status=status, decision=decision)
    return record_event(
        session,
        site_id=comment.site_id,
        url=url,
        event=COMMENT_DECIDED,
        comment_id=comment.id,
        data={"comment": view},
        site_name=site_name,
    )


def _store(
    session: Session,
    comment: Comment,
    scores: dict[str, float],
    verdict: Verdict,
    *,
    model_version: str,
    now: datetime,
    webhook: tuple[str, str] | None,
) -> Decided | None:
    """Move the comment out of pending and add its decision; None if another worker did first."""
    moved = session.execute(
        update(Comment)
        .where(Comment.id == comment.id, Comment.status == CommentStatus.PENDING)
        .values(
            status=verdict.status,
            updated_at=now,
            version=Comment.version + 1,
            score=max(scores.values(), default=0.0),
            reason_tags=reason_tags(verdict.reasons),
        )
        .execution_options(synchronize_session=False)
    )
    if rowcount(moved) != 1:
        return None
    decision = Decision(
        comment_id=comment.id,
        action=verdict.action,
        scores=scores,
        reasons=verdict.reasons,
        model_version=model_version,
        # Submission to decision: what the site's reader actually waited.
        latency_ms=round((now - comment.created_at).total_seconds() * 1000, 3),
        decided_at=now,
    )
    session.add(decision)
    delivery_id = None
    if webhook is not None:
        delivery_id = _record_decided(
            session, comment, decision, status=verdict.status, webhook=webhook
        )
    return Decided(
        comment.id, comment.site_id, comment.external_id, verdict.status, decision, delivery_id
    )


def decide_comments(
    session: Session,
    comment_ids: Sequence[str],
    scorer: Scorer,
    *,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    shadow: Scorer | None = None,
) -> list[Decided]:
    """Decide those of `comment_ids` that are still pending; the others are left alone.

    `unsupported_language` is the deployment's action for comments in a language the model
    does not know (`Settings.unsupported_language`); a site's policy may override it.
    `shadow`, a candidate in shadow mode, scores the same comments beside `scorer` and its
    verdicts are stored as ShadowScores (see service/models/shadow.py); it never changes a decision.

    Safe to run twice and concurrently: the status moves from pending only once (a guarded
    UPDATE), and the unique decision per comment backs that up.
    """
    if not comment_ids:
        return []
    found = _load_pending(session, comment_ids)
    if not found:
        return []
    comments = [comment for comment, _, _, _ in found]
    # Each comment's site webhook (url, site name), None where the site has none.
    hooks = [(url, name) if url is not None else None for _, _, url, name in found]
    policies = [
        policy_for_site(
            default_thresholds, site_policy or {}, unsupported_language=unsupported_language
        )
        for _, site_policy, _, _ in found
    ]
    # Everything slow happens before the first write: on SQLite the first UPDATE takes the
    # database's only write lock, and intake must not wait behind the model.
    verdicts, shadowed = _judge(scorer, comments, policies, shadow=shadow)
    now = utcnow()
    stored = (
        _store(session, c, scores, verdict, now=now, model_version=scorer.version, webhook=hook)
        for c, (scores, verdict), hook in zip(comments, verdicts, hooks, strict=True)
    )
    decided = [d for d in stored if d is not None]
    session.flush()
    if shadowed is not None:
        record_shadow(session, shadowed, decided={d.comment_id for d in decided})
    return decided


def decide_pending(
    session: Session,
    comment_ids: Sequence[str],
    scorer: Scorer,
    *,
    batch_size: int,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    shadow: Scorer | None = None,
) -> list[Decided]:
    """Decide the comments, and with them other pending ones, up to `batch_size` in all."""
    ids = pending_batch(session, comment_ids, limit=batch_size)
    return decide_comments(
        session,
        ids,
        scorer,
        default_thresholds=default_thresholds,
        unsupported_language=unsupported_language,
        shadow=shadow,
    )
