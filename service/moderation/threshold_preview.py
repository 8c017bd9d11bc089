"""Hold rates read from a site's own decisions, for the admin console: what a threshold would
have held, and caught of what moderators rejected, before an admin saves it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from service.core.tables import Comment, CommentStatus, Decision, Review

__all__ = [
    "ANY_ATTRIBUTE",
    "PREVIEW_WINDOW",
    "HoldRates",
    "ThresholdPreview",
    "preview_thresholds",
]

PREVIEW_WINDOW = 10_000
# The preview's line for every threshold together: what the policy as a whole would hold.
ANY_ATTRIBUTE = "any"


@dataclass(frozen=True)
class HoldRates:
    """One threshold (or all of them) over the window. `scored` counts the decisions with a
    score to compare; `rejected` the comments among them that a moderator rejected, and
    `caught` those of them the threshold would have held."""

    threshold: float | None
    scored: int
    held: int
    rejected: int
    caught: int

    @property
    def hold_rate(self) -> float | None:
        return self.held / self.scored if self.scored else None

    @property
    def recall(self) -> float | None:
        return self.caught / self.rejected if self.rejected else None


@dataclass(frozen=True)
class ThresholdPreview:
    decisions: int  # read from the window, scored or not
    attributes: dict[str, HoldRates]  # by attribute, and ANY_ATTRIBUTE for all together


def _recent_scores(session: Session, site_id: int, last: int) -> list[tuple[dict[str, Any], bool]]:
    """The scores of the site's `last` decisions, each with whether a moderator rejected the
    comment. Decisions' ids are their storage order and indexed, unlike their times."""
    # A rejected comment with a review was rejected by a person: only held and already
    # reviewed comments can be reviewed, and a later approval would have changed its status.
    by_moderator = (Comment.status == CommentStatus.REJECTED) & exists().where(
        Review.comment_id == Comment.id
    )
    rows = session.execute(
        select(Decision.scores, by_moderator)
        .join(Comment, Comment.id == Decision.comment_id)
        .where(Comment.site_id == site_id)
        .order_by(Decision.id.desc())
        .limit(last)
    ).all()
    return [(dict(scores or {}), bool(rejected)) for scores, rejected in rows]


def _rates(
    rows: Iterable[tuple[dict[str, Any], bool]], thresholds: Mapping[str, float]
) -> HoldRates:
    """Rates for holding at any of `thresholds`: the policy's rule, one attribute or all."""
    scored = held = rejected = caught = 0
    for scores, by_moderator in rows:
        named = [
            (scores[a], t) for a, t in thresholds.items() if isinstance(scores.get(a), int | float)
        ]
        if not named:
            continue  # unscored (a banned word, a closed article): no threshold applied to it
        over = any(score >= threshold for score, threshold in named)
        scored += 1
        held += over
        rejected += by_moderator
        caught += by_moderator and over
    single = next(iter(thresholds.values())) if len(thresholds) == 1 else None
    return HoldRates(single, scored, held, rejected, caught)


def preview_thresholds(
    session: Session,
    site_id: int,
    thresholds: Mapping[str, float],
    *,
    last: int = PREVIEW_WINDOW,
) -> ThresholdPreview:
    """What each threshold would have held of the site's `last` decisions had it been in
    force (a score at or above it, as the policy decides), and the share of the comments
    moderators rejected it would have held."""
    rows = _recent_scores(session, site_id, last)
    attributes = {a: _rates(rows, {a: t}) for a, t in thresholds.items()}
    attributes[ANY_ATTRIBUTE] = _rates(rows, thresholds)
    return ThresholdPreview(len(rows), attributes)
