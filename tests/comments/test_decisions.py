"""Deciding pending comments: once each, in batches, with reasons (a stand-in model)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from service.comments.decisions import decide_comments, decide_pending
from service.comments.intake import get_comment, submit_comment
from service.comments.schemas import CommentIn
from service.core.db import session_scope
from service.core.tables import Decision
from service.sites.keys import get_or_create_site
from tests.factories import THRESHOLDS, WordModel


def _submit(sessions: sessionmaker[Session], *texts: str) -> tuple[int, list[str]]:
    ids = []
    with session_scope(sessions) as session:
        site_id = get_or_create_site(session, "news").id
        for i, text in enumerate(texts):
            payload = CommentIn(external_id=f"c{i}", article_id="a", author_id="u", text=text)
            ids.append(submit_comment(session, site_id, payload, max_text_chars=1000).comment.id)
    return site_id, ids


def test_toxic_comment_is_held_with_spans_and_civil_one_approved(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (rude, kind) = _submit(sessions, "you idiot", "thank you")
    model = WordModel()
    with session_scope(sessions) as session:
        decided = decide_comments(session, [rude, kind], model, default_thresholds=THRESHOLDS)
    assert {d.comment_id: d.status for d in decided} == {rude: "held", kind: "approved"}
    assert model.batches == [2], "one model call for the whole batch"
    with session_scope(sessions) as session:
        held = get_comment(session, site_id, rude)
        assert held.status == "held"
        assert held.decision is not None
        assert held.decision.model_version == "word-model-1"
        reason = held.decision.reasons[0]
        assert reason["attribute"] == "toxic"
        assert reason["spans"] == [{"text": "idiot", "start": 4, "end": 9, "weight": 1.5}]


def test_deciding_twice_stores_one_decision(sessions: sessionmaker[Session]) -> None:
    _, ids = _submit(sessions, "you idiot")
    for _ in range(2):
        with session_scope(sessions) as session:
            decide_comments(session, ids, WordModel(), default_thresholds=THRESHOLDS)
    with session_scope(sessions) as session:
        assert session.scalar(select(func.count()).select_from(Decision)) == 1


def test_a_task_decides_its_comment_with_other_pending_ones(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, *[f"comment {i}" for i in range(10)])
    model = WordModel()
    with session_scope(sessions) as session:
        decided = decide_pending(
            session, [ids[5], ids[7]], model, batch_size=4, default_thresholds=THRESHOLDS
        )
    assert len(decided) == 4
    assert {ids[5], ids[7]} <= {d.comment_id for d in decided}, "its own comments first"
    with session_scope(sessions) as session:
        again = decide_pending(
            session, [ids[5], ids[7]], model, batch_size=4, default_thresholds=THRESHOLDS
        )
    assert again == [], "already decided comments are left alone"


def test_a_batch_larger_than_the_limit_is_decided_whole(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, *[f"comment {i}" for i in range(6)])
    with session_scope(sessions) as session:
        decided = decide_pending(
            session, ids[:5], WordModel(), batch_size=2, default_thresholds=THRESHOLDS
        )
    assert {d.comment_id for d in decided} == set(ids[:5]), "none of its own left, no other"


class BrokenOnWord(WordModel):
    """Fails on any batch holding 'boom', as a featurizer bug on one odd text would."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if any("boom" in t for t in texts):
            raise RuntimeError("featurizer crashed")
        return super().predict_proba(texts)


def test_a_comment_the_model_cannot_score_is_held_and_spares_its_batch(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (bad, rude, kind) = _submit(sessions, "boom", "you idiot", "thank you")
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, [bad, rude, kind], BrokenOnWord(), default_thresholds=THRESHOLDS
        )
    assert {d.comment_id: d.status for d in decided} == {
        bad: "held",
        rude: "held",
        kind: "approved",
    }
    with session_scope(sessions) as session:
        held = get_comment(session, site_id, bad)
        assert held.decision is not None
        assert held.decision.reasons[0]["code"] == "scoring_error"


GERMAN = "Ich bin v\u00f6llig anderer Meinung als der Minister."
RUSSIAN = "\u042f \u043d\u0435 \u0441\u043e\u0433\u043b\u0430\u0441\u0435\u043d."


def test_a_comment_in_another_language_is_held_unscored_with_its_language(
    sessions: sessionmaker[Session],
) -> None:
    site_id, (german, rude, short) = _submit(sessions, GERMAN, "you idiot", "Danke!")
    model = WordModel()
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, [german, rude, short], model, default_thresholds=THRESHOLDS
        )
    assert {d.comment_id: d.status for d in decided} == {
        german: "held",
        rude: "held",
        short: "approved",
    }
    assert model.batches == [2], "only the English and the undetermined text are scored"
    with session_scope(sessions) as session:
        held = get_comment(session, site_id, german)
        assert held.decision is not None
        assert held.decision.scores == {}
        [reason] = held.decision.reasons
        assert reason["code"] == "unsupported_language"
        assert reason["language"] == "de"
        assert 0.6 <= reason["confidence"] <= 1.0


def test_a_batch_in_other_languages_makes_no_model_call(sessions: sessionmaker[Session]) -> None:
    _, ids = _submit(sessions, GERMAN, RUSSIAN)
    model = WordModel()
    with session_scope(sessions) as session:
        decided = decide_comments(session, ids, model, default_thresholds=THRESHOLDS)
    assert [d.status for d in decided] == ["held", "held"]
    assert model.batches == []


def test_a_site_policy_can_approve_other_languages(sessions: sessionmaker[Session]) -> None:
    with session_scope(sessions) as session:
        get_or_create_site(session, "news").policy = {"unsupported_language": "approve"}
    _, (german,) = _submit(sessions, GERMAN)
    with session_scope(sessions) as session:
        # The site's choice wins over the deployment's.
        decided = decide_comments(
            session,
            [german],
            WordModel(),
            default_thresholds=THRESHOLDS,
            unsupported_language="hold",
        )
    assert decided[0].status == "approved"
    assert decided[0].decision.reasons[0]["code"] == "unsupported_language"


def test_the_deployment_default_can_approve_other_languages(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, GERMAN)
    with session_scope(sessions) as session:
        decided = decide_pending(
            session,
            ids[:1],
            WordModel(),
            batch_size=4,
            default_thresholds=THRESHOLDS,
            unsupported_language="approve",
        )
    assert [d.status for d in decided] == ["approved"]


class JustBelow(WordModel):
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.array([[0.19996, 0.0] for _ in texts])


def test_a_score_just_below_the_threshold_is_approved_though_stored_rounded(
    sessions: sessionmaker[Session],
) -> None:
    _, ids = _submit(sessions, "borderline")
    with session_scope(sessions) as session:
        decided = decide_comments(
            session, ids, JustBelow(), default_thresholds={"toxic": 0.2, "insult": 0.2}
        )
    assert decided[0].status == "approved"
    assert decided[0].decision.scores["toxic"] == 0.2
