"""Training labels from moderators' reviews and from imported files, and their export.

A review is a label: a rejection says `toxic` = 1 and each attribute the comment was held for
= 1 (the others stay unlabelled: the moderator did not judge them); an approval of a held
comment says every attribute = 0. The label keeps the text as it was reviewed. A comment has
one label: a later review rewrites it, so training follows the moderator's last word.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from classifier import ATTRIBUTES, DataError, load_corpus
from classifier.data import open_text
from service.errors import InvalidInput
from service.models import Comment, Label, ReviewAction, utcnow

__all__ = [
    "SiteLabels",
    "export_labels",
    "import_labels",
    "label_count",
    "label_values",
    "labels_from_reviews",
    "site_labels",
]


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


def import_labels(session: Session, site_id: int, path: Path, *, actor: str) -> int:
    """Add the labelled rows of a CSV(.gz) file (`comment_text` + attribute columns of 0/1).

    An optional `comment_id` column ties a row to a comment of this site, whose label it then
    replaces. The whole file is checked first: a bad cell or an unknown comment id refuses the
    file with the line named, and nothing is imported.
    """
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
    ids = corpus.columns.get("comment_id", [""] * len(corpus))
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
                text=corpus.texts[i],
                labels=values,
                actor=actor,
                created_at=now,
                updated_at=now,
            )
        )
    session.flush()
    return len(labelled)


def export_labels(session: Session, site_id: int | None = None) -> Iterator[dict[str, Any]]:
    """Every label as a CSV row (`comment_text`, the six attributes, provenance), oldest first."""
    query = select(Label).order_by(Label.created_at, Label.id)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    for label in session.scalars(query):
        yield {
            "id": label.id,
            "comment_id": label.comment_id or "",
            "comment_text": label.text,
            **{a: label.labels.get(a, "") for a in ATTRIBUTES},
            "source": label.source,
            "actor": label.actor,
            "labelled_at": label.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class SiteLabels:
    """A site's labels in time order: texts, an (n, 6) matrix with NaN for unlabelled, times."""

    texts: list[str]
    labels: np.ndarray
    times: list[datetime]

    def __len__(self) -> int:
        return len(self.texts)


def site_labels(session: Session, site_id: int | None = None) -> SiteLabels:
    query = select(Label.text, Label.labels, Label.updated_at).order_by(Label.updated_at, Label.id)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    rows = session.execute(query).all()
    matrix = np.full((len(rows), len(ATTRIBUTES)), np.nan)
    for i, row in enumerate(rows):
        for j, attribute in enumerate(ATTRIBUTES):
            if attribute in row.labels:
                matrix[i, j] = float(row.labels[attribute])
    return SiteLabels([r.text for r in rows], matrix, [r.updated_at for r in rows])


def label_count(
    session: Session, site_id: int | None = None, *, since: datetime | None = None
) -> int:
    query = select(func.count()).select_from(Label)
    if site_id is not None:
        query = query.where(Label.site_id == site_id)
    if since is not None:
        query = query.where(Label.updated_at > since)
    return session.scalar(query) or 0
