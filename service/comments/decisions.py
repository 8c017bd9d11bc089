"""Decide pending comments: score them, apply the site policy, store the decision once.

A comment reliably detected to be in a language other than English is not scored: the model
would judge it as garbled English. Its decision stores empty scores and the reason
`unsupported_language`, and the site's policy says whether it is held or approved.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus, Decision, Site, utcnow
from service.models.shadow import ShadowItem, record_shadow, score_shadow
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
    "decision_payload",
    "pending_batch",
]

EXPLAIN_TOP_K = 3

log = structlog.get_logger(__name__)


class SpanLike(Protocol):
    text: str
    start: int
    end: int
    weight: float


class Scorer(Protocol):
    """What deciding needs of a model (classifier.ToxicityModel is one)."""

    version: str
    attributes: Sequence[str]

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


def pending_batch(session: Session, comment_id: str, *, limit: int) -> list[str]:
    """The comment asked for plus the oldest other pending ones, to decide in one go.

    Deciding a batch costs little more than deciding one (one model call, one transaction), so
    a busy worker catches up instead of paying the full price per comment. On PostgreSQL the
    rows are locked and other workers skip them rather than scoring them twice.
    """
    # Skip a row another worker has locked: that worker is deciding it right now.
    own = session.scalar(
        select(Comment.id)
        .where(Comment.id == comment_id, Comment.status == CommentStatus.PENDING)
        .with_for_update(skip_locked=True)
    )
    if own is None or limit <= 1:
        return [own] if own else []
    others = session.scalars(
        select(Comment.id)
        .where(Comment.status == CommentStatus.PENDING, Comment.id != comment_id)
        .order_by(Comment.created_at)
        .limit(limit - 1)
        .with_for_update(skip_locked=True)
    ).all()
    return [own, *others]


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


def _probabilities(scorer: Scorer, texts: list[str]) -> list[np.ndarray | None]:
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


def _language(text: str) -> LanguageGuess:
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
    found = session.execute(
        select(Comment, Site.policy, Site.webhook_url, Site.name)
        .join(Site, Site.id == Comment.site_id)
        .where(Comment.id.in_(comment_ids), Comment.status == CommentStatus.PENDING)
    ).all()
    if not found:
        return []
    webhooks = {c.id: (url, name) for c, _, url, name in found if url is not None}
    rows = [(comment, site_policy) for comment, site_policy, _, _ in found]
    policies = [
        policy_for_site(
            default_thresholds, site_policy or {}, unsupported_language=unsupported_language
        )
        for _, site_policy in rows
    ]
    # Everything slow happens before the first write: on SQLite the first UPDATE takes the
    # database's only write lock, and intake must not wait behind the model.
    routed = [
        author_verdict(comment.author.trust) or language_verdict(policy, _language(comment.text))
        for (comment, _), policy in zip(rows, policies, strict=True)
    ]
    scored = [i for i, verdict in enumerate(routed) if verdict is None]
    rows_scored = _probabilities(scorer, [rows[i][0].text for i in scored]) if scored else []
    probabilities = dict(zip(scored, rows_scored, strict=True))
    shadowed = None
    if shadow is not None and scored and shadow.version != scorer.version:
        items = [
            ShadowItem(rows[i][0].id, rows[i][0].text, policies[i], rows[i][0].author.trust)
            for i in scored
        ]
        shadowed = score_shadow(shadow, items)  # never raises: a broken shadow is logged
    verdicts: list[tuple[dict[str, float], Verdict]] = []
    for i, ((comment, _), policy, verdict) in enumerate(zip(rows, policies, routed, strict=True)):
        if verdict is not None:  # banned, or another language: scores would mean nothing
            verdicts.append(({}, verdict))
        else:
            trust = comment.author.trust
            verdicts.append(_verdict(scorer, comment.text, probabilities[i], policy, trust))
    now = utcnow()
    decided: list[Decided] = []
    for (comment, _), (scores, verdict) in zip(rows, verdicts, strict=True):
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
        if moved.rowcount != 1:  # another worker got there first
            continue
        decision = Decision(
            comment_id=comment.id,
            action=verdict.action,
            scores=scores,
            reasons=verdict.reasons,
            model_version=scorer.version,
            # Submission to decision: what the site's reader actually waited.
            latency_ms=round((now - comment.created_at).total_seconds() * 1000, 3),
            decided_at=now,
        )
        session.add(decision)
        delivery_id = None
        if comment.id in webhooks:
            url, site_name = webhooks[comment.id]
            comment_data = {
                "id": comment.id,
                "external_id": comment.external_id,
                "status": verdict.status,
                "decision": decision_payload(decision),
            }
            delivery_id = record_event(
                session,
                site_id=comment.site_id,
                url=url,
                event=COMMENT_DECIDED,
                comment_id=comment.id,
                data={"comment": comment_data},
                site_name=site_name,
            )
        decided.append(
            Decided(
                comment.id,
                comment.site_id,
                comment.external_id,
                verdict.status,
                decision,
                delivery_id,
            )
        )
    session.flush()
    if shadowed is not None:
        record_shadow(session, shadowed, decided={d.comment_id for d in decided})
    return decided


def decision_payload(decision: Decision) -> dict[str, Any]:
    return {
        "action": decision.action,
        "scores": decision.scores,
        "reasons": decision.reasons,
        "model_version": decision.model_version,
        "decided_at": decision.decided_at.isoformat(),
    }


def decide_pending(
    session: Session,
    comment_id: str,
    scorer: Scorer,
    *,
    batch_size: int,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    shadow: Scorer | None = None,
) -> list[Decided]:
    """Decide a comment, and with it up to `batch_size - 1` other pending ones."""
    ids = pending_batch(session, comment_id, limit=batch_size)
    return decide_comments(
        session,
        ids,
        scorer,
        default_thresholds=default_thresholds,
        unsupported_language=unsupported_language,
        shadow=shadow,
    )
