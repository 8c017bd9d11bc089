"""What the rules read besides a comment's text, gathered once a batch: each author's history
(service/rules/history.py) and recent activity (service/rules/floods.py), only for the
comments whose policy asks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus, utcnow
from service.rules.floods import Activity, ActivityCounter, Posting, text_key
from service.rules.history import AuthorHistory, author_histories
from service.rules.policy import Policy
from service.rules.policy_body import FloodRule

__all__ = ["activities", "histories"]

# The window of an author's history when only an approved count is asked for: any window
# does, the one recent_rejections defaults to is used.
DEFAULT_HISTORY_DAYS = 7.0
# Pending comments of a batch's authors counted with it, at most.
MAX_EARLIER = 1000


class Commented(Protocol):
    """What these need of a pending comment (service/comments/decisions.Pending is one)."""

    @property
    def id(self) -> str: ...
    @property
    def site_id(self) -> int: ...
    @property
    def author_id(self) -> int: ...
    @property
    def text(self) -> str: ...
    @property
    def created_at(self) -> datetime: ...


def _window(policy: Policy) -> float:
    rule = policy.recent_rejections
    return rule.window_days if rule else DEFAULT_HISTORY_DAYS


def histories(
    session: Session, comments: Sequence[Commented], policies: Sequence[Policy]
) -> list[AuthorHistory | None]:
    """Each comment's author history if its policy reads one: one query per distinct window
    (and cap on the approved count) in the batch."""
    asked: dict[tuple[float, int], set[int]] = {}
    for comment, policy in zip(comments, policies, strict=True):
        if policy.needs_history:
            key = (_window(policy), policy.approved_needed)
            asked.setdefault(key, set()).add(comment.author_id)
    found: dict[tuple[float, int, int], AuthorHistory] = {}
    for (window, cap), authors in asked.items():
        since = utcnow() - timedelta(days=window)
        for author, history in author_histories(
            session, authors, since=since, approved_cap=cap
        ).items():
            found[(window, cap, author)] = history
    return [
        found.get((_window(policy), policy.approved_needed, comment.author_id))
        if policy.needs_history
        else None
        for comment, policy in zip(comments, policies, strict=True)
    ]


def _posting(comment: Commented, rule: FloodRule) -> Posting:
    return Posting(
        site_id=comment.site_id,
        author_id=comment.author_id,
        comment_id=comment.id,
        at=comment.created_at.timestamp(),
        text_key=text_key(comment.text) if rule.max_repeats is not None else None,
        repeat_window=rule.repeat_window_minutes * 60,
        per_minute=rule.max_per_minute is not None,
    )


def _earlier(session: Session, comments: Sequence[Commented]) -> list[Commented]:
    """The batch's authors' other pending comments up to the batch's latest: a comment is
    counted in Redis when it is decided, and a batch decided before an earlier one must still
    count it."""
    latest = max(c.created_at for c in comments)
    rows = session.execute(
        select(Comment.id, Comment.site_id, Comment.author_id, Comment.text, Comment.created_at)
        .where(
            Comment.author_id.in_(sorted({c.author_id for c in comments})),
            Comment.status == CommentStatus.PENDING,
            Comment.id.not_in([c.id for c in comments]),
            Comment.created_at <= latest,
        )
        .order_by(Comment.created_at)
        .limit(MAX_EARLIER)
    )
    return list(rows)  # rows have the attributes Commented asks for


def activities(
    session: Session,
    comments: Sequence[Commented],
    policies: Sequence[Policy],
    counter: ActivityCounter | None,
) -> list[Activity | None]:
    """How often each author posted lately, for the comments whose policy floods are on."""
    wanted = [i for i, policy in enumerate(policies) if policy.flood is not None]
    if counter is None or not wanted:
        return [None] * len(comments)
    rules = {comments[i].author_id: policies[i].flood for i in wanted}
    earlier = [
        _posting(c, rule)
        for c in _earlier(session, [comments[i] for i in wanted])
        if (rule := rules.get(c.author_id)) is not None
    ]
    own = [_posting(comments[i], policies[i].flood) for i in wanted]  # type: ignore[arg-type]
    # In submission order, so each comment is counted after every one before it.
    postings = sorted([*earlier, *own], key=lambda p: (p.at, p.comment_id))
    counted = dict(zip((p.comment_id for p in postings), counter.count(postings), strict=True))
    return [
        counted.get(comments[i].id) if policies[i].flood is not None else None
        for i in range(len(comments))
    ]
