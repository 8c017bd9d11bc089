"""Decide pending comments: score them, apply the site policy, store the decision once.

A comment reliably detected to be in a language other than English is not scored: the model
would judge it as garbled English. Its decision stores empty scores and the reason
`unsupported_language`, and the site's policy says whether it is held or approved.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

import numpy as np
import structlog
from sqlalchemy import (
    BindParameter,
    Executable,
    Integer,
    Select,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.orm import Session

from service.comments.facts import activities, histories
from service.comments.views import status_view
from service.core.db import rowcount
from service.core.tables import Author, Comment, CommentStatus, Decision, Site, utcnow
from service.models.shadow import ShadowBatch, ShadowItem, record_shadow, score_shadow
from service.rules.floods import ActivityCounter
from service.rules.language import UNDETERMINED, LanguageGuess, detect_language
from service.rules.overrides import current_policies
from service.rules.pipeline import Facts, before_scoring, final_verdict
from service.rules.policy import LanguageAction, Policy, Verdict, language_verdict
from service.rules.reasons import Reason, reason_tags
from service.rules.word_lists import SiteLists, current_lists
from service.webhooks.config import COMMENT_DECIDED, record_event

__all__ = [
    "Decided",
    "Pending",
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
    site_name: str = ""


@dataclass(frozen=True)
class Pending:
    """A pending comment, with what deciding it needs of its author and its site."""

    id: str
    site_id: int
    external_id: str
    text: str
    created_at: datetime
    trust: str
    webhook_url: str | None
    site_name: str
    lists_version: int
    policy_version: int
    author_id: int
    article_id: str
    section: str | None


def _pending() -> Select[Any]:
    """Pending comments as plain rows: no ORM objects to build for what is read once."""
    return cast(
        "Select[Any]",
        select(
            Comment.id,
            Comment.site_id,
            Comment.external_id,
            Comment.text,
            Comment.created_at,
            Author.trust,
            Site.webhook_url,
            Site.name,
            Site.lists_version,
            Site.policy_version,
            Comment.author_id,
            Comment.article_id,
            Comment.section,
        )
        .join(Author, Author.id == Comment.author_id)
        .join(Site, Site.id == Comment.site_id)
        .where(Comment.status == CommentStatus.PENDING),
    )


def _rows(session: Session, statement: Executable, values: Mapping[str, Any]) -> list[Pending]:
    return [Pending(*row) for row in session.execute(statement, values)]


@functools.cache
def _batch_statements() -> tuple[Executable, Executable, Executable]:
    """Pending comments by id (locked, or not) and the oldest others (locked), built once:
    building a statement costs more than running it."""
    ids: BindParameter[str] = bindparam("ids", expanding=True)
    table = Comment.__table__
    by_id = _pending().where(Comment.id.in_(ids))
    others = (
        _pending()
        .where(Comment.id.not_in(ids))
        .order_by(Comment.created_at)
        .limit(bindparam("limit", type_=Integer))
    )
    return (
        by_id,
        by_id.with_for_update(of=table, skip_locked=True),
        others.with_for_update(of=table, skip_locked=True),
    )


def pending_batch(session: Session, comment_ids: Sequence[str], *, limit: int) -> list[Pending]:
    """Those of the comments asked for still pending, plus the oldest other pending ones, to
    decide in one go.

    Deciding a batch costs little more than deciding one (one model call, one transaction), so
    a busy worker catches up instead of paying the full price per comment. On PostgreSQL the
    rows are locked and other workers skip them rather than scoring them twice.
    """
    _, own_locked, others = _batch_statements()
    # Skip a row another worker has locked: that worker is deciding it right now.
    own = _rows(session, own_locked, {"ids": list(comment_ids)})
    if not own or len(own) >= limit:
        return own
    more = _rows(session, others, {"ids": list(comment_ids), "limit": limit - len(own)})
    return [*own, *more]


_SCORED_CODES = (Reason.ATTRIBUTE_OVER_THRESHOLD, Reason.ATTRIBUTE_OVER_REJECT_THRESHOLD)


def _add_spans(scorer: Scorer, text: str, reasons: list[dict[str, Any]]) -> None:
    """Name the words behind each attribute that crossed its threshold (one pass for all)."""
    crossed = [r for r in reasons if r["code"] in _SCORED_CODES and "attribute" in r]
    if not crossed:
        return
    attributes = list(dict.fromkeys(r["attribute"] for r in crossed))
    explained = scorer.explain_many(text, attributes, top_k=EXPLAIN_TOP_K)
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


def _scored(
    scorer: Scorer, comment: Pending, row: np.ndarray | None, rules: _Rules
) -> tuple[dict[str, float], Verdict]:
    """Scores and verdict; a comment that cannot be scored is held for a person, never published."""
    try:
        if row is None:
            raise ValueError("the model could not score this text")
        raw = {a: float(p) for a, p in zip(scorer.attributes, row, strict=True)}
        # Compare the exact probabilities: 0.19996 is below a 0.2 threshold even though it is
        # stored (and shown) rounded as 0.2.
        verdict = final_verdict(rules.policy, rules.lists, comment.text, rules.facts, scores=raw)
        _add_spans(scorer, comment.text, verdict.reasons)
        return {a: round(p, 4) for a, p in raw.items()}, verdict
    except Exception as exc:
        log.exception("decision_failed")
        failed = final_verdict(
            rules.policy, rules.lists, comment.text, rules.facts, scores=None, failed=str(exc)
        )
        return {}, failed


def _shadow_batch(
    shadow: Scorer | None,
    scorer: Scorer,
    comments: Sequence[Pending],
    rules: Sequence[_Rules],
    scored: Sequence[int],
) -> ShadowBatch | None:
    """The shadow's verdicts on the comments the model scores, unless it is the model itself."""
    if shadow is None or not scored or shadow.version == scorer.version:
        return None
    items = [
        ShadowItem(comments[i].id, comments[i].text, rules[i].policy, comments[i].trust)
        for i in scored
    ]
    return score_shadow(shadow, items)  # never raises: a broken shadow is logged


@dataclass(frozen=True)
class _Rules:
    """What judges one comment besides the model: its policy, its site's lists, the facts."""

    policy: Policy
    lists: SiteLists
    facts: Facts


def _site_lists(session: Session, comment: Pending) -> SiteLists:
    return current_lists(session, comment.site_id, comment.lists_version)


def _policy(session: Session, comment: Pending, settings: _Settings) -> Policy:
    return current_policies(session, comment.site_id, comment.policy_version).resolve(
        session,
        settings.thresholds,
        comment.section,
        comment.article_id,
        unsupported_language=settings.unsupported_language,
    )


def _rules(
    session: Session,
    comments: Sequence[Pending],
    settings: _Settings,
    counter: ActivityCounter | None,
) -> list[_Rules]:
    policies = [_policy(session, comment, settings) for comment in comments]
    known = histories(session, comments, policies)
    counted = activities(session, comments, policies, counter)
    return [
        _Rules(policy, _site_lists(session, comment), Facts(comment.trust, history, activity))
        for comment, policy, history, activity in zip(
            comments, policies, known, counted, strict=True
        )
    ]


def _judge(
    scorer: Scorer,
    comments: Sequence[Pending],
    rules: Sequence[_Rules],
    *,
    shadow: Scorer | None,
) -> tuple[list[tuple[dict[str, float], Verdict]], ShadowBatch | None]:
    """Each comment's scores and verdict, and the shadow's: all the slow work, no write.

    The order of the rules is service/rules/pipeline.py's: what needs no score first (and is
    not scored), then another language (not scored either), then everything else on the scores.
    """
    routed: list[Verdict | None] = []
    languages: list[LanguageGuess | None] = []
    for comment, rule in zip(comments, rules, strict=True):
        early = before_scoring(rule.policy, rule.lists, comment.text, comment.trust)
        guess = language_of(comment.text) if early is None else None
        routed.append(early)
        languages.append(guess if guess and language_verdict(rule.policy, guess) else None)
    scored = [i for i, v in enumerate(routed) if v is None and languages[i] is None]
    rows_scored = probabilities(scorer, [comments[i].text for i in scored]) if scored else []
    by_index = dict(zip(scored, rows_scored, strict=True))
    shadowed = _shadow_batch(shadow, scorer, comments, rules, scored)
    verdicts: list[tuple[dict[str, float], Verdict]] = []
    for i, (comment, rule) in enumerate(zip(comments, rules, strict=True)):
        early, language = routed[i], languages[i]
        if early is not None:  # banned, or closed: scores would mean nothing
            verdicts.append(({}, early))
        elif language is not None:  # another language: the model would judge garbled English
            judged = final_verdict(
                rule.policy, rule.lists, comment.text, rule.facts, scores=None, language=language
            )
            verdicts.append(({}, judged))
        else:
            verdicts.append(_scored(scorer, comment, by_index[i], rule))
    return verdicts, shadowed


def _record_decided(
    session: Session, comment: Pending, status: str, decision: Decision
) -> str | None:
    """The comment.decided delivery to the site's webhook, if it has one; its id."""
    if comment.webhook_url is None:
        return None
    view = status_view(comment.id, comment.external_id, status=status, decision=decision)
    return record_event(
        session,
        site_id=comment.site_id,
        url=comment.webhook_url,
        event=COMMENT_DECIDED,
        comment_id=comment.id,
        data={"comment": view},
        site_name=comment.site_name,
    )


@functools.cache
def _statements() -> tuple[Executable, Executable]:
    """The guarded move out of pending and the decision's INSERT, built once: building a
    statement costs more than running it."""
    comments, decisions = cast(Table, Comment.__table__), cast(Table, Decision.__table__)
    move = (
        update(comments)
        .where(comments.c.id == bindparam("b_id"), comments.c.status == CommentStatus.PENDING)
        .values(
            status=bindparam("b_status"),
            updated_at=bindparam("b_now"),
            version=comments.c.version + 1,
            score=bindparam("b_score"),
            reason_tags=bindparam("b_tags"),
        )
    )
    return move, insert(decisions)


def _store(
    session: Session,
    comments: Sequence[Pending],
    verdicts: Sequence[tuple[dict[str, float], Verdict]],
    *,
    model_version: str,
) -> list[Decided]:
    """Move each comment out of pending and add its decision; a comment another worker moved
    first is left out."""
    move, add_decision = _statements()
    now = utcnow()
    decided: list[Decided] = []
    for comment, (scores, verdict) in zip(comments, verdicts, strict=True):
        moved = session.execute(
            move,
            {
                "b_id": comment.id,
                "b_status": verdict.status,
                "b_now": now,
                "b_score": max(scores.values(), default=0.0),
                "b_tags": reason_tags(verdict.reasons),
            },
        )
        if rowcount(moved) != 1:
            continue
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
        delivery_id = _record_decided(session, comment, verdict.status, decision)
        decided.append(
            Decided(
                comment.id,
                comment.site_id,
                comment.external_id,
                verdict.status,
                decision,
                delivery_id,
                comment.site_name,
            )
        )
    if decided:
        columns = [c.key for c in Decision.__table__.columns if c.key != "id"]
        rows = [{key: getattr(d.decision, key) for key in columns} for d in decided]
        session.execute(add_decision, rows)
    return decided


@dataclass(frozen=True)
class _Settings:
    """The deployment's side of every policy."""

    thresholds: Mapping[str, float]
    unsupported_language: LanguageAction


def _decide(
    session: Session,
    comments: Sequence[Pending],
    scorer: Scorer,
    *,
    settings: _Settings,
    shadow: Scorer | None,
    activity: ActivityCounter | None,
) -> list[Decided]:
    if not comments:
        return []
    # Everything slow happens before the first write: on SQLite the first UPDATE takes the
    # database's only write lock, and intake must not wait behind the model.
    rules = _rules(session, comments, settings, activity)
    verdicts, shadowed = _judge(scorer, comments, rules, shadow=shadow)
    decided = _store(session, comments, verdicts, model_version=scorer.version)
    session.flush()
    if shadowed is not None:
        record_shadow(session, shadowed, decided={d.comment_id for d in decided})
    return decided


def decide_comments(
    session: Session,
    comment_ids: Sequence[str],
    scorer: Scorer,
    *,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    shadow: Scorer | None = None,
    activity: ActivityCounter | None = None,
) -> list[Decided]:
    """Decide those of `comment_ids` that are still pending; the others are left alone.

    `unsupported_language` is the deployment's action for comments in a language the model
    does not know (`Settings.unsupported_language`); a site's policy may override it.
    `shadow`, a candidate in shadow mode, scores the same comments beside `scorer` and its
    verdicts are stored as ShadowScores (see service/models/shadow.py); it never changes a decision.
    `activity` counts each author's recent postings for the flood rule (RedisActivity); without
    it the rule cannot fire.

    Safe to run twice and concurrently: the status moves from pending only once (a guarded
    UPDATE), and the unique decision per comment backs that up.
    """
    if not comment_ids:
        return []
    by_id, _, _ = _batch_statements()
    comments = _rows(session, by_id, {"ids": list(comment_ids)})
    return _decide(
        session,
        comments,
        scorer,
        settings=_Settings(default_thresholds, unsupported_language),
        shadow=shadow,
        activity=activity,
    )


def decide_pending(
    session: Session,
    comment_ids: Sequence[str],
    scorer: Scorer,
    *,
    batch_size: int,
    default_thresholds: Mapping[str, float],
    unsupported_language: LanguageAction = "hold",
    shadow: Scorer | None = None,
    activity: ActivityCounter | None = None,
) -> list[Decided]:
    """Decide the comments, and with them other pending ones, up to `batch_size` in all."""
    return _decide(
        session,
        pending_batch(session, comment_ids, limit=batch_size),
        scorer,
        settings=_Settings(default_thresholds, unsupported_language),
        shadow=shadow,
        activity=activity,
    )
