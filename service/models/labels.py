"""Training labels from moderators' reviews and from imported files, and their export.

A review is a label: a rejection says `toxic` = 1 and each attribute the comment was held for
= 1 (the others stay unlabelled: the moderator did not judge them); an approval of a held
comment says every attribute = 0. The label keeps the text as it was reviewed. A comment has
one label: a later review rewrites it, so training follows the moderator's last word.

Labels are not a sample of the site's traffic: moderators see every comment the policy held
but only the approved ones they audit. Read for training, each label carries an
inverse-propensity weight: how many comments of its kind (held or approved by the policy) it
stands for, relative to a held one. Without it, a site auditing 5% of its approvals trains
(and judges candidates) as if its traffic were mostly held comments.
"""

from __future__ import annotations

import csv
import math
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classifier import ATTRIBUTES, Corpus, DataError, load_corpus
from classifier.data import open_text
from service.core.errors import InvalidInput
from service.core.tables import Comment, Decision, Label, ReviewAction, utcnow

__all__ = [
    "MAX_SAMPLING_WEIGHT",
    "Sampling",
    "SiteLabels",
    "export_labels",
    "from_spreadsheet_safe",
    "import_labels",
    "label_count",
    "label_values",
    "labels_from_reviews",
    "sampling_weights",
    "site_labels",
    "spreadsheet_safe",
    "suggest_label",
]

# A label of a rarely audited kind stands for many comments; past this many, one label's
# noise would outweigh what the correction buys.
MAX_SAMPLING_WEIGHT = 20.0


class Sampling:
    """How a labelled comment came before a moderator."""

    HELD = "held"  # the policy held it: moderators review (nearly) all of these
    APPROVED = "approved"  # the policy approved it: labelled only when audited
    OTHER = "other"  # imported text of no comment here, or a comment never scored

    BY_ACTION: ClassVar[Mapping[str, str]] = MappingProxyType({"hold": HELD, "approve": APPROVED})
    ACTION: ClassVar[Mapping[str, str]] = MappingProxyType({v: k for k, v in BY_ACTION.items()})


def label_values(action: str, reason_tags: str) -> dict[str, int]:
    """The label a review gives; `reason_tags` is the comment's " attribute:X " tags."""
    if action == ReviewAction.APPROVE:
        return dict.fromkeys(ATTRIBUTES, 0)
    held_for = [
        tag.removeprefix("attribute:")
        for tag in reason_tags.split()
        if tag.startswith("attribute:")
    ]
    return {"toxic": 1, **{a: 1 for a in held_for if a in ATTRIBUTES}}


def labels_from_reviews(
    session: Session, comments: Sequence[Comment], *, action: str, actor: str, now: datetime
) -> None:
    """Write (or rewrite) the label of each reviewed comment, in the review's transaction."""
    existing = {
        label.comment_id: label
        for label in session.scalars(
            select(Label).where(Label.comment_id.in_([c.id for c in comments]))
        )
    }
    for comment in comments:
        values = label_values(action, comment.reason_tags)
        label = existing.get(comment.id)
        if label is None:
            session.add(
                Label(
                    site_id=comment.site_id,
                    comment_id=comment.id,
                    source="review",
                    text=comment.text,
                    labels=values,
                    actor=actor,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            label.labels, label.actor, label.updated_at = values, actor, now


def _read_labelled(path: Path) -> tuple[Corpus, list[int]]:
    """The file as a corpus, and the rows that carry a label; a bad file is InvalidInput."""
    try:
        with open_text(path) as handle:
            header = next(csv.reader(handle), [])
        keep = ("comment_id",) if "comment_id" in header else ()
        corpus = load_corpus(path, keep_columns=keep)
    except (DataError, OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InvalidInput(str(exc), field="file") from exc
    labelled = [i for i in range(len(corpus)) if not np.isnan(corpus.labels[i]).all()]
    if not labelled:
        raise InvalidInput(f"{path}: no row carries a 0/1 label", field="file")
    return corpus, labelled


def _known_comments(
    session: Session, site_id: int, path: Path, ids: Sequence[str], labelled: Sequence[int]
) -> set[str]:
    """The comment ids the labelled rows name, all of this site; an unknown one refuses the file."""
    wanted = {ids[i] for i in labelled if ids[i]}
    found = (
        set(
            session.scalars(
                select(Comment.id).where(Comment.id.in_(wanted), Comment.site_id == site_id)
            )
        )
        if wanted
        else set()
    )
    unknown = [i for i in labelled if ids[i] and ids[i] not in found]
    if unknown:
        first = unknown[0]
        raise InvalidInput(
            f"{path}: line {first + 2}: no comment {ids[first]!r} on this site "
            f"({len(unknown)} unknown comment id{'s' if len(unknown) > 1 else ''}); nothing "
            "was imported",
            field="comment_id",
        )
    return found


def import_labels(session: Session, site_id: int, path: Path, *, actor: str) -> int:
    """Add the labelled rows of a CSV(.gz) file (`comment_text` + attribute columns of 0/1).

    An optional `comment_id` column ties a row to a comment of this site, whose label it then
    replaces. The whole file is checked first: a bad cell or an unknown comment id refuses the
    file with the line named, and nothing is imported.
    """
    corpus, labelled = _read_labelled(path)
    ids = corpus.columns.get("comment_id", [""] * len(corpus))
    found = _known_comments(session, site_id, path, ids, labelled)
    now = utcnow()
    replaced = (
        {
            label.comment_id: label
            for label in session.scalars(select(Label).where(Label.comment_id.in_(found)))
        }
        if found
        else {}
    )
    for i in labelled:
        values = {
            a: int(v)
            for a, v in zip(ATTRIBUTES, corpus.labels[i], strict=True)
            if not math.isnan(v)
        }
        comment_id = ids[i] or None
        if comment_id in replaced:
            label = replaced[comment_id]
            label.labels, label.source, label.actor, label.updated_at = values, "import", actor, now
            continue
        session.add(
            Label(
                site_id=site_id,
                comment_id=comment_id,
                source="import",
                text=from_spreadsheet_safe(corpus.texts[i]),
                labels=values,
                actor=actor,
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()
    return len(labelled)


def suggest_label(
    session: Session,
    site_id: int,
    *,
    text: str,
    values: dict[str, int],
    client_token: str | None,
    community_id: str | None,
    actor: str,
) -> Label:
    """A Perspective client's moderator verdict (Coral's suggestscore) as the site's label; a
    later suggestion with the same client token replaces the earlier one (a moderator who
    changed their mind)."""
    now = utcnow()
    label = None
    if client_token:
        label = session.scalar(
            select(Label).where(Label.site_id == site_id, Label.client_token == client_token)
        )
    if label is None:
        label = Label(
            site_id=site_id, client_token=client_token, source="perspective", created_at=now
        )
        session.add(label)
    label.text, label.labels, label.actor, label.updated_at = text, values, actor, now
    label.community_id = community_id
    session.flush()
    return label


# A cell a spreadsheet would run as a formula (OWASP's CSV injection list). On export such a
# cell gets a leading apostrophe, which spreadsheets hide; import takes it off again, so a
# label exported and imported back keeps its text.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    return f"'{cell}" if cell.startswith(_FORMULA_START) else cell


def from_spreadsheet_safe(cell: str) -> str:
    return cell[1:] if cell.startswith("'") and cell[1:].startswith(_FORMULA_START) else cell


def export_labels(session: Session, site_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Every label as a CSV row (`comment_text`, the six attributes, provenance), oldest first."""
    query = select(Label).order_by(Label.created_at, Label.id)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    for label in session.scalars(query):
        yield {
            "id": label.id,
            "comment_id": label.comment_id or "",
            "comment_text": spreadsheet_safe(label.text),
            **{a: label.labels.get(a, "") for a in ATTRIBUTES},
            "source": label.source,
            "actor": spreadsheet_safe(label.actor),
            "labelled_at": label.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class SiteLabels:
    """A site's labels in time order: texts, an (n, 6) matrix with NaN for unlabelled, times,
    and for each label its sampling and its weight (see the module docstring)."""

    texts: list[str]
    labels: np.ndarray
    times: list[datetime]
    sampling: list[str] = field(default_factory=list)
    weights: np.ndarray = field(default_factory=lambda: np.ones(0))

    def __len__(self) -> int:
        return len(self.texts)

    def weight_array(self) -> np.ndarray:
        """The weights, or 1 each when none were read."""
        return self.weights if len(self.weights) == len(self) else np.ones(len(self))


def site_labels(session: Session, site_id: int | None = None) -> SiteLabels:
    query = (
        select(Label.text, Label.labels, Label.updated_at, Decision.action, Decision.decided_at)
        .outerjoin(Decision, Decision.comment_id == Label.comment_id)
        .order_by(Label.updated_at, Label.id)
    )
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    rows = session.execute(query).all()
    matrix = np.full((len(rows), len(ATTRIBUTES)), np.nan)
    for i, row in enumerate(rows):
        for j, attribute in enumerate(ATTRIBUTES):
            if attribute in row.labels:
                matrix[i, j] = float(row.labels[attribute])
    sampling = [Sampling.BY_ACTION.get(row.action or "", Sampling.OTHER) for row in rows]
    weights = (
        sampling_weights(session, site_id, sampling, [row.decided_at for row in rows])
        if site_id is not None
        else np.ones(len(rows))
    )
    return SiteLabels(
        [r.text for r in rows], matrix, [r.updated_at for r in rows], sampling, weights
    )


def sampling_weights(
    session: Session,
    site_id: int,
    sampling: Sequence[str],
    decided_at: Sequence[datetime | None],
) -> np.ndarray:
    """Inverse-propensity weights of a site's labels, relative to the best-covered kind.

    Over the time the labelled comments were decided in, the share of the site's held
    comments that carry a label and the share of its approved ones that do are counted; a
    label weighs the best share divided by its kind's (at most MAX_SAMPLING_WEIGHT). Labels
    of no scored comment weigh 1.
    """
    weights = np.ones(len(sampling))
    times = [t for t, s in zip(decided_at, sampling, strict=True) if s != Sampling.OTHER and t]
    if not times:
        return weights
    decided = dict(
        session.execute(
            select(Decision.action, func.count())
            .join(Comment, Comment.id == Decision.comment_id)
            .where(
                Comment.site_id == site_id,
                Decision.decided_at >= min(times),
                Decision.decided_at <= max(times),
                Decision.action.in_(list(Sampling.BY_ACTION)),
            )
            .group_by(Decision.action)
        ).all()
    )
    labelled = Counter(sampling)
    coverage = {
        kind: labelled[kind] / decided[action]
        for kind, action in Sampling.ACTION.items()
        if labelled[kind] and decided.get(action)
    }
    if not coverage:
        return weights
    best = max(coverage.values())
    for i, kind in enumerate(sampling):
        if kind in coverage:
            weights[i] = min(best / coverage[kind], MAX_SAMPLING_WEIGHT)
    return weights


def label_count(
    session: Session, site_id: int | None = None, *, since: datetime | None = None
) -> int:
    query = select(func.count()).select_from(Label)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    if since is not None:
        query = query.where(Label.updated_at > since)
    return session.scalar(query) or 0
