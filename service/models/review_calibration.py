"""Hold thresholds proposed from a site's moderator decisions (`calibrate --from-reviews`).

A site's labels are scored by a model; per attribute, the proposal is the lowest threshold of
`classifier.thresholds.GRID` whose holds reach a target precision among the reviewed comments,
with the trade-off around it: hold rate on the site's latest traffic, precision and recall on
the reviews. Printing it is the CLI's job (`service.cli.calibrate`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from classifier import ATTRIBUTES
from classifier.thresholds import curve_on_grid
from service.core.errors import TooFewReviews
from service.core.tables import Comment, Decision
from service.models.labels import SiteLabels, site_labels
from service.rules.policy import policy_for_site
from service.sites.sites import get_site

__all__ = [
    "MIN_EACH_VERDICT",
    "MIN_HELD",
    "MIN_REVIEWS",
    "TRADE_OFF_GRID",
    "TRAFFIC_SAMPLE",
    "AttributeProposal",
    "Curve",
    "ReviewScorer",
    "ScoredReviews",
    "SiteReviews",
    "TradeOffRow",
    "propose_from_reviews",
    "propose_threshold",
    "proposed_thresholds",
    "read_site_reviews",
    "require_enough_reviews",
    "score_reviews",
    "trade_off_rows",
]

# Too few decisions make a precision curve of noise.
MIN_REVIEWS = 20
MIN_EACH_VERDICT = 5
MIN_HELD = 5  # a threshold must hold at least this many reviewed comments to be judged on
TRAFFIC_SAMPLE = 5000  # the site's latest scored comments, for the hold rate
TRADE_OFF_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

Curve = dict[str, np.ndarray]
"""Per grid threshold: `threshold`, `hold_rate`, `recall`, `precision` (of the reviews, from
`curve_on_grid`), `held` (reviewed comments held) and `traffic_hold_rate`."""

Flag = Literal["", "lowest reviewed score", "below current", "misses most rejected"]


class ReviewScorer(Protocol):
    """What calibrating needs of a model (a ModelScorer is one)."""

    version: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


@dataclass(frozen=True)
class SiteReviews:
    """A site's labels, the thresholds it holds at now, and its latest scored comments."""

    site: str
    labels: SiteLabels
    thresholds: dict[str, float]
    traffic: list[str]


@dataclass(frozen=True)
class ScoredReviews:
    """A site's reviews scored by one model: (n, 6) arrays for the labels and the traffic."""

    reviews: SiteReviews
    proba: np.ndarray
    traffic_proba: np.ndarray
    version: str


@dataclass(frozen=True)
class AttributeProposal:
    """One attribute's outcome: too few reviews (no `curve`), the target precision not reached
    (no `index`), or a proposed threshold at `curve["threshold"][index]`."""

    attribute: str
    reviewed: int
    rejected: int
    current: float | None
    curve: Curve | None = None
    index: int | None = None
    lowest_score: float | None = None

    @property
    def threshold(self) -> float | None:
        if self.curve is None or self.index is None:
            return None
        return float(self.curve["threshold"][self.index])

    def at_proposal(self, key: str) -> float | None:
        """`key` of the curve at the proposed threshold (None when undefined or no proposal)."""
        if self.curve is None or self.index is None:
            return None
        return _at(self.curve, self.index, key)

    @property
    def best_precision(self) -> float | None:
        """The best precision of the thresholds judged on (for a target not reached)."""
        if self.curve is None:
            return None
        judged = self.curve["precision"][self.curve["held"] >= MIN_HELD]
        return float(np.nanmax(judged)) if np.isfinite(judged).any() else None

    @property
    def flag(self) -> Flag:
        """What a moderator should know before pasting the proposed threshold."""
        threshold = self.threshold
        if threshold is None:
            return ""
        recall = self.at_proposal("recall")
        if self.lowest_score is not None and threshold <= self.lowest_score:
            return "lowest reviewed score"
        if self.current is not None and threshold < self.current:
            return "below current"
        if recall is not None and recall < 0.5:
            return "misses most rejected"
        return ""


@dataclass(frozen=True)
class TradeOffRow:
    """One threshold of the trade-off table; `mark` says if it is the proposed or current one."""

    threshold: float
    hold_rate: float | None
    precision: float | None
    recall: float | None
    held: int
    mark: str


def read_site_reviews(
    session: Session,
    site: str,
    *,
    default_thresholds: Mapping[str, float],
    traffic_sample: int = TRAFFIC_SAMPLE,
) -> SiteReviews:
    """The site's labels, thresholds and latest scored comments; raises SiteNotFound."""
    row = get_site(session, site)
    labels = site_labels(session, row.id)
    thresholds = dict(policy_for_site(default_thresholds, row.policy or {}).thresholds)
    recent = session.execute(
        select(Comment.text, Decision.scores)
        .join(Decision, Decision.comment_id == Comment.id)
        .where(Comment.site_id == row.id)
        .order_by(Decision.decided_at.desc())
        .limit(traffic_sample)
    ).all()
    # Unscored decisions (another language, a banned author) are not traffic the model sees.
    traffic = [text for text, scores in recent if scores]
    return SiteReviews(site=site, labels=labels, thresholds=thresholds, traffic=traffic)


def require_enough_reviews(reviews: SiteReviews) -> None:
    """Raise TooFewReviews unless the site has MIN_REVIEWS labels, MIN_EACH_VERDICT each way."""
    labels = reviews.labels
    toxic = labels.labels[:, ATTRIBUTES.index("toxic")] if len(labels) else np.empty(0)
    rejected, approved = int((toxic == 1).sum()), int((toxic == 0).sum())
    if len(labels) < MIN_REVIEWS or min(rejected, approved) < MIN_EACH_VERDICT:
        raise TooFewReviews(
            f"too few reviews on site {reviews.site!r} to calibrate: {len(labels)} labelled "
            f"comments ({rejected} rejected, {approved} approved); at least {MIN_REVIEWS}, with "
            f"{MIN_EACH_VERDICT} of each verdict, are needed"
        )


def score_reviews(reviews: SiteReviews, scorer: ReviewScorer) -> ScoredReviews:
    """Score the site's labelled comments and its latest traffic with `scorer`."""
    traffic = (
        scorer.predict_proba(reviews.traffic) if reviews.traffic else np.empty((0, len(ATTRIBUTES)))
    )
    return ScoredReviews(
        reviews=reviews,
        proba=scorer.predict_proba(reviews.labels.texts),
        traffic_proba=traffic,
        version=scorer.version,
    )


def propose_threshold(
    target: np.ndarray, score: np.ndarray, *, traffic: np.ndarray, target_precision: float
) -> tuple[int | None, Curve]:
    """The grid index of the lowest threshold whose holds reach `target_precision`, and the curve.

    Only thresholds holding at least MIN_HELD reviewed comments are judged (a precision of 2
    out of 2 is luck), and none below the lowest reviewed score: there every threshold holds
    the same reviewed comments, so the reviews cannot tell them apart.
    """
    curve = curve_on_grid(target, score)
    curve["held"] = np.asarray(
        [int((score >= t).sum()) for t in curve["threshold"]], dtype=np.int64
    )
    curve["traffic_hold_rate"] = (
        curve_on_grid(np.zeros(len(traffic)), traffic)["hold_rate"]
        if len(traffic)
        else np.full(len(curve["threshold"]), np.nan)
    )
    floor = int(np.searchsorted(curve["threshold"], float(score.min()), side="right")) - 1
    judged = curve["held"] >= MIN_HELD
    judged[: max(floor, 0)] = False
    # A float grid and float rates: forgive rounding in the last place.
    ok = np.flatnonzero(judged & (np.nan_to_num(curve["precision"]) >= target_precision - 1e-12))
    return (int(ok[0]) if len(ok) else None), curve


def propose_from_reviews(
    scored: ScoredReviews, *, target_precision: float
) -> list[AttributeProposal]:
    """One proposal per attribute, in ATTRIBUTES order."""
    labels = scored.reviews.labels.labels
    proposals = []
    for j, name in enumerate(ATTRIBUTES):
        known = ~np.isnan(labels[:, j])
        target, score = labels[known, j], scored.proba[known, j]
        reviewed, rejected = int(known.sum()), int(target.sum())
        current = scored.reviews.thresholds.get(name)
        if rejected < MIN_EACH_VERDICT or (target == 0).sum() < MIN_EACH_VERDICT:
            proposals.append(
                AttributeProposal(
                    attribute=name, reviewed=reviewed, rejected=rejected, current=current
                )
            )
            continue
        index, curve = propose_threshold(
            target,
            score,
            traffic=scored.traffic_proba[:, j],
            target_precision=target_precision,
        )
        proposals.append(
            AttributeProposal(
                attribute=name,
                reviewed=reviewed,
                rejected=rejected,
                current=current,
                curve=curve,
                index=index,
                lowest_score=float(score.min()),
            )
        )
    return proposals


def proposed_thresholds(proposals: Sequence[AttributeProposal]) -> dict[str, float]:
    """The thresholds proposed, by attribute: the `thresholds` of a site policy."""
    return {p.attribute: p.threshold for p in proposals if p.threshold is not None}


def trade_off_rows(
    proposal: AttributeProposal, grid: Sequence[float] = TRADE_OFF_GRID
) -> list[TradeOffRow]:
    """Threshold -> hold rate, precision, recall on `grid` plus the proposed and current ones."""
    curve = proposal.curve
    if curve is None:
        raise ValueError(f"{proposal.attribute}: too few reviews for a trade-off")
    marks: dict[float, str] = {}
    if proposal.threshold is not None:
        marks[round(proposal.threshold, 3)] = "proposed"
    if proposal.current is not None:
        key = round(proposal.current, 3)
        marks[key] = " + ".join(filter(None, [marks.get(key), "current"]))
    rows = []
    for t in sorted({*grid, *marks}):
        i = int(np.searchsorted(curve["threshold"], t - 1e-9))
        rows.append(
            TradeOffRow(
                threshold=t,
                hold_rate=_at(curve, i, "traffic_hold_rate"),
                precision=_at(curve, i, "precision"),
                recall=_at(curve, i, "recall"),
                held=int(curve["held"][i]),
                mark=marks.get(t, ""),
            )
        )
    return rows


def _at(curve: Curve, index: int, key: str) -> float | None:
    value = float(curve[key][index])
    return None if np.isnan(value) else value
