"""Shadow mode: a candidate scores beside the active model, never decides, and is reported on,
on a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from classifier import load_model, save_model
from service.comments.decisions import decide_comments
from service.comments.intake import submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.errors import ModelNotFound
from service.core.settings import DEFAULT_THRESHOLDS
from service.core.tables import Comment, Decision, ModelVersion, ShadowScore
from service.models.registry import register_version, set_shadow
from service.models.scoring import ModelScorer, load_scorer
from service.models.shadow import shadow_report
from service.moderation.reviews import review_comment
from service.sites.keys import get_or_create_site
from tests.factories import CIVIL, THRESHOLDS, TOXIC, tiny_model


class WordsModel:
    """Holds (scores 0.9) a text with any of `words`; records the size of each call."""

    attributes: Sequence[str] = ("toxic", "insult")

    def __init__(self, version: str, *words: str) -> None:
        self.version = version
        self.words = words
        self.batches: list[int] = []

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self.batches.append(len(texts))
        return np.array(
            [[0.9, 0.8] if any(w in t for w in self.words) else [0.1, 0.05] for t in texts]
        )

    def explain_many(
        self, text: str, attributes: Sequence[str], top_k: int = 5
    ) -> dict[str, list[Any]]:
        return {attribute: [] for attribute in attributes}


class BrokenModel(WordsModel):
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        raise RuntimeError("the candidate's featurizer crashed")


def _submit(
    sessions: sessionmaker[Session], texts: Sequence[str], *, site: str = "news", author: str = "u"
) -> tuple[int, list[str]]:
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, site).id
        ids = [
            submit_comment(
                session,
                site_id,
                CommentIn(external_id=f"{site}-{i}", article_id="a", author_id=author, text=text),
                max_text_chars=10_000,
            ).comment.id
            for i, text in enumerate(texts)
        ]
    return site_id, ids


def _register_stub(sessions: sessionmaker[Session], version: str) -> None:
    """A registry row for a stand-in model: the report only needs the version to exist."""
    with session_scope(sessions) as session:
        session.add(
            ModelVersion(
                version=version,
                sha256="0" * 64,
                archive=b"",
                archive_sha256=hashlib.sha256(b"").hexdigest(),
                size_bytes=0,
            )
        )


def _review(sessions: sessionmaker[Session], site_id: int, comment_id: str, action: str) -> None:
    with session_scope(sessions) as session:
        review_comment(session, site_id, comment_id, key_id=1, actor="mod", action=action)


def test_shadow_scores_the_batch_in_one_call_and_never_changes_a_decision(
    sessions: sessionmaker[Session],
) -> None:
    texts = ["you idiot", "a dumb question", "thank you", "Ich bin völlig anderer Meinung."]
    _, ids = _submit(sessions, texts)
    active, shadow = WordsModel("active-1", "idiot"), WordsModel("shadow-1", "idiot", "dumb")
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, ids, active, default_thresholds=THRESHOLDS, shadow=shadow
        )
    statuses = {d.comment_id: d.status for d in decided}
    assert [statuses[i] for i in ids] == ["held", "approved", "approved", "held"]
    assert shadow.batches == [3], "one call; the German comment is not scored by either model"
    with session_scope(sessions) as session:
        stored = {s.comment_id: s for s in session.scalars(select(ShadowScore))}
        versions = set(session.scalars(select(Decision.model_version)))
    assert versions == {"active-1"}, "decisions come from the active model only"
    assert {cid: s.action for cid, s in stored.items()} == {
        ids[0]: "hold",
        ids[1]: "hold",
        ids[2]: "approve",
    }
    assert stored[ids[1]].version == "shadow-1"
    assert stored[ids[1]].scores == {"toxic": 0.9, "insult": 0.8}


def test_a_failing_shadow_model_leaves_the_decisions_and_stores_nothing(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, ["you idiot", "thank you"])
    with session_scope(sessions) as session:
        decided = decide_comments(
            session,
            ids,
            WordsModel("active-1", "idiot"),
            default_thresholds=THRESHOLDS,
            shadow=BrokenModel("broken-1"),
        )
    assert {d.comment_id: d.status for d in decided} == {ids[0]: "held", ids[1]: "approved"}
    with session_scope(sessions) as session:
        assert len(session.scalars(select(Decision)).all()) == 2
        assert session.scalars(select(ShadowScore)).all() == []


def test_a_shadow_row_that_cannot_be_stored_is_dropped_and_the_decisions_commit(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, ["you idiot", "thank you"])
    with session_scope(sessions) as session:  # a clash on (version, comment) at insert time
        session.add(ShadowScore(version="shadow-1", comment_id=ids[0], action="x", scores={}))
    with session_scope(sessions) as session:
        decided = decide_comments(
            session,
            ids,
            WordsModel("active-1", "idiot"),
            default_thresholds=THRESHOLDS,
            shadow=WordsModel("shadow-1", "idiot"),
        )
    assert len(decided) == 2
    with session_scope(sessions) as session:
        assert len(session.scalars(select(Decision)).all()) == 2
        assert [s.action for s in session.scalars(select(ShadowScore))] == ["x"]


def test_the_same_version_as_the_active_model_is_not_shadowed(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, ["you idiot"])
    shadow = WordsModel("active-1", "idiot")  # promoted a moment ago; the holder lags a second
    with session_scope(sessions) as session:
        active = WordsModel("active-1", "idiot")
        decide_comments(session, ids, active, default_thresholds=THRESHOLDS, shadow=shadow)
        assert session.scalars(select(ShadowScore)).all() == []
    assert shadow.batches == []


def test_report_gives_agreement_and_who_was_right_by_the_moderators_last_word(
    sessions: sessionmaker[Session],
) -> None:
    # active holds "idiot" and "dumb"; the shadow holds "idiot" only.
    texts = ["you idiot", "a dumb question", "thanks", "stupid idiot", "so dumb"]
    site_id, (a, b, _c, d, e) = _submit(sessions, texts)
    _submit(sessions, ["another idiot"], site="other")
    _register_stub(sessions, "shadow-1")
    with session_scope(sessions) as session:
        every = list(session.scalars(select(Comment.id)))
        decide_comments(
            session,
            every,
            WordsModel("active-1", "idiot", "dumb"),
            default_thresholds=THRESHOLDS,
            shadow=WordsModel("shadow-1", "idiot"),
        )
    _review(sessions, site_id, a, "reject")  # both held: both right
    _review(sessions, site_id, b, "approve")  # only the shadow approved: shadow right
    _review(sessions, site_id, d, "approve")
    _review(sessions, site_id, d, "reject")  # the last word counts: both right
    _review(sessions, site_id, e, "reject")  # only the active model held: active right
    with session_scope(sessions) as session:
        report = shadow_report(session, "shadow-1", site_id=site_id)
        everywhere = shadow_report(session, "shadow-1")
        with pytest.raises(ModelNotFound):
            shadow_report(session, "no-such-version")
    assert report["scored"] == 5 and everywhere["scored"] == 6
    assert report["compared_with"] == {"active-1": 5}
    assert report["first_scored_at"] is not None
    agreement = report["agreement"]
    assert agreement["share"] == 0.6
    assert agreement["table"] == {
        "active_hold": {"shadow_hold": 2, "shadow_approve": 2},
        "active_approve": {"shadow_hold": 0, "shadow_approve": 1},
    }
    assert agreement["active_hold_rate"] == 0.8 and agreement["shadow_hold_rate"] == 0.4
    reviews = report["reviews"]
    assert reviews["reviewed"] == 4 and reviews["rejected"] == 3
    assert reviews["active"] == {
        "correct": 0.75,
        "hold_reject": 3,
        "hold_approve": 1,
        "approve_reject": 0,
        "approve_approve": 0,
    }
    assert reviews["shadow"] == {
        "correct": 0.75,
        "hold_reject": 2,
        "hold_approve": 0,
        "approve_reject": 1,
        "approve_approve": 1,
    }
    assert (reviews["only_shadow_correct"], reviews["only_active_correct"]) == (1, 1)
    assert "reviewed" in reviews["note"]


def test_a_registered_candidate_shadows_the_shipped_model_on_real_comments(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    directory = save_model(tiny_model(1), tmp_path / "candidate")
    candidate = ModelScorer(load_model(directory))
    with session_scope(sessions) as session:
        register_version(session, directory, created_by="test")
        set_shadow(session, candidate.version, actor="test")
    site_id, ids = _submit(sessions, TOXIC[:10] + CIVIL[:10])
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, ids, load_scorer(None), default_thresholds=DEFAULT_THRESHOLDS, shadow=candidate
        )
    held = [d.comment_id for d in decided if d.status == "held"]
    for comment_id in held:
        verdict = "reject" if comment_id in ids[:10] else "approve"
        _review(sessions, site_id, comment_id, verdict)
    with session_scope(sessions) as session:
        report = shadow_report(session, candidate.version, site_id=site_id)
        rows = session.scalars(select(ShadowScore)).all()
    assert report["in_shadow"] and report["status"] == "candidate"
    assert report["scored"] == len(rows) == 20
    assert all(set(r.scores) == set(DEFAULT_THRESHOLDS) for r in rows), "all six attributes"
    table = report["agreement"]["table"]
    assert sum(table["active_hold"].values()) == len(held)
    assert report["reviews"]["reviewed"] == len(held)
    assert report["reviews"]["active"]["correct"] is not None
